//! GradientSHAP (Lundberg & Lee, 2017): expected gradients between random baselines from a
//! distribution and noisy copies of the input, times their difference.

use std::ops::Range;

use burn::tensor::{Int, Tensor, TensorData};
use firelight_core::batch;
use firelight_core::gradients::{input_gradients, layer_activations, layer_gradients, validate};
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
/// the attribution is the mean. Defaults as Captum: `n_samples = 5`, `stdevs = 0.0`. With
/// [`GradientShap::layer`] it is Captum's `LayerGradientShap`.
pub struct GradientShap<'m> {
    model: &'m dyn Model,
    n_samples: usize,
    stdevs: f32,
    baselines: Baseline,
    seed: u64,
    internal_batch_size: Option<usize>,
    multiply_by_inputs: bool,
    layer: Option<String>,
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
            layer: None,
        }
    }

    /// Captum's `LayerGradientShap`: attributes to the activations of `layer` instead of the
    /// inputs. The draws are the same (baselines and noise in input space); the gradient is taken
    /// at the layer and multiplied by the layer's change from the baseline to the noisy input.
    pub fn layer(mut self, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        self.model.check_layer(&layer)?;
        self.layer = Some(layer);
        Ok(self)
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
        let draws = Draws::new(
            inputs,
            &self.baselines,
            self.n_samples,
            self.stdevs,
            self.seed,
        )?;
        match &self.layer {
            None => self.at_inputs(inputs, target, samples, &draws),
            Some(layer) => self.at_layer(layer, inputs, target, samples, &draws),
        }
    }
}

impl GradientShap<'_> {
    /// Captum's `GradientShap`: gradients with respect to the inputs at the draws' points.
    fn at_inputs(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
        draws: &Draws,
    ) -> Result<Attributions> {
        let attributed = inputs.attributed_floats()?;
        let mut parts: Vec<Vec<Tensor<2>>> = vec![Vec::new(); attributed.len()];
        for chunk in batch::chunks(draws.rows(), self.internal_batch_size)? {
            let at_points = draws.inputs(inputs, &draws.points, chunk.clone())?;
            let grads = input_gradients(
                self.model,
                &at_points,
                target,
                &draws.samples(samples, chunk.clone()),
                ReluPolicy::Standard,
            )?;
            for ((part, grad), (noisy, base)) in parts
                .iter_mut()
                .zip(grads)
                .zip(draws.noisy.iter().zip(&draws.bases))
            {
                let grad = grad.into_flat();
                part.push(if self.multiply_by_inputs {
                    let range = |t: &Tensor<2>| t.clone().narrow(0, chunk.start, chunk.len());
                    grad * (range(noisy) - range(base))
                } else {
                    grad
                });
            }
        }
        let means = attributed
            .iter()
            .zip(parts)
            .map(|(x, part)| x.with_flat(draws.mean(part)))
            .collect();
        Attributions::for_inputs(inputs, means)
    }

    /// Captum's `LayerGradientShap`: gradients with respect to the layer at the draws' points,
    /// times the layer's change from the baseline to the noisy input.
    fn at_layer(
        &self,
        layer: &str,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
        draws: &Draws,
    ) -> Result<Attributions> {
        let mut parts = Vec::new();
        let mut layer_shape = Vec::new();
        for chunk in batch::chunks(draws.rows(), self.internal_batch_size)? {
            let at_points = draws.inputs(inputs, &draws.points, chunk.clone())?;
            let (_, grad) = layer_gradients(
                self.model,
                &at_points,
                layer,
                target,
                &draws.samples(samples, chunk.clone()),
                None,
            )?;
            layer_shape = grad.shape()[1..].to_vec();
            let grad = grad.into_flat();
            parts.push(if self.multiply_by_inputs {
                let at = |ends: &[Tensor<2>]| -> Result<Tensor<2>> {
                    let ends = draws.inputs(inputs, ends, chunk.clone())?;
                    Ok(layer_activations(self.model, &ends, layer)?.into_flat())
                };
                grad * (at(&draws.noisy)? - at(&draws.bases)?)
            } else {
                grad
            });
        }
        let mut shape = vec![draws.batch];
        shape.extend(layer_shape);
        Ok(Attributions::single(
            layer,
            DynTensor::from_flat(draws.mean(parts), shape)?,
        ))
    }
}

