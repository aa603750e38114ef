//! Data-set jobs end to end (`firelight explain --inputs`, `firelight merge`): a job killed at a
//! random chunk resumes to the same bytes, shards from SLURM's and Kubernetes' environments and a
//! pool of workers merge to the single run, and bad samples are reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use firelight::dataset::Record;

fn firelight(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_firelight"));
    command.args(args);
    for name in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "JOB_COMPLETION_INDEX",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn succeed(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = firelight(args, env).output().expect("the binary runs");
    let t = text(&out);
    assert!(out.status.success(), "{args:?}: {t}");
    t
}

fn fail(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = firelight(args, env).output().expect("the binary runs");
    let t = text(&out);
    assert!(!out.status.success(), "{args:?} should fail: {t}");
    t
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("firelight-dataset-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `count` photos (the bundled ones, over and over) in a folder with a sub-folder.
fn photos(name: &str, count: usize) -> PathBuf {
    let dir = scratch(name);
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/images");
    let bundled = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"];
    std::fs::create_dir_all(dir.join("more")).unwrap();
    for i in 0..count {
        let source = bundled[i % bundled.len()];
        let extension = Path::new(source).extension().unwrap().to_string_lossy();
        let folder = if i % 3 == 2 { "more/" } else { "" };
        std::fs::copy(
            images.join(source),
            dir.join(format!("{folder}photo{i:02}.{extension}")),
        )
        .unwrap();
    }
    dir
}

/// Saliency (one batch per chunk) and SmoothGrad (seeded per sample) over `inputs`.
fn job_args<'a>(inputs: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "explain",
        "--inputs",
        inputs,
        "--out",
        out,
        "--method",
        "saliency,smoothgrad",
        "--samples",
        "2",
        "--chunk-size",
        "2",
    ];
    args.extend_from_slice(extra);
    args
}

/// Every file under `dir` by its relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        files.insert(name, bytes);
                    }
                    // A running job's temporary file, renamed since the folder was listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("{name}: {e}"),
                }
            }
        }
    }
    files
}

fn records(index: &Path) -> Vec<Record> {
    std::fs::read_to_string(index)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every file under a final name is whole: index lines parse and name files that are there,
/// `.npy` files parse with as many values as their shape says.
fn assert_whole(dir: &Path) {
    for (name, bytes) in tree(dir) {
        let file = Path::new(&name)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if file.starts_with('.') {
            continue;
        }
        if name.ends_with(".npy") {
            let array = firelight::core::npy::parse_npy(&bytes)
                .unwrap_or_else(|e| panic!("{name} is not whole: {e}"));
            assert_eq!(
                array.data.len(),
                array.shape.iter().product::<usize>(),
                "{name}"
            );
        } else if name.ends_with(".jsonl") {
            for line in String::from_utf8(bytes).unwrap().lines() {
                let record: Record = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{name} has a broken line: {e}"));
                if let Some(output) = record.output {
                    assert!(
                        dir.join(&output).is_file(),
                        "{name} names {output}, not there"
                    );
                }
            }
        }
    }
}

fn markers(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("chunks"))
        .map(|entries| {
            entries
                .filter(|e| {
                    let name = e
                        .as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .into_owned();
                    !name.starts_with('.') && name.ends_with(".jsonl")
                })
                .count()
        })
        .unwrap_or(0)
}

/// The reference: the whole job in one process, uninterrupted.
fn reference(inputs: &str, name: &str) -> PathBuf {
    let out = scratch(name);
    let printed = succeed(&job_args(inputs, out.to_str().unwrap(), &[]), &[]);
    assert!(printed.contains("index:"), "{printed}");
    out
}

