//! Feature Permutation: each feature's attribution is how much the target's score drops when the
//! feature's values are shuffled across the batch (permutation importance).

use firelight_core::{Attribution, Attributions, Error, Inputs, Model, Result, Target};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::base::{Explained, Fill, Progress, ablate};
use crate::mask::FeatureMask;

/// Captum's `FeaturePermutation`: for feature `j`, row `i` of the batch takes the feature's
/// values from row `perm_j[i]` (a random permutation of the batch, never the identity, drawn
/// afresh for every feature); the attribution is `f(x) - f(x permuted)`, given to every element
/// of the feature. Needs a batch of at least 2.
///
/// Defaults as Captum: every element its own feature, `perturbations_per_eval = 1`; the
/// permutations come from `seed` (default 0), or are given with
/// [`FeaturePermutation::permutations`] (to replay Captum's draws).
pub struct FeaturePermutation<'m> {
    model: &'m dyn Model,
    feature_mask: FeatureMask,
    perturbations_per_eval: usize,
    seed: u64,
    permutations: Option<Vec<Vec<usize>>>,
    progress: Progress<'m>,
}

impl<'m> FeaturePermutation<'m> {
    /// Feature Permutation of `model` with Captum's defaults and seed 0.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            feature_mask: FeatureMask::Elements,
            perturbations_per_eval: 1,
            seed: 0,
            permutations: None,
            progress: Progress::default(),
        }
    }

    /// Which elements form one feature (default: every element its own).
    pub fn feature_mask(mut self, mask: FeatureMask) -> Self {
        self.feature_mask = mask;
        self
    }

    /// Permuted copies of the batch per forward pass (default 1); results do not depend on it.
    pub fn perturbations_per_eval(mut self, n: usize) -> Self {
        self.perturbations_per_eval = n;
        self
    }

    /// Seed of the permutations (default 0): same seed, same numbers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The permutations to use instead of drawing them: one per feature, features in ascending
    /// id order, each a permutation of the batch rows (row `i` takes the feature from row
    /// `perm[i]`).
    pub fn permutations(mut self, permutations: Vec<Vec<usize>>) -> Self {
        self.permutations = Some(permutations);
        self
    }

    /// Called with `(done, total)` features after each forward pass.
    pub fn progress(mut self, f: impl FnMut(usize, usize) + 'm) -> Self {
        self.progress = Progress::new(f);
        self
    }

    /// One permutation of `rows` per feature: the given ones (checked) or seeded draws.
    fn draws(&self, features: usize, rows: usize) -> Result<Vec<Vec<usize>>> {
        if let Some(given) = &self.permutations {
            if given.len() != features {
                return Err(Error::parameter(
                    "permutations",
                    format!("{} permutations", given.len()),
                    format!("give one per feature ({features})"),
                ));
            }
            for perm in given {
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..rows).collect::<Vec<_>>() {
                    return Err(Error::parameter(
                        "permutations",
                        format!("{perm:?}"),
                        format!("each must be a permutation of the {rows} batch rows"),
                    ));
                }
            }
            return Ok(given.clone());
        }
        let mut rng = StdRng::seed_from_u64(self.seed);
        let identity: Vec<usize> = (0..rows).collect();
        Ok((0..features)
            .map(|_| {
                loop {
                    let mut perm = identity.clone();
                    for i in (1..rows).rev() {
                        perm.swap(i, rng.random_range(0..=i));
                    }
                    if perm != identity {
                        break perm;
                    }
                }
            })
            .collect())
    }
}

impl Attribution for FeaturePermutation<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        crate::base::check_per_eval(self.perturbations_per_eval)?;
        let explained = Explained::new(self.model, inputs, samples)?;
        if explained.rows < 2 {
            return Err(Error::parameter(
                "inputs",
                format!("a batch of {}", explained.rows),
                "FeaturePermutation shuffles features across the batch: give at least 2 samples",
            ));
        }
        let masks = self.feature_mask.resolve(&explained.shapes(), samples)?;
        let perms = self.draws(masks.features().len(), explained.rows)?;
        let f0 = explained.scores(self.model, target)?;
        let attributions = ablate(
            &explained,
            &masks,
            &f0,
            self.model,
            target,
            self.perturbations_per_eval,
            &self.progress,
            |p, r| Fill::Row(perms[p][r]),
            |copies, replace| explained.perturbed(copies, replace),
        )?;
        explained.attributions(attributions)
    }
}
