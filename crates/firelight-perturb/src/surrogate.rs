//! What LIME and KernelSHAP share (Captum's `LimeBase`): per example, draw binary interpretable
//! samples (feature present at the input or absent at the baseline), score them, weight them by
//! a similarity, and fit an interpretable linear model whose coefficients are the attributions.

use firelight_core::{Attributions, Baseline, DynTensor, Error, Inputs, Model, Result, Target};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::base::{Copy, Explained, Fill, Progress, check_n_samples, check_per_eval, scores};
use crate::linear::{InterpretableModel, LinearFit};
use crate::mask::{FeatureMask, Masks};

/// The name of the single attribution `[batch, interpretable features]` that LIME and
/// KernelSHAP return with `return_input_shape(false)`.
pub const INTERPRETABLE_FEATURES: &str = "interpretable_features";

/// How LIME weights a sample by its closeness to the input (Captum's
/// `get_exp_kernel_similarity_function`): `exp(-d^2 / (2 kernel_width^2))` of a distance `d`
/// between the flattened input (every attributed input, concatenated) and the perturbed one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SimilarityKernel {
    /// `d = 1 - cosine similarity` (Captum's default, `distance_mode="cosine"`).
    Cosine {
        /// The kernel width (Captum's default 1.0).
        kernel_width: f64,
    },
    /// `d` = the Euclidean distance (`distance_mode="euclidean"`).
    Euclidean {
        /// The kernel width (Captum's default 1.0).
        kernel_width: f64,
    },
}

impl Default for SimilarityKernel {
    fn default() -> Self {
        SimilarityKernel::Cosine { kernel_width: 1.0 }
    }
}

/// How samples are drawn and weighted.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sampling {
    /// KernelSHAP: all features, none, then subsets whose size follows the Shapley kernel;
    /// weight 1e6 for all or none, 1 otherwise.
    KernelShap,
    /// LIME: each feature present with probability 1/2; weighted by `similarity`.
    Lime(SimilarityKernel),
}

/// What one example's interpretable model was fitted to, and the fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Surrogate {
    /// The interpretable samples, `[n_samples][features]`: `true` where the feature is present.
    pub samples: Vec<Vec<bool>>,
    /// The target's score of each sample.
    pub outputs: Vec<f64>,
    /// Each sample's weight in the fit (its similarity).
    pub weights: Vec<f64>,
    /// The fitted linear model; its coefficients are the attributions.
    pub fit: LinearFit,
}

/// The settings LIME and KernelSHAP share.
pub(crate) struct Config<'m> {
    pub model: &'m dyn Model,
    pub baselines: Baseline,
    pub feature_mask: FeatureMask,
    pub n_samples: usize,
    pub perturbations_per_eval: usize,
    pub return_input_shape: bool,
    pub seed: u64,
    pub samples: Option<Vec<Vec<Vec<bool>>>>,
    pub interpretable_model: InterpretableModel,
    pub sampling: Sampling,
    pub progress: Progress<'m>,
}

/// The batch, its masks and how feature ids map to interpretable features.
struct Prepared<'e> {
    explained: Explained<'e>,
    masks: Masks,
    /// Feature id `id` is interpretable feature `id - offset`.
    offset: usize,
    features: usize,
}

impl<'m> Config<'m> {
    pub(crate) fn new(
        model: &'m dyn Model,
        sampling: Sampling,
        interpretable_model: InterpretableModel,
    ) -> Self {
        Self {
            model,
            baselines: Baseline::Zeros,
            feature_mask: FeatureMask::Elements,
            n_samples: 25,
            perturbations_per_eval: 1,
            return_input_shape: true,
            seed: 0,
            samples: None,
            interpretable_model,
            sampling,
            progress: Progress::default(),
        }
    }

    fn prepare<'e>(&self, inputs: &'e Inputs, samples: &'e [usize]) -> Result<Prepared<'e>> {
        check_per_eval(self.perturbations_per_eval)?;
        let explained =
            Explained::new(self.model, inputs, samples)?.with_baselines(&self.baselines)?;
        let masks = self.feature_mask.resolve(&explained.shapes(), samples)?;
        let (offset, features) = match self.sampling {
            Sampling::KernelShap => (0, masks.contiguous("KernelShap")?),
            // Captum's LIME shifts the ids to start at 0 and takes the largest as the count.
            Sampling::Lime(_) => {
                let ids = masks.features();
                let (first, last) = (ids[0], ids[ids.len() - 1]);
                (first, last - first + 1)
            }
        };
        Ok(Prepared {
            explained,
            masks,
            offset,
            features,
        })
    }

