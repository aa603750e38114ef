//! # firelight-metrics
//!
//! Can this explanation be trusted? Metrics that score any attribution (gradient, CAM or
//! perturbation method) against the model it explains, with the names and defaults of the
//! libraries that defined them:
//!
//! | metric | from | file |
//! |---|---|---|
//! | [`Infidelity`] | Captum `infidelity` | `infidelity.rs` |
//! | [`SensitivityMax`] | Captum `sensitivity_max` | `sensitivity.rs` |
//! | [`CausalMetric`] (deletion, insertion, [`auc`]) | RISE `CausalMetric` | `causal.rs` |
//! | [`FaithfulnessCorrelation`] | Quantus `FaithfulnessCorrelation` | `faithfulness.rs` |
//! | [`RegionPerturbation`] (curves, AOPC) | Quantus `RegionPerturbation` | `region.rs` |
//! | [`sparseness`], [`complexity`] | Quantus `Sparseness`, `Complexity` | `complexity.rs` |
//! | [`Road`], [`cam_mult_image_confidence_change`] | pytorch-grad-cam `metrics` | `road.rs` |
//! | [`agreement`] (rank correlation, top-k overlap of every pair) | the course's method comparison | `agreement.rs` |
//! | [`Fgsm`], [`Pgd`], [`minimal_perturbation`], [`compare_attacks`] | Captum `FGSM`, `PGD`, `MinParamPerturbation`, `AttackComparator` | `robust.rs` |
//! | [`SanityCheck`] (cascading, independent; [`spearman`], [`ssim`]) | Adebayo et al. 2018 | `sanity.rs` |
//!
//! Scores of perturbed copies are computed in chunks of `max_examples_per_batch` rows, which
//! never changes them; random perturbations take a seed, and each metric also takes its
//! perturbations explicitly, to replay a reference run.

#![warn(missing_docs)]

mod agreement;
mod base;
mod causal;
mod complexity;
mod faithfulness;
mod infidelity;
mod region;
pub mod road;
mod robust;
mod sanity;
mod sensitivity;
mod similarity;

pub use agreement::{Agreement, agreement};
pub use causal::{CausalCurve, CausalMetric, CausalMode, Substrate, auc};
pub use complexity::{complexity, sparseness};
pub use faithfulness::{FaithfulnessCorrelation, FeatureBaseline, pearson};
pub use infidelity::{Infidelity, InfidelityPerturbation};
pub use region::{RegionCurve, RegionOrder, RegionPerturbation};
pub use road::{Road, RoadOrder, cam_mult_image_confidence_change};
pub use robust::{
    Attack, AttackLoss, AttackResult, Fgsm, Norm, Pgd, compare_attacks, minimal_perturbation,
};
pub use sanity::{ModelExplainFn, Randomization, SanityCheck, SanityReport, SanityStep};
pub use sensitivity::{ExplainFn, SensitivityMax};
pub use similarity::{hog, hog_similarity, spearman, ssim};
