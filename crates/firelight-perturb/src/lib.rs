//! # firelight-perturb
//!
//! Perturbation attribution: methods that explain a prediction by changing the input (or a
//! layer) and watching the target's score, with Captum's names, defaults and sign conventions.
//! They need no gradients, so they explain any [`Model`](firelight_core::Model), integer and
//! bool inputs included.
//!
//! | method | Captum | file |
//! |---|---|---|
//! | [`FeatureAblation`] | `FeatureAblation` | `feature_ablation.rs` |
//! | [`FeaturePermutation`] | `FeaturePermutation` | `feature_permutation.rs` |
//! | [`Occlusion`] | `Occlusion` | `occlusion.rs` |
//! | [`ShapleyValueSampling`] | `ShapleyValueSampling` | `shapley_value_sampling.rs` |
//! | [`ShapleyValues`] | `ShapleyValues` | `shapley_values.rs` |
//! | [`KernelShap`] | `KernelShap` | `kernel_shap.rs` |
//! | [`Lime`] | `Lime` | `lime.rs` |
//! | [`LayerFeatureAblation`] | `LayerFeatureAblation` | `layer_feature_ablation.rs` |
//!
//! Shared pieces: [`FeatureMask`] (which elements form a feature, `mask.rs`), the batched
//! perturb-and-score loop and perturbed copies (`base.rs`), the Shapley game (`shapley.rs`), the
//! LIME/KernelSHAP machinery (`surrogate.rs`) and the interpretable [`linear`] models.
//!
//! Every method implements [`Attribution`](firelight_core::Attribution):
//! `method.attribute(&inputs, &target)`. Perturbed copies are scored `perturbations_per_eval`
//! at a time through [`firelight_core::batch::perturbed_scores`], so the chunking never changes
//! the numbers; random methods take a `seed` (same seed, same numbers) and accept their draws
//! explicitly (to replay Captum's); carried inputs follow their rows; `progress` takes a
//! callback for progress bars.
//!
//! ```
//! use firelight_core::{Attribution, Device, DynTensor, Inputs, LayerInfo, Model, Result,
//!     Target, Taps, Tensor};
//! use firelight_perturb::{FeatureAblation, FeatureMask};
//!
//! /// out = 2 x0 - x1 + 3 x2.
//! struct Linear;
//! impl Model for Linear {
//!     fn forward(&self, inputs: &Inputs, _: &mut Taps<'_>) -> Result<Tensor<2>> {
//!         let x = inputs.single_float()?.into_rank::<2>()?;
//!         let w = Tensor::<2>::from_floats([[2.0], [-1.0], [3.0]], &x.device());
//!         Ok(x.matmul(w))
//!     }
//!     fn layers(&self) -> Vec<LayerInfo> { Vec::new() }
//! }
//!
//! let device = Device::flex();
//! let x = DynTensor::from_vec(vec![1.0, 2.0, 3.0], vec![1, 3], &device)?;
//! let attributions = FeatureAblation::new(&Linear)
//!     .feature_mask(FeatureMask::ids(vec![0, 0, 1], vec![1, 3])?)
//!     .attribute(&x, &Target::class(0))?;
//! assert_eq!(attributions.to_vec()?, vec![0.0, 0.0, 9.0]);
//! # Ok::<(), firelight_core::Error>(())
//! ```

#![warn(missing_docs)]

mod base;
mod feature_ablation;
mod feature_permutation;
mod kernel_shap;
mod layer_feature_ablation;
mod lime;
pub mod linear;
pub mod mask;
mod occlusion;
mod shapley;
mod shapley_value_sampling;
mod shapley_values;
mod surrogate;

pub use base::ProgressFn;
pub use feature_ablation::FeatureAblation;
pub use feature_permutation::FeaturePermutation;
pub use kernel_shap::KernelShap;
pub use layer_feature_ablation::LayerFeatureAblation;
pub use lime::Lime;
pub use linear::{InterpretableModel, LinearFit};
pub use mask::{FeatureMask, MaskIds};
pub use occlusion::Occlusion;
pub use shapley_value_sampling::ShapleyValueSampling;
pub use shapley_values::{MAX_EXACT_FEATURES, ShapleyValues};
pub use surrogate::{INTERPRETABLE_FEATURES, SimilarityKernel, Surrogate};
