//! LRP against zennit 0.5.1 (and Captum 0.9's LRP) on a small VGG-like ReLU network (fixtures from
//! `tools/parity/lrp_fixtures.py`), relevance conservation, and refusals.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use firelight::core::lrp::LrpComposite;
use firelight::core::npy::read_npy_tensor;
use firelight::grad::Lrp;
use firelight::models::{RandomWeights, SmallCnn};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lrp")
}

fn load(name: &str) -> DynTensor {
    read_npy_tensor(fixtures().join(name), &device()).unwrap()
}

fn target() -> Target {
    Target::classes(
        values(&load("targets.npy"))
            .into_iter()
            .map(|t| t as usize)
            .collect(),
    )
}

#[test]
fn every_composite_matches_zennit_and_captum_s_defaults_match_captum() {
    let model = OnnxModel::load(fixtures().join("vgg.onnx"), &device()).unwrap();
    let x = load("inputs.npy");
    for composite in LrpComposite::ALL {
        let got = Lrp::new(&model)
            .composite(composite)
            .attribute(&x, &target())
            .unwrap();
        let expected = load(&format!("{}.npy", composite.name()));
        let err = rel_l2(&values(&got), &values(&expected));
        let reference = if composite == LrpComposite::Captum {
            "Captum's LRP (divided by the target's output)"
        } else {
            "zennit"
        };
        println!("{}: rel L2 vs {reference} {err:.2e}", composite.name());
        assert!(err < 1e-4, "{}: {err}", composite.name());
    }
}

#[test]
fn relevance_is_conserved_without_biases() {
    // LRP-epsilon with a tiny epsilon on a bias-free ReLU network passes the seed's 1 down whole.
    let model = OnnxModel::load(fixtures().join("vgg_nobias.onnx"), &device()).unwrap();
    let x = load("inputs.npy");
    let relevance = Lrp::new(&model)
        .composite(LrpComposite::Epsilon)
        .attribute(&x, &target())
        .unwrap();
    for (row, r) in values(&relevance).chunks(x.features()).enumerate() {
        let total: f32 = r.iter().sum();
        assert!(
            (total - 1.0).abs() < 1e-3,
            "row {row}: relevance sums to {total}"
        );
    }
}

#[test]
fn models_without_rules_and_operators_without_rules_are_refused() {
    let native = SmallCnn::new(&mut RandomWeights::new(0), &device()).unwrap();
    let x = pseudo_random(&[1, 3, 16, 16], 1, 1.0);
    let err = Lrp::new(&native)
        .attribute(&x, &Target::class(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not apply LRP's rules"), "{err}");
    let softmax = OnnxModel::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deeplift/softmax.onnx"),
        &device(),
    )
    .unwrap();
    let err = Lrp::new(&softmax)
        .attribute(&pseudo_random(&[2, 4], 2, 1.0), &Target::class(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LRP has no rule for operator Softmax") && err.contains("ONNX node"),
        "{err}"
    );
}

#[test]
fn merged_batch_norms_overlapping_pooling_and_residual_sums_match_zennit() {
    let model = OnnxModel::load(fixtures().join("bn_residual.onnx"), &device()).unwrap();
    let x = load("bn_residual_inputs.npy");
    let got = Lrp::new(&model).attribute(&x, &Target::class(1)).unwrap();
    let err = rel_l2(
        &values(&got),
        &values(&load("bn_residual_epsilon_plus_flat.npy")),
    );
    println!("bn_residual: rel L2 vs zennit {err:.2e}");
    assert!(err < 1e-5, "{err}");
}
