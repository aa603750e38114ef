//! NoiseTunnel: any attribution method averaged over noisy copies of the input (SmoothGrad,
//! SmoothGrad-squared, VarGrad).

use burn::tensor::{Tensor, TensorData};
use firelight_core::{DynTensor, Error, Result, Target, batch};
use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

use crate::base::{Attribution, check_stdevs, repeat_samples};

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
    fn attribute_samples(
        &self,
        inputs: &DynTensor,
        target: &Target,
        samples: &[usize],
    ) -> Result<DynTensor> {
        if self.nt_samples == 0 {
            return Err(Error::parameter("nt_samples", 0, "must be at least 1"));
        }
        check_stdevs(self.stdevs)?;
        inputs.check_finite("inputs")?;
        let [batch, features] = inputs.flat().dims();
        let device = inputs.device();
        let normal = Normal::new(0.0f32, self.stdevs).expect("stdevs checked above");
        let mut rng = StdRng::seed_from_u64(self.seed);
        let x = inputs.detached().into_flat().reshape([batch, 1, features]);

        let mut sum: Option<Tensor<2>> = None;
        let mut sum_sq: Option<Tensor<2>> = None;
        let mut out_shape = Vec::new();
        for group in batch::chunks(self.nt_samples, self.nt_samples_batch_size)? {
            let g = group.len();
            // Drawn one [batch, features] block per noisy copy, so the numbers do not depend on
            // how copies are grouped.
            let noise: Vec<f32> = (0..g * batch * features)
                .map(|_| normal.sample(&mut rng))
                .collect();
            let noise =
                Tensor::<3>::from_data(TensorData::new(noise, [g, batch, features]), &device)
                    .swap_dims(0, 1);
            let noisy =
                (x.clone().expand([batch, g, features]) + noise).reshape([batch * g, features]);
            let noisy = inputs.with_flat(noisy);
            let attr = self
                .base
                .attribute_samples(&noisy, target, &repeat_samples(samples, g))?;
            let out_features = attr.features();
            out_shape = attr.shape().to_vec();
            let a = attr
                .into_flat()
                .detach()
                .inner()
                .reshape([batch, g, out_features]);
            let s = a.clone().sum_dim(1).reshape([batch, out_features]);
            let s2 = a.powf_scalar(2.0).sum_dim(1).reshape([batch, out_features]);
            sum = Some(match sum {
                Some(t) => t + s,
                None => s,
            });
            sum_sq = Some(match sum_sq {
                Some(t) => t + s2,
                None => s2,
            });
        }
        let n = self.nt_samples as f32;
        let mean = sum.expect("at least one group") / n;
        let mean_sq = sum_sq.expect("at least one group") / n;
        let result = match self.nt_type {
            NoiseType::SmoothGrad => mean,
            NoiseType::SmoothGradSq => mean_sq,
            NoiseType::VarGrad => mean_sq - mean.powf_scalar(2.0),
        };
        out_shape[0] = batch;
        DynTensor::from_flat(result, out_shape)
    }
}
