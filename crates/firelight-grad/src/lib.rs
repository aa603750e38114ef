//! # firelight-grad
//!
//! Gradient attribution methods, each a small file on the shared plumbing in [`base`], with
//! Captum's names and defaults:
//!
//! | method | Captum | file |
//! |---|---|---|
//! | [`Saliency`] | `Saliency` | `saliency.rs` |
//! | [`InputXGradient`] | `InputXGradient` | `input_x_gradient.rs` |
//! | [`IntegratedGradients`] | `IntegratedGradients` | `integrated_gradients.rs` |
//! | [`NoiseTunnel`] | `NoiseTunnel` (smoothgrad, smoothgrad_sq, vargrad) | `noise_tunnel.rs` |
//! | [`GradientShap`] | `GradientShap`, `LayerGradientShap` ([`GradientShap::layer`]) | `gradient_shap.rs` |
//! | [`GuidedBackprop`], [`Deconvolution`] | `GuidedBackprop`, `Deconvolution` | `guided_backprop.rs` |
//! | [`DeepLift`], [`DeepLiftShap`] | `DeepLift`, `DeepLiftShap` | `deep_lift.rs` |
//! | [`Lrp`] | `LRP` (zennit's composites) | `lrp.rs` |
//! | [`GuidedGradCam`] | `GuidedGradCam` | `guided_grad_cam.rs` |
//! | [`NeuronConductance`] | `NeuronConductance` | `neuron_conductance.rs` |
//! | [`LayerActivation`] | `LayerActivation` | `layer_activation.rs` |
//! | [`LayerGradientXActivation`] | `LayerGradientXActivation` | `layer_gradient_x_activation.rs` |
//! | [`LayerIntegratedGradients`] | `LayerIntegratedGradients` | `layer_integrated_gradients.rs` |
//! | [`LayerConductance`] | `LayerConductance` | `layer_conductance.rs` |
//! | [`InternalInfluence`] | `InternalInfluence` | `internal_influence.rs` |
//! | [`LayerDeepLift`] | `LayerDeepLift` | `layer_deep_lift.rs` |
//! | [`LayerGradCam`] | `LayerGradCam` | `layer_grad_cam.rs` |
//!
//! Captum's other `Neuron*` methods are these methods run on
//! [`firelight_core::Neuron`], which makes a unit of a layer the model's output.
//!
//! Every method implements [`Attribution`]: `method.attribute(&inputs, &target)`.

#![warn(missing_docs)]

pub mod approximation;
pub mod base;
mod deep_lift;
mod gradient_shap;
mod guided_backprop;
mod guided_grad_cam;
mod input_x_gradient;
mod integrated_gradients;
mod internal_influence;
mod layer_activation;
mod layer_conductance;
mod layer_deep_lift;
mod layer_grad_cam;
mod layer_gradient_x_activation;
mod layer_integrated_gradients;
mod lrp;
mod neuron_conductance;
mod noise_tunnel;
mod path;
mod saliency;
pub mod visualization;

pub use approximation::Approximation;
pub use base::Attribution;
pub use deep_lift::{DeepLift, DeepLiftShap};
pub use gradient_shap::GradientShap;
pub use guided_backprop::{Deconvolution, GuidedBackprop};
pub use guided_grad_cam::GuidedGradCam;
pub use input_x_gradient::InputXGradient;
pub use integrated_gradients::{ConvergedAttributions, IntegratedGradients};
pub use internal_influence::InternalInfluence;
pub use layer_activation::LayerActivation;
pub use layer_conductance::LayerConductance;
pub use layer_deep_lift::LayerDeepLift;
pub use layer_grad_cam::{LayerGradCam, interpolate_nearest};
pub use layer_gradient_x_activation::LayerGradientXActivation;
pub use layer_integrated_gradients::LayerIntegratedGradients;
pub use lrp::Lrp;
pub use neuron_conductance::NeuronConductance;
pub use noise_tunnel::{NoiseTunnel, NoiseType};
pub use saliency::Saliency;
pub use visualization::{
    ActivationMaximization, DeepDream, Objective, Parameterization, Picture, Transforms,
    Visualization,
};
