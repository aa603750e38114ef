//! Feature Ablation: each feature's attribution is how much the target's score drops when that
//! feature alone is switched to its baseline.

use firelight_core::{Attribution, Attributions, Baseline, Inputs, Model, Result, Target};

use crate::base::{Explained, Fill, Progress, ablate};
use crate::mask::FeatureMask;

/// Captum's `FeatureAblation`: the attribution of feature `j` is `f(x) - f(x with j at its
/// baseline)`, given to every element of the feature (not divided among them). Positive when
/// removing the feature lowers the score.
///
/// Defaults as Captum: zero baselines, every element its own feature, one perturbation per
/// forward pass (`perturbations_per_eval = 1`). One forward pass of the batch, plus one per
/// `perturbations_per_eval` features.
pub struct FeatureAblation<'m> {
    model: &'m dyn Model,
    baselines: Baseline,
    feature_mask: FeatureMask,
    perturbations_per_eval: usize,
    progress: Progress<'m>,
}

impl<'m> FeatureAblation<'m> {
    /// Feature Ablation of `model` with Captum's defaults.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            baselines: Baseline::Zeros,
            feature_mask: FeatureMask::Elements,
            perturbations_per_eval: 1,
            progress: Progress::default(),
        }
    }

    /// The values features are switched to (default zeros): a constant, a tensor per sample or
    /// one shared, or one per attributed input.
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// Which elements form one feature (default: every element its own).
    pub fn feature_mask(mut self, mask: FeatureMask) -> Self {
        self.feature_mask = mask;
        self
    }

    /// Perturbed copies of the batch per forward pass (default 1); results do not depend on it.
    pub fn perturbations_per_eval(mut self, n: usize) -> Self {
        self.perturbations_per_eval = n;
        self
    }

    /// Called with `(done, total)` features after each forward pass.
    pub fn progress(mut self, f: impl FnMut(usize, usize) + 'm) -> Self {
        self.progress = Progress::new(f);
        self
    }
}

impl Attribution for FeatureAblation<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        crate::base::check_per_eval(self.perturbations_per_eval)?;
        let explained =
            Explained::new(self.model, inputs, samples)?.with_baselines(&self.baselines)?;
        let masks = self.feature_mask.resolve(&explained.shapes(), samples)?;
        let f0 = explained.scores(self.model, target)?;
        let attributions = ablate(
            &explained,
            &masks,
            &f0,
            self.model,
            target,
            self.perturbations_per_eval,
            &self.progress,
            |_, _| Fill::Baseline,
            |copies, replace| explained.perturbed(copies, replace),
        )?;
        explained.attributions(attributions)
    }
}
