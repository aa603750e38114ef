//! # firelight-models
//!
//! Native Burn networks that implement firelight's [`Model`](firelight_core::Model), with a tap
//! point at every layer: they show how a Burn module opts in (call `taps.tap(name, x)` where a
//! layer's output is, and `taps.relu(x)` for ReLUs), and they are the test and benchmark models.
//!
//! - [`Mlp`]: fully connected; with two widths, a linear model (for axioms with closed forms);
//! - [`SmallCnn`]: conv, batch norm, ReLU, a residual add, pooling: the Captum parity model;
//! - [`ResNet18`]: torchvision's ResNet-18 architecture, for benchmarks;
//! - [`BertClassifier`]: a BERT encoder with mean pooling and a head, its attention
//!   probabilities tapped (Burn's `TransformerEncoder` drops them), loaded with the bundled text
//!   model's weights by `firelight::text::native_bert`;
//! - [`MobileNetV2`]: torchvision's MobileNetV2, with ImageNet weights bundled in
//!   `models/mobilenet_v2/` (loaded by `firelight::bundled`).
//!
//! [`Rebuildable`] keeps the weights a native model was built from, so that sanity checks can
//! redraw some layers' weights and rebuild it.
//!
//! Weights come from a [`WeightSource`]: [`RandomWeights`] (seeded) or [`NpyWeights`] (a folder of
//! `.npy` files named by PyTorch `state_dict` keys) or [`SafetensorsWeights`].

#![warn(missing_docs)]

pub mod bert;
pub mod mlp;
pub mod mobilenet_v2;
pub mod rebuildable;
pub mod resnet;
pub mod small_cnn;
pub mod weights;

pub use bert::{BertClassifier, BertConfig};
pub use mlp::Mlp;
pub use mobilenet_v2::MobileNetV2;
pub use rebuildable::Rebuildable;
pub use resnet::ResNet18;
pub use small_cnn::{SMALL_CNN_CLASSES, SmallCnn};
pub use weights::{NpyWeights, RandomWeights, SafetensorsWeights, WeightSource};

use burn::tensor::Tensor;
use firelight_core::{DynTensor, Error, Result};

/// The input as an image batch `[batch, channels, h, w]`, or an error that names what was expected,
/// so that a wrong input never reaches a convolution (which would panic).
pub(crate) fn check_image_input(
    input: DynTensor,
    channels: usize,
    min_side: usize,
) -> Result<Tensor<4>> {
    let shape = input.shape().to_vec();
    if shape.len() != 4 || shape[1] != channels || shape[2] < min_side || shape[3] < min_side {
        return Err(Error::ShapeMismatch {
            what: format!(
                "image input [batch, {channels}, height, width] with height and width >= {min_side}"
            ),
            expected: vec![
                shape.first().copied().unwrap_or(1),
                channels,
                min_side,
                min_side,
            ],
            got: shape,
        });
    }
    input.into_rank::<4>()
}
