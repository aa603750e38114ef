//! Captum's LayerGradCam (at the layer's resolution), GuidedGradCam and InternalInfluence, against Captum 0.9 on the
//! CNN of tests/fixtures/deeplift (fixtures from `tools/parity/deeplift_fixtures.py`).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use firelight::core::npy::read_npy_tensor;
use firelight::grad::{GuidedGradCam, InternalInfluence, LayerGradCam, interpolate_nearest};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;

const LAYER: &str = "/conv3/Conv_output_0";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deeplift")
}

fn load(name: &str) -> DynTensor {
    read_npy_tensor(fixtures().join(name), &device()).unwrap()
}

fn setup() -> (OnnxModel, DynTensor, Target) {
    let model = OnnxModel::load(fixtures().join("cnn.onnx"), &device()).unwrap();
    let targets = values(&load("cnn_targets.npy"))
        .into_iter()
        .map(|t| t as usize)
        .collect();
    (model, load("cnn_inputs.npy"), Target::classes(targets))
}

#[test]
fn layer_grad_cam_matches_captum_with_and_without_relu_and_channel_sum() {
    let (model, x, target) = setup();
    let cam = |relu: bool, sum: bool| {
        LayerGradCam::new(&model, LAYER)
            .unwrap()
            .relu_attributions(relu)
            .attr_dim_summation(sum)
            .attribute(&x, &target)
            .unwrap()
    };
    for (expected, got) in [
        ("cnn_layer_grad_cam.npy", cam(false, true)),
        ("cnn_layer_grad_cam_relu.npy", cam(true, true)),
        ("cnn_layer_grad_cam_channels.npy", cam(false, false)),
    ] {
        let want = load(expected);
        assert_eq!(got.shape(), want.shape(), "{expected}");
        let err = rel_l2(&values(&got), &values(&want));
        println!("{expected}: rel L2 vs Captum {err:.2e}");
        assert!(err < 1e-5, "{expected}: {err}");
    }
}

#[test]
fn guided_grad_cam_matches_captum() {
    let (model, x, target) = setup();
    let got = GuidedGradCam::new(&model, LAYER)
        .unwrap()
        .attribute(&x, &target)
        .unwrap();
    let err = rel_l2(&values(&got), &values(&load("cnn_guided_grad_cam.npy")));
    println!("guided grad-cam: rel L2 vs Captum {err:.2e}");
    assert!(err < 1e-5, "{err}");
}

#[test]
fn nearest_interpolation_repeats_each_cell_as_torch_does() {
    let map = DynTensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], vec![1, 1, 2, 2], &device()).unwrap();
    let up = interpolate_nearest(&map, 3, 4).unwrap();
    // torch.nn.functional.interpolate(map, size=(3, 4), mode="nearest").
    assert_eq!(
        values(&up),
        vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
    );
}

#[test]
fn internal_influence_matches_captum_for_two_quadratures() {
    let (model, x, target) = setup();
    let refs = Baseline::Tensor(load("cnn_baselines.npy"));
    for (expected, n_steps, method) in [
        (
            "cnn_internal_influence.npy",
            50,
            Approximation::GaussLegendre,
        ),
        (
            "cnn_internal_influence_riemann.npy",
            20,
            Approximation::RiemannTrapezoid,
        ),
    ] {
        let got = InternalInfluence::new(&model, LAYER)
            .unwrap()
            .baselines(refs.clone())
            .n_steps(n_steps)
            .method(method)
            .internal_batch_size(7)
            .attribute(&x, &target)
            .unwrap();
        let err = rel_l2(&values(&got), &values(&load(expected)));
        println!("{expected}: rel L2 vs Captum {err:.2e}");
        assert!(err < 1e-5, "{expected}: {err}");
    }
}
