//! The example pictures under docs/images/, drawn from real attributions: Integrated Gradients and
//! saliency of EfficientNet-Lite0 on chelsea.png (tests/fixtures/onnx_efficientnet_lite0, from
//! Captum) and Captum's attributions of an MLP on scikit-learn's diabetes data
//! (tests/fixtures/diabetes, from tools/viz/diabetes_attributions.py).
//!
//! Ignored by default, as they write into the repository; regenerate with
//!
//!     cargo test -p firelight-viz --test docs_pictures -- --ignored

use std::path::{Path, PathBuf};

use firelight_core::npy::{NpyArray, read_npy};
use firelight_core::{Device, DynTensor};
use firelight_viz::{
    RgbImage, Sign, VisualizeMethod, VisualizeOptions, attribution_overlay,
    default_explanation_picture, feature_bar_chart, grouped_bar_chart, l1_normalized,
    summary_bar_chart, summary_dot_plot, titled_grid, visualize_image_attr,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn docs(name: &str) -> PathBuf {
    let path = root().join("docs/images").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    path
}

/// The photo as the model saw it (resize 256, centre crop 224).
fn chelsea() -> RgbImage {
    RgbImage::read(root().join("models/images/chelsea.png"))
        .unwrap()
        .resize_and_center_crop(256, 224)
}

/// Sample 0 (chelsea.png) of a `[2, 3, 224, 224]` Captum attribution.
fn chelsea_attribution(file: &str) -> DynTensor {
    let path = root()
        .join("tests/fixtures/onnx_efficientnet_lite0")
        .join(file);
    let array = read_npy(path).unwrap();
    assert_eq!(array.shape, vec![2, 3, 224, 224]);
    let first = array.data[..3 * 224 * 224].to_vec();
    DynTensor::from_vec(first, vec![1, 3, 224, 224], &Device::flex()).unwrap()
}

fn diabetes(file: &str) -> NpyArray {
    read_npy(
        root()
            .join("crates/firelight-viz/tests/fixtures/diabetes")
            .join(file),
    )
    .unwrap()
}

fn diabetes_manifest() -> serde_json::Value {
    let path = root().join("crates/firelight-viz/tests/fixtures/diabetes/manifest.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn rows(array: &NpyArray) -> Vec<Vec<f32>> {
    array
        .data
        .chunks_exact(array.shape[1])
        .map(<[f32]>::to_vec)
        .collect()
}

#[test]
#[ignore = "writes docs/images/visualize/methods_by_sign.png"]
fn every_method_and_sign() {
    let photo = chelsea();
    let attribution = chelsea_attribution("integrated_gradients.npy");
    let mut tiles = Vec::new();
    for sign in Sign::ALL {
        for method in VisualizeMethod::ALL {
            let options = VisualizeOptions::new(method, sign);
            let mut title = format!("{} / {}", short(method.name()), short(sign.name()));
            let picture = match visualize_image_attr(&attribution, Some(&photo), &options) {
                Ok(picture) => picture.resize(168, 168),
                // Captum refuses these too: one sign at a time for masks and alpha.
                Err(_) => {
                    title.push_str(": n/a");
                    RgbImage::filled(168, 168, [235, 235, 235])
                }
            };
            tiles.push((title, picture));
        }
    }
    titled_grid(&tiles, 5)
        .unwrap()
        .write_png(docs("visualize/methods_by_sign.png"))
        .unwrap();
}

fn short(name: &str) -> &str {
    match name {
        "blended_heat_map" => "blended",
        "original_image" => "original",
        "masked_image" => "masked",
        "alpha_scaling" => "alpha",
        "absolute_value" => "abs",
        other => other,
    }
}

#[test]
#[ignore = "writes docs/images/visualize/default_picture.png"]
fn default_picture_against_the_alternatives() {
    let photo = chelsea();
    let blended = VisualizeOptions::new(VisualizeMethod::BlendedHeatMap, Sign::AbsoluteValue);
    let mut tiles = Vec::new();
    for (name, file) in [
        ("IG", "integrated_gradients.npy"),
        ("saliency", "saliency.npy"),
    ] {
        let attribution = chelsea_attribution(file);
        tiles.push((format!("{name}: photo"), photo.clone()));
        let jet = attribution_overlay(&photo, &attribution).unwrap();
        tiles.push((format!("{name}: jet wash"), jet));
        let captum = visualize_image_attr(&attribution, Some(&photo), &blended).unwrap();
        tiles.push((format!("{name}: captum blended"), captum));
        let ours = default_explanation_picture(&photo, &attribution).unwrap();
        tiles.push((format!("{name}: firelight"), ours));
    }
    titled_grid(&tiles, 4)
        .unwrap()
        .write_png(docs("visualize/default_picture.png"))
        .unwrap();
}

#[test]
#[ignore = "writes docs/images/tabular_*.png"]
fn tabular_charts() {
    let manifest = diabetes_manifest();
    let names = strings(&manifest["features"]);
    let methods = strings(&manifest["methods"]);
    let per_method = rows(&diabetes("methods.npy"));
    feature_bar_chart(
        &names,
        &per_method[0],
        "Integrated Gradients, diabetes row 0",
    )
    .unwrap()
    .write_png(docs("tabular_bars.png"))
    .unwrap();
    let normalised: Vec<Vec<f32>> = per_method.iter().map(|v| l1_normalized(v)).collect();
    grouped_bar_chart(
        &names,
        &methods,
        &normalised,
        "Five methods, diabetes row 0 (L1-normalised)",
    )
    .unwrap()
    .write_png(docs("tabular_methods.png"))
    .unwrap();
    let ig = rows(&diabetes("ig.npy"));
    let features = rows(&diabetes("features.npy"));
    summary_bar_chart(&names, &ig, "Integrated Gradients, 442 rows")
        .unwrap()
        .write_png(docs("tabular_summary_bars.png"))
        .unwrap();
    summary_dot_plot(&names, &ig, &features, "Integrated Gradients, 442 rows")
        .unwrap()
        .write_png(docs("tabular_summary_dots.png"))
        .unwrap();
}
