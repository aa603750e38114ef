//! # firelight
//!
//! Attribution for neural networks in pure Rust, on Burn: which parts of an input made a
//! prediction. One crate that re-exports the workspace:
//!
//! - [`core`]: the vocabulary ([`Model`](core::Model) with named taps, [`Target`](core::Target), [`Baseline`](core::Baseline), [`DynTensor`](core::DynTensor));
//! - [`grad`]: gradient methods (Saliency, Integrated Gradients, NoiseTunnel, GradientSHAP, ...);
//! - [`perturb`]: perturbation methods (Feature Ablation, Occlusion, Shapley values, KernelSHAP, LIME, ...);
//! - [`models`]: native Burn models with taps (MLP, a small CNN, ResNet-18, MobileNetV2);
//! - [`concept`]: concepts and TCAV (CAVs, scores, significance tests, reports);
//! - [`viz`]: colormaps, heatmap overlays, PNG in and out;
//! - [`text`]: text classifiers (tokenizers, token-id inputs, Layer IG at the word embeddings,
//!   Feature Ablation over tokens, HTML views, attention rollout; the bundled MiniLM sentiment model);
//! - [`attention`]: attention maps of every layer and head, rollout and Chefer et al.'s
//!   relevance, for text and vision transformers;
//! - [`dataset`]: data-set jobs (chunks written atomically and resumed, shards for SLURM and
//!   Kubernetes, merging, a pool of workers);
//! - [`bundled`]: the ImageNet classifier and photos shipped in `models/`;
//! - [`methods`]: the typed method registry (one config per method, Captum's defaults), by name.
//!
//! ```no_run
//! use firelight::prelude::*;
//! use firelight::models::{RandomWeights, ResNet18};
//!
//! let device = Device::flex();
//! let model = ResNet18::new(&mut RandomWeights::new(0), 1000, &device)?;
//! let image = DynTensor::new(Tensor::<4>::zeros([1, 3, 224, 224], &device));
//! let (attributions, delta) = IntegratedGradients::new(&model)
//!     .n_steps(50)
//!     .internal_batch_size(16)
//!     .attribute_with_convergence_delta(&image, &Target::class(281))?;
//! # Ok::<(), firelight::core::Error>(())
//! ```

#![warn(missing_docs)]

pub mod attention;
pub mod bundled;
pub mod dataset;
pub mod methods;
pub mod tabular;
pub mod text;

pub use firelight_cam as cam;
pub use firelight_concept as concept;
pub use firelight_core as core;
pub use firelight_grad as grad;
pub use firelight_metrics as metrics;
pub use firelight_models as models;
pub use firelight_onnx as onnx;
pub use firelight_perturb as perturb;
pub use firelight_viz as viz;

/// The names most programs need.
pub mod prelude {
    pub use firelight_core::{
        Attributions, Baseline, Device, DynTensor, Error, Inputs, LayerInfo, Model, Result, Taps,
        Target, Tensor, Value,
    };
    pub use firelight_grad::{
        Approximation, Attribution, Deconvolution, GradientShap, GuidedBackprop, InputXGradient,
        IntegratedGradients, LayerActivation, LayerConductance, LayerGradientXActivation,
        LayerIntegratedGradients, NoiseTunnel, NoiseType, Saliency,
    };
}
