//! KernelSHAP (Lundberg & Lee 2017): Shapley values estimated by a weighted linear regression on
//! random coalitions of the features.

use firelight_core::{Attribution, Attributions, Inputs, Model, Result, Target};

use crate::linear::InterpretableModel;
use crate::surrogate::{Config, Sampling, surrogate_builders};

/// Captum's `KernelShap`: per example, `n_samples` coalitions (the first with every feature, the
/// second with none, then `k` features chosen uniformly with `k` drawn with probability
/// proportional to `(M - 1) / (k (M - k))`, the Shapley kernel), fitted by weighted least squares
/// (weight 1e6 for the full and empty coalitions, 1 otherwise), as Captum does. With enough
/// samples the coefficients approach the Shapley values.
///
/// Defaults as Captum: `n_samples = 25`, zero baselines, every element its own feature,
/// `return_input_shape = true`, `perturbations_per_eval = 1`; the samples come from `seed`
/// (default 0). Feature ids must be `0..n`.
pub struct KernelShap<'m> {
    config: Config<'m>,
}

impl<'m> KernelShap<'m> {
    /// KernelSHAP of `model` with Captum's defaults and seed 0.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            config: Config::new(
                model,
                Sampling::KernelShap,
                InterpretableModel::LinearRegression,
            ),
        }
    }

    surrogate_builders!();
}

impl Attribution for KernelShap<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        self.config.attribute(inputs, target, samples)
    }
}
