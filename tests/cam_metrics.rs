//! Faithfulness metrics match pytorch-grad-cam's: ROAD's noisy linear imputation (with its noise
//! set to 0 on both sides, so no random numbers are compared), MoRF / LeRF scores per percentile
//! and their averages, `ROADCombined`, and `CamMultImageConfidenceChange`, on ResNet-18 with the
//! layer4 Grad-CAM. Fixtures: `tools/parity/cam_fixtures_more.py`.

mod common;

use std::path::PathBuf;

use common::onnx_weights::materialize;
use common::*;
use firelight::core::npy::{read_npy, read_npy_tensor};
use firelight::metrics::{Road, RoadOrder, cam_mult_image_confidence_change};
use firelight::onnx::OnnxModel;
use firelight::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn floats(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn road_and_confidence_change_match_pytorch_grad_cam() {
    let fixtures = root().join("tests/fixtures/cam_resnet18");
    let (_weights, path) = materialize(&root().join("tests/fixtures/onnx_resnet18"));
    let model = OnnxModel::load(path, &device()).unwrap();
    let input = read_npy_tensor(fixtures.join("input.npy"), &device()).unwrap();
    let maps = read_npy_tensor(fixtures.join("gradcam_layer4.npy"), &device()).unwrap();
    let target = Target::classes(vec![791, 923]);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("metrics.json")).unwrap())
            .unwrap();
    let road = Road::new().noise(0.0);

    for (order, key) in [
        (RoadOrder::MostRelevantFirst, "morf"),
        (RoadOrder::LeastRelevantFirst, "lerf"),
    ] {
        let imputed = road.perturb(&input, &maps, order, 50.0).unwrap();
        let theirs = read_npy(fixtures.join(format!("road_{key}50_imputed.npy"))).unwrap();
        let error = max_abs_diff(&values(&imputed), &theirs.data);
        eprintln!("{key} 50% imputed image: max abs {error:.2e}");
        assert!(error < 1e-4, "{key}: {error}");

        let per_percentile = expected[key].as_array().unwrap();
        for (p, theirs) in [10.0, 50.0, 90.0].into_iter().zip([0, 4, 8]) {
            let ours = Road::new()
                .noise(0.0)
                .percentiles(vec![p])
                .score(&model, &input, &maps, &target, order)
                .unwrap();
            let error = max_abs_diff(&ours, &floats(&per_percentile[theirs]));
            eprintln!("{key} {p}%: {ours:?} max abs {error:.2e}");
            assert!(error < 1e-3, "{key} {p}: {error}");
        }
    }
    let combined = road.combined(&model, &input, &maps, &target).unwrap();
    let error = max_abs_diff(&combined, &floats(&expected["combined"]));
    eprintln!("ROADCombined {combined:?}: max abs {error:.2e}");
    assert!(error < 1e-3, "combined: {error}");

    let change = cam_mult_image_confidence_change(&model, &input, &maps, &target).unwrap();
    let error = max_abs_diff(
        &change,
        &floats(&expected["cam_mult_image_confidence_change"]),
    );
    eprintln!("CamMultImageConfidenceChange {change:?}: max abs {error:.2e}");
    assert!(error < 1e-3, "confidence change: {error}");
}

#[test]
fn metrics_refuse_maps_that_do_not_fit_and_bad_percentiles() {
    let d = device();
    let input = DynTensor::from_vec(vec![0.5; 2 * 3 * 4 * 4], vec![2, 3, 4, 4], &d).unwrap();
    let wrong = DynTensor::from_vec(vec![0.5; 4 * 4], vec![1, 4, 4], &d).unwrap();
    let err = Road::new()
        .perturb(&input, &wrong, RoadOrder::MostRelevantFirst, 50.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("one [height, width] map per input"), "{err}");
    let maps = DynTensor::from_vec(vec![0.5; 2 * 4 * 4], vec![2, 4, 4], &d).unwrap();
    let err = Road::new()
        .percentiles(vec![120.0])
        .perturb(&input, &maps, RoadOrder::MostRelevantFirst, 50.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("percentiles"), "{err}");
    // A constant map keeps no pixel (nothing is below its percentile): all are imputed, as zeros,
    // rather than solving a singular system.
    let all = Road::new()
        .noise(0.0)
        .perturb(&input, &maps, RoadOrder::MostRelevantFirst, 50.0)
        .unwrap();
    assert!(values(&all).iter().all(|v| *v == 0.0));
}