    /// The interpretable samples of each example: the given ones (checked) or seeded draws.
    fn draws(&self, rows: usize, m: usize) -> Result<Vec<Vec<Vec<bool>>>> {
        if let Some(given) = &self.samples {
            if given.len() != rows {
                return Err(Error::parameter(
                    "interpretable_samples",
                    format!("samples for {} examples", given.len()),
                    format!("give the samples of every example ({rows})"),
                ));
            }
            for example in given {
                check_n_samples(example.len())?;
                if let Some(bad) = example.iter().find(|s| s.len() != m) {
                    return Err(Error::parameter(
                        "interpretable_samples",
                        format!("a sample of {} features", bad.len()),
                        format!("every sample needs one value per interpretable feature ({m})"),
                    ));
                }
            }
            return Ok(given.clone());
        }
        check_n_samples(self.n_samples)?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        Ok((0..rows)
            .map(|_| match self.sampling {
                Sampling::Lime(_) => (0..self.n_samples)
                    .map(|_| (0..m).map(|_| rng.random_bool(0.5)).collect())
                    .collect(),
                Sampling::KernelShap => (0..self.n_samples)
                    .map(|s| kernel_shap_sample(&mut rng, s, m))
                    .collect(),
            })
            .collect())
    }

    /// The interpretable samples, scores, weights and fit of every example.
    pub(crate) fn surrogates(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Vec<Surrogate>> {
        Ok(self.fit(inputs, target, samples)?.1)
    }

    fn fit<'e>(
        &self,
        inputs: &'e Inputs,
        target: &Target,
        samples: &'e [usize],
    ) -> Result<(Prepared<'e>, Vec<Surrogate>)> {
        let p = self.prepare(inputs, samples)?;
        let (rows, m) = (p.explained.rows, p.features);
        let draws = self.draws(rows, m)?;
        // Perturbation g is sample `index[g].1` of example `index[g].0`.
        let index: Vec<(usize, usize)> = draws
            .iter()
            .enumerate()
            .flat_map(|(b, d)| (0..d.len()).map(move |s| (b, s)))
            .collect();
        let present = |b: usize, s: usize, i: usize, e: usize| {
            let id = p.masks.input(i).row(samples[b])[e];
            draws[b][s][id - p.offset]
        };
        let outputs = scores(
            self.model,
            target,
            index.len(),
            self.perturbations_per_eval,
            &self.progress,
            |range| {
                let copies: Vec<Copy> = index[range.clone()]
                    .iter()
                    .map(|&(b, _)| Copy {
                        row: b,
                        fill: Fill::Baseline,
                    })
                    .collect();
                p.explained.perturbed(&copies, |c, i, e| {
                    let (b, s) = index[range.start + c];
                    !present(b, s, i, e)
                })
            },
        )?;
        let mut start = 0;
        let surrogates = draws
            .iter()
            .enumerate()
            .map(|(b, samples_b)| {
                let count = samples_b.len();
                let y = outputs[start..start + count].to_vec();
                start += count;
                let weights: Vec<f64> = (0..count)
                    .map(|s| self.similarity(&p, b, &samples_b[s], |i, e| present(b, s, i, e)))
                    .collect();
                let x: Vec<f64> = samples_b
                    .iter()
                    .flat_map(|z| z.iter().map(|&v| f64::from(u8::from(v))))
                    .collect();
                let fit = self.interpretable_model.fit(&x, count, m, &y, &weights)?;
                Ok(Surrogate {
                    samples: samples_b.clone(),
                    outputs: y,
                    weights,
                    fit,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((p, surrogates))
    }

    /// The weight of sample `z` of example `b` (`present(i, e)`: whether element `e` of
    /// attributed input `i` is at the input).
    fn similarity(
        &self,
        p: &Prepared<'_>,
        b: usize,
        z: &[bool],
        present: impl Fn(usize, usize) -> bool,
    ) -> f64 {
        match self.sampling {
            Sampling::KernelShap => {
                if z.iter().all(|&v| v) || z.iter().all(|&v| !v) {
                    1e6
                } else {
                    1.0
                }
            }
            Sampling::Lime(kernel) => {
                let (mut xx, mut pp, mut xp, mut diff) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
                for (i, v) in p.explained.values.iter().enumerate() {
                    for e in 0..v.features {
                        let x = v.value(b, e);
                        let q = if present(i, e) {
                            x
                        } else {
                            v.baseline_value(b, e)
                        };
                        xx += x * x;
                        pp += q * q;
                        xp += x * q;
                        diff += (x - q) * (x - q);
                    }
                }
                let (d, width) = match kernel {
                    SimilarityKernel::Cosine { kernel_width } => {
                        // torch.nn.CosineSimilarity: x.y / (max(|x|, eps) max(|y|, eps)).
                        let cos = xp / (xx.sqrt().max(1e-8) * pp.sqrt().max(1e-8));
                        (1.0 - cos, kernel_width)
                    }
                    SimilarityKernel::Euclidean { kernel_width } => (diff.sqrt(), kernel_width),
                };
                (-d * d / (2.0 * width * width)).exp()
            }
        }
    }

    pub(crate) fn attribute(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        if let Sampling::Lime(
            SimilarityKernel::Cosine { kernel_width }
            | SimilarityKernel::Euclidean { kernel_width },
        ) = self.sampling
            && !(kernel_width.is_finite() && kernel_width > 0.0)
        {
            return Err(Error::parameter(
                "kernel_width",
                kernel_width,
                "must be finite and positive",
            ));
        }
        let (p, fits) = self.fit(inputs, target, samples)?;
        if self.return_input_shape {
            let values = crate::base::spread(&p.explained, &p.masks, |r, id| {
                fits[r].fit.coef[id - p.offset]
            });
            p.explained.attributions(values)
        } else {
            let coefs: Vec<f32> = fits
                .iter()
                .flat_map(|f| f.fit.coef.iter().map(|&c| c as f32))
                .collect();
            let device = p.explained.values[0].device.clone();
            let tensor = DynTensor::from_vec(coefs, vec![p.explained.rows, p.features], &device)?;
            Ok(Attributions::single(INTERPRETABLE_FEATURES, tensor))
        }
    }
}

/// Captum's `kernel_shap_perturb_generator`: sample 0 holds every feature, sample 1 none, later
/// ones `k` features chosen uniformly, `k` drawn with probability proportional to
/// `(m - 1) / (k (m - k))` for `k = 1..m-1` (the Shapley kernel).
fn kernel_shap_sample(rng: &mut StdRng, s: usize, m: usize) -> Vec<bool> {
    if s == 0 || (m == 1 && s.is_multiple_of(2)) {
        return vec![true; m];
    }
    if s == 1 || m == 1 {
        return vec![false; m];
    }
    let weights: Vec<f64> = (1..m).map(|k| 1.0 / (k * (m - k)) as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    let mut k = m - 1;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            k = i + 1;
            break;
        }
        u -= w;
    }
    let mut order: Vec<usize> = (0..m).collect();
    for i in 0..k {
        let j = rng.random_range(i..m);
        order.swap(i, j);
    }
    let mut z = vec![false; m];
    for &j in &order[..k] {
        z[j] = true;
    }
    z
}

/// The builder methods LIME and KernelSHAP share.
macro_rules! surrogate_builders {
    () => {
        /// The values absent features take (default zeros).
        pub fn baselines(mut self, baselines: firelight_core::Baseline) -> Self {
            self.config.baselines = baselines;
            self
        }

        /// Which elements form one interpretable feature (default: every element its own).
        pub fn feature_mask(mut self, mask: $crate::FeatureMask) -> Self {
            self.config.feature_mask = mask;
            self
        }

        /// Interpretable samples drawn per example (default 25, as Captum's code).
        pub fn n_samples(mut self, n: usize) -> Self {
            self.config.n_samples = n;
            self
        }

        /// Samples scored per forward pass (default 1); results do not depend on it.
        pub fn perturbations_per_eval(mut self, n: usize) -> Self {
            self.config.perturbations_per_eval = n;
            self
        }

        /// Whether to return attributions shaped like the inputs, each element its feature's
        /// coefficient (default `true`), or one `[batch, interpretable features]` tensor named
        /// [`INTERPRETABLE_FEATURES`](crate::INTERPRETABLE_FEATURES).
        pub fn return_input_shape(mut self, input_shape: bool) -> Self {
            self.config.return_input_shape = input_shape;
            self
        }

        /// Seed of the samples (default 0): same seed, same numbers.
        pub fn seed(mut self, seed: u64) -> Self {
            self.config.seed = seed;
            self
        }

        /// The interpretable samples to use instead of drawing them (to replay Captum's):
        /// `[example][sample][feature]`, `true` where the feature is present; `n_samples` is
        /// then each example's count.
        pub fn interpretable_samples(mut self, samples: Vec<Vec<Vec<bool>>>) -> Self {
            self.config.samples = Some(samples);
            self
        }

        /// Called with `(done, total)` samples (all examples together) after each forward pass.
        pub fn progress(mut self, f: impl FnMut(usize, usize) + 'm) -> Self {
            self.config.progress = $crate::base::Progress::new(f);
            self
        }

        /// The samples, scores, weights and fitted model of every example (what the
        /// attributions come from).
        pub fn surrogates(
            &self,
            inputs: &firelight_core::Inputs,
            target: &firelight_core::Target,
        ) -> firelight_core::Result<Vec<$crate::Surrogate>> {
            let batch = inputs.batch()?;
            target.check_batch(batch)?;
            let samples: Vec<usize> = (0..batch).collect();
            self.config.surrogates(inputs, target, &samples)
        }
    };
}

pub(crate) use surrogate_builders;
