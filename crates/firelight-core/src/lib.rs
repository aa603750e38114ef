//! # firelight-core
//!
//! The vocabulary every firelight method speaks:
//!
//! - [`Model`]: a network mapping a batch of inputs to `[batch, outputs]`, reporting its named
//!   intermediate values through [`Taps`] so that layer methods can record, replace or perturb them;
//! - [`DynTensor`]: a float tensor of any rank, so methods serve 2-D, 3-D and 4-D data alike;
//! - [`Target`]: the scalar per sample being explained (class logit, probability, similarity to a
//!   reference embedding, or a closure);
//! - [`Baseline`]: the reference input;
//! - [`batch::chunks`]: bounded-memory chunking by `internal_batch_size`;
//! - [`Error`]: typed errors that say what was wrong and what was expected;
//! - [`npy`]: float32 `.npy` reading and atomic writing.
//!
//! Tensors carry no backend type (Burn 0.22): the [`Device`] picks the backend at run time.

#![warn(missing_docs)]

pub mod baseline;
pub mod batch;
pub mod error;
pub mod model;
pub mod npy;
pub mod relu;
pub mod target;
pub mod tensor;

pub use baseline::Baseline;
pub use burn;
pub use burn::tensor::{Device, Tensor};
pub use error::{Error, Result};
pub use model::{Embedding, LayerInfo, Model, Recorder, ReluPolicy, TapHook, Taps};
pub use target::{Classes, Target};
pub use tensor::DynTensor;
