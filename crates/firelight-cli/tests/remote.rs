//! Remote devices end to end: `firelight serve` processes on loopback, a data-set job spread over
//! two of them as a pool equal to the local run, and a server that goes away mid-job reported,
//! the job resuming on another server to the same numbers.
#![cfg(feature = "remote")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn firelight(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_firelight"));
    command.args(args).env_remove("FIRELIGHT_TOKEN");
    for name in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX",
    ] {
        command.env_remove(name);
    }
    command
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(args: &[&str]) -> Output {
    firelight(args).output().expect("the binary runs")
}

fn succeed(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    text(&out)
}

/// A `firelight serve` process on a free loopback port, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let mut args = vec!["serve", "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = firelight(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("ws://"))
            .unwrap_or_else(|| panic!("no URL in `{first}`"))
            .to_string();
        Self { child, url }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("firelight-remote-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `count` of the bundled photos in a folder.
fn photos(name: &str, count: usize) -> PathBuf {
    let dir = scratch(name);
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/images");
    let bundled = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"];
    for i in 0..count {
        let source = bundled[i % bundled.len()];
        let extension = Path::new(source).extension().unwrap().to_string_lossy();
        std::fs::copy(
            images.join(source),
            dir.join(format!("photo{i:02}.{extension}")),
        )
        .unwrap();
    }
    dir
}

/// Saliency, Integrated Gradients and Grad-CAM over `inputs`, one photo per chunk.
fn job_args<'a>(inputs: &'a str, out: &'a str, devices: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "explain",
        "--inputs",
        inputs,
        "--out",
        out,
        "--method",
        "saliency,integrated_gradients,gradcam",
        "--steps",
        "8",
        "--layer",
        "/_conv_head/Conv_output_0",
        "--chunk-size",
        "1",
    ];
    for device in devices {
        args.extend(["--device", device]);
    }
    args
}

/// The job's index lines and every attribution's values, by file name.
fn results(dir: &Path) -> (String, BTreeMap<String, Vec<f32>>) {
    let index = std::fs::read_to_string(dir.join("index.jsonl")).unwrap();
    let mut values = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("attributions")).unwrap() {
        let path = entry.unwrap().path();
        let array = firelight::core::npy::parse_npy(&std::fs::read(&path).unwrap()).unwrap();
        values.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            array.data,
        );
    }
    (index, values)
}

/// The remote results equal the local ones: the same index (predictions and scores are compared
/// as numbers, within `1e-6` of the largest), the same files, each map within 1e-6 of its largest
/// magnitude.
fn assert_same(got: &Path, want: &Path) {
    let (got_index, got_values) = results(got);
    let (want_index, want_values) = results(want);
    assert_eq!(
        got_values.keys().collect::<Vec<_>>(),
        want_values.keys().collect::<Vec<_>>()
    );
    for (line_got, line_want) in got_index.lines().zip(want_index.lines()) {
        let mut got: serde_json::Value = serde_json::from_str(line_got).unwrap();
        let mut want: serde_json::Value = serde_json::from_str(line_want).unwrap();
        for key in ["probability", "score"] {
            let (g, w) = (got[key].take(), want[key].take());
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{key}: {g} vs {w}"
            );
        }
        assert_eq!(got, want);
    }
    assert_eq!(got_index.lines().count(), want_index.lines().count());
    for (name, want) in &want_values {
        let got = &got_values[name];
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let error = got
            .iter()
            .zip(want)
            .fold(0.0f32, |m, (g, w)| m.max((g - w).abs()));
        assert!(error <= 1e-6 * scale, "{name}: {error} at scale {scale}");
    }
}

#[test]
fn two_servers_as_a_pool_give_the_local_results() {
    let inputs = photos("pool-inputs", 4);
    let inputs = inputs.to_str().unwrap();
    let local = scratch("pool-local");
    succeed(&job_args(inputs, local.to_str().unwrap(), &[]));

    let (a, b) = (Server::start(&[]), Server::start(&[]));
    let pooled = scratch("pool-remote");
    let printed = succeed(&job_args(
        inputs,
        pooled.to_str().unwrap(),
        &[&a.url, &b.url],
    ));
    assert!(printed.contains("explained 4 samples"), "{printed}");
    assert_same(&pooled, &local);
}

#[test]
fn a_server_that_goes_away_mid_job_is_reported_and_the_job_resumes_on_another() {
    let inputs = photos("gone-inputs", 6);
    let inputs = inputs.to_str().unwrap();
    let local = scratch("gone-local");
    succeed(&job_args(inputs, local.to_str().unwrap(), &[]));

    let mut first = Server::start(&[]);
    let out = scratch("gone-remote");
    let args = job_args(inputs, out.to_str().unwrap(), &[&first.url]);
    let child = firelight(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !out.join("chunks/chunk-000001.jsonl").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the job hangs"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.stop();
    let output = child.wait_with_output().unwrap();
    let printed = text(&output);
    assert!(
        !output.status.success(),
        "the job went on without its server: {printed}"
    );
    assert!(printed.contains("resumes the job"), "{printed}");
    assert!(!out.join("index.jsonl").exists());

    let second = Server::start(&[]);
    let printed = succeed(&job_args(inputs, out.to_str().unwrap(), &[&second.url]));
    assert!(printed.contains("were done already"), "{printed}");
    assert_same(&out, &local);
}

#[test]
fn tokens_and_unreachable_servers_are_clear_errors() {
    let server = Server::start(&["--token", "sesame"]);
    let refused = text(&run(&["predict", "--device", &server.url]));
    assert!(refused.contains("cannot open a session"), "{refused}");
    let printed = succeed(&["predict", "--device", &server.url, "--token", "sesame"]);
    assert!(printed.contains("cat"), "{printed}");

    for (device, says) in [
        ("ws://127.0.0.1", "no port"),
        ("wss://127.0.0.1:3000", "wss://"),
        ("http://127.0.0.1:3000", "not a device"),
    ] {
        let printed = text(&run(&["predict", "--device", device]));
        assert!(printed.contains(says), "{device}: {printed}");
    }
    let two = text(&run(&[
        "predict",
        "--device",
        "flex",
        "--device",
        &server.url,
    ]));
    assert!(two.contains("data-set jobs"), "{two}");
    let served_remote = text(&run(&["serve", "--device", &server.url]));
    assert!(
        served_remote.contains("of its own machine"),
        "{served_remote}"
    );
}
