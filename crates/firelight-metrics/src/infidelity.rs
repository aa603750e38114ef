//! Captum's `infidelity` (Yeh et al. 2019): the expected squared error between the attribution
//! times a perturbation and the change of the target's score that the perturbation causes,
//! `E[(sum(a * I) - (f(x) - f(x - I)))^2]`; with `normalize`, the attribution is first scaled by
//! the `beta` that minimises it.

use firelight_core::{DynTensor, Error, Model, Result, Target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::base::{at_least_one, check_chunk, per_element, scores};

/// How infidelity perturbs an input: the perturbation `I`, scored at `x - I`.
#[derive(Clone, Debug)]
pub enum InfidelityPerturbation {
    /// Gaussian noise `I ~ N(0, stdev^2)` on every element (Captum's tutorial: 0.003).
    Noise {
        /// Its standard deviation.
        stdev: f32,
    },
    /// A random square of `side` x `side` positions (every channel; a run of `side` features of
    /// a table row) removed: `I = x` inside it, so `x - I` is 0 there, and 0 elsewhere.
    SquareRemoval {
        /// The square's side.
        side: usize,
    },
    /// The perturbations themselves, `n_perturb_samples` per sample in sample order
    /// (`[batch * n_perturb_samples, ...]`, Captum's `repeat_interleave`): to replay a run.
    Given(Box<DynTensor>),
}

/// Captum's `infidelity` of `attributions` for `target`, one value per sample.
///
/// ```
/// use firelight_core::{Device, DynTensor, LayerInfo, Model, Inputs, Result, Taps, Target, Tensor};
/// use firelight_metrics::{Infidelity, InfidelityPerturbation};
///
/// /// out = 2 x0 - x1: its exact attribution from 0 (gradient times input) has infidelity 0.
/// struct Linear;
/// impl Model for Linear {
///     fn forward(&self, inputs: &Inputs, _: &mut Taps<'_>) -> Result<Tensor<2>> {
///         let x = inputs.single_float()?.into_rank::<2>()?;
///         let w = Tensor::<2>::from_floats([[2.0], [-1.0]], &x.device());
///         Ok(x.matmul(w))
///     }
///     fn layers(&self) -> Vec<LayerInfo> { Vec::new() }
/// }
/// let device = Device::flex();
/// let x = DynTensor::from_vec(vec![1.0, 3.0], vec![1, 2], &device)?;
/// let gradient = DynTensor::from_vec(vec![2.0, -1.0], vec![1, 2], &device)?;
/// let score = Infidelity::new(&Linear)
///     .perturbation(InfidelityPerturbation::Noise { stdev: 0.1 })
///     .score(&x, &gradient, &Target::class(0))?;
/// assert!(score[0] < 1e-10);
/// # Ok::<(), firelight_core::Error>(())
/// ```
pub struct Infidelity<'m> {
    model: &'m dyn Model,
    perturbation: InfidelityPerturbation,
    n_perturb_samples: usize,
    max_examples_per_batch: Option<usize>,
    normalize: bool,
    seed: u64,
}

