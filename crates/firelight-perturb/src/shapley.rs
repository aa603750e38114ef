//! What the Shapley methods share: coalitions of features switched on (set to the input) while
//! the others stay at their baseline, evaluated for every row of the batch.

use firelight_core::{Baseline, Model, Result, Target};

use crate::base::{Copy, Explained, Fill, Progress, scores};
use crate::mask::{FeatureMask, Masks};

/// The explained batch with baselines and masks whose ids are `0..n`.
pub(crate) struct Game<'e> {
    pub explained: Explained<'e>,
    pub masks: Masks,
    /// The number of features (players).
    pub n: usize,
}

impl<'e> Game<'e> {
    pub(crate) fn new(
        method: &str,
        model: &dyn Model,
        inputs: &'e firelight_core::Inputs,
        samples: &'e [usize],
        baselines: &Baseline,
        mask: &FeatureMask,
    ) -> Result<Self> {
        let explained = Explained::new(model, inputs, samples)?.with_baselines(baselines)?;
        let masks = mask.resolve(&explained.shapes(), samples)?;
        let n = masks.contiguous(method)?;
        Ok(Self {
            explained,
            masks,
            n,
        })
    }

    /// `v(S)` for every row and each of `count` coalitions, `present(c, id)` saying whether
    /// feature `id` is in coalition `c`: scores `[c * rows + row]`.
    pub(crate) fn values(
        &self,
        model: &dyn Model,
        target: &Target,
        count: usize,
        per_eval: usize,
        progress: &Progress<'_>,
        present: impl Fn(usize, usize) -> bool,
    ) -> Result<Vec<f64>> {
        let rows = self.explained.rows;
        let samples = self.explained.samples;
        scores(model, target, count, per_eval, progress, |range| {
            let copies: Vec<Copy> = range
                .clone()
                .flat_map(|_| {
                    (0..rows).map(|r| Copy {
                        row: r,
                        fill: Fill::Baseline,
                    })
                })
                .collect();
            self.explained.perturbed(&copies, |c, i, e| {
                let (coalition, r) = (range.start + c / rows, c % rows);
                !present(coalition, self.masks.input(i).row(samples[r])[e])
            })
        })
    }

    /// `phi[id][row]` spread over the elements of every attributed input, as attributions.
    pub(crate) fn attributions(&self, phi: &[Vec<f64>]) -> Result<firelight_core::Attributions> {
        let values = crate::base::spread(&self.explained, &self.masks, |r, id| phi[id][r]);
        self.explained.attributions(values)
    }
}
