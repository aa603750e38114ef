//! Faithfulness correlation (Bhatt et al. 2020, as Quantus computes it): over random subsets of
//! `subset_size` features, the Pearson correlation between the attributions' sum on the subset
//! and the drop of the target's score when the subset is set to a baseline.

use firelight_core::{DynTensor, Error, Model, Result, Target};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;

use crate::base::{check_chunk, per_position, scores};

/// What a removed feature is set to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FeatureBaseline {
    /// Quantus's `"black"`: the sample's smallest value.
    Black,
    /// A constant.
    Constant(f32),
}

impl FeatureBaseline {
    /// The value removed features of the sample `row` take.
    pub(crate) fn value(self, row: &[f32]) -> f32 {
        match self {
            FeatureBaseline::Black => row.iter().copied().fold(f32::INFINITY, f32::min),
            FeatureBaseline::Constant(v) => v,
        }
    }
}

/// Quantus's `FaithfulnessCorrelation` (`nr_runs` 100, `subset_size` 224, `"black"`), one value
/// per sample. Attributions are over the input's positions (a map, or input-shaped and summed
/// over the channels); a chosen position is removed in every channel.
pub struct FaithfulnessCorrelation<'m> {
    model: &'m dyn Model,
    nr_runs: usize,
    subset_size: usize,
    baseline: FeatureBaseline,
    seed: u64,
    subsets: Option<Vec<Vec<Vec<usize>>>>,
    max_examples_per_batch: Option<usize>,
}

impl<'m> FaithfulnessCorrelation<'m> {
    /// Quantus's defaults: 100 runs of 224 positions set to the sample's minimum; seed 0.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            nr_runs: 100,
            subset_size: 224,
            baseline: FeatureBaseline::Black,
            seed: 0,
            subsets: None,
            max_examples_per_batch: Some(64),
        }
    }

    /// Random subsets per sample (`nr_runs`).
    pub fn nr_runs(mut self, n: usize) -> Self {
        self.nr_runs = n;
        self
    }

    /// Positions per subset (`subset_size`).
    pub fn subset_size(mut self, n: usize) -> Self {
        self.subset_size = n;
        self
    }

    /// What removed positions become.
    pub fn baseline(mut self, baseline: FeatureBaseline) -> Self {
        self.baseline = baseline;
        self
    }

    /// The seed of the subsets.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The subsets themselves, `[sample][run][position]`: to replay a run.
    pub fn subsets(mut self, subsets: Vec<Vec<Vec<usize>>>) -> Self {
        self.subsets = Some(subsets);
        self
    }

    /// At most this many perturbed copies per forward pass; the result does not depend on it.
    pub fn max_examples_per_batch(mut self, n: usize) -> Self {
        self.max_examples_per_batch = Some(n);
        self
    }

    /// The correlation for each sample of `inputs`.
    pub fn score(
        &self,
        inputs: &DynTensor,
        attributions: &DynTensor,
        target: &Target,
    ) -> Result<Vec<f32>> {
        check_chunk(self.max_examples_per_batch)?;
        let batch = inputs.batch();
        target.check_batch(batch)?;
        let (positions, a) = per_position(inputs, attributions)?;
        let features = inputs.features();
        let channels = features / positions.max(1);
        if self.nr_runs < 2 {
            return Err(Error::parameter(
                "nr_runs",
                self.nr_runs,
                "a correlation needs at least 2 runs",
            ));
        }
        if self.subset_size == 0 || self.subset_size > positions {
            return Err(Error::parameter(
                "subset_size",
                self.subset_size,
                format!("must be between 1 and the input's {positions} positions"),
            ));
        }
        let subsets = match &self.subsets {
            Some(given) => {
                let fits = given.len() == batch
                    && given
                        .iter()
                        .all(|runs| runs.iter().all(|s| s.iter().all(|&p| p < positions)));
                if !fits {
                    return Err(Error::parameter(
                        "subsets",
                        format!("{} samples", given.len()),
                        format!("need one list of runs per sample, positions below {positions}"),
                    ));
                }
                given.clone()
            }
            None => {
                let mut rng = StdRng::seed_from_u64(self.seed);
                (0..batch)
                    .map(|_| {
                        (0..self.nr_runs)
                            .map(|_| sample(&mut rng, positions, self.subset_size).into_vec())
                            .collect()
                    })
                    .collect()
            }
        };
        let x = inputs.to_vec()?;
        let own: Vec<usize> = (0..batch).collect();
        let at_input = scores(self.model, inputs, target, &own, None)?;
        let mut out = Vec::with_capacity(batch);
        for (b, runs) in subsets.iter().enumerate() {
            let row = &x[b * features..(b + 1) * features];
            let fill = self.baseline.value(row);
            let mut copies = Vec::with_capacity(runs.len() * features);
            for subset in runs {
                let mut copy = row.to_vec();
                for &p in subset {
                    for c in 0..channels {
                        copy[c * positions + p] = fill;
                    }
                }
                copies.extend(copy);
            }
            let mut shape = inputs.shape().to_vec();
            shape[0] = runs.len();
            let rows = DynTensor::from_vec(copies, shape, &inputs.device())?;
            let rows_of = vec![b; runs.len()];
            let perturbed = scores(
                self.model,
                &rows,
                target,
                &rows_of,
                self.max_examples_per_batch,
            )?;
            let drops: Vec<f64> = perturbed
                .iter()
                .map(|&p| f64::from(at_input[b]) - f64::from(p))
                .collect();
            let sums: Vec<f64> = runs
                .iter()
                .map(|s| s.iter().map(|&p| f64::from(a[b * positions + p])).sum())
                .collect();
            out.push(pearson(&sums, &drops) as f32);
        }
        Ok(out)
    }
}

/// Pearson's correlation (NaN where either side is constant, as SciPy's `pearsonr`).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}
