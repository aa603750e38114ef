//! The JavaScript API (wasm-bindgen): [`Explainer`] and [`WebExplanation`]. Everything here
//! converts values; the work is in [`crate::session`].
//!
//! Every call is `async`, so that the same API can later read results back from WebGPU (which
//! forbids synchronous reads); on the flex backend the work itself runs to completion inside the
//! call, which is why the page runs this module in a Web Worker (the page stays responsive and
//! shows progress while a method runs).

use firelight::methods::ProgressCallback;
use wasm_bindgen::prelude::*;

use crate::session::{ExplainOptions, Explanation, WebSession};

fn js_error(error: firelight::core::Error) -> JsError {
    JsError::new(&error.to_string())
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))
}

/// A JavaScript function called with `(done, total)` as a perturbation method runs.
struct JsProgress(js_sys::Function);

// SAFETY: this module is built for wasm32 without the `atomics` target feature, where there is
// exactly one thread: the callback is created, called and dropped on it. (ProgressCallback asks
// for Send + Sync because native runs share it with rayon's threads.)
#[cfg(not(target_feature = "atomics"))]
unsafe impl Send for JsProgress {}
#[cfg(not(target_feature = "atomics"))]
unsafe impl Sync for JsProgress {}

/// Turns Rust panics into `console.error` messages with the panic's text (the page shows the last
/// error it saw) instead of a bare `unreachable` trap.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys_console_error(&format!("firelight panicked: {info}"));
    }));
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn web_sys_console_error(message: &str);
}

/// An ONNX image classifier loaded in the browser, explained on the flex backend.
#[wasm_bindgen]
pub struct Explainer {
    session: WebSession,
}

#[wasm_bindgen]
impl Explainer {
    /// Loads a model from the bytes of its ONNX file, with its class names (a JSON list) and
    /// preprocessing (`{"resize", "crop", "mean", "std"}`) when known; `name` is what messages
    /// call it. Rejects with a message for bytes that are not ONNX, an operator firelight does not
    /// run (named with its node), or a model too large for the page's memory budget.
    pub async fn load(
        name: String,
        model: Vec<u8>,
        labels_json: Option<String>,
        preprocess_json: Option<String>,
    ) -> Result<Explainer, JsError> {
        let session = WebSession::load(
            &name,
            &model,
            labels_json.as_deref(),
            preprocess_json.as_deref(),
        )
        .map_err(js_error)?;
        Ok(Explainer { session })
    }

    /// The model's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.session.name().to_string()
    }

    /// The side of the square photos are cropped to.
    #[wasm_bindgen(getter)]
    pub fn crop(&self) -> usize {
        self.session.crop()
    }

    /// The `k` most probable classes of a photo (the PNG, JPEG, WebP, BMP, TIFF or GIF bytes of a
    /// file named `name`, which messages use), as a JSON list of `{class, label, probability}`.
    pub async fn predict(&self, photo: Vec<u8>, name: String, k: usize) -> Result<String, JsError> {
        json(&self.session.predict(&photo, &name, k).map_err(js_error)?)
    }

    /// The photo resized and centre-cropped as the network sees it, as PNG bytes.
    #[wasm_bindgen(js_name = croppedPng)]
    pub async fn cropped_png(&self, photo: Vec<u8>, name: String) -> Result<Vec<u8>, JsError> {
        self.session.cropped_png(&photo, &name).map_err(js_error)
    }

    /// The class names as a JSON list (empty when the model came without them).
    pub fn labels(&self) -> Result<String, JsError> {
        json(&self.session.labels())
    }

    /// Every layer as a JSON list of `{name, kind, shape}`.
    pub fn layers(&self) -> Result<String, JsError> {
        json(&self.session.layers())
    }

    /// The layer CAMs use when none is given (the last 4-D feature map), if any.
    #[wasm_bindgen(js_name = suggestedLayer)]
    pub fn suggested_layer(&self) -> Option<String> {
        self.session.suggested_layer()
    }

    /// Every method as a JSON list of `{name, family, needs_layer, about, reference, options}`.
    pub fn methods() -> Result<String, JsError> {
        json(&WebSession::methods())
    }

    /// Explains a photo (the bytes of a file named `name`) with the method named `method` and options as JSON (Captum's names:
    /// `target`, `layer`, `n_steps`, `internal_batch_size`, `n_samples`, `stdevs`, `seed`,
    /// `perturbations_per_eval`, `window`, `stride`, `signed`); `progress(done, total)` is called
    /// as perturbation methods run.
    pub async fn explain(
        &self,
        photo: Vec<u8>,
        name: String,
        method: String,
        options_json: String,
        progress: Option<js_sys::Function>,
    ) -> Result<WebExplanation, JsError> {
        let options = ExplainOptions::from_json(&options_json).map_err(js_error)?;
        let progress = progress.map(|f| {
            let f = JsProgress(f);
            ProgressCallback::new(move |done, total| {
                let _ = f.0.call2(
                    &JsValue::NULL,
                    &(done as u32).into(),
                    &(total as u32).into(),
                );
            })
        });
        let explanation = self
            .session
            .explain(&photo, &name, &method, &options, progress)
            .map_err(js_error)?;
        Ok(WebExplanation { explanation })
    }
}

/// One explanation: the attribution, its map over the photo, and the picture.
#[wasm_bindgen]
pub struct WebExplanation {
    explanation: Explanation,
}

#[wasm_bindgen]
impl WebExplanation {
    /// The method's name.
    #[wasm_bindgen(getter)]
    pub fn method(&self) -> String {
        self.explanation.method.clone()
    }

    /// The class explained, as JSON `{class, label, probability}`.
    #[wasm_bindgen(getter)]
    pub fn target(&self) -> Result<String, JsError> {
        json(&self.explanation.target)
    }

    /// The layer used, for layer methods and CAMs.
    #[wasm_bindgen(getter)]
    pub fn layer(&self) -> Option<String> {
        self.explanation.layer.clone()
    }

    /// The attribution's shape.
    #[wasm_bindgen(getter)]
    pub fn shape(&self) -> Vec<u32> {
        self.explanation.shape.iter().map(|&d| d as u32).collect()
    }

    /// The attribution, row-major.
    #[wasm_bindgen(getter)]
    pub fn values(&self) -> Vec<f32> {
        self.explanation.values.clone()
    }

    /// One value per pixel of the cropped photo (empty for layer methods).
    #[wasm_bindgen(getter)]
    pub fn map(&self) -> Vec<f32> {
        self.explanation.map.clone()
    }

    /// The cropped photo's side (the map's width and height).
    #[wasm_bindgen(getter)]
    pub fn side(&self) -> usize {
        self.explanation.side
    }

    /// The map drawn over the cropped photo, as PNG bytes (empty for layer methods).
    #[wasm_bindgen(getter, js_name = picturePng)]
    pub fn picture_png(&self) -> Vec<u8> {
        self.explanation.picture_png.clone()
    }

    /// The attribution as a `.npy` file.
    pub fn npy(&self) -> Vec<u8> {
        self.explanation.npy()
    }
}
