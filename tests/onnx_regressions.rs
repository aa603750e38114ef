//! Small ONNX files that once went wrong (found by `tools/onnx/check_zoo.py` on all-MiniLM-L6-v2),
//! kept so they stay right. Made with `onnx.helper` in `/tmp` while bisecting; each is a few nodes.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, TensorData};
use firelight::onnx::{OnnxModel, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx_regressions")
        .join(name)
}

/// `ConstantOfShape(value = bool true)` -> `Cast(float)` -> `Add(x)`: the bool fill was read as
/// false, which emptied every attention mask of MiniLM.
#[test]
fn constant_of_shape_keeps_a_true_bool_fill() {
    let device = Device::flex();
    for file in ["cos_bool_scalar.onnx", "cos_bool_vec.onnx"] {
        let model = OnnxModel::load(fixture(file), &device).unwrap();
        let x = Value::from_data(TensorData::new(vec![10f32, 20.0], [2]), &device).unwrap();
        let y = model.run(vec![x]).unwrap().remove(0).into_data().unwrap();
        let y: Vec<f32> = y.convert::<f32>().try_to_vec::<f32>().unwrap();
        assert_eq!(y, vec![11.0, 21.0], "{file}");
    }
}

/// A graph output that onnx-ir fuses away (the MatMul half of MatMul+Add) must not silently
/// disappear and shift the other outputs: the model is refused at load, naming it.
#[test]
fn graph_outputs_fused_away_are_refused_by_name() {
    let err = OnnxModel::load(fixture("outs.onnx"), &Device::flex()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("removed graph output") && message.contains('y'),
        "{message}"
    );
}