#[test]
fn a_job_killed_at_a_random_chunk_resumes_to_the_same_bytes() {
    let inputs = photos("kill-inputs", 8);
    let inputs = inputs.to_str().unwrap();
    let whole = reference(inputs, "kill-reference");
    let index = records(&whole.join("index.jsonl"));
    assert_eq!(index.len(), 16, "8 samples x 2 methods");
    assert!(index.iter().all(|r| r.error.is_none() && r.score.is_some()));
    assert_eq!(
        index[0].id, "more/photo02.png",
        "samples go in the order of their paths"
    );

    // Killed (SIGKILL: no chance to clean up) once 1 to 3 of the 4 chunks are done.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    let kill_after = 1 + nanos % 3;
    eprintln!("killing after {kill_after} chunks");
    let out = scratch("killed");
    let args = job_args(inputs, out.to_str().unwrap(), &[]);
    let mut child = firelight(&args, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while markers(&out) < kill_after {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before the kill"
        );
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the job hangs"
        );
        assert_whole(&out);
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_whole(&out);
    assert!(
        !out.join("index.jsonl").exists(),
        "no index before every chunk is done"
    );

    let printed = succeed(&args, &[]);
    assert!(printed.contains("were done already"), "{printed}");
    assert_eq!(
        tree(&out),
        tree(&whole),
        "the resumed job's files differ from the whole run's"
    );
    // Resuming a finished job computes nothing and changes nothing.
    let printed = succeed(&args, &[]);
    assert!(
        printed.contains("explained 0 samples in 0 chunks (4 were done already)"),
        "{printed}"
    );
    assert_eq!(tree(&out), tree(&whole));
    // Other settings into the same folder are refused, not mixed in.
    let other = job_args(inputs, out.to_str().unwrap(), &["--seed", "7"]);
    assert!(fail(&other, &[]).contains("other settings"));
}

#[test]
fn shards_from_slurm_kubernetes_and_the_flag_merge_to_the_single_run() {
    let inputs = photos("shard-inputs", 7);
    let inputs = inputs.to_str().unwrap();
    let whole = reference(inputs, "shard-reference");

    // Three processes at once into one shared folder, each told its shard another way.
    let shared = scratch("shared");
    let out = shared.to_str().unwrap();
    let runs = [
        (
            job_args(inputs, out, &[]),
            vec![
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
            ],
        ),
        (
            job_args(inputs, out, &["--shards", "3"]),
            vec![("JOB_COMPLETION_INDEX", "1")],
        ),
        (job_args(inputs, out, &["--shard", "2/3"]), vec![]),
    ];
    let children: Vec<_> = runs
        .iter()
        .map(|(args, env)| {
            firelight(args, env)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }
    let printed = succeed(&["merge", out], &[]);
    assert!(
        printed.contains("14 index lines from 4 chunks"),
        "{printed}"
    );
    assert_eq!(
        tree(&shared),
        tree(&whole),
        "shards in one folder differ from the single run"
    );

    // A folder per shard, merged into a third: the same lines and numbers, the paths relative.
    let dirs: Vec<PathBuf> = (0..3).map(|i| scratch(&format!("shard{i}"))).collect();
    for (i, dir) in dirs.iter().enumerate() {
        let shard = format!("{i}/3");
        succeed(
            &job_args(inputs, dir.to_str().unwrap(), &["--shard", &shard]),
            &[],
        );
    }
    let early = fail(&["merge", dirs[0].to_str().unwrap()], &[]);
    assert!(early.contains("chunks are not done (1, 2)"), "{early}");
    let merged = scratch("merged");
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    succeed(&args, &[]);
    let (expected, got) = (
        records(&whole.join("index.jsonl")),
        records(&merged.join("index.jsonl")),
    );
    assert_eq!(got.len(), expected.len());
    for (got, expected) in got.iter().zip(&expected) {
        let output = got.output.clone().unwrap();
        assert!(output.starts_with("../firelight-dataset-shard"), "{output}");
        assert_eq!(
            std::fs::read(merged.join(&output)).unwrap(),
            std::fs::read(whole.join(expected.output.as_ref().unwrap())).unwrap(),
            "{output}"
        );
        assert_eq!(
            Record {
                output: expected.output.clone(),
                ..got.clone()
            },
            *expected
        );
    }
}

#[test]
fn a_pool_of_workers_gives_the_single_runs_bytes() {
    let inputs = photos("pool-inputs", 6);
    let inputs = inputs.to_str().unwrap();
    let whole = reference(inputs, "pool-reference");
    let pool = scratch("pool");
    succeed(
        &job_args(inputs, pool.to_str().unwrap(), &["--workers", "2"]),
        &[],
    );
    assert_eq!(tree(&pool), tree(&whole));
}

#[test]
fn an_unreadable_sample_fails_the_job_or_is_skipped_and_reported() {
    let inputs = photos("bad-inputs", 3);
    std::fs::write(inputs.join("photo01b.png"), b"not a png").unwrap();
    let inputs = inputs.to_str().unwrap();
    let out = scratch("bad-fail");
    let args = [
        "explain",
        "--inputs",
        inputs,
        "--out",
        out.to_str().unwrap(),
        "--method",
        "saliency",
    ];
    let printed = fail(&args, &[]);
    assert!(
        printed.contains("photo01b.png") && printed.contains("--on-error skip"),
        "{printed}"
    );

    let out = scratch("bad-skip");
    let mut args = args.to_vec();
    args[4] = out.to_str().unwrap();
    args.extend(["--on-error", "skip", "--pictures"]);
    let printed = succeed(&args, &[]);
    assert!(
        printed.contains("skipped") && printed.contains("photo01b.png"),
        "{printed}"
    );
    assert!(
        printed.contains("1 index lines carry an error"),
        "{printed}"
    );
    let index = records(&out.join("index.jsonl"));
    let bad: Vec<&Record> = index.iter().filter(|r| r.error.is_some()).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].id, "photo01b.png");
    assert!(bad[0].output.is_none() && bad[0].method.is_none());
    assert_eq!(
        index.len(),
        4,
        "three results and one error, in sample order"
    );
    assert!(
        out.join("attributions/photo00.png.saliency.png").is_file(),
        "--pictures draws the maps"
    );
}

