//! LIME (Ribeiro et al. 2016): a weighted linear model fitted, per example, to the target's
//! scores on random subsets of the features; its coefficients are the attributions.

use firelight_core::{Attribution, Attributions, Inputs, Model, Result, Target};

use crate::linear::InterpretableModel;
use crate::surrogate::{Config, Sampling, SimilarityKernel, surrogate_builders};

/// Captum's `Lime`: per example, `n_samples` interpretable samples (each feature present with
/// probability 1/2; present features keep the input, absent ones take the baseline), weighted by
/// [`SimilarityKernel`] and fitted with an [`InterpretableModel`]; the attributions are the
/// coefficients (the intercept is dropped), every element of a feature getting its feature's.
///
/// Defaults as Captum: `n_samples = 25` (Captum's code; its docstring says 50),
/// `Lasso { alpha: 0.01 }`, the exponential kernel on cosine distance with width 1.0, zero
/// baselines, every element its own feature, `return_input_shape = true`,
/// `perturbations_per_eval = 1`; the samples come from `seed` (default 0). Feature ids are
/// shifted to start at 0, as Captum does.
pub struct Lime<'m> {
    config: Config<'m>,
}

impl<'m> Lime<'m> {
    /// LIME of `model` with Captum's defaults and seed 0.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            config: Config::new(
                model,
                Sampling::Lime(SimilarityKernel::default()),
                InterpretableModel::default(),
            ),
        }
    }

    /// The linear model fitted to the samples (default `Lasso { alpha: 0.01 }`).
    pub fn interpretable_model(mut self, model: InterpretableModel) -> Self {
        self.config.interpretable_model = model;
        self
    }

    /// How samples are weighted by their closeness to the input (default cosine, width 1.0).
    pub fn similarity(mut self, kernel: SimilarityKernel) -> Self {
        self.config.sampling = Sampling::Lime(kernel);
        self
    }

    surrogate_builders!();
}

impl Attribution for Lime<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        self.config.attribute(inputs, target, samples)
    }
}