impl<'m> Infidelity<'m> {
    /// Infidelity on `model` with Captum's defaults: `n_perturb_samples` 10, every perturbed
    /// copy in one pass, `normalize` false; Gaussian noise of 0.003 (Captum's tutorial), seed 0.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            perturbation: InfidelityPerturbation::Noise { stdev: 0.003 },
            n_perturb_samples: 10,
            max_examples_per_batch: None,
            normalize: false,
            seed: 0,
        }
    }

    /// How the input is perturbed.
    pub fn perturbation(mut self, perturbation: InfidelityPerturbation) -> Self {
        self.perturbation = perturbation;
        self
    }

    /// Perturbations per sample (`n_perturb_samples`).
    pub fn n_perturb_samples(mut self, n: usize) -> Self {
        self.n_perturb_samples = n;
        self
    }

    /// At most this many perturbed copies per forward pass (`max_examples_per_batch`); the
    /// result does not depend on it.
    pub fn max_examples_per_batch(mut self, n: usize) -> Self {
        self.max_examples_per_batch = Some(n);
        self
    }

    /// Scale the attributions by the best `beta` first (`normalize`).
    pub fn normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// The seed of generated perturbations.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The perturbations, `[batch * n, ...]`, in sample order.
    fn perturbations(&self, inputs: &DynTensor) -> Result<Vec<f32>> {
        let shape = inputs.shape();
        let (batch, features) = (inputs.batch(), inputs.features());
        let n = self.n_perturb_samples;
        let x = inputs.to_vec()?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        match &self.perturbation {
            InfidelityPerturbation::Given(given) => {
                let mut expected = shape.to_vec();
                expected[0] = batch * n;
                if given.shape() != expected.as_slice() {
                    return Err(Error::ShapeMismatch {
                        what: "given infidelity perturbations ([batch * n_perturb_samples, ...])"
                            .into(),
                        expected,
                        got: given.shape().to_vec(),
                    });
                }
                given.to_vec()
            }
            InfidelityPerturbation::Noise { stdev } => {
                let normal = Normal::new(0.0f32, *stdev).map_err(|e| {
                    Error::parameter("stdev", stdev, format!("not a standard deviation: {e}"))
                })?;
                Ok((0..batch * n * features)
                    .map(|_| normal.sample(&mut rng))
                    .collect())
            }
            InfidelityPerturbation::SquareRemoval { side } => {
                let (channels, height, width) = match shape {
                    [_, f] => (1, 1, *f),
                    [_, c, h, w] => (*c, *h, *w),
                    [_, c, rest @ ..] => (*c, 1, rest.iter().product()),
                    _ => (1, 1, features),
                };
                let (sy, sx) = (if height == 1 { 1 } else { *side }, *side);
                if *side == 0 || sy > height || sx > width {
                    return Err(Error::parameter(
                        "side",
                        side,
                        format!("the square must fit the input's {height} x {width} positions"),
                    ));
                }
                let mut out = vec![0.0f32; batch * n * features];
                for b in 0..batch {
                    for k in 0..n {
                        let (y0, x0) = (
                            rng.random_range(0..=height - sy),
                            rng.random_range(0..=width - sx),
                        );
                        let row = (b * n + k) * features;
                        for c in 0..channels {
                            for y in y0..y0 + sy {
                                for xx in x0..x0 + sx {
                                    let e = (c * height + y) * width + xx;
                                    out[row + e] = x[b * features + e];
                                }
                            }
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// The infidelity of `attributions` (the input's shape, or one channel for all) of the
    /// model's `target` at `inputs`, one value per sample.
    pub fn score(
        &self,
        inputs: &DynTensor,
        attributions: &DynTensor,
        target: &Target,
    ) -> Result<Vec<f32>> {
        at_least_one("n_perturb_samples", self.n_perturb_samples)?;
        check_chunk(self.max_examples_per_batch)?;
        let (batch, features, n) = (inputs.batch(), inputs.features(), self.n_perturb_samples);
        target.check_batch(batch)?;
        let a = per_element(inputs, attributions)?;
        let x = inputs.to_vec()?;
        let perturbations = self.perturbations(inputs)?;
        let perturbed: Vec<f32> = (0..batch * n)
            .flat_map(|r| {
                let (x, p) = (&x, &perturbations);
                (0..features).map(move |e| x[(r / n) * features + e] - p[r * features + e])
            })
            .collect();
        let mut shape = inputs.shape().to_vec();
        shape[0] = batch * n;
        let rows = DynTensor::from_vec(perturbed, shape, &inputs.device())?;
        let samples: Vec<usize> = (0..batch * n).map(|r| r / n).collect();
        let at_perturbed = scores(
            self.model,
            &rows,
            target,
            &samples,
            self.max_examples_per_batch,
        )?;
        let own: Vec<usize> = (0..batch).collect();
        let at_input = scores(self.model, inputs, target, &own, None)?;
        Ok((0..batch)
            .map(|b| {
                let (mut aa, mut ad, mut dd, mut err) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
                for k in 0..n {
                    let r = b * n + k;
                    let explained: f64 = (0..features)
                        .map(|e| {
                            f64::from(a[b * features + e])
                                * f64::from(perturbations[r * features + e])
                        })
                        .sum();
                    let change = f64::from(at_input[b]) - f64::from(at_perturbed[r]);
                    aa += explained * explained;
                    ad += explained * change;
                    dd += change * change;
                    err += (explained - change).powi(2);
                }
                let total = if self.normalize {
                    // Captum's safe_div: a zero denominator leaves beta at 0.
                    let beta = if aa == 0.0 { 0.0 } else { ad / aa };
                    beta * beta * aa - 2.0 * beta * ad + dd
                } else {
                    err
                };
                (total / n as f64) as f32
            })
            .collect())
    }
}
