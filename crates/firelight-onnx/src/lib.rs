//! Any ONNX model, loaded at run time and run through Burn on any device, autodiff included.
//!
//! [`OnnxModel::load`] parses the file with [onnx-ir](https://docs.rs/onnx-ir) (types, shapes,
//! constant folding), checks it (every unsupported operator is reported by node before anything
//! runs), moves the weights to the device once, and implements [`firelight_core::Model`]: every
//! node output is a tap point under its ONNX name, so every gradient and layer method reaches any
//! tensor in the graph. ReLU nodes honour Guided Backprop's and Deconvolution's ReLU policy.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use firelight_core::Model;
//! use firelight_onnx::OnnxModel;
//!
//! let model = OnnxModel::load("model.onnx", &Device::flex())?;
//! for layer in model.layers().iter().take(5) {
//!     println!("{} ({}) {:?}", layer.name, layer.kind, layer.shape);
//! }
//! # Ok::<(), firelight_core::Error>(())
//! ```

mod fold;
mod fuse;
mod initializers;
mod model;
mod names;
mod ops;
mod validate;
mod value;

pub use initializers::Initializers;
pub use model::{OnnxModel, ValueInfo};
pub use ops::SUPPORTED_OPS;
pub use ops::deeplift::treatment as deeplift_treatment;
pub use value::{Kind, MAX_RANK, Value};

/// The ONNX parser, re-exported for reading ONNX protobuf messages (`TensorProto` test data, say).
pub use onnx_ir;
