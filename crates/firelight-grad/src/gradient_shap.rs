//! GradientSHAP (Lundberg & Lee, 2017): expected gradients between random baselines from a
//! distribution and noisy copies of the input, times their difference.

use burn::tensor::{Int, Tensor, TensorData};
use firelight_core::batch::{self, repeat_samples};
use firelight_core::gradients::{input_gradients, validate};
use firelight_core::{
    Attribution, Attributions, Baseline, DynTensor, Error, Inputs, Model, ReluPolicy, Result,
    Target,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

use crate::base::{baseline_distributions, check_stdevs};

/// Captum's `GradientShap`: for each of `n_samples` draws per input, picks a baseline at random from
/// the distribution, adds Gaussian noise (`stdevs`) to the input, picks a point uniformly at random
/// on the segment between them, and takes the gradient there times `(noisy input - baseline)`;
/// the attribution is the mean. Defaults as Captum: `n_samples = 5`, `stdevs = 0.0`.
pub struct GradientShap<'m> {
    model: &'m dyn Model,
    n_samples: usize,
    stdevs: f32,
    baselines: Baseline,
    seed: u64,
    internal_batch_size: Option<usize>,
    multiply_by_inputs: bool,
}

impl<'m> GradientShap<'m> {
    /// GradientSHAP of `model` against a zero baseline, seed 0.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            n_samples: 5,
            stdevs: 0.0,
            baselines: Baseline::Zeros,
            seed: 0,
            internal_batch_size: None,
            multiply_by_inputs: true,
        }
    }

    /// Draws per input (default 5).
    pub fn n_samples(mut self, n: usize) -> Self {
        self.n_samples = n;
        self
    }

    /// Standard deviation of the noise added to the inputs (default 0).
    pub fn stdevs(mut self, stdevs: f32) -> Self {
        self.stdevs = stdevs;
        self
    }

    /// The baseline distribution, usually [`Baseline::Distribution`] of `[k, ...sample]`.
    pub fn baselines(mut self, baselines: Baseline) -> Self {
        self.baselines = baselines;
        self
    }

    /// Seed of the draws (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// At most this many rows (draws x inputs) per forward/backward.
    pub fn internal_batch_size(mut self, rows: usize) -> Self {
        self.internal_batch_size = Some(rows);
        self
    }

    /// Whether to multiply gradients by `(noisy input - baseline)` (default `true`).
    pub fn multiply_by_inputs(mut self, multiply: bool) -> Self {
        self.multiply_by_inputs = multiply;
        self
    }
}

impl Attribution for GradientShap<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        if self.n_samples == 0 {
            return Err(Error::parameter("n_samples", 0, "must be at least 1"));
        }
        check_stdevs(self.stdevs)?;
        let attributed = inputs.attributed_floats()?;
        let (distributions, k) = baseline_distributions(&self.baselines, &attributed)?;
        let batch = inputs.batch()?;
        let n = self.n_samples;
        let rows = batch * n;
        let device = attributed[0].device();

        // Every random number is drawn up front, row by row, so chunking cannot change them. As
        // in Captum, the baseline picks and the path coefficients are shared by every input.
        let mut rng = StdRng::seed_from_u64(self.seed);
        let normal = Normal::new(0.0f32, self.stdevs).expect("stdevs checked above");
        let picks: Vec<i64> = (0..rows).map(|_| rng.random_range(0..k) as i64).collect();
        let coefficients: Vec<f32> = (0..rows).map(|_| rng.random_range(0.0..1.0)).collect();
        let picks = Tensor::<1, Int>::from_data(TensorData::new(picks, [rows]), &device);
        let coefficients =
            Tensor::<2>::from_data(TensorData::new(coefficients, [rows, 1]), &device);
        let mut points = Vec::new();
        let mut diffs = Vec::new();
        for (x, distribution) in attributed.iter().zip(&distributions) {
            let features = x.features();
            let noise: Vec<f32> = if self.stdevs > 0.0 {
                (0..rows * features)
                    .map(|_| normal.sample(&mut rng))
                    .collect()
            } else {
                vec![0.0; rows * features]
            };
            let noisy = x
                .detached()
                .into_flat()
                .reshape([batch, 1, features])
                .expand([batch, n, features])
                .reshape([rows, features])
                + Tensor::<2>::from_data(TensorData::new(noise, [rows, features]), &device);
            let base = distribution.flat().clone().select(0, picks.clone());
            let diff = noisy - base.clone();
            points.push(base + diff.clone() * coefficients.clone());
            diffs.push(diff);
        }
        let row_samples = repeat_samples(samples, n);
        let row_map = repeat_samples(&(0..batch).collect::<Vec<_>>(), n);

        let mut parts: Vec<Vec<Tensor<2>>> = vec![Vec::new(); attributed.len()];
        for chunk in batch::chunks(rows, self.internal_batch_size)? {
            let chunk_points = attributed
                .iter()
                .zip(&points)
                .map(|(x, p)| {
                    let mut shape = x.shape().to_vec();
                    shape[0] = chunk.len();
                    DynTensor::from_flat(p.clone().narrow(0, chunk.start, chunk.len()), shape)
                })
                .collect::<Result<Vec<_>>>()?;
            let chunk_inputs = inputs.with_attributed(chunk_points, &row_map[chunk.clone()])?;
            let grads = input_gradients(
                self.model,
                &chunk_inputs,
                target,
                &row_samples[chunk.clone()],
                ReluPolicy::Standard,
            )?;
            for ((part, grad), diff) in parts.iter_mut().zip(grads).zip(&diffs) {
                let grad = grad.into_flat();
                part.push(if self.multiply_by_inputs {
                    grad * diff.clone().narrow(0, chunk.start, chunk.len())
                } else {
                    grad
                });
            }
        }
        let means = attributed
            .iter()
            .zip(parts)
            .map(|(x, part)| {
                let features = x.features();
                let all = Tensor::cat(part, 0).reshape([batch, n, features]);
                x.with_flat(all.mean_dim(1).reshape([batch, features]))
            })
            .collect();
        Attributions::for_inputs(inputs, means)
    }
}