/// GradientSHAP's random draws, `n` rows per input row (row `i * n + j` is input `i`'s draw `j`),
/// one flat tensor per attributed input: the noisy input, the baseline picked for it, and the
/// point between them where the gradient is taken.
struct Draws {
    batch: usize,
    n: usize,
    noisy: Vec<Tensor<2>>,
    bases: Vec<Tensor<2>>,
    points: Vec<Tensor<2>>,
    /// The attributed inputs' full shapes, batch axis included.
    shapes: Vec<Vec<usize>>,
}

impl Draws {
    fn new(
        inputs: &Inputs,
        baselines: &Baseline,
        n: usize,
        stdevs: f32,
        seed: u64,
    ) -> Result<Self> {
        let attributed = inputs.attributed_floats()?;
        let (distributions, k) = baseline_distributions(baselines, &attributed)?;
        let batch = inputs.batch()?;
        let rows = batch * n;
        let device = attributed[0].device();

        // Every random number is drawn up front, row by row, so chunking cannot change them. As
        // in Captum, the baseline picks and the path coefficients are shared by every input.
        let mut rng = StdRng::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, stdevs).expect("stdevs checked by the caller");
        let picks: Vec<i64> = (0..rows).map(|_| rng.random_range(0..k) as i64).collect();
        let coefficients: Vec<f32> = (0..rows).map(|_| rng.random_range(0.0..1.0)).collect();
        let picks = Tensor::<1, Int>::from_data(TensorData::new(picks, [rows]), &device);
        let coefficients =
            Tensor::<2>::from_data(TensorData::new(coefficients, [rows, 1]), &device);
        let (mut noisy, mut bases, mut points) = (Vec::new(), Vec::new(), Vec::new());
        for (x, distribution) in attributed.iter().zip(&distributions) {
            let features = x.features();
            let noise: Vec<f32> = if stdevs > 0.0 {
                (0..rows * features)
                    .map(|_| normal.sample(&mut rng))
                    .collect()
            } else {
                vec![0.0; rows * features]
            };
            let x_noisy = x
                .detached()
                .into_flat()
                .reshape([batch, 1, features])
                .expand([batch, n, features])
                .reshape([rows, features])
                + Tensor::<2>::from_data(TensorData::new(noise, [rows, features]), &device);
            let base = distribution.flat().clone().select(0, picks.clone());
            points.push(base.clone() + (x_noisy.clone() - base.clone()) * coefficients.clone());
            noisy.push(x_noisy);
            bases.push(base);
        }
        Ok(Self {
            batch,
            n,
            noisy,
            bases,
            points,
            shapes: attributed.iter().map(|x| x.shape().to_vec()).collect(),
        })
    }

    fn rows(&self) -> usize {
        self.batch * self.n
    }

    /// The inputs of draw rows `chunk`: `ends` (one flat tensor per attributed input) in place of
    /// the attributed inputs, the carried inputs of each row's input row.
    fn inputs(&self, inputs: &Inputs, ends: &[Tensor<2>], chunk: Range<usize>) -> Result<Inputs> {
        let tensors = ends
            .iter()
            .zip(&self.shapes)
            .map(|(end, shape)| {
                let mut shape = shape.clone();
                shape[0] = chunk.len();
                DynTensor::from_flat(end.clone().narrow(0, chunk.start, chunk.len()), shape)
            })
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<usize> = chunk.map(|row| row / self.n).collect();
        inputs.with_attributed(tensors, &rows)
    }

    /// The sample index of each draw row in `chunk`.
    fn samples(&self, samples: &[usize], chunk: Range<usize>) -> Vec<usize> {
        chunk.map(|row| samples[row / self.n]).collect()
    }

    /// The mean over each input row's draws of per-chunk results `[chunk rows, features]`.
    fn mean(&self, parts: Vec<Tensor<2>>) -> Tensor<2> {
        let all = Tensor::cat(parts, 0);
        let features = all.dims()[1];
        all.reshape([self.batch, self.n, features])
            .mean_dim(1)
            .reshape([self.batch, features])
    }
}
