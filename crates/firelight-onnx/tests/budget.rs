//! A model file is untrusted: a few hundred bytes can ask for 14 GB. Every allocation a graph asks
//! for is checked against the memory budget and refused with the node's name, at load or at run
//! time, before anything is allocated. Fixtures: `tests/fixtures/onnx_budget`, written by
//! `tools/onnx/make_budget.py`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use firelight_core::{Error, Inputs, Model};
use firelight_onnx::OnnxModel;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx_budget")
        .join(format!("{name}.onnx"))
}

/// Loads and runs the file under a 1 GiB budget; returns the error.
fn refused(name: &str) -> Error {
    let device = Device::flex();
    let started = Instant::now();
    let result = OnnxModel::load_with_budget(fixture(name), &device, 1 << 30).and_then(|model| {
        let x = Tensor::<2>::ones([1, 1], &device);
        model.predict(&Inputs::from(x))
    });
    // Refusing must not mean allocating first: seconds would mean gigabytes were touched.
    assert!(
        started.elapsed().as_secs() < 10,
        "{name} took {:?}",
        started.elapsed()
    );
    result.expect_err(name)
}

#[test]
fn huge_constant_of_shape_is_refused_naming_the_node() {
    let err = refused("constant_of_shape");
    let message = err.to_string();
    assert!(matches!(err, Error::MemoryBudget { .. }), "{message}");
    assert!(
        message.contains("huge_constant") && message.contains("--max-memory"),
        "{message}"
    );
}

#[test]
fn sizes_known_only_at_run_time_are_refused_too() {
    for (file, node) in [
        ("constant_of_shape_runtime", "huge_constant"),
        ("expand", "huge_expand"),
        ("tile", "huge_tile"),
    ] {
        let err = refused(file);
        let message = err.to_string();
        assert!(
            matches!(err, Error::MemoryBudget { .. }),
            "{file}: {message}"
        );
        assert!(message.contains(node), "{file}: {message}");
    }
}