#[test]
fn shards_out_of_range_and_unknown_data_sets_are_refused() {
    let inputs = photos("range-inputs", 2);
    let inputs = inputs.to_str().unwrap();
    let out = scratch("range");
    let out = out.to_str().unwrap();
    let refused = fail(&job_args(inputs, out, &["--shard", "3/3"]), &[]);
    assert!(refused.contains("the last of 3 is 2"), "{refused}");
    let refused = fail(
        &job_args(inputs, out, &[]),
        &[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
    );
    assert!(refused.contains("the last of 4 is 3"), "{refused}");
    let refused = fail(
        &job_args(inputs, out, &[]),
        &[("JOB_COMPLETION_INDEX", "0")],
    );
    assert!(refused.contains("--shards"), "{refused}");
    let refused = fail(&job_args("/no/such/folder", out, &[]), &[]);
    assert!(refused.contains("/no/such/folder"), "{refused}");
    let refused = fail(
        &[
            "explain", "--inputs", inputs, "--out", out, "--method", "gradcam",
        ],
        &[],
    );
    assert!(refused.contains("gradcam needs --layer"), "{refused}");
    let refused = fail(&["merge", out], &[]);
    assert!(refused.contains("job.json"), "{refused}");
}

/// The bundled drug reviews (a real text data set: `models/minilm_sentiment/inputs`).
fn reviews() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/minilm_sentiment/inputs/drug_reviews.tsv")
}

/// The `scores` of each attribution file an index names, by sample id.
fn text_scores(dir: &Path) -> BTreeMap<String, Vec<f64>> {
    records(&dir.join("index.jsonl"))
        .into_iter()
        .map(|r| {
            let file: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.join(r.output.as_ref().unwrap())).unwrap(),
            )
            .unwrap();
            let scores = file["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            (r.id, scores)
        })
        .collect()
}

