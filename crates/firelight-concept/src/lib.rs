//! # firelight-concept
//!
//! Testing with Concept Activation Vectors (TCAV, Kim et al. 2018), Captum's `captum.concept` in
//! Rust on Burn:
//!
//! - [`Concept`]: a named set of examples, from a folder of images or from tensors;
//! - [`ActivationCache`]: concept activations at named layers, computed in batches and cached on
//!   disk by model, layer and example content, written atomically;
//! - [`CavTrainer`] and [`Cav`]: linear classifiers trained on the backend (Captum's default
//!   classifier objective, logistic, or FastCAV), with held-out accuracy, for experimental sets of
//!   two or more concepts; saved and loaded as JSON;
//! - [`score`]: `sign_count` and `magnitude` from one matrix product of gradients and CAVs, and
//!   per-input sensitivities;
//! - [`Tcav::experiment`]: random concepts, two-sided t-tests, Bonferroni correction and a verdict
//!   per (concept, layer, target);
//! - [`report`]: results as JSON, PNG plots and a self-contained HTML page.

#![warn(missing_docs)]

pub mod cache;
pub mod cav;
pub mod concept;
pub mod report;
pub mod score;
pub mod stats;
pub mod tcav;

pub use cache::{ActivationCache, CacheStats, ModelKey};
pub use cav::{Cav, CavTrainer, Classifier};
pub use concept::Concept;
pub use firelight_viz::Preprocess;
pub use score::{ScoreKind, TcavScore};
pub use tcav::{
    ConceptResult, ExperimentConfig, ExperimentReport, Progress, RandomConcepts, TargetInputs, Tcav,
};
