//! # firelight-web
//!
//! firelight in the browser: an ONNX image classifier loaded from bytes, its prediction, and any
//! registry method's explanation of a photo (Grad-CAM, Integrated Gradients, Occlusion, ...), all
//! computed in WebAssembly on the visitor's machine, nothing uploaded.
//!
//! - [`session`]: the work, in plain Rust ([`session::WebSession`]), tested natively and in wasm;
//! - `bindings` (wasm32 only): the JavaScript API wasm-bindgen exports, `Explainer` and
//!   `WebExplanation`, which the page in `web/` drives from a Web Worker.
//!
//! Build (see `web/build.sh`): `cargo build --target wasm32-unknown-unknown -p firelight-web`,
//! then `wasm-bindgen --target web`.

#![warn(missing_docs)]

#[cfg(target_arch = "wasm32")]
pub mod bindings;
pub mod session;

pub use session::{ExplainOptions, Explanation, WebSession};