#[test]
fn a_text_data_set_job_gives_the_one_shot_numbers_and_its_seeded_shards_the_whole_runs_bytes() {
    let reviews = reviews();
    let reviews = reviews.to_str().unwrap();
    // Layer IG over the reviews in chunks of 5 (each padded to its own longest review) against
    // `explain-text --text-file` on all twelve at once.
    let job = scratch("text-job");
    let printed = succeed(
        &[
            "explain-text",
            "--inputs",
            reviews,
            "--text-column",
            "review",
            "--out",
            job.to_str().unwrap(),
            "--steps",
            "4",
            "--target",
            "negative",
            "--chunk-size",
            "5",
        ],
        &[],
    );
    assert!(
        printed.contains("explained 12 samples in 3 chunks"),
        "{printed}"
    );
    let table = std::fs::read_to_string(reviews).unwrap();
    let lines: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(2).unwrap())
        .collect();
    let text_file = scratch("text-lines").join("reviews.txt");
    std::fs::write(&text_file, lines.join("\n")).unwrap();
    let one_shot = scratch("text-one-shot");
    succeed(
        &[
            "explain-text",
            "--text-file",
            text_file.to_str().unwrap(),
            "--out",
            one_shot.to_str().unwrap(),
            "--steps",
            "4",
            "--target",
            "negative",
        ],
        &[],
    );
    let one_shot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one_shot.join("explain_text.json")).unwrap())
            .unwrap();
    let index = records(&job.join("index.jsonl"));
    let scores = text_scores(&job);
    assert_eq!(index.len(), 12);
    for (record, sentence) in index.iter().zip(one_shot["sentences"].as_array().unwrap()) {
        assert_eq!(record.target_label.as_deref(), Some("negative"));
        let want: Vec<f64> = sentence["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let got = &scores[&record.id];
        assert_eq!(got.len(), want.len(), "{}", record.id);
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * scale, "{}: {g} vs {w}", record.id);
        }
    }

    // LIME, seeded per review by its id: two shards in chunks of 2 give the bytes of one run in
    // chunks of 3; the rating column is each review's target.
    let lime = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "explain-text",
            "--inputs",
            reviews,
            "--text-column",
            "review",
            "--target-column",
            "rating",
            "--method",
            "lime",
            "--samples",
            "8",
            "--words",
            "--out",
        ];
        let out = out.to_str().unwrap().to_string();
        let mut owned: Vec<String> = args.drain(..).map(String::from).collect();
        owned.push(out);
        owned.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        succeed(&args, &[])
    };
    let whole = scratch("text-lime-whole");
    lime(&whole, &["--chunk-size", "3"]);
    let sharded = scratch("text-lime-shards");
    lime(&sharded, &["--chunk-size", "2", "--shard", "0/2"]);
    let printed = lime(&sharded, &["--chunk-size", "2", "--shard", "1/2"]);
    assert!(printed.contains("index:"), "{printed}");
    assert_eq!(
        std::fs::read(sharded.join("index.jsonl")).unwrap(),
        std::fs::read(whole.join("index.jsonl")).unwrap()
    );
    let (whole_files, sharded_files) = (
        tree(&whole.join("attributions")),
        tree(&sharded.join("attributions")),
    );
    assert_eq!(whole_files.len(), 12);
    assert_eq!(sharded_files, whole_files);
    let ratings: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(3).unwrap())
        .collect();
    for (record, rating) in records(&whole.join("index.jsonl")).iter().zip(ratings) {
        assert_eq!(record.target_label.as_deref(), Some(rating));
    }
}

