//! Neuron attribution: every input method run on `Neuron` (a layer's unit, or a box of units
//! summed, as the model's one output) is Captum's `Neuron*` method. Fixtures from
//! `tools/parity/deeplift_fixtures.py` (the CNN of tests/fixtures/deeplift, layer conv3).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use firelight::core::npy::read_npy_tensor;
use firelight::core::{Neuron, NeuronSelector};
use firelight::grad::{DeepLift, NeuronConductance};
use firelight::onnx::OnnxModel;
use firelight::perturb::FeatureAblation;
use firelight::prelude::*;

const LAYER: &str = "/conv3/Conv_output_0";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deeplift")
}

fn load(name: &str) -> DynTensor {
    read_npy_tensor(fixtures().join(name), &device()).unwrap()
}

#[test]
fn neuron_methods_match_captum_for_a_unit_and_a_box_of_units() {
    let model = OnnxModel::load(fixtures().join("cnn.onnx"), &device()).unwrap();
    let (x, x0) = (load("cnn_inputs.npy"), load("cnn_baselines.npy"));
    let refs = Baseline::Tensor(x0);
    let target = Target::class(0);
    for (selection, selector) in [
        ("unit", NeuronSelector::parse("2,3,3").unwrap()),
        ("box", NeuronSelector::parse("0:4,1:3,2:5").unwrap()),
    ] {
        let neuron = Neuron::new(&model, LAYER, selector).unwrap();
        let cases: Vec<(&str, DynTensor)> = vec![
            (
                "neuron_gradient",
                Saliency::new(&neuron)
                    .abs(false)
                    .attribute(&x, &target)
                    .unwrap(),
            ),
            (
                "neuron_integrated_gradients",
                IntegratedGradients::new(&neuron)
                    .baselines(refs.clone())
                    .attribute(&x, &target)
                    .unwrap(),
            ),
            (
                "neuron_guided_backprop",
                GuidedBackprop::new(&neuron).attribute(&x, &target).unwrap(),
            ),
            (
                "neuron_deconvolution",
                Deconvolution::new(&neuron).attribute(&x, &target).unwrap(),
            ),
            (
                "neuron_deeplift",
                DeepLift::new(&neuron)
                    .baselines(refs.clone())
                    .attribute(&x, &target)
                    .unwrap(),
            ),
            (
                "neuron_feature_ablation",
                FeatureAblation::new(&neuron)
                    .baselines(refs.clone())
                    .attribute(&x, &target)
                    .unwrap(),
            ),
        ];
        for (name, got) in cases {
            let expected = load(&format!("cnn_{name}_{selection}.npy"));
            let err = rel_l2(&values(&got), &values(&expected));
            println!("{name} ({selection}): rel L2 vs Captum {err:.2e}");
            assert!(err < 1e-5, "{name} ({selection}): {err}");
        }
    }
}

#[test]
fn a_neuron_outside_the_layer_or_with_the_wrong_axes_is_a_clear_error() {
    let model = OnnxModel::load(fixtures().join("cnn.onnx"), &device()).unwrap();
    let x = load("cnn_inputs.npy");
    for (selector, message) in [
        ("8,0,0", "outside layer"),
        ("1,2", "3 axes per sample"),
        ("0:9,0,0", "outside layer"),
    ] {
        let neuron = Neuron::new(&model, LAYER, NeuronSelector::parse(selector).unwrap()).unwrap();
        let err = Saliency::new(&neuron)
            .attribute(&x, &Target::class(0))
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{selector}: {err}");
    }
    assert!(NeuronSelector::parse("1,x").is_err());
    assert!(NeuronSelector::parse("3:1").is_err());
    let unknown = Neuron::new(
        &model,
        "/conv9/Conv_output_0",
        NeuronSelector::Index(vec![0]),
    );
    assert!(unknown.is_err());
}

#[test]
fn neuron_conductance_matches_captum_and_sums_to_the_layer_conductance_of_its_unit() {
    let model = OnnxModel::load(fixtures().join("cnn.onnx"), &device()).unwrap();
    let (x, x0) = (load("cnn_inputs.npy"), load("cnn_baselines.npy"));
    let targets: Vec<usize> = (0..x.batch()).map(|i| i % 4).collect();
    let target = Target::classes(targets);
    let unit = || NeuronSelector::parse("2,3,3").unwrap();
    let conductance = |n_steps, method| {
        NeuronConductance::new(&model, LAYER, unit())
            .unwrap()
            .baselines(Baseline::Tensor(x0.clone()))
            .n_steps(n_steps)
            .method(method)
            .internal_batch_size(9)
            .attribute(&x, &target)
            .unwrap()
    };
    for (expected, got) in [
        (
            "cnn_neuron_conductance_unit.npy",
            conductance(50, Approximation::RiemannTrapezoid),
        ),
        (
            "cnn_neuron_conductance_gausslegendre_unit.npy",
            conductance(32, Approximation::GaussLegendre),
        ),
    ] {
        let err = rel_l2(&values(&got), &values(&load(expected)));
        println!("{expected}: rel L2 vs Captum {err:.2e}");
        assert!(err < 1e-5, "{expected}: {err}");
    }
    // Captum's own check: over the input, a unit's Neuron Conductance adds up to that unit's
    // Layer Conductance (both discretise the same path integral; the ReLU and max-pool kinks on
    // the path make the Riemann sums converge slowly, hence the many steps).
    let per_input = conductance(2048, Approximation::RiemannTrapezoid);
    let layer = LayerConductance::new(&model, LAYER)
        .unwrap()
        .baselines(Baseline::Tensor(x0.clone()))
        .n_steps(2048)
        .method(Approximation::RiemannTrapezoid)
        .internal_batch_size(300)
        .attribute(&x, &target)
        .unwrap();
    let index = NeuronSelector::parse("2,3,3")
        .unwrap()
        .flat_indices(&layer.shape()[1..], LAYER)
        .unwrap()[0];
    let layer_values = values(&layer);
    for (row, chunk) in values(&per_input).chunks(x.features()).enumerate() {
        let summed: f32 = chunk.iter().sum();
        let at_unit = layer_values[row * layer.features() + index];
        assert!(
            (summed - at_unit).abs() < 1e-2 * at_unit.abs().max(1e-2),
            "row {row}: {summed} vs {at_unit}"
        );
    }
    let boxed = NeuronConductance::new(&model, LAYER, NeuronSelector::parse("0:2,1,1").unwrap());
    assert!(boxed.is_err());
}
