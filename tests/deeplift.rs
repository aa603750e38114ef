//! DeepLift and DeepLiftShap: parity with Captum 0.9 where Captum is right, completeness where it
//! is not (fixtures from `tools/parity/deeplift_fixtures.py`), and the axioms.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use firelight::bundled::{ImageClassifier, default_image};
use firelight::core::gradients::target_scores;
use firelight::core::npy::read_npy_tensor;
use firelight::grad::{DeepLift, DeepLiftShap, LayerDeepLift};
use firelight::models::{Mlp, NpyWeights, RandomWeights, ResNet18, SmallCnn};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;
use firelight::viz::RgbImage;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deeplift")
}

fn load(name: &str) -> DynTensor {
    read_npy_tensor(fixtures().join(name), &device()).unwrap()
}

fn targets(name: &str) -> Target {
    Target::classes(
        values(&load(&format!("{name}_targets.npy")))
            .into_iter()
            .map(|t| t as usize)
            .collect(),
    )
}

fn onnx(name: &str) -> OnnxModel {
    OnnxModel::load(fixtures().join(format!("{name}.onnx")), &device()).unwrap()
}

/// `max |delta| / max |f(x) - f(x0)|`: DeepLift's completeness gap relative to what there is
/// to explain.
fn relative_gap(model: &dyn Model, x: &DynTensor, x0: &DynTensor, target: &Target) -> f64 {
    let (attributions, delta) = DeepLift::new(model)
        .baselines(Baseline::Tensor(x0.clone()))
        .attribute_with_convergence_delta(x, target)
        .unwrap();
    assert!(values(&attributions).iter().all(|v| v.is_finite()));
    let samples: Vec<usize> = (0..x.batch()).collect();
    let score =
        |t: &DynTensor| values1(&target_scores(model, &t.into(), target, &samples).unwrap());
    let scale = score(x)
        .iter()
        .zip(score(x0))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(scale > 1e-3, "f(x) and f(x0) agree: nothing to explain");
    values1(&delta)
        .iter()
        .map(|d| d.abs())
        .fold(0.0f32, f32::max) as f64
        / scale as f64
}

fn captum_delta(case: &str) -> f64 {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
            .unwrap();
    manifest["cases"][case]["captum_delta_max_abs"]
        .as_f64()
        .unwrap()
}

#[test]
fn deeplift_matches_captum_on_every_nonlinearity_captum_has_a_rule_for() {
    // ReLU, ELU, LeakyReLU, Sigmoid, Tanh, Softplus, each once, as ONNX nodes.
    let model = onnx("zoo");
    let (x, x0) = (load("zoo_inputs.npy"), load("zoo_baselines.npy"));
    let (attributions, delta) = DeepLift::new(&model)
        .baselines(Baseline::Tensor(x0.clone()))
        .attribute_with_convergence_delta(&x, &targets("zoo"))
        .unwrap();
    let err = rel_l2(&values(&attributions), &values(&load("zoo_deeplift.npy")));
    println!(
        "zoo: rel L2 vs Captum {err:.2e}, delta {:?}",
        values1(&delta)
    );
    assert!(err < 1e-5, "rel L2 {err}");
    assert!(relative_gap(&model, &x, &x0, &targets("zoo")) < 1e-5);
}

#[test]
fn deeplift_deeplift_shap_and_local_multipliers_match_captum_and_shap_on_a_cnn_with_max_pooling() {
    let model = onnx("cnn");
    let (x, x0) = (load("cnn_inputs.npy"), load("cnn_baselines.npy"));
    let target = targets("cnn");
    let deeplift = DeepLift::new(&model).baselines(Baseline::Tensor(x0.clone()));
    let cases = [
        ("cnn_deeplift.npy", deeplift.attribute(&x, &target).unwrap()),
        (
            "cnn_deeplift_local.npy",
            DeepLift::new(&model)
                .baselines(Baseline::Tensor(x0.clone()))
                .multiply_by_inputs(false)
                .attribute(&x, &target)
                .unwrap(),
        ),
        (
            "cnn_deeplift_shap.npy",
            DeepLiftShap::new(&model, Baseline::Distribution(load("cnn_distribution.npy")))
                .attribute(&x, &target)
                .unwrap(),
        ),
        // shap's DeepExplainer over the same background: its own implementation of the rules.
        (
            "cnn_shap_deep_explainer.npy",
            DeepLiftShap::new(&model, Baseline::Distribution(load("cnn_distribution.npy")))
                .attribute(&x, &target)
                .unwrap(),
        ),
    ];
    for (expected, got) in cases {
        let err = rel_l2(&values(&got), &values(&load(expected)));
        let reference = if expected.contains("shap_deep") {
            "shap"
        } else {
            "Captum"
        };
        println!("{expected}: rel L2 vs {reference} {err:.2e}");
        assert!(err < 1e-5, "{expected}: rel L2 {err}");
    }
}

