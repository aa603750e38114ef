//! Captum's `sensitivity_max` (Yeh et al. 2019): the most an explanation changes, relative to its
//! own norm, when the input moves by at most `perturb_radius` in every element.

use firelight_core::{DynTensor, Error, Result, Target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::base::{at_least_one, check_chunk};

/// An explanation function: the attributions of `inputs` (a batch) for `target`, as
/// [`firelight_core::Attribution::attribute`] gives them.
pub type ExplainFn<'e> = dyn Fn(&DynTensor, &Target) -> Result<DynTensor> + 'e;

/// Captum's `sensitivity_max`, one value per sample: `max_k ||e(x + u_k) - e(x)|| / ||e(x)||`
/// (Frobenius norms; a zero `||e(x)||` counts as 1) over `n_perturb_samples` draws `u_k`
/// uniform in `[-perturb_radius, perturb_radius]`.
///
/// ```
/// use firelight_core::{Device, DynTensor, Target};
/// use firelight_metrics::SensitivityMax;
///
/// // An explanation that is the input itself moves by at most the radius.
/// let identity = |x: &DynTensor, _: &Target| Ok(x.clone());
/// let x = DynTensor::from_vec(vec![3.0, 4.0], vec![1, 2], &Device::flex())?;
/// let s = SensitivityMax::new(&identity).score(&x, &Target::class(0))?;
/// assert!(s[0] > 0.0 && s[0] <= 0.02 * 2f32.sqrt() / 5.0 + 1e-6);
/// # Ok::<(), firelight_core::Error>(())
/// ```
pub struct SensitivityMax<'e> {
    explain: &'e ExplainFn<'e>,
    perturb_radius: f32,
    n_perturb_samples: usize,
    max_examples_per_batch: Option<usize>,
    seed: u64,
    perturbed: Option<DynTensor>,
}

impl<'e> SensitivityMax<'e> {
    /// Sensitivity of `explain` with Captum's defaults: `perturb_radius` 0.02,
    /// `n_perturb_samples` 10, every perturbed copy explained in one call; seed 0.
    pub fn new(explain: &'e ExplainFn<'e>) -> Self {
        Self {
            explain,
            perturb_radius: 0.02,
            n_perturb_samples: 10,
            max_examples_per_batch: None,
            seed: 0,
            perturbed: None,
        }
    }

    /// The largest change of any element (`perturb_radius`).
    pub fn perturb_radius(mut self, radius: f32) -> Self {
        self.perturb_radius = radius;
        self
    }

    /// Perturbed copies per sample (`n_perturb_samples`).
    pub fn n_perturb_samples(mut self, n: usize) -> Self {
        self.n_perturb_samples = n;
        self
    }

    /// At most this many perturbed copies per call of the explanation (`max_examples_per_batch`);
    /// the result does not depend on it.
    pub fn max_examples_per_batch(mut self, n: usize) -> Self {
        self.max_examples_per_batch = Some(n);
        self
    }

    /// The seed of the draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The perturbed inputs themselves, `[batch * n_perturb_samples, ...]` in sample order: to
    /// replay a run.
    pub fn perturbed_inputs(mut self, perturbed: DynTensor) -> Self {
        self.perturbed = Some(perturbed);
        self
    }

    fn perturbed(&self, inputs: &DynTensor) -> Result<DynTensor> {
        let (batch, features, n) = (inputs.batch(), inputs.features(), self.n_perturb_samples);
        let mut shape = inputs.shape().to_vec();
        shape[0] = batch * n;
        if let Some(given) = &self.perturbed {
            if given.shape() != shape.as_slice() {
                return Err(Error::ShapeMismatch {
                    what: "given perturbed inputs ([batch * n_perturb_samples, ...])".into(),
                    expected: shape,
                    got: given.shape().to_vec(),
                });
            }
            return Ok(given.clone());
        }
        let r = self.perturb_radius;
        if !(r.is_finite() && r >= 0.0) {
            return Err(Error::parameter(
                "perturb_radius",
                r,
                "must be a finite value >= 0",
            ));
        }
        let x = inputs.to_vec()?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let values = (0..batch * n * features)
            .map(|i| {
                let (row, e) = (i / features, i % features);
                let u = if r == 0.0 {
                    0.0
                } else {
                    rng.random_range(-r..r)
                };
                x[(row / n) * features + e] + u
            })
            .collect();
        DynTensor::from_vec(values, shape, &inputs.device())
    }

    /// The sensitivity of the explanation of `target` at `inputs`, one value per sample.
    pub fn score(&self, inputs: &DynTensor, target: &Target) -> Result<Vec<f32>> {
        at_least_one("n_perturb_samples", self.n_perturb_samples)?;
        check_chunk(self.max_examples_per_batch)?;
        let (batch, n) = (inputs.batch(), self.n_perturb_samples);
        target.check_batch(batch)?;
        let own = (self.explain)(inputs, target)?;
        if own.batch() != batch {
            return Err(Error::ShapeMismatch {
                what: "the explanation's rows (one per input row)".into(),
                expected: vec![batch],
                got: own.shape().to_vec(),
            });
        }
        let width = own.features();
        let own = own.to_vec()?;
        let norms: Vec<f64> = (0..batch)
            .map(|b| {
                let v = &own[b * width..(b + 1) * width];
                let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                if norm == 0.0 { 1.0 } else { norm }
            })
            .collect();
        let perturbed = self.perturbed(inputs)?;
        let step = self.max_examples_per_batch.unwrap_or(batch * n).max(1);
        let mut worst = vec![f64::NEG_INFINITY; batch];
        let mut start = 0;
        while start < batch * n {
            let end = (start + step).min(batch * n);
            let samples: Vec<usize> = (start..end).map(|r| r / n).collect();
            let explained =
                (self.explain)(&perturbed.rows(start, end), &target.for_rows(&samples)?)?;
            if explained.batch() != end - start || explained.features() != width {
                return Err(Error::ShapeMismatch {
                    what: "the explanation of perturbed inputs vs of the inputs".into(),
                    expected: vec![end - start, width],
                    got: explained.shape().to_vec(),
                });
            }
            let values = explained.to_vec()?;
            for (i, &b) in samples.iter().enumerate() {
                let change = (0..width)
                    .map(|e| f64::from(values[i * width + e] - own[b * width + e]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                worst[b] = worst[b].max(change / norms[b]);
            }
            start = end;
        }
        Ok(worst.into_iter().map(|v| v as f32).collect())
    }
}
