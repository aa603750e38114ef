//! The same numbers in WebAssembly: predict, Saliency, Integrated Gradients, Grad-CAM and
//! Occlusion computed in wasm (under Node, or a browser with `wasm-bindgen-test-runner`'s
//! headless mode) equal the committed native results within 1e-5 of each map's largest magnitude.
//!
//! Run: `cargo test --target wasm32-unknown-unknown -p firelight-web` (the runner is set in
//! `.cargo/config.toml`; `cargo install wasm-bindgen-cli --version 0.2.130` provides it).

#![cfg(target_arch = "wasm32")]

mod common;

use firelight_web::bindings::Explainer;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn wasm_results_equal_native() {
    let got = common::compute(&common::session());
    for (method, elements, sums) in common::check(&got) {
        web_log(&format!(
            "{method}: elements {elements:e}, sums {sums:e} from native"
        ));
    }
}

#[wasm_bindgen_test]
async fn the_javascript_api_explains_and_reports_bad_input() {
    let explainer = Explainer::load(
        "EfficientNet-Lite0".into(),
        common::MODEL.to_vec(),
        Some(common::LABELS.into()),
        Some(common::PREPROCESS.into()),
    )
    .await
    .expect("loads");
    let top: serde_json::Value = serde_json::from_str(
        &explainer
            .predict(common::PHOTO.to_vec(), "chelsea.png".into(), 5)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(top.as_array().unwrap().len(), 5);
    let e = explainer
        .explain(
            common::PHOTO.to_vec(),
            "chelsea.png".into(),
            "gradcam".into(),
            "{}".into(),
            None,
        )
        .await
        .expect("explains");
    assert_eq!(e.shape(), vec![1, 1, 224, 224]);
    assert!(e.picture_png().starts_with(b"\x89PNG"));
    assert!(
        Explainer::load("x".into(), b"not onnx".to_vec(), None, None)
            .await
            .is_err()
    );
    let bad = explainer
        .explain(
            b"not a photo".to_vec(),
            "notes.txt".into(),
            "saliency".into(),
            "{}".into(),
            None,
        )
        .await;
    assert!(bad.is_err());
}

fn web_log(line: &str) {
    wasm_bindgen_test::console_log!("{line}");
}
