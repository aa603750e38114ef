//! Parity with Captum on the small CNN: fixtures written by `tools/parity/make_fixtures.py`.
//!
//! Deterministic methods must match within a relative L2 error of 1e-4. Stochastic ones
//! (NoiseTunnel, GradientSHAP, LayerGradientShap) are compared as expectations: both sides average
//! 4000 draws, whose sampling error sets the tolerance.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use firelight::core::npy::read_npy_tensor;
use firelight::models::{NpyWeights, SmallCnn};
use firelight::prelude::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small_cnn")
}

fn load(name: &str) -> DynTensor {
    read_npy_tensor(fixtures().join(name), &device()).unwrap()
}

struct Setup {
    model: SmallCnn,
    inputs: DynTensor,
    baselines: DynTensor,
    distribution: DynTensor,
    target: Target,
}

fn setup() -> (Setup, Value) {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
            .unwrap();
    let targets = manifest["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let model = SmallCnn::new(&mut NpyWeights::new(fixtures().join("weights")), &device()).unwrap();
    (
        Setup {
            model,
            inputs: load("inputs.npy"),
            baselines: load("baselines.npy"),
            distribution: load("baseline_distribution.npy"),
            target: Target::classes(targets),
        },
        manifest,
    )
}

fn method_of(params: &Value) -> Approximation {
    Approximation::from_captum_name(params["method"].as_str().unwrap()).unwrap()
}

fn baseline_of(s: &Setup, params: &Value) -> Baseline {
    match params["baselines"].as_str().unwrap() {
        "zeros" => Baseline::Zeros,
        "tensor" => Baseline::Tensor(s.baselines.clone()),
        other => panic!("unknown baselines {other}"),
    }
}

fn steps(params: &Value) -> usize {
    params["n_steps"].as_u64().unwrap() as usize
}

fn layer(params: &Value) -> &str {
    params["layer"].as_str().unwrap()
}

/// Runs one manifest case: the attributions and, for path methods, the convergence delta.
fn run(s: &Setup, method: &str, p: &Value) -> (DynTensor, Option<Tensor<1>>) {
    let (x, t, m) = (&s.inputs, &s.target, &s.model);
    let plain = |r: firelight::core::Result<DynTensor>| (r.unwrap(), None);
    let with_delta = |r: firelight::core::Result<(DynTensor, Tensor<1>)>| {
        let (a, d) = r.unwrap();
        (a, Some(d))
    };
    match method {
        "saliency" => plain(
            Saliency::new(m)
                .abs(p["abs"].as_bool().unwrap())
                .attribute(x, t),
        ),
        "input_x_gradient" => plain(InputXGradient::new(m).attribute(x, t)),
        "guided_backprop" => plain(GuidedBackprop::new(m).attribute(x, t)),
        "deconvolution" => plain(Deconvolution::new(m).attribute(x, t)),
        "integrated_gradients" => {
            let ig = IntegratedGradients::new(m)
                .n_steps(steps(p))
                .method(method_of(p))
                .baselines(baseline_of(s, p));
            if p["multiply_by_inputs"].as_bool() == Some(false) {
                plain(ig.multiply_by_inputs(false).attribute(x, t))
            } else {
                with_delta(ig.attribute_with_convergence_delta(x, t))
            }
        }
        "layer_activation" => plain(LayerActivation::new(m, layer(p)).unwrap().attribute(x, t)),
        "layer_gradient_x_activation" => plain(
            LayerGradientXActivation::new(m, layer(p))
                .unwrap()
                .attribute(x, t),
        ),
        "layer_integrated_gradients" => with_delta(
            LayerIntegratedGradients::new(m, layer(p))
                .unwrap()
                .n_steps(steps(p))
                .method(method_of(p))
                .baselines(baseline_of(s, p))
                .attribute_with_convergence_delta(x, t),
        ),
        "layer_conductance" => with_delta(
            LayerConductance::new(m, layer(p))
                .unwrap()
                .n_steps(steps(p))
                .method(method_of(p))
                .baselines(baseline_of(s, p))
                .attribute_with_convergence_delta(x, t),
        ),
        "noise_tunnel_saliency" => {
            let kind = match p["nt_type"].as_str().unwrap() {
                "smoothgrad" => NoiseType::SmoothGrad,
                "smoothgrad_sq" => NoiseType::SmoothGradSq,
                "vargrad" => NoiseType::VarGrad,
                other => panic!("unknown nt_type {other}"),
            };
            plain(
                NoiseTunnel::new(Saliency::new(m).abs(p["abs"].as_bool().unwrap()))
                    .nt_type(kind)
                    .nt_samples(p["nt_samples"].as_u64().unwrap() as usize)
                    .nt_samples_batch_size(500)
                    .stdevs(p["stdevs"].as_f64().unwrap() as f32)
                    .seed(7)
                    .attribute(x, t),
            )
        }
        "gradient_shap" | "layer_gradient_shap" => {
            let shap = GradientShap::new(m);
            let shap = if method == "layer_gradient_shap" {
                shap.layer(layer(p)).unwrap()
            } else {
                shap
            };
            plain(
                shap.baselines(Baseline::Distribution(s.distribution.clone()))
                    .n_samples(p["n_samples"].as_u64().unwrap() as usize)
                    .stdevs(p["stdevs"].as_f64().unwrap() as f32)
                    .internal_batch_size(2000)
                    .seed(7)
                    .attribute(x, t),
            )
        }
        other => panic!("no runner for method {other}"),
    }
}

#[test]
fn logits_match_torch() {
    let (s, _) = setup();
    let logits = DynTensor::new(s.model.predict(&s.inputs.clone().into()).unwrap());
    let expected = load("logits.npy");
    let err = rel_l2(&values(&logits), &values(&expected));
    eprintln!("logits: rel L2 {err:.2e}");
    assert!(err < 1e-5, "logits differ from torch: rel L2 {err}");
}

#[test]
fn every_method_matches_captum() {
    let (s, manifest) = setup();
    let mut failures = Vec::new();
    for case in manifest["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (attr, delta) = run(&s, case["method"].as_str().unwrap(), &case["params"]);
        let expected = load(&format!("{name}.npy"));
        assert_eq!(attr.shape(), expected.shape(), "{name}: shape");
        let err = rel_l2(&values(&attr), &values(&expected));
        let tolerance = match case["tolerance"].as_str().unwrap() {
            "deterministic" => 1e-4,
            // 4000 draws on each side: sampling error of a few percent of the mean's norm.
            _ => 0.06,
        };
        let mut line = format!("{name:<36} rel L2 {err:.2e} (tolerance {tolerance:.0e})");
        if err > tolerance {
            failures.push(line.clone());
        }
        if case["delta"].as_bool() == Some(true) {
            let delta = values1(&delta.expect("a path method returns a delta"));
            let expected = values(&load(&format!("{name}.delta.npy")));
            let scale = values(&expected_sum_scale(&attr));
            let diff = max_abs_diff(&delta, &expected);
            let bound = 1e-4 * (1.0 + scale.iter().fold(0.0f32, |m, v| m.max(v.abs())));
            line.push_str(&format!("; delta max abs diff {diff:.2e}"));
            if diff > bound {
                failures.push(format!(
                    "{name}: convergence delta {delta:?} vs Captum {expected:?}"
                ));
            }
        }
        eprintln!("{line}");
    }
    assert!(
        failures.is_empty(),
        "mismatches with Captum:\n{}",
        failures.join("\n")
    );
}

/// Sum of absolute attributions per sample: the scale a delta is compared at.
fn expected_sum_scale(attr: &DynTensor) -> DynTensor {
    let abs = attr.flat().clone().abs().sum_dim(1);
    DynTensor::new(abs)
}
