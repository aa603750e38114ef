//! Shapley Value Sampling (Castro et al. 2009): Shapley values estimated from random orderings
//! of the features.

use firelight_core::{Attribution, Attributions, Baseline, Error, Inputs, Model, Result, Target};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::base::{Progress, check_n_samples, check_per_eval};
use crate::mask::FeatureMask;
use crate::shapley::Game;

/// Captum's `ShapleyValueSampling`: for each of `n_samples` random orderings of the features,
/// start from the baseline and switch the features to the input one by one in that order; each
/// feature's attribution is the mean, over orderings, of the score's change when it joined.
/// The attributions of a sample sum to `f(x) - f(baseline)` for every ordering.
///
/// Defaults as Captum: `n_samples = 25`, zero baselines, every element its own feature,
/// `perturbations_per_eval = 1`. Feature ids must be `0..n`. The orderings come from `seed`
/// (default 0), or are given with [`ShapleyValueSampling::permutations`] (to replay Captum's).
/// Costs `n_samples * n` forward passes of the batch (plus one of the baselines).
pub struct ShapleyValueSampling<'m> {
    model: &'m dyn Model,
    baselines: Baseline,
    feature_mask: FeatureMask,
    n_samples: usize,
    perturbations_per_eval: usize,
    seed: u64,
    permutations: Option<Vec<Vec<usize>>>,
    progress: Progress<'m>,
}

impl<'m> ShapleyValueSampling<'m> {
    /// Shapley Value Sampling of `model` with Captum's defaults and seed 0.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            baselines: Baseline::Zeros,
            feature_mask: FeatureMask::Elements,
            n_samples: 25,
            perturbations_per_eval: 1,
            seed: 0,
            permutations: None,
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

    /// Number of random orderings (default 25).
    pub fn n_samples(mut self, n: usize) -> Self {
        self.n_samples = n;
        self
    }

    /// Copies of the batch per forward pass (default 1); results do not depend on it.
    pub fn perturbations_per_eval(mut self, n: usize) -> Self {
        self.perturbations_per_eval = n;
        self
    }

    /// Seed of the orderings (default 0): same seed, same numbers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The orderings to use instead of drawing them (each a permutation of the feature ids
    /// `0..n`); `n_samples` is then their count.
    pub fn permutations(mut self, permutations: Vec<Vec<usize>>) -> Self {
        self.permutations = Some(permutations);
        self
    }

    /// Called with `(done, total)` steps (one feature joining, for the whole batch) after each
    /// forward pass.
    pub fn progress(mut self, f: impl FnMut(usize, usize) + 'm) -> Self {
        self.progress = Progress::new(f);
        self
    }

    fn orderings(&self, n: usize) -> Result<Vec<Vec<usize>>> {
        if let Some(given) = &self.permutations {
            check_n_samples(given.len())?;
            for perm in given {
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..n).collect::<Vec<_>>() {
                    return Err(Error::parameter(
                        "permutations",
                        format!("{perm:?}"),
                        format!("each must be a permutation of the feature ids 0..{n}"),
                    ));
                }
            }
            return Ok(given.clone());
        }
        check_n_samples(self.n_samples)?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        Ok((0..self.n_samples)
            .map(|_| {
                let mut perm: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    perm.swap(i, rng.random_range(0..=i));
                }
                perm
            })
            .collect())
    }
}

impl Attribution for ShapleyValueSampling<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        check_per_eval(self.perturbations_per_eval)?;
        let game = Game::new(
            "ShapleyValueSampling",
            self.model,
            inputs,
            samples,
            &self.baselines,
            &self.feature_mask,
        )?;
        let (n, rows) = (game.n, game.explained.rows);
        let perms = self.orderings(n)?;
        // Where each feature stands in each ordering.
        let positions: Vec<Vec<usize>> = perms
            .iter()
            .map(|perm| {
                let mut at = vec![0; n];
                for (k, &id) in perm.iter().enumerate() {
                    at[id] = k;
                }
                at
            })
            .collect();
        let empty = game.values(self.model, target, 1, 1, &Default::default(), |_, _| false)?;
        // Step `s * n + k` holds the first `k + 1` features of ordering `s`.
        let values = game.values(
            self.model,
            target,
            perms.len() * n,
            self.perturbations_per_eval,
            &self.progress,
            |step, id| positions[step / n][id] <= step % n,
        )?;
        let mut phi = vec![vec![0.0; rows]; n];
        for (s, perm) in perms.iter().enumerate() {
            for (k, &id) in perm.iter().enumerate() {
                for r in 0..rows {
                    let before = if k == 0 {
                        empty[r]
                    } else {
                        values[(s * n + k - 1) * rows + r]
                    };
                    phi[id][r] += values[(s * n + k) * rows + r] - before;
                }
            }
        }
        let count = perms.len() as f64;
        phi.iter_mut().flatten().for_each(|v| *v /= count);
        game.attributions(&phi)
    }
}
