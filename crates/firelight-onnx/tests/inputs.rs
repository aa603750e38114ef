//! Named inputs on ONNX graphs: several inputs bound by name, integer inputs, carried inputs that
//! follow their rows through every expansion, and files that fix the batch run at any batch.
//! Fixtures: `tests/fixtures/onnx_inputs`, written by `tools/onnx/make_input_models.py`
//! (onnxruntime's outputs beside each model).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use firelight_core::npy::{read_npy_tensor, read_npy_value};
use firelight_core::{Attribution, DynTensor, Error, Inputs, Model, Target};
use firelight_grad::{IntegratedGradients, LayerGradientXActivation, NoiseTunnel, Saliency};
use firelight_onnx::OnnxModel;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx_inputs")
        .join(name)
}

fn values(t: &DynTensor) -> Vec<f32> {
    t.to_vec().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn load(name: &str) -> OnnxModel {
    OnnxModel::load(fixture(&format!("{name}.onnx")), &Device::flex()).unwrap()
}

#[test]
fn a_file_that_fixes_batch_1_runs_any_batch_and_matches_onnxruntime() {
    let model = load("fixed_batch");
    assert_eq!(model.fixed_batch(), Some(1));
    let device = Device::flex();
    let x = read_npy_tensor(fixture("fixed_batch.x.npy"), &device).unwrap();
    let expected = read_npy_tensor(fixture("fixed_batch.expected.npy"), &device).unwrap();
    let out = DynTensor::new(model.predict(&x.clone().into()).unwrap());
    assert_eq!(out.shape(), &[3, 5]);
    assert!(max_abs_diff(&values(&out), &values(&expected)) < 1e-5);
}

#[test]
fn gradient_and_layer_methods_on_a_fixed_batch_file_equal_one_row_at_a_time() {
    let model = load("fixed_batch");
    let device = Device::flex();
    let x = read_npy_tensor(fixture("fixed_batch.x.npy"), &device).unwrap();
    let target = Target::classes(vec![0, 3, 4]);
    // 3 rows x 16 steps run through the batch-1 graph in lockstep chunks.
    let ig = IntegratedGradients::new(&model).n_steps(16);
    let all = values(&ig.attribute(&x, &target).unwrap());
    let layer = model
        .layers()
        .into_iter()
        .find(|l| l.kind == "Relu")
        .unwrap()
        .name;
    let lga = LayerGradientXActivation::new(&model, layer.clone()).unwrap();
    let all_layer = values(&lga.attribute(&x, &target).unwrap());
    let per = x.features();
    let per_layer = all_layer.len() / 3;
    for (row, class) in [0usize, 3, 4].into_iter().enumerate() {
        let one = x.rows(row, row + 1);
        let single = values(&ig.attribute(&one, &Target::class(class)).unwrap());
        assert!(max_abs_diff(&all[row * per..(row + 1) * per], &single) < 1e-5);
        let single = values(&lga.attribute(&one, &Target::class(class)).unwrap());
        assert!(max_abs_diff(&all_layer[row * per_layer..(row + 1) * per_layer], &single) < 1e-5);
    }
}

fn two_inputs() -> (OnnxModel, DynTensor, DynTensor) {
    let device = Device::flex();
    (
        load("two_inputs"),
        read_npy_tensor(fixture("two_inputs.image.npy"), &device).unwrap(),
        read_npy_tensor(fixture("two_inputs.meta.npy"), &device).unwrap(),
    )
}

#[test]
fn two_input_graph_binds_inputs_by_name_and_matches_onnxruntime() {
    let (model, image, meta) = two_inputs();
    let expected = read_npy_tensor(fixture("two_inputs.expected.npy"), &Device::flex()).unwrap();
    // Given in the other order: inputs are bound by name, not position.
    let inputs = Inputs::new()
        .carried_float("meta", meta)
        .attributed("image", image);
    let out = DynTensor::new(model.predict(&inputs).unwrap());
    assert!(max_abs_diff(&values(&out), &values(&expected)) < 1e-5);
    let specs = model.input_specs();
    assert_eq!(
        specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["image", "meta"]
    );
}

#[test]
fn carried_metadata_follows_its_rows_through_ig_steps_and_noise_samples() {
    let (model, image, meta) = two_inputs();
    let inputs = Inputs::new()
        .attributed("image", image.clone())
        .carried_float("meta", meta.clone());
    let target = Target::classes(vec![2, 1]);
    let ig = IntegratedGradients::new(&model)
        .n_steps(24)
        .internal_batch_size(10);
    let (attributions, delta) = ig
        .attribute_inputs_with_convergence_delta(&inputs, &target)
        .unwrap();
    assert_eq!(attributions.names(), ["image"]);
    let both = values(attributions.get("image").unwrap());
    // Completeness holds per sample only if each step saw its own sample's metadata.
    for d in values(&DynTensor::new(delta)) {
        assert!(d.abs() < 1e-3, "convergence delta {d}");
    }
    let per = image.features();
    for (row, class) in [2usize, 1].into_iter().enumerate() {
        let one = Inputs::new()
            .attributed("image", image.rows(row, row + 1))
            .carried_float("meta", meta.rows(row, row + 1));
        let single = ig.attribute_inputs(&one, &Target::class(class)).unwrap();
        let single = values(single.get("image").unwrap());
        assert!(max_abs_diff(&both[row * per..(row + 1) * per], &single) < 1e-5);
    }
    // NoiseTunnel repeats each row's metadata for its noisy copies too.
    let tunnel = NoiseTunnel::new(Saliency::new(&model))
        .nt_samples(4)
        .stdevs(0.1);
    let noisy = tunnel.attribute_inputs(&inputs, &target).unwrap();
    assert_eq!(noisy.get("image").unwrap().shape(), image.shape());
}

#[test]
fn both_inputs_attributed_give_one_attribution_each_and_complete_together() {
    let (model, image, meta) = two_inputs();
    let inputs = Inputs::new()
        .attributed("image", image.clone())
        .attributed("meta", meta.clone());
    let (attributions, delta) = IntegratedGradients::new(&model)
        .n_steps(64)
        .attribute_inputs_with_convergence_delta(&inputs, &Target::class(0))
        .unwrap();
    assert_eq!(attributions.names(), ["image", "meta"]);
    assert_eq!(attributions.get("meta").unwrap().shape(), meta.shape());
    for d in values(&DynTensor::new(delta)) {
        assert!(d.abs() < 1e-3, "convergence delta {d}");
    }
}

#[test]
fn wrong_missing_and_misshapen_inputs_are_named() {
    let (model, image, meta) = two_inputs();
    let wrong = Inputs::new()
        .attributed("img", image.clone())
        .carried_float("meta", meta.clone());
    let err = model.predict(&wrong).unwrap_err().to_string();
    assert!(
        err.contains("no input named `img`") && err.contains("`image`"),
        "{err}"
    );
    let missing = Inputs::new().attributed("image", image.clone());
    let err = model.predict(&missing).unwrap_err().to_string();
    assert!(err.contains("needs input `meta`"), "{err}");
    let short = Inputs::new()
        .attributed("image", image.clone())
        .carried_float("meta", meta.rows(0, 1));
    let err = Saliency::new(&model)
        .attribute_inputs(&short, &Target::class(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch of input `meta`"), "{err}");
}

#[test]
fn integer_token_inputs_run_and_gradient_methods_say_to_use_a_layer() {
    let model = load("tokens");
    let device = Device::flex();
    let ids = read_npy_value(fixture("tokens.input_ids.npy"), &device).unwrap();
    let mask = read_npy_value(fixture("tokens.attention_mask.npy"), &device).unwrap();
    let expected = read_npy_tensor(fixture("tokens.expected.npy"), &device).unwrap();
    let inputs = Inputs::new()
        .attributed_value("input_ids", ids)
        .carried("attention_mask", mask);
    let out = DynTensor::new(model.predict(&inputs).unwrap());
    assert!(max_abs_diff(&values(&out), &values(&expected)) < 1e-5);
    let err = Saliency::new(&model)
        .attribute_inputs(&inputs, &Target::class(1))
        .unwrap_err();
    assert!(matches!(err, Error::NotDifferentiable { .. }), "{err}");
    assert!(err.to_string().contains("attribute at a layer"), "{err}");
    // At the embedding output, gradients flow: a layer method explains the tokens.
    let embedding = model
        .layers()
        .into_iter()
        .find(|l| l.kind == "Gather")
        .unwrap()
        .name;
    let per_token = LayerGradientXActivation::new(&model, embedding)
        .unwrap()
        .attribute_inputs(&inputs, &Target::class(1))
        .unwrap()
        .into_single()
        .unwrap();
    assert_eq!(per_token.shape(), &[2, 6, 8]);
    // Masked tokens (the first sentence's last two) get no attribution.
    let v = values(&per_token);
    assert!(v[4 * 8..6 * 8].iter().all(|x| *x == 0.0));
}

#[test]
fn deeplift_on_a_fixed_batch_file_pairs_rows_across_lanes_and_is_complete() {
    // The batch-1 graph runs the paired batch [x; x0] (6 rows) lane by lane; its ReLU nodes run
    // on the lanes joined, so row i still meets row i + 3 in the Rescale rule.
    let model = load("fixed_batch");
    let device = Device::flex();
    let x = read_npy_tensor(fixture("fixed_batch.x.npy"), &device).unwrap();
    let target = Target::classes(vec![0, 3, 4]);
    let (attributions, delta) = firelight_grad::DeepLift::new(&model)
        .attribute_with_convergence_delta(&x, &target)
        .unwrap();
    let delta: Vec<f32> = delta.to_data().convert::<f32>().try_into_vec().unwrap();
    assert!(delta.iter().all(|d| d.abs() < 1e-4), "{delta:?}");
    // The same as one row at a time.
    let all = values(&attributions);
    let per = x.features();
    for (row, class) in [0usize, 3, 4].into_iter().enumerate() {
        let one = x.rows(row, row + 1);
        let single = values(
            &firelight_grad::DeepLift::new(&model)
                .attribute(&one, &Target::class(class))
                .unwrap(),
        );
        assert!(max_abs_diff(&all[row * per..(row + 1) * per], &single) < 1e-5);
    }
}
