//! Attention of a vision transformer (the tiny ViT of tests/fixtures/cam_vit, whose attention
//! onnx-ir fuses into `Attention` nodes): the probabilities of every layer and head against
//! torch, rollout and Chefer et al.'s relevance against NumPy references written from the papers'
//! formulas (`tools/text/attention_reference.py`), and what the attention API refuses.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use firelight::attention::{self, HeadFusion, Readout};
use firelight::core::npy::read_npy_tensor;
use firelight::onnx::OnnxModel;
use firelight::prelude::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cam_vit")
}

fn fixture(name: &str) -> Vec<f32> {
    values(&read_npy_tensor(dir().join(name), &device()).unwrap())
}

fn vit() -> (OnnxModel, Inputs) {
    let device = device();
    let model = OnnxModel::load(dir().join("model.onnx"), &device).unwrap();
    let input = read_npy_tensor(dir().join("input.npy"), &device).unwrap();
    (model, input.into())
}

const TOKENS: usize = 65;
const HEADS: usize = 4;

#[test]
fn fused_attention_probabilities_are_found_and_match_torch() {
    let (model, inputs) = vit();
    let layers = model.attention_layers();
    // onnx-ir fuses MatMul, Softmax, MatMul into Attention; the probabilities keep the file's
    // Softmax names.
    assert_eq!(
        layers,
        [
            "/blocks/blocks.0/Softmax_output_0",
            "/blocks/blocks.1/Softmax_output_0"
        ]
    );
    let maps = attention::attention_maps(&model, &inputs, &layers, None).unwrap();
    assert_eq!(maps.len(), 2);
    let expected = fixture("attention.npy"); // [rows, layers, heads, t, t]
    let per_layer = HEADS * TOKENS * TOKENS;
    for (row, m) in maps.iter().enumerate() {
        assert_eq!((m.heads, m.tokens), (HEADS, TOKENS));
        for (layer, got) in m.maps.iter().enumerate() {
            let start = (row * 2 + layer) * per_layer;
            let diff = max_abs_diff(got, &expected[start..start + per_layer]);
            assert!(diff < 1e-5, "row {row} layer {layer}: {diff}");
        }
    }
    // Tapping the probabilities leaves the output as it was.
    let logits = values(&DynTensor::new(model.predict(&inputs).unwrap()));
    assert!(max_abs_diff(&logits, &fixture("logits.npy")) < 1e-4);
}

#[test]
fn vit_rollout_and_chefer_relevance_match_the_papers_formulas_in_numpy() {
    let (model, inputs) = vit();
    let layers = model.attention_layers();
    let maps = attention::attention_maps(&model, &inputs, &layers, None).unwrap();
    let rollout = fixture("rollout_mean_0.9.npy");
    let square = TOKENS * TOKENS;
    for (row, m) in maps.iter().enumerate() {
        let got = m.rollout(HeadFusion::Mean, 0.9).unwrap();
        let diff = max_abs_diff(&got.values, &rollout[row * square..(row + 1) * square]);
        println!("rollout row {row}: max abs diff vs NumPy {diff:.1e}");
        assert!(diff < 1e-5, "rollout row {row}: {diff}");
    }
    let target = Target::classes(vec![8, 8]);
    let relevance = attention::chefer_relevance(&model, &inputs, &layers, &target, None).unwrap();
    let expected = fixture("chefer.npy");
    for (row, r) in relevance.iter().enumerate() {
        let want = &expected[row * square..(row + 1) * square];
        let diff = max_abs_diff(&r.values, want);
        println!("Chefer relevance row {row}: max abs diff vs NumPy {diff:.1e}");
        assert!(diff < 1e-5, "relevance row {row}: {diff}");
        // The class token's row over the patches is what gets drawn; it is not flat.
        let patches = &Readout::ClassToken.read(r)[1..];
        let (lo, hi) = patches
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        assert!(hi > 2.0 * lo.max(0.0) + 1e-6, "flat relevance {lo}..{hi}");
    }
    // One row alone gives what it gives in the batch.
    let first = inputs.single_float().unwrap().rows(0, 1);
    let alone =
        attention::chefer_relevance(&model, &first.into(), &layers, &Target::class(8), None)
            .unwrap();
    assert!(max_abs_diff(&alone[0].values, &relevance[0].values) < 1e-6);
}