#[test]
fn deeplift_is_complete_where_captum_is_not() {
    // Functional ReLUs that Captum's module hooks never see (captum#1082), overlapping max-pool
    // windows that Captum's max_unpool overwrites, and SmallCnn's ReLU feeding a max pool
    // directly (captum#1104): Captum's convergence deltas are far from zero, firelight's are not.
    for case in ["reused", "overlap"] {
        let model = onnx(case);
        let (x, x0) = (
            load(&format!("{case}_inputs.npy")),
            load(&format!("{case}_baselines.npy")),
        );
        let gap = relative_gap(&model, &x, &x0, &targets(case));
        let captum = captum_delta(&format!("{case}_deeplift"));
        println!(
            "{case}: firelight's relative completeness gap {gap:.2e}, Captum's delta {captum:.3}"
        );
        assert!(gap < 1e-4, "{case}: {gap}");
        assert!(
            captum > 1e-2,
            "{case}: Captum's delta {captum} is small: the case proves nothing"
        );
    }
    let small = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small_cnn");
    let model = SmallCnn::new(&mut NpyWeights::new(small.join("weights")), &device()).unwrap();
    let x = read_npy_tensor(small.join("inputs.npy"), &device()).unwrap();
    let x0 = read_npy_tensor(small.join("baselines.npy"), &device()).unwrap();
    let target = Target::classes(vec![3, 7, 0, 9]);
    let gap = relative_gap(&model, &x, &x0, &target);
    let ours = DeepLift::new(&model)
        .baselines(Baseline::Tensor(x0.clone()))
        .attribute(&x, &target)
        .unwrap();
    let err = rel_l2(&values(&ours), &values(&load("small_cnn_deeplift.npy")));
    println!(
        "small_cnn: firelight's gap {gap:.2e}, Captum's delta {:.2e}; rel L2 between them {err:.2e}",
        captum_delta("small_cnn_deeplift")
    );
    assert!(gap < 1e-4, "small_cnn: {gap}");
}

#[test]
fn deeplift_is_complete_on_native_resnet_and_mobilenet() {
    // ResNet-18's overlapping max pool and reused-per-block ReLUs; the bundled MobileNetV2's
    // ReLU6 (a clamp, through `Taps::nonlinear`) on the bundled photo against a black one.
    let resnet = ResNet18::new(&mut RandomWeights::new(3), 10, &device()).unwrap();
    let x = pseudo_random(&[2, 3, 64, 64], 1, 1.0);
    let x0 = pseudo_random(&[2, 3, 64, 64], 2, 0.2);
    let gap = relative_gap(&resnet, &x, &x0, &Target::classes(vec![1, 6]));
    println!("resnet18: relative completeness gap {gap:.2e}");
    assert!(gap < 1e-4, "resnet18: {gap}");

    let mobilenet = ImageClassifier::mobilenet_v2(&device()).unwrap();
    let photo = mobilenet.crop(&RgbImage::read(default_image()).unwrap());
    let x = mobilenet.input(&photo, &device()).unwrap();
    let black = mobilenet
        .input(
            &RgbImage::filled(photo.width, photo.height, [0, 0, 0]),
            &device(),
        )
        .unwrap();
    let gap = relative_gap(mobilenet.model(), &x, &black, &Target::class(282));
    println!("mobilenet_v2: relative completeness gap {gap:.2e}");
    assert!(gap < 1e-4, "mobilenet_v2: {gap}");
}

