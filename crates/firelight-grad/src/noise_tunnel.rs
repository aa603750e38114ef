//! NoiseTunnel: any attribution method averaged over noisy copies of the input (SmoothGrad,
//! SmoothGrad-squared, VarGrad).

use burn::tensor::{Tensor, TensorData};
use firelight_core::batch::{self, repeat_samples};
use firelight_core::{Attribution, Attributions, DynTensor, Error, Inputs, Result, Target};
use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

use crate::base::check_stdevs;

/// How the attributions of the noisy copies are combined (Captum's `nt_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoiseType {
    /// The mean (Smilkov et al., 2017), `"smoothgrad"`.
    #[default]
    SmoothGrad,
    /// The mean of squares, `"smoothgrad_sq"`.
    SmoothGradSq,
    /// The variance (Adebayo et al., 2018), `"vargrad"`.
    VarGrad,
}

/// Captum's `NoiseTunnel`: adds Gaussian noise with standard deviation `stdevs` to the inputs
/// `nt_samples` times and combines the base method's attributions by `nt_type`.
/// Defaults as Captum: `nt_samples = 5`, `stdevs = 1.0`, smoothgrad; the noise comes from `seed`.
pub struct NoiseTunnel<A> {
    base: A,
    nt_type: NoiseType,
    nt_samples: usize,
    nt_samples_batch_size: Option<usize>,
    stdevs: f32,
    seed: u64,
}

impl<A: Attribution> NoiseTunnel<A> {
    /// Wraps `base` with Captum's defaults and seed 0.
    pub fn new(base: A) -> Self {
        Self {
            base,
            nt_type: NoiseType::SmoothGrad,
            nt_samples: 5,
            nt_samples_batch_size: None,
            stdevs: 1.0,
            seed: 0,
        }
    }

    /// How to combine the noisy attributions (default smoothgrad).
    pub fn nt_type(mut self, nt_type: NoiseType) -> Self {
        self.nt_type = nt_type;
        self
    }

    /// Number of noisy copies per input (default 5).
    pub fn nt_samples(mut self, n: usize) -> Self {
        self.nt_samples = n;
        self
    }

    /// At most this many noisy copies of each input go to the base method at once (default all).
    pub fn nt_samples_batch_size(mut self, n: usize) -> Self {
        self.nt_samples_batch_size = Some(n);
        self
    }

    /// Standard deviation of the Gaussian noise, in input units (default 1.0).
    pub fn stdevs(mut self, stdevs: f32) -> Self {
        self.stdevs = stdevs;
        self
    }

    /// Seed of the noise (default 0): same seed, same numbers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl<A: Attribution> Attribution for NoiseTunnel<A> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        if self.nt_samples == 0 {
            return Err(Error::parameter("nt_samples", 0, "must be at least 1"));
        }
        check_stdevs(self.stdevs)?;
        inputs.check_finite()?;
        let attributed = inputs.attributed_floats()?;
        let batch = inputs.batch()?;
        let normal = Normal::new(0.0f32, self.stdevs).expect("stdevs checked above");
        let mut rng = StdRng::seed_from_u64(self.seed);
        let rows: Vec<usize> = (0..batch).collect();

        let mut sums: Vec<(Tensor<2>, Tensor<2>)> = Vec::new();
        let mut template: Option<Attributions> = None;
        for group in batch::chunks(self.nt_samples, self.nt_samples_batch_size)? {
            let g = group.len();
            // Drawn one [batch, features] block per noisy copy and input, so the numbers do not
            // depend on how copies are grouped.
            let noisy = attributed
                .iter()
                .map(|x| {
                    let features = x.features();
                    let device = x.device();
                    let noise: Vec<f32> = (0..g * batch * features)
                        .map(|_| normal.sample(&mut rng))
                        .collect();
                    let noise = Tensor::<3>::from_data(
                        TensorData::new(noise, [g, batch, features]),
                        &device,
                    )
                    .swap_dims(0, 1);
                    let flat = x.detached().into_flat().reshape([batch, 1, features]);
                    let noisy =
                        (flat.expand([batch, g, features]) + noise).reshape([batch * g, features]);
                    let mut shape = x.shape().to_vec();
                    shape[0] = batch * g;
                    DynTensor::from_flat(noisy, shape)
                })
                .collect::<Result<Vec<_>>>()?;
            let noisy = inputs.with_attributed(noisy, &repeat_samples(&rows, g))?;
            let attributions =
                self.base
                    .attribute_rows(&noisy, target, &repeat_samples(samples, g))?;
            for (i, attr) in attributions.tensors().into_iter().enumerate() {
                let out_features = attr.features();
                let a = attr
                    .flat()
                    .clone()
                    .detach()
                    .inner()
                    .reshape([batch, g, out_features]);
                let s = a.clone().sum_dim(1).reshape([batch, out_features]);
                let s2 = a.powf_scalar(2.0).sum_dim(1).reshape([batch, out_features]);
                match sums.get_mut(i) {
                    Some((sum, sum_sq)) => {
                        *sum = sum.clone() + s;
                        *sum_sq = sum_sq.clone() + s2;
                    }
                    None => sums.push((s, s2)),
                }
            }
            template = Some(attributions);
        }
        let n = self.nt_samples as f32;
        let template = template.expect("at least one group");
        let names: Vec<String> = template.names().into_iter().map(String::from).collect();
        let items = template
            .tensors()
            .into_iter()
            .zip(sums)
            .zip(names)
            .map(|((like, (sum, sum_sq)), name)| {
                let mean = sum / n;
                let mean_sq = sum_sq / n;
                let result = match self.nt_type {
                    NoiseType::SmoothGrad => mean,
                    NoiseType::SmoothGradSq => mean_sq,
                    NoiseType::VarGrad => mean_sq - mean.powf_scalar(2.0),
                };
                let mut shape = like.shape().to_vec();
                shape[0] = batch;
                Ok((name, DynTensor::from_flat(result, shape)?))
            })
            .collect::<Result<_>>()?;
        Ok(Attributions::new(items))
    }
}
