//! # firelight-core
//!
//! The vocabulary every firelight method speaks:
//!
//! - [`Inputs`]: the named values a model takes (float, int or bool [`Value`]s), some attributed,
//!   the others carried along row for row;
//! - [`Model`]: a network mapping a batch of inputs to `[batch, outputs]`, reporting its named
//!   intermediate values through [`Taps`] so that layer methods can record, replace or perturb them;
//! - [`Attribution`]: the trait every method implements, returning [`Attributions`];
//! - [`gradients`]: gradients at the inputs or at layers (one backward for several layers);
//! - [`DynTensor`]: a float tensor of any rank, so methods serve 2-D, 3-D and 4-D data alike;
//! - [`Target`]: the scalar per sample being explained (class logit, probability, similarity to a
//!   reference embedding, or a closure);
//! - [`Baseline`]: the reference input;
//! - [`batch`]: bounded-memory chunking by `internal_batch_size`, row maps of expansions, and the
//!   batched perturb-and-score loop;
//! - [`LayerAsInput`]: a model fed at one of its layers (Captum's interpretable embedding), so
//!   input methods explain that layer's value (word embeddings of token ids);
//! - [`conv`]: 2-D convolution through firelight's Winograd kernel on flex (3x3, stride 1);
//! - [`activation`], [`norm`], [`scale`]: element-wise functions, layer normalisation and
//!   per-channel products (squeeze-and-excitation gates, layer scales) as one kernel each way;
//! - [`budget`]: the memory budget untrusted models are held to;
//! - [`Error`]: typed errors that say what was wrong and what was expected;
//! - [`npy`]: float32 `.npy` reading and atomic writing;
//! - `remote` (feature `remote`): devices on other machines, and serving this machine's.
//!
//! Tensors carry no backend type (Burn 0.22): the [`Device`] picks the backend at run time.

#![warn(missing_docs)]

pub mod activation;
pub mod attribution;
pub mod baseline;
pub mod batch;
pub mod budget;
pub mod conv;
pub mod deeplift;
pub mod error;
#[cfg(feature = "flex")]
mod flex_data;
pub mod gradients;
pub mod inputs;
pub mod layer_input;
pub mod lrp;
pub mod model;
pub mod neuron;
pub mod norm;
pub mod npy;
pub mod randomize;
pub mod relu;
#[cfg(feature = "remote")]
pub mod remote;
pub mod scale;
pub mod target;
pub mod tensor;
pub mod value;

pub use attribution::{Attribution, Attributions};
pub use baseline::Baseline;
pub use burn;
pub use burn::tensor::{Device, Tensor};
pub use error::{Error, Result};
pub use inputs::Inputs;
pub use layer_input::LayerAsInput;
pub use model::{
    Embedding, InputSpec, LayerInfo, Model, Randomizable, Recorder, ReluPolicy, TapHook, Taps,
};
pub use neuron::{Neuron, NeuronSelector};
pub use target::{Classes, Target};
pub use tensor::DynTensor;
pub use value::{Kind, Value};
