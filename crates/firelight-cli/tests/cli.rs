//! The `firelight` binary end to end: the bundled model and photo, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn firelight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firelight"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("firelight-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs `firelight args`, fails the test unless it succeeds, and returns what it printed.
fn succeed(args: &[&str]) -> String {
    let run = firelight(args);
    let t = text(&run);
    assert!(run.status.success(), "{args:?}: {t}");
    t
}

/// The file names in `dir`, sorted.
fn sorted_files_in(dir: &Path) -> Vec<String> {
    let mut files = files_in(dir);
    files.sort();
    files
}

fn photo(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/images")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn explain_writes_an_overlay_and_the_attributions() {
    let out = scratch("explain");
    let o = out.to_str().unwrap();
    let run = firelight(&["explain", "--method", "saliency", "--out", o]);
    assert!(run.status.success(), "{}", text(&run));
    let t = text(&run);
    assert!(t.contains("Egyptian cat"), "{t}");
    let mut files = files_in(&out);
    files.sort();
    assert_eq!(files, vec!["chelsea_saliency.npy", "chelsea_saliency.png"]);
    let npy = firelight::core::npy::read_npy(out.join("chelsea_saliency.npy")).unwrap();
    assert_eq!(npy.shape, vec![1, 3, 224, 224]);
    let png = firelight::viz::RgbImage::read_png(out.join("chelsea_saliency.png")).unwrap();
    assert_eq!((png.width, png.height), (224, 224));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn targets_by_name_and_layer_methods() {
    let out = scratch("layer");
    let o = out.to_str().unwrap();
    let coffee = photo("coffee.png");
    let run = firelight(&[
        "explain",
        "--image",
        &coffee,
        "--target",
        "espresso",
        "--method",
        "layer_gradient_x_activation",
        "--layer",
        "/_conv_head/Conv_output_0",
        "--out",
        o,
    ]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        text(&run).contains("espresso` (class 967)"),
        "{}",
        text(&run)
    );
    // The layer's slashes become underscores in the file name.
    let npy = firelight::core::npy::read_npy(
        out.join("coffee_layer_gradient_x_activation_conv_head_Conv_output_0.npy"),
    )
    .unwrap();
    assert_eq!(npy.shape, vec![1, 1280, 7, 7]);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn class_activation_maps_draw_an_overlay() {
    let out = scratch("cam");
    let o = out.to_str().unwrap();
    let run = firelight(&[
        "explain",
        "--method",
        "gradcam++",
        "--layer",
        "/_conv_head/Conv_output_0",
        "--out",
        o,
    ]);
    assert!(run.status.success(), "{}", text(&run));
    let npy =
        firelight::core::npy::read_npy(out.join("chelsea_gradcam++_conv_head_Conv_output_0.npy"))
            .unwrap();
    assert_eq!(npy.shape, vec![1, 1, 224, 224]);
    assert!(npy.data.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(
        out.join("chelsea_gradcam++_conv_head_Conv_output_0.png")
            .is_file()
    );
    let run = firelight(&[
        "explain", "--method", "gradcam", "--layer", "logits", "--out", o,
    ]);
    assert!(!run.status.success());
    assert!(text(&run).contains("spatial CAM"), "{}", text(&run));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn predict_and_layers() {
    let run = firelight(&["predict", "--image", &photo("coffee.png"), "--top", "1"]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("espresso"), "{}", text(&run));
    let run = firelight(&["predict", "--image", &photo("rocket.jpg"), "--top", "2"]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("missile"), "{}", text(&run));
    let run = firelight(&["layers"]);
    assert!(run.status.success());
    let listing = text(&run);
    assert!(
        listing.contains("/_conv_head/Conv_output_0") && listing.contains("[?, 1280, 7, 7]"),
        "{listing}"
    );
    // Any ONNX file by path: its preprocess.json and labels.json beside it are picked up.
    let onnx = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/efficientnet_lite0/model.onnx")
        .to_str()
        .unwrap()
        .to_string();
    let run = firelight(&[
        "predict",
        "--model",
        &onnx,
        "--image",
        &photo("coffee.png"),
        "--top",
        "1",
    ]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("espresso"), "{}", text(&run));
    let run = firelight(&["layers", "--model", "mobilenet_v2"]);
    assert!(run.status.success());
    assert!(text(&run).contains("features.18"), "{}", text(&run));
}

#[test]
fn bad_input_fails_clearly_and_leaves_no_output() {
    let out = scratch("bad");
    let o = out.to_str().unwrap();
    let not_image = out.join("notes.png");
    std::fs::write(&not_image, "not a picture").unwrap();
    let not_image = not_image.to_str().unwrap().to_string();
    let truncated = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx_malformed/truncated_half.onnx")
        .to_str()
        .unwrap()
        .to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--image", "/no/such/photo.png"], "/no/such/photo.png"),
        (vec!["--image", &not_image], "not an image"),
        (vec!["--model", "/no/such/net.onnx"], "/no/such/net.onnx"),
        (
            vec!["--model", "alexnet"],
            "efficientnet_lite0, mobilenet_v2",
        ),
        (vec!["--model", &truncated], "cannot parse"),
        (vec!["--device", "cpu"], "flex is the CPU backend"),
        (vec!["--mean", "0.5,0.5"], "three comma-separated numbers"),
        (vec!["--method", "shapley_magic"], "unknown method"),
        (vec!["--method", "gradcam+"], "closest: gradcam"),
        (
            vec![
                "--method",
                "layer_conductance",
                "--layer",
                "/_blocks.99/Add_output_0",
            ],
            "`/_blocks.",
        ),
        (
            vec!["--method", "layer_conductance", "--layer", "features.99"],
            "`firelight layers` lists them all",
        ),
        (
            vec!["--method", "saliency", "--steps", "8"],
            "--steps applies to none of these methods",
        ),
        (vec!["--method", "layer_conductance"], "needs a layer"),
        (vec!["--target", "1000"], "out of range"),
        (vec!["--target", "unicorn"], "no class named `unicorn`"),
        (vec!["--steps", "0"], "n_steps"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["explain", "--out", o];
        all.extend(args.iter().copied());
        let run = firelight(&all);
        assert!(!run.status.success(), "{all:?} succeeded");
        let t = text(&run);
        assert!(t.contains("error"), "{all:?}: {t}");
        assert!(
            t.contains(expected),
            "{all:?}: expected `{expected}` in {t}"
        );
        let left: Vec<String> = files_in(&out)
            .into_iter()
            .filter(|f| f != "notes.png")
            .collect();
        assert!(left.is_empty(), "{all:?} left {left:?}");
    }
    let run = firelight(&["explain", "--device", "cuda"]);
    if !cfg!(feature = "cuda") {
        assert!(!run.status.success());
        assert!(text(&run).contains("--features cuda"), "{}", text(&run));
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn concept_images_methods_side_by_side_and_evaluate() {
    let out = scratch("concept");
    let o = out.to_str().unwrap();
    let layer = "/_conv_head/Conv_output_0";
    let run = firelight(&[
        "explain",
        "--image",
        &photo("cat_and_coffee.png"),
        "--concept-image",
        &photo("coffee.png"),
        "--method",
        "gradcam,layercam",
        "--layer",
        layer,
        "--out",
        o,
    ]);
    let t = text(&run);
    assert!(run.status.success(), "{t}");
    assert!(
        t.contains("similarity to") && t.contains("/_avg_pooling/GlobalAveragePool_output_0"),
        "{t}"
    );
    let files = files_in(&out);
    assert!(
        files.contains(&"cat_and_coffee_similarity_coffee_grid.png".to_string()),
        "{files:?}"
    );
    let map = firelight::core::npy::read_npy(
        out.join("cat_and_coffee_gradcam_similarity_coffee_conv_head_Conv_output_0.npy"),
    )
    .unwrap();
    // The coffee (right half) is hotter than the cat (left half).
    let data = &map.data;
    let mean = |cols: std::ops::Range<usize>| -> f32 {
        let values: Vec<f32> = (56..168)
            .flat_map(|y| cols.clone().map(move |x| data[y * 224 + x]))
            .collect();
        values.iter().sum::<f32>() / values.len() as f32
    };
    assert!(mean(112..224) > 3.0 * mean(0..112), "{t}");

    let run = firelight(&[
        "evaluate",
        "--method",
        "gradcam,saliency",
        "--layer",
        layer,
        "--percentiles",
        "20,80",
        "--metric",
        "road,deletion,insertion,infidelity,sensitivity,faithfulness,region,sparseness,complexity",
        "--step",
        "5000",
        "--regions",
        "6",
        "--n-perturb-samples",
        "2",
        "--nr-runs",
        "5",
        "--subset-size",
        "500",
        "--out",
        o,
    ]);
    let t = text(&run);
    assert!(run.status.success(), "{t}");
    assert!(
        t.contains("road_morf") && t.contains("deletion_auc") && t.contains("most faithful"),
        "{t}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("chelsea_evaluate_conv_head_Conv_output_0.json"))
            .unwrap(),
    )
    .unwrap();
    let methods = json["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 2);
    for key in [
        "road_combined",
        "deletion_auc",
        "insertion_auc",
        "infidelity",
        "sensitivity_max",
        "faithfulness_correlation",
        "region_aopc",
        "sparseness",
        "complexity",
    ] {
        assert!(methods[1][key].as_f64().is_some(), "{key}: {}", methods[1]);
    }
    // 224 x 224 pixels, 5000 a step: 11 steps and the start.
    assert_eq!(
        json["curves"][0]["methods"][0]["scores"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
    assert_eq!(json["agreement"]["spearman"][0][0], 1.0);
    assert_eq!(json["agreement"]["k"], 224 * 224 / 10);
    for file in ["", "_deletion", "_insertion", "_agreement"] {
        let png = out.join(format!(
            "chelsea_evaluate_conv_head_Conv_output_0{file}.png"
        ));
        assert!(png.exists(), "{}", png.display());
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn sanity_redraws_the_weights_and_reports_each_method_with_its_figure() {
    let out = scratch("sanity");
    let o = out.to_str().unwrap();
    let t = succeed(&[
        "sanity", "--method", "saliency", "--groups", "2", "--out", o,
    ]);
    assert!(
        t.contains("cascading randomisation of 50 layers") && t.contains("saliency"),
        "{t}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("chelsea_sanity.json")).unwrap())
            .unwrap();
    let steps = json["methods"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["randomized_layers"], 50);
    assert!(out.join("chelsea_sanity.png").exists());
    // A native network is rebuilt with its weights redrawn.
    let t = succeed(&[
        "sanity",
        "--model",
        "mobilenet_v2",
        "--method",
        "saliency",
        "--groups",
        "2",
        "--out",
        o,
    ]);
    assert!(
        t.contains("cascading randomisation of 105 layers") && t.contains("saliency"),
        "{t}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn visualize_draws_a_picture_per_channel_and_refuses_a_channel_the_layer_lacks() {
    let out = scratch("visualize");
    let o = out.to_str().unwrap();
    let layer = "/_conv_head/Conv_output_0";
    let t = succeed(&[
        "visualize",
        "--layer",
        layer,
        "--channel",
        "0,1",
        "--steps",
        "2",
        "--out",
        o,
    ]);
    assert!(t.contains("channel 1: objective"), "{t}");
    assert!(out.join("visualize_conv_head_Conv_output_0.png").exists());
    let bad = firelight(&[
        "visualize",
        "--layer",
        layer,
        "--channel",
        "5000",
        "--steps",
        "1",
        "--out",
        o,
    ]);
    assert!(
        !bad.status.success() && text(&bad).contains("1280 channels"),
        "{}",
        text(&bad)
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn visualize_dreams_on_a_photo_and_draws_a_concepts_direction() {
    let out = scratch("dream");
    let o = out.to_str().unwrap();
    let t = succeed(&[
        "visualize",
        "--layer",
        "/_blocks.10/Add_output_0",
        "--dream",
        &photo("chelsea.png"),
        "--octaves",
        "2",
        "--steps",
        "2",
        "--out",
        o,
    ]);
    assert!(t.contains("layer: objective"), "{t}");
    assert!(out.join("dream_blocks.10_Add_output_0.png").exists());
    // A CAV of the texture model's striped concept, trained at the layer, as the objective.
    let t = succeed(&[
        "visualize",
        "--model",
        &texture("model.onnx"),
        "--layer",
        "/relu3/Relu_output_0",
        "--concept",
        &format!("striped={}", texture("concepts/striped")),
        "--random",
        &texture("concepts/random"),
        "--steps",
        "16",
        "--out",
        o,
    ]);
    assert!(
        t.contains("CAV of `striped`") && t.contains("concept striped: objective"),
        "{t}"
    );
    assert!(out.join("visualize_relu3_Relu_output_0.png").exists());
    // A concept given without its NAME= is refused with the form it takes.
    let bad = firelight(&[
        "visualize",
        "--model",
        &texture("model.onnx"),
        "--layer",
        "/relu3/Relu_output_0",
        "--concept",
        &texture("concepts/striped"),
        "--random",
        &texture("concepts/random"),
        "--out",
        o,
    ]);
    assert!(
        !bad.status.success() && text(&bad).contains("NAME=FOLDER"),
        "{}",
        text(&bad)
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn integrated_gradients_doubles_its_steps_to_a_target_delta_and_says_how_many() {
    let out = scratch("target-delta");
    let o = out.to_str().unwrap();
    let (model, image) = (
        texture("model.onnx"),
        texture("inputs/striped/striped_00.png"),
    );
    let t = succeed(&[
        "explain",
        "--model",
        &model,
        "--image",
        &image,
        "--method",
        "integrated_gradients",
        "--steps",
        "4",
        "--target-delta",
        "0.01",
        "--out",
        o,
    ]);
    let line = t
        .lines()
        .find(|l| l.starts_with("integrated_gradients:"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(line.contains("within the bound"), "{line}");
    let steps: usize = line
        .trim_start_matches("integrated_gradients: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(steps > 4 && steps.is_power_of_two(), "{line}");
    // The bound is an option of integrated gradients only.
    let bad = firelight(&[
        "explain",
        "--model",
        &model,
        "--image",
        &image,
        "--method",
        "saliency",
        "--target-delta",
        "0.01",
        "--out",
        o,
    ]);
    assert!(
        !bad.status.success() && text(&bad).contains("it is an option of: integrated_gradients"),
        "{}",
        text(&bad)
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_concept_images_and_embedding_layers_fail_clearly() {
    let out = scratch("concept-bad");
    let o = out.to_str().unwrap();
    let garbage = out.join("not_a_photo.png");
    std::fs::write(&garbage, b"this is not a PNG").unwrap();
    let layer = "/_conv_head/Conv_output_0";
    let run = firelight(&[
        "explain",
        "--concept-image",
        garbage.to_str().unwrap(),
        "--method",
        "gradcam",
        "--layer",
        layer,
        "--out",
        o,
    ]);
    let t = text(&run);
    assert!(!run.status.success());
    assert!(t.contains("not_a_photo.png"), "{t}");
    let run = firelight(&[
        "explain",
        "--concept-image",
        &photo("coffee.png"),
        "--embedding-layer",
        "/pool/nothing",
        "--method",
        "gradcam",
        "--layer",
        layer,
        "--out",
        o,
    ]);
    let t = text(&run);
    assert!(!run.status.success());
    assert!(
        t.contains("/pool/nothing") && t.contains("/_avg_pooling/GlobalAveragePool_output_0"),
        "{t}"
    );
    let missing = out.join("missing.png");
    let run = firelight(&[
        "explain",
        "--concept-image",
        missing.to_str().unwrap(),
        "--method",
        "gradcam",
        "--layer",
        layer,
        "--out",
        o,
    ]);
    let t = text(&run);
    assert!(!run.status.success());
    assert!(t.contains("missing.png"), "{t}");
    assert_eq!(files_in(&out), vec!["not_a_photo.png".to_string()]);
    std::fs::remove_dir_all(&out).unwrap();
}

fn texture(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/texture_cnn")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn tcav_on_the_ground_truth_model_from_flags_and_from_toml() {
    let out = scratch("tcav");
    let run = firelight(&[
        "tcav",
        "--model",
        &texture("model.onnx"),
        "--concept",
        &format!("striped={}", texture("concepts/striped")),
        "--random-pool",
        &texture("concepts/random"),
        "--target",
        &format!("striped={}", texture("inputs/striped")),
        "--layer",
        "/relu2/Relu_output_0",
        "--runs",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        text(&run).contains("SIGNIFICANT (above random)"),
        "{}",
        text(&run)
    );
    let files = files_in(&out);
    for f in [
        "report.html",
        "results.json",
        "bars_0.png",
        "boxes_0.png",
        "cache",
    ] {
        assert!(files.contains(&f.to_string()), "{f} in {files:?}");
    }
    // A second run, from the TOML file (which adds the dotted concept), reads the striped
    // concept and the random pool from the cache.
    let again = firelight(&[
        "tcav",
        "--config",
        &texture("tcav.toml"),
        "--layer",
        "/relu2/Relu_output_0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("cache: 2 hit(s), 1 computed"),
        "{}",
        text(&again)
    );
}

#[test]
fn tcav_bad_input_is_a_clear_error() {
    let out = scratch("tcav-bad");
    let base = [
        "tcav",
        "--model",
        &texture("model.onnx"),
        "--random-pool",
        &texture("concepts/random"),
        "--target",
        &format!("striped={}", texture("inputs/striped")),
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from);
    let with = |extra: &[&str]| {
        let mut args: Vec<String> = base.to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        firelight(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let striped = format!("striped={}", texture("concepts/striped"));
    let run = with(&["--concept", &striped, "--layer", "/nope"]);
    assert!(!run.status.success());
    assert!(
        text(&run).contains("unknown layer `/nope`"),
        "{}",
        text(&run)
    );
    let run = with(&[
        "--concept",
        "x=/no/such/dir",
        "--layer",
        "/relu2/Relu_output_0",
    ]);
    assert!(text(&run).contains("/no/such/dir"), "{}", text(&run));
    let run = with(&[
        "--concept",
        &striped,
        "--layer",
        "/relu2/Relu_output_0",
        "--runs",
        "1",
    ]);
    assert!(
        text(&run).contains("at least 2 random runs"),
        "{}",
        text(&run)
    );
    let run = with(&["--concept", "striped", "--layer", "/relu2/Relu_output_0"]);
    assert!(text(&run).contains("NAME=FOLDER"), "{}", text(&run));
}

#[test]
fn a_model_asking_for_more_memory_than_the_budget_is_refused_at_once() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx_budget/constant_of_shape.onnx");
    let started = std::time::Instant::now();
    let run = firelight(&[
        "--max-memory",
        "1G",
        "layers",
        "--model",
        file.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    let t = text(&run);
    assert!(
        t.contains("huge_constant") && t.contains("memory budget is 1.0 GiB"),
        "{t}"
    );
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
    let run = firelight(&["--max-memory", "lots", "layers"]);
    assert!(!run.status.success());
    assert!(text(&run).contains("not a size"), "{}", text(&run));
}

#[test]
fn tabular_rows_are_explained_with_a_table_json_csv_and_charts() {
    let out = scratch("tabular");
    let o = out.to_str().unwrap();
    let rows =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/diabetes_mlp/test_rows.csv");
    let run = firelight(&[
        "explain",
        "--model",
        "diabetes_mlp",
        "--rows",
        rows.to_str().unwrap(),
        "--method",
        "integrated_gradients,saliency",
        "--out",
        o,
    ]);
    let t = text(&run);
    assert!(run.status.success(), "{t}");
    assert!(
        t.contains("mean |attribution| over 89 rows") && t.contains("bmi"),
        "{t}"
    );
    let files = files_in(&out);
    for name in [
        "diabetes_mlp_attributions.json",
        "diabetes_mlp_attributions.csv",
        "diabetes_mlp_row1.png",
        "diabetes_mlp_summary_dots.png",
    ] {
        assert!(
            files.iter().any(|f| f == name),
            "{name} missing from {files:?}"
        );
    }
    let bad = firelight(&[
        "explain",
        "--model",
        "diabetes_mlp",
        "--row",
        "age=50,bmi=x",
        "--out",
        o,
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("missing column(s)"), "{}", text(&bad));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_two_input_onnx_model_is_explained_with_one_input_carried() {
    let out = scratch("named");
    let o = out.to_str().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/onnx_inputs");
    let file = |name: &str| fixtures.join(name).to_string_lossy().into_owned();
    let (model, image, meta) = (
        file("two_inputs.onnx"),
        format!("image={}", file("two_inputs.image.npy")),
        format!("meta={}", file("two_inputs.meta.npy")),
    );
    succeed(&[
        "explain",
        "--model",
        &model,
        "--input",
        &image,
        "--input",
        &meta,
        "--carry",
        "meta",
        "--method",
        "integrated_gradients,saliency",
        "--out",
        o,
    ]);
    assert_eq!(
        sorted_files_in(&out),
        [
            "two_inputs_integrated_gradients_image.npy",
            "two_inputs_saliency_image.npy"
        ]
    );
    let npy = firelight::core::npy::read_npy(out.join("two_inputs_saliency_image.npy")).unwrap();
    assert_eq!(npy.shape, vec![2, 3, 8, 8]);
    let bad = firelight(&["explain", "--model", &model, "--input", &image, "--out", o]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("needs input `meta`"), "{}", text(&bad));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn photos_are_explained_by_perturbation_methods_over_superpixels_and_windows() {
    let out = scratch("perturb");
    let o = out.to_str().unwrap();
    succeed(&[
        "explain",
        "--method",
        "occlusion,feature_ablation",
        "--window",
        "56",
        "--stride",
        "56",
        "--superpixels",
        "12",
        "--perturbations-per-eval",
        "8",
        "--out",
        o,
    ]);
    assert_eq!(
        sorted_files_in(&out),
        [
            "chelsea_feature_ablation.npy",
            "chelsea_feature_ablation.png",
            "chelsea_grid.png",
            "chelsea_occlusion.npy",
            "chelsea_occlusion.png"
        ]
    );
    // One value per feature: 16 windows of 56 x 56, about 12 superpixels (plus ties).
    for (name, at_most) in [("occlusion", 16), ("feature_ablation", 24)] {
        let npy = firelight::core::npy::read_npy(out.join(format!("chelsea_{name}.npy"))).unwrap();
        assert_eq!(npy.shape, vec![1, 3, 224, 224]);
        let mut distinct: Vec<u32> = npy.data.iter().map(|v| v.to_bits()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(
            distinct.len() > 3 && distinct.len() <= at_most,
            "{name}: {} distinct values",
            distinct.len()
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn perturbation_options_that_cannot_apply_fail_clearly() {
    let out = scratch("perturb-bad");
    let o = out.to_str().unwrap();
    for (args, message) in [
        (
            vec!["--method", "saliency", "--superpixels", "10"],
            "apply to none of these methods",
        ),
        (
            vec!["--method", "saliency", "--window", "8"],
            "--window applies to none",
        ),
        (
            vec!["--method", "occlusion", "--window", "500"],
            "larger than",
        ),
        (
            vec![
                "--method",
                "feature_ablation",
                "--feature-mask",
                "missing.npy",
            ],
            "missing.npy",
        ),
    ] {
        let run = firelight(&[&["explain", "--out", o][..], &args[..]].concat());
        assert!(!run.status.success(), "{args:?} should fail");
        assert!(text(&run).contains(message), "{args:?}: {}", text(&run));
    }
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_tabular_row_is_explained_by_the_gradient_and_perturbation_methods_side_by_side() {
    let out = scratch("tabular-default");
    let o = out.to_str().unwrap();
    let t = succeed(&[
        "explain",
        "--model",
        "diabetes_mlp",
        "--row",
        "age=0.04,sex=0.05,bmi=0.06,bp=0.02,s1=-0.04,s2=-0.03,s3=-0.04,s4=0.0,s5=0.02,s6=-0.02",
        "--out",
        o,
    ]);
    for method in [
        "integrated_gradients",
        "feature_ablation",
        "shapley_value",
        "kernel_shap",
        "lime",
    ] {
        assert!(
            t.contains(&method[..method.len().min(13)]),
            "{method} missing: {t}"
        );
    }
    let json = std::fs::read_to_string(out.join("diabetes_mlp_attributions.json")).unwrap();
    assert!(
        json.contains("kernel_shap") && json.contains("lime"),
        "{json}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn deeplift_lrp_and_captum_s_grad_cams_explain_the_bundled_onnx_model() {
    let out = scratch("deeplift");
    let o = out.to_str().unwrap();
    succeed(&["explain", "--method", "deeplift", "--out", o]);
    assert_eq!(
        sorted_files_in(&out),
        ["chelsea_deeplift.npy", "chelsea_deeplift.png"]
    );
    let npy = firelight::core::npy::read_npy(out.join("chelsea_deeplift.npy")).unwrap();
    assert!(npy.data.iter().any(|v| *v != 0.0) && npy.data.iter().all(|v| v.is_finite()));
    // LRP through the graph's Conv, Gemm, Clip and residual Add nodes, two composites.
    succeed(&["explain", "--method", "lrp", "--out", o]);
    succeed(&[
        "explain",
        "--method",
        "lrp",
        "--lrp-composite",
        "epsilon-alpha2-beta1-flat",
        "--out",
        o,
    ]);
    let lrp = firelight::core::npy::read_npy(out.join("chelsea_lrp.npy")).unwrap();
    assert!(lrp.data.iter().any(|v| *v != 0.0) && lrp.data.iter().all(|v| v.is_finite()));
    let bad = firelight(&[
        "explain",
        "--method",
        "saliency",
        "--lrp-composite",
        "epsilon",
        "--out",
        o,
    ]);
    assert!(
        text(&bad).contains("--lrp-composite applies to none"),
        "{}",
        text(&bad)
    );
    // Captum's layer-resolution Grad-CAM and Guided Grad-CAM at the head convolution.
    let layer = "/_conv_head/Conv_output_0";
    succeed(&[
        "explain",
        "--method",
        "layer_grad_cam,guided_grad_cam,layer_deeplift",
        "--layer",
        layer,
        "--out",
        o,
    ]);
    let map = firelight::core::npy::read_npy(
        out.join("chelsea_layer_grad_cam_conv_head_Conv_output_0.npy"),
    )
    .unwrap();
    assert_eq!(map.shape, vec![1, 1, 7, 7]);
    let guided = firelight::core::npy::read_npy(
        out.join("chelsea_guided_grad_cam_conv_head_Conv_output_0.npy"),
    )
    .unwrap();
    assert_eq!(guided.shape, vec![1, 3, 224, 224]);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_neuron_of_a_layer_is_explained_instead_of_the_target() {
    let out = scratch("neuron");
    let o = out.to_str().unwrap();
    let layer = "/_blocks.6/Add_output_0";
    let t = succeed(&[
        "explain",
        "--method",
        "saliency,deeplift",
        "--signed",
        "--layer",
        layer,
        "--neuron",
        "3,7,7",
        "--out",
        o,
    ]);
    assert!(
        t.contains("unit (3, 7, 7) of `/_blocks.6/Add_output_0`"),
        "{t}"
    );
    let files = sorted_files_in(&out);
    assert!(
        files.contains(&"chelsea_deeplift_neuron_blocks.6_Add_output_0.npy".to_string()),
        "{files:?}"
    );
    let bad = firelight(&[
        "explain", "--method", "gradcam", "--layer", layer, "--neuron", "3,7,7", "--out", o,
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("neuron attribution runs input methods"),
        "{}",
        text(&bad)
    );
    let outside = firelight(&[
        "explain", "--method", "saliency", "--layer", layer, "--neuron", "3,99,7", "--out", o,
    ]);
    assert!(
        text(&outside).contains("outside layer"),
        "{}",
        text(&outside)
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_batch_from_npy_takes_one_target_per_sample_and_writes_one_output() {
    let out = scratch("batch-targets");
    let o = out.to_str().unwrap();
    let batch = out.join("batch.npy");
    let data: Vec<f32> = (0..2 * 3 * 224 * 224)
        .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
        .collect();
    firelight::core::npy::write_npy(&batch, &[2, 3, 224, 224], &data).unwrap();
    let b = batch.to_str().unwrap();
    let t = succeed(&[
        "explain",
        "--image",
        b,
        "--method",
        "saliency",
        "--target",
        "281,egyptian cat",
        "--out",
        o,
    ]);
    assert!(t.contains("classes [281, 285], one per sample"), "{t}");
    let npy = firelight::core::npy::read_npy(out.join("batch_saliency.npy")).unwrap();
    assert_eq!(npy.shape, vec![2, 3, 224, 224]);
    let t = succeed(&[
        "explain", "--image", b, "--method", "saliency", "--target", "3,top", "--out", o,
    ]);
    assert!(t.contains("one per sample"), "{t}");
    let bad = firelight(&[
        "explain", "--image", b, "--method", "saliency", "--target", "1,2,3", "--out", o,
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("3 targets for a batch of 2"),
        "{}",
        text(&bad)
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn explain_text_prints_coloured_tokens_and_writes_html_and_json() {
    let out = scratch("explain-text");
    let dir = out.to_str().unwrap();
    let file = out.join("reviews.txt");
    std::fs::write(
        &file,
        "Okay.\n\nThe pills were <b>useless</b> & expensive.\n",
    )
    .unwrap();
    let t = succeed(&[
        "explain-text",
        "It was a fantastic performance!",
        "--text-file",
        file.to_str().unwrap(),
        "--words",
        "--steps",
        "16",
        "--out",
        dir,
    ]);
    assert!(t.contains("positive"), "{t}");
    assert!(t.contains("fantastic(+"), "{t}");
    assert!(t.contains("convergence delta"), "{t}");
    assert_eq!(
        sorted_files_in(&out),
        [
            "explain_text.html",
            "explain_text.json",
            "explain_text.png",
            "reviews.txt"
        ]
    );
    let html = std::fs::read_to_string(out.join("explain_text.html")).unwrap();
    // BERT's tokenizer splits "<b>" into three words; each is escaped.
    assert!(
        html.contains(">&lt;</span>") && html.contains(">&amp;</span>"),
        "{html}"
    );
    assert!(!html.contains("<b>"), "unescaped text");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("explain_text.json")).unwrap())
            .unwrap();
    let sentences = json["sentences"].as_array().unwrap();
    assert_eq!(sentences.len(), 3);
    assert_eq!(sentences[0]["target"], "positive");
    assert!(
        sentences[2]["labels"]
            .as_array()
            .unwrap()
            .contains(&"useless".into())
    );

    let ablation = succeed(&[
        "explain-text",
        "Terrible side effects.",
        "--method",
        "feature-ablation",
        "--replacement",
        "mask",
        "--out",
        dir,
    ]);
    assert!(ablation.contains("explaining negative:"), "{ablation}");
    assert!(!ablation.contains("convergence delta"), "{ablation}");
    // Any registry method that runs on text: KernelSHAP with words as its features, Saliency on
    // the word embeddings.
    let shap = succeed(&[
        "explain-text",
        "Terrible side effects.",
        "--method",
        "kernel_shap",
        "--words",
        "--samples",
        "40",
        "--out",
        dir,
    ]);
    assert!(shap.contains("Terrible("), "{shap}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("explain_text.json")).unwrap())
            .unwrap();
    assert_eq!(json["method"], "kernel_shap");
    assert_eq!(json["options"]["n_samples"], "40");
    let saliency = succeed(&[
        "explain-text",
        "Terrible side effects.",
        "--method",
        "saliency",
        "--out",
        dir,
    ]);
    assert!(saliency.contains("explaining negative:"), "{saliency}");

    let bad = scratch("explain-text-bad");
    let bad_dir = bad.to_str().unwrap();
    for (args, expected) in [
        (vec!["explain-text", "   "], "empty"),
        (
            vec!["explain-text", "fine", "--target", "ecstatic"],
            "negative, neutral, positive",
        ),
        (
            vec![
                "explain-text",
                "fine",
                "--tokenizer",
                "/nonexistent/tokenizer.json",
            ],
            "tokenizer",
        ),
        (
            vec!["explain-text", "fine", "--method", "gradcam"],
            "text takes: ",
        ),
        (
            vec![
                "explain-text",
                "fine",
                "--method",
                "lime",
                "--superpixels",
                "9",
            ],
            "text features are tokens",
        ),
        (
            vec![
                "explain-text",
                "fine",
                "--method",
                "saliency",
                "--window",
                "2",
            ],
            "--window applies to none",
        ),
    ] {
        let mut args = args.clone();
        args.extend(["--out", bad_dir]);
        let run = firelight(&args);
        let t = text(&run);
        assert!(!run.status.success(), "{args:?} succeeded: {t}");
        assert!(t.contains(expected), "{args:?}: {t}");
    }
    assert!(
        files_in(&bad).is_empty(),
        "a failed run wrote {:?}",
        files_in(&bad)
    );
}

#[test]
fn attention_writes_head_views_token_pictures_and_json_for_text_and_for_a_vit() {
    let out = scratch("attention");
    let dir = out.to_str().unwrap();
    let t = succeed(&["attention", "Okay.", "It was awful.", "--out", dir]);
    assert!(t.contains("rollout:") && t.contains("relevance:"), "{t}");
    assert_eq!(
        sorted_files_in(&out),
        [
            "attention.json",
            "attention_heads_0.png",
            "attention_heads_1.png",
            "attention_tokens.png"
        ]
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("attention.json")).unwrap())
            .unwrap();
    assert_eq!(json["layers"].as_array().unwrap().len(), 6);
    assert_eq!(json["inputs"][1]["tokens"].as_array().unwrap().len(), 6);
    std::fs::remove_dir_all(&out).unwrap();

    // The tiny ViT (fused Attention nodes), its 32 x 32 input as a .npy tensor.
    let out = scratch("attention-vit");
    let vit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cam_vit");
    let input = out.join("one.npy");
    let x = firelight::core::npy::read_npy(vit.join("input.npy")).unwrap();
    let one = 3 * 32 * 32;
    firelight::core::npy::write_npy(&input, &[1, 3, 32, 32], &x.data[..one]).unwrap();
    let t = succeed(&[
        "attention",
        "--model",
        vit.join("model.onnx").to_str().unwrap(),
        "--image",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        t.contains("2 attention layers of 4 heads over 65 tokens"),
        "{t}"
    );
    assert!(out.join("attention_one.png").is_file());
    let bad = firelight(&[
        "attention",
        "--discard-ratio",
        "1.5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !bad.status.success() && text(&bad).contains("discard"),
        "{}",
        text(&bad)
    );
    std::fs::remove_dir_all(&out).unwrap();
}