#[test]
fn attention_of_a_model_without_attention_or_at_a_non_attention_layer_is_refused() {
    let (model, inputs) = vit();
    let none = attention::attention_maps(&model, &inputs, &[], None).unwrap_err();
    assert!(none.to_string().contains("no attention layers"), "{none}");
    let wrong = vec!["/patch/Conv_output_0".to_string()];
    let err = attention::attention_maps(&model, &inputs, &wrong, None).unwrap_err();
    assert!(err.to_string().contains("not an attention map"), "{err}");
    let unknown = vec!["/blocks/blocks.0/Softmax".to_string()];
    let err = attention::attention_maps(&model, &inputs, &unknown, None).unwrap_err();
    assert!(err.to_string().contains("Softmax_output_0"), "{err}");
    let err =
        attention::attention_maps(&model, &inputs, &model.attention_layers(), Some(&[65, 70]))
            .unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    // A CNN has no attention layers at all.
    let cnn = OnnxModel::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cam_segmentation/model.onnx"),
        &device(),
    )
    .unwrap();
    assert!(cnn.attention_layers().is_empty());
}

#[test]
fn torchvision_vit_b16_attention_rollout_and_relevance_match_torch_and_numpy() {
    // torchvision's vit_b_16 as exported by torch.onnx (generated weights, rebuilt from
    // weights.json; tools/text/vit_b16_fixtures.py): 12 blocks of 12 heads over 197 tokens, the
    // cat photo through torchvision's transform. The class token's rows are checked: of the
    // last block's probabilities against torch, of rollout and Chefer's relevance against NumPy.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/attention_vit_b16");
    let read = |name: &str| values(&read_npy_tensor(fixtures.join(name), &device()).unwrap());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("manifest.json")).unwrap())
            .unwrap();
    let (_weights, path) = common::onnx_weights::materialize(&fixtures);
    let model = OnnxModel::load(path, &device()).unwrap();
    let inputs: Inputs = read_npy_tensor(fixtures.join("input.npy"), &device())
        .unwrap()
        .into();
    let logits = values(&DynTensor::new(model.predict(&inputs).unwrap()));
    let err = max_abs_diff(&logits, &read("logits.npy"));
    println!("ViT-B/16 logits: max abs diff vs torch {err:.1e}");
    assert!(err < 1e-3, "logits {err}");

    let layers = model.attention_layers();
    let softmaxes: Vec<String> = manifest["softmax_outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        layers, softmaxes,
        "the file's Softmax outputs, in block order"
    );
    let maps = attention::attention_maps(&model, &inputs, &layers, None)
        .unwrap()
        .swap_remove(0);
    assert_eq!((maps.layers.len(), maps.heads, maps.tokens), (12, 12, 197));
    let last = &maps.maps[11];
    let class_rows: Vec<f32> = (0..12)
        .flat_map(|h| last[h * 197 * 197..h * 197 * 197 + 197].to_vec())
        .collect();
    let err = max_abs_diff(&class_rows, &read("attention_last.npy"));
    println!("ViT-B/16 last block, class token rows: max abs diff vs torch {err:.1e}");
    assert!(err < 1e-4, "attention {err}");

    let rolled = Readout::ClassToken.read(&maps.rollout(HeadFusion::Mean, 0.9).unwrap());
    let err = max_abs_diff(&rolled, &read("rollout_mean_0.9.npy"));
    println!("ViT-B/16 rollout, class token row: max abs diff vs NumPy {err:.1e}");
    assert!(err < 1e-4, "rollout {err}");

    let target = Target::class(manifest["target"].as_u64().unwrap() as usize);
    let relevance = attention::chefer_relevance(&model, &inputs, &layers, &target, None)
        .unwrap()
        .swap_remove(0);
    let got = Readout::ClassToken.read(&relevance);
    let expected = read("chefer.npy");
    let err = max_abs_diff(&got, &expected);
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    println!(
        "ViT-B/16 Chefer relevance, class token row: max abs diff vs NumPy {err:.1e} (largest {scale:.2e})"
    );
    assert!(err < 1e-4 * scale.max(1.0), "relevance {err}");
}