#[test]
fn on_a_linear_model_deeplift_is_integrated_gradients_is_w_times_x_minus_b() {
    let model = Mlp::new(&[5, 3], &mut RandomWeights::new(9), &device()).unwrap();
    let x = pseudo_random(&[4, 5], 3, 1.0);
    let x0 = pseudo_random(&[4, 5], 4, 0.5);
    let target = Target::classes(vec![0, 1, 2, 1]);
    let baselines = Baseline::Tensor(x0.clone());
    let deeplift = DeepLift::new(&model)
        .baselines(baselines.clone())
        .attribute(&x, &target)
        .unwrap();
    let ig = IntegratedGradients::new(&model)
        .baselines(baselines)
        .attribute(&x, &target)
        .unwrap();
    assert!(max_abs_diff(&values(&deeplift), &values(&ig)) < 1e-5);
}

#[test]
fn deeplift_shap_is_the_mean_of_deeplift_over_the_baselines() {
    let model = onnx("cnn");
    let x = load("cnn_inputs.npy");
    let target = targets("cnn");
    let distribution = load("cnn_distribution.npy");
    let shap = DeepLiftShap::new(&model, Baseline::Distribution(distribution.clone()))
        .attribute(&x, &target)
        .unwrap();
    let k = distribution.batch();
    let mut mean = vec![0.0f32; x.batch() * x.features()];
    for j in 0..k {
        let one = distribution.select_rows(&vec![j; x.batch()]).unwrap();
        let a = DeepLift::new(&model)
            .baselines(Baseline::Tensor(one))
            .attribute(&x, &target)
            .unwrap();
        for (m, v) in mean.iter_mut().zip(values(&a)) {
            *m += v / k as f32;
        }
    }
    assert!(rel_l2(&values(&shap), &mean) < 1e-5);
}

#[test]
fn an_operator_without_a_deeplift_rule_is_refused_with_its_node() {
    let model = onnx("log_softmax");
    let x = pseudo_random(&[2, 4], 5, 1.0);
    let message = DeepLift::new(&model)
        .attribute(&x, &Target::class(0))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("LogSoftmax")
            && message.contains("DeepLift has no rule")
            && message.contains("ONNX node"),
        "{message}"
    );
}

#[test]
fn softmax_follows_captum_s_rule_one_sample_at_a_time_and_ignores_the_rest_of_the_batch() {
    // Captum centres the softmax multipliers over the whole batch, so its numbers for a sample
    // change with the other samples; the fixture holds Captum's one sample at a time, which
    // firelight gives for the whole batch at once.
    let model = onnx("softmax");
    let (x, x0) = (load("softmax_inputs.npy"), load("softmax_baselines.npy"));
    let (attributions, delta) = DeepLift::new(&model)
        .baselines(Baseline::Tensor(x0))
        .attribute_with_convergence_delta(&x, &Target::class(1))
        .unwrap();
    let err = rel_l2(
        &values(&attributions),
        &values(&load("softmax_deeplift.npy")),
    );
    println!(
        "softmax: rel L2 vs Captum (per sample) {err:.2e}, delta {:?}",
        values1(&delta)
    );
    assert!(err < 1e-5, "{err}");
}

#[test]
fn layer_deeplift_matches_captum_and_sums_to_the_change_of_the_output() {
    let model = onnx("cnn");
    let (x, x0) = (load("cnn_inputs.npy"), load("cnn_baselines.npy"));
    let target = targets("cnn");
    let got = LayerDeepLift::new(&model, "/conv3/Conv_output_0")
        .unwrap()
        .baselines(Baseline::Tensor(x0.clone()))
        .attribute(&x, &target)
        .unwrap();
    let err = rel_l2(&values(&got), &values(&load("cnn_layer_deeplift.npy")));
    println!("layer deeplift: rel L2 vs Captum {err:.2e}");
    assert!(err < 1e-5, "{err}");
    // Completeness at the layer: its attributions sum to what DeepLift at the input sums to.
    let at_input = DeepLift::new(&model)
        .baselines(Baseline::Tensor(x0))
        .attribute(&x, &target)
        .unwrap();
    let sums = |t: &DynTensor| -> Vec<f32> {
        values(t)
            .chunks(t.features())
            .map(|c| c.iter().sum())
            .collect()
    };
    for (a, b) in sums(&got).iter().zip(sums(&at_input)) {
        assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
}