#[test]
fn a_text_table_without_its_column_or_with_an_unknown_class_is_reported() {
    let reviews = reviews();
    let out = scratch("text-bad");
    let no_column = fail(
        &[
            "explain-text",
            "--inputs",
            reviews.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        no_column.contains("no text column `text`") && no_column.contains("review"),
        "{no_column}"
    );
    let table = scratch("text-bad-table").join("set.csv");
    std::fs::write(
        &table,
        "id,text,target\na,Wonderful pills.,positive\nb,Awful.,furious\n",
    )
    .unwrap();
    let table = table.to_str().unwrap();
    let run = |policy: &str, out: &Path| {
        let out = out.to_str().unwrap();
        let args = [
            "explain-text",
            "--inputs",
            table,
            "--method",
            "occlusion",
            "--out",
            out,
            "--on-error",
            policy,
        ];
        firelight(&args, &[]).output().expect("the binary runs")
    };
    let failed = run("fail", &out);
    assert!(!failed.status.success());
    let failed = text(&failed);
    assert!(
        failed.contains("sample `b` failed") && failed.contains("furious"),
        "{failed}"
    );
    let skipped_out = scratch("text-bad-skip");
    let skipped = run("skip", &skipped_out);
    assert!(skipped.status.success());
    let skipped = text(&skipped);
    assert!(
        skipped.contains("1 index lines carry an error"),
        "{skipped}"
    );
    let index = records(&skipped_out.join("index.jsonl"));
    let by_id = |id: &str| index.iter().find(|r| r.id == id).unwrap();
    assert!(by_id("a").error.is_none() && by_id("a").score.is_some());
    assert!(by_id("b").error.as_deref().unwrap().contains("furious"));
    // A text too long for the model's positions, with --no-truncate, fails alone.
    let long = scratch("text-bad-long").join("set.csv");
    let words = "good ".repeat(600);
    std::fs::write(
        &long,
        format!("id,text\na,Wonderful pills.\nb,{words}\nc,Awful.\n"),
    )
    .unwrap();
    let long_out = scratch("text-bad-long-out");
    let args = [
        "explain-text",
        "--inputs",
        long.to_str().unwrap(),
        "--method",
        "occlusion",
        "--out",
        long_out.to_str().unwrap(),
        "--on-error",
        "skip",
        "--no-truncate",
    ];
    succeed(&args, &[]);
    let index = records(&long_out.join("index.jsonl"));
    let ok: Vec<&str> = index
        .iter()
        .filter(|r| r.error.is_none())
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(ok, ["a", "c"], "{index:?}");
    // The same ids with another text are another job: refused, not mixed into this one.
    std::fs::write(
        table,
        "id,text,target\na,Dreadful pills.,positive\nb,Awful.,furious\n",
    )
    .unwrap();
    let changed = text(&run("skip", &skipped_out));
    assert!(
        changed.contains("holds a job with other samples"),
        "{changed}"
    );
}

#[test]
fn a_tabular_data_set_job_gives_the_one_shot_numbers_and_its_seeded_methods_ignore_the_chunks() {
    let rows =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/diabetes_mlp/test_rows.csv");
    let rows = rows.to_str().unwrap();
    let job = |out: &Path, chunk: &str| {
        succeed(
            &[
                "explain",
                "--model",
                "diabetes_mlp",
                "--inputs",
                rows,
                "--out",
                out.to_str().unwrap(),
                "--method",
                "integrated_gradients,feature_ablation,kernel_shap",
                "--chunk-size",
                chunk,
            ],
            &[],
        )
    };
    let by16 = scratch("rows-16");
    let printed = job(&by16, "16");
    assert!(
        printed.contains("explained 89 samples in 6 chunks"),
        "{printed}"
    );
    let by7 = scratch("rows-7");
    job(&by7, "7");
    // KernelSHAP is seeded per row by its id and runs row by row: other chunks, the same numbers
    // (the predictions beside them come from the chunk's batch, rounded as its size has it).
    let shap = |dir: &Path| {
        tree(&dir.join("attributions"))
            .into_iter()
            .filter(|(name, _)| name.contains("kernel_shap"))
            .map(|(name, bytes)| {
                let file: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                (name, file["attributions"].to_string())
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(shap(&by16).len(), 89);
    assert_eq!(shap(&by16), shap(&by7));

    // The deterministic methods equal `--rows`, which explains all 89 rows in one batch.
    let once = scratch("rows-once");
    succeed(
        &[
            "explain",
            "--model",
            "diabetes_mlp",
            "--rows",
            rows,
            "--out",
            once.to_str().unwrap(),
            "--method",
            "integrated_gradients,feature_ablation",
        ],
        &[],
    );
    let once: serde_json::Value = serde_json::from_slice(
        &std::fs::read(once.join("diabetes_mlp_attributions.json")).unwrap(),
    )
    .unwrap();
    for (r, row) in once["rows"].as_array().unwrap().iter().enumerate() {
        for method in ["integrated_gradients", "feature_ablation"] {
            let file = by16.join(format!("attributions/row-{:06}.{method}.json", r + 1));
            let got: serde_json::Value =
                serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            let numbers = |v: &serde_json::Value| -> Vec<f64> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            };
            let (got, want) = (
                numbers(&got["attributions"]),
                numbers(&row["attributions"][method]),
            );
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-5 * scale,
                    "row {} {method}: {g} vs {w}",
                    r + 1
                );
            }
        }
    }

    // A bad cell fails its row alone under --on-error skip; feature_permutation is refused.
    let table = scratch("rows-bad").join("rows.csv");
    let text_rows = std::fs::read_to_string(rows).unwrap();
    let mut lines: Vec<String> = text_rows.lines().take(4).map(String::from).collect();
    lines[2] = lines[2].replacen(|c: char| c.is_ascii_digit(), "x", 1);
    std::fs::write(&table, lines.join("\n")).unwrap();
    let out = scratch("rows-bad-out");
    let skipped = succeed(
        &[
            "explain",
            "--model",
            "diabetes_mlp",
            "--inputs",
            table.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--method",
            "feature_ablation",
            "--on-error",
            "skip",
        ],
        &[],
    );
    assert!(
        skipped.contains("1 index lines carry an error"),
        "{skipped}"
    );
    let index = records(&out.join("index.jsonl"));
    assert!(
        index[1].error.as_deref().unwrap().contains("not a number"),
        "{index:?}"
    );
    let refused = fail(
        &[
            "explain",
            "--model",
            "diabetes_mlp",
            "--inputs",
            rows,
            "--out",
            scratch("rows-perm").to_str().unwrap(),
            "--method",
            "feature_permutation",
        ],
        &[],
    );
    assert!(refused.contains("depend on the chunks"), "{refused}");
}

/// Object storage through `file://` (the same `object_store` code path as S3, GCS and Azure, minus
/// the network): two shards on "two machines" (each its own staging folder) fill one store, the
/// second merges the index there, and the store holds the bytes of a local single run.
#[cfg(feature = "object-store")]
#[test]
fn shards_writing_to_object_storage_give_the_single_runs_bytes() {
    let inputs = photos("store-inputs", 5);
    let inputs = inputs.to_str().unwrap();
    let whole = reference(inputs, "store-reference");
    let store = scratch("store");
    let url = format!("file://{}", store.display());
    for (shard, machine) in [("0/2", "machine-a"), ("1/2", "machine-b")] {
        let staging = scratch(machine);
        let printed = succeed(
            &job_args(inputs, &url, &["--shard", shard]),
            &[("TMPDIR", staging.to_str().unwrap())],
        );
        assert!(printed.contains("chunks there already"), "{printed}");
    }
    assert_eq!(
        tree(&store),
        tree(&whole),
        "the store differs from the local run"
    );
    // Resuming a finished job from a third machine computes nothing.
    let staging = scratch("machine-c");
    let printed = succeed(
        &job_args(inputs, &url, &[]),
        &[("TMPDIR", staging.to_str().unwrap())],
    );
    assert!(
        printed.contains("explained 0 samples in 0 chunks (3 were done already)"),
        "{printed}"
    );

    let no_credentials = firelight(&job_args(inputs, "s3://bucket/audit", &[]), &[])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env_remove("AWS_SKIP_SIGNATURE")
        .output()
        .unwrap();
    let said = text(&no_credentials);
    assert!(!no_credentials.status.success());
    assert!(
        said.contains("no credentials") && said.contains("AWS_ACCESS_KEY_ID"),
        "{said}"
    );
}
