//! Exact Shapley values (Shapley 1953) of the game "features present at the input, absent ones
//! at the baseline".

use firelight_core::{Attribution, Attributions, Baseline, Error, Inputs, Model, Result, Target};

use crate::base::{Progress, check_per_eval};
use crate::mask::FeatureMask;
use crate::shapley::Game;

/// Captum's `ShapleyValues`: the exact Shapley value of every feature, the average of its
/// marginal contribution over all `n!` orderings of the features (Captum's definition).
/// Computed from the `2^n` coalitions, each scored once, with the weights
/// `|S|! (n - |S| - 1)! / n!`: the same numbers as averaging over every ordering, for far fewer
/// forward passes. The attributions of a sample sum to `f(x) - f(baseline)`.
///
/// Defaults as Captum: zero baselines, every element its own feature,
/// `perturbations_per_eval = 1`. Feature ids must be `0..n`, and `n` at most
/// [`ShapleyValues::max_features`] (default 16); for more features use
/// [`ShapleyValueSampling`](crate::ShapleyValueSampling) or a coarser mask.
pub struct ShapleyValues<'m> {
    model: &'m dyn Model,
    baselines: Baseline,
    feature_mask: FeatureMask,
    perturbations_per_eval: usize,
    max_features: usize,
    progress: Progress<'m>,
}

/// The most features [`ShapleyValues::max_features`] accepts (2^24 coalitions).
pub const MAX_EXACT_FEATURES: usize = 24;

impl<'m> ShapleyValues<'m> {
    /// Exact Shapley values of `model` with Captum's defaults.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            baselines: Baseline::Zeros,
            feature_mask: FeatureMask::Elements,
            perturbations_per_eval: 1,
            max_features: 16,
            progress: Progress::default(),
        }
    }

    /// The values absent features take (default zeros).
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// Which elements form one feature (default: every element its own); ids must be `0..n`.
    pub fn feature_mask(mut self, mask: FeatureMask) -> Self {
        self.feature_mask = mask;
        self
    }

    /// Coalitions (copies of the batch) per forward pass (default 1); results do not depend on it.
    pub fn perturbations_per_eval(mut self, n: usize) -> Self {
        self.perturbations_per_eval = n;
        self
    }

    /// The most features accepted (default 16, at most [`MAX_EXACT_FEATURES`]): `n` features
    /// cost `2^n` forward passes of the batch.
    pub fn max_features(mut self, n: usize) -> Self {
        self.max_features = n;
        self
    }

    /// Called with `(done, total)` coalitions after each forward pass.
    pub fn progress(mut self, f: impl FnMut(usize, usize) + 'm) -> Self {
        self.progress = Progress::new(f);
        self
    }
}

impl Attribution for ShapleyValues<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        check_per_eval(self.perturbations_per_eval)?;
        if self.max_features > MAX_EXACT_FEATURES {
            return Err(Error::parameter(
                "max_features",
                self.max_features,
                format!("at most {MAX_EXACT_FEATURES} (2^{MAX_EXACT_FEATURES} coalitions)"),
            ));
        }
        let game = Game::new(
            "ShapleyValues",
            self.model,
            inputs,
            samples,
            &self.baselines,
            &self.feature_mask,
        )?;
        let (n, rows) = (game.n, game.explained.rows);
        if n > self.max_features {
            return Err(Error::parameter(
                "feature_mask",
                format!("{n} features"),
                format!(
                    "exact Shapley values of n features cost 2^n forward passes; this is limited \
                     to {} features (raise it with max_features, up to {MAX_EXACT_FEATURES}), or \
                     group features with a coarser mask, or use ShapleyValueSampling",
                    self.max_features
                ),
            ));
        }
        // Coalition `c` holds feature `id` when bit `id` of `c` is set.
        let values = game.values(
            self.model,
            target,
            1 << n,
            self.perturbations_per_eval,
            &self.progress,
            |c, id| c >> id & 1 == 1,
        )?;
        // weight[s] = s! (n - s - 1)! / n!, for a coalition of s players joined by one more.
        let weights: Vec<f64> = (0..n)
            .map(|s| {
                let mut w = 1.0 / n as f64;
                // s! (n-1-s)! / (n-1)! = 1 / C(n-1, s)
                let mut binom = 1.0f64;
                for k in 0..s {
                    binom = binom * (n - 1 - k) as f64 / (k + 1) as f64;
                }
                w /= binom;
                w
            })
            .collect();
        let mut phi = vec![vec![0.0; rows]; n];
        for (id, phi_id) in phi.iter_mut().enumerate() {
            let bit = 1usize << id;
            for c in (0..1usize << n).filter(|c| c & bit == 0) {
                let w = weights[c.count_ones() as usize];
                for (r, p) in phi_id.iter_mut().enumerate() {
                    *p += w * (values[(c | bit) * rows + r] - values[c * rows + r]);
                }
            }
        }
        game.attributions(&phi)
    }
}
