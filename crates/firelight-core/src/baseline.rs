//! [`Baseline`]: the reference input an attribution is measured against.

use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::error::{Error, Result};
use crate::tensor::DynTensor;

/// The reference input ("absence of signal") that path and Shapley methods compare against.
#[derive(Clone, Debug, Default)]
pub enum Baseline {
    /// All zeros (Captum's default).
    #[default]
    Zeros,
    /// Every value equal to a constant.
    Constant(f32),
    /// A tensor: one per input sample (same shape as the inputs) or one sample shared by all.
    Tensor(DynTensor),
    /// A set of baselines `[k, ...sample]` to draw from (GradientSHAP); for single-baseline methods
    /// this is only accepted when `k == 1` or `k` equals the batch size.
    Distribution(DynTensor),
    /// One baseline per attributed input, in order (Captum's tuple of baselines).
    PerInput(Vec<Baseline>),
    /// Uniform noise in `[low, high)`, drawn with `seed`.
    Uniform {
        /// Lower bound.
        low: f32,
        /// Upper bound.
        high: f32,
        /// Seed for the draw.
        seed: u64,
    },
}

impl Baseline {
    /// The baseline of attributed input `index` (of `count`): this one, or its `index`-th part
    /// for [`Baseline::PerInput`].
    pub fn for_input(&self, index: usize, count: usize) -> Result<&Baseline> {
        match self {
            Baseline::PerInput(parts) if parts.len() != count => Err(Error::parameter(
                "baselines",
                format!("{} baselines", parts.len()),
                format!("give one baseline per attributed input ({count})"),
            )),
            Baseline::PerInput(parts) => Ok(&parts[index]),
            other => Ok(other),
        }
    }

    /// One baseline per input sample, the same shape as `inputs`.
    pub fn resolve(&self, inputs: &DynTensor) -> Result<DynTensor> {
        let samples: Vec<usize> = (0..inputs.batch()).collect();
        self.resolve_rows(inputs, &samples)
    }

    /// One baseline per row of `inputs`, where row `i` belongs to sample `samples[i]` (methods
    /// that expand a batch, such as NoiseTunnel, pass each row's sample): a per-sample tensor
    /// baseline gives row `i` its sample's baseline.
    pub fn resolve_rows(&self, inputs: &DynTensor, samples: &[usize]) -> Result<DynTensor> {
        let device = inputs.device();
        let [batch, features] = inputs.flat().dims();
        let baseline = match self {
            Baseline::Zeros => inputs.with_flat(Tensor::zeros([batch, features], &device)),
            // Not `Tensor::full`: under autodiff it is made on the host and uploaded.
            Baseline::Constant(c) => {
                inputs.with_flat(Tensor::<2>::zeros([batch, features], &device).add_scalar(*c))
            }
            Baseline::Tensor(t) | Baseline::Distribution(t) => {
                inputs.check_same_sample_shape(t, "baselines vs inputs (sample shape)")?;
                let flat = t.flat().clone().to_device(&device).detach();
                let sample_count = samples.iter().max().map_or(0, |m| m + 1);
                match t.batch() {
                    1 => inputs.with_flat(flat.expand([batch, features])),
                    b if b == sample_count && samples.len() == batch => {
                        let rows: Vec<i64> = samples.iter().map(|&s| s as i64).collect();
                        let rows =
                            Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &device);
                        inputs.with_flat(flat.select(0, rows))
                    }
                    _ => {
                        return Err(Error::ShapeMismatch {
                            what: "baselines vs inputs (batch: one baseline, or one per input)"
                                .into(),
                            expected: inputs.shape().to_vec(),
                            got: t.shape().to_vec(),
                        });
                    }
                }
            }
            Baseline::PerInput(parts) => match parts.as_slice() {
                [only] => only.resolve_rows(inputs, samples)?,
                _ => {
                    return Err(Error::parameter(
                        "baselines",
                        format!("{} baselines", parts.len()),
                        "pick the attributed input's baseline with Baseline::for_input",
                    ));
                }
            },
            Baseline::Uniform { low, high, seed } => {
                if low >= high || !low.is_finite() || !high.is_finite() {
                    return Err(Error::parameter(
                        "baselines",
                        format!("Uniform {{ low: {low}, high: {high} }}"),
                        "needs finite low < high",
                    ));
                }
                let mut rng = StdRng::seed_from_u64(*seed);
                let values: Vec<f32> = (0..batch * features)
                    .map(|_| rng.random_range(*low..*high))
                    .collect();
                inputs.with_flat(Tensor::from_data(
                    TensorData::new(values, [batch, features]),
                    &device,
                ))
            }
        };
        baseline.check_finite("baselines")?;
        Ok(baseline)
    }

    /// The baselines to draw from, `[k, ...sample]` (a single baseline is a distribution of one).
    pub fn distribution(&self, inputs: &DynTensor) -> Result<DynTensor> {
        match self {
            Baseline::Distribution(t) | Baseline::Tensor(t) => {
                inputs.check_same_sample_shape(t, "baselines vs inputs (sample shape)")?;
                if t.batch() == 0 {
                    return Err(Error::parameter(
                        "baselines",
                        "an empty distribution",
                        "needs at least one baseline",
                    ));
                }
                t.check_finite("baselines")?;
                Ok(t.with_flat(t.flat().clone().to_device(&inputs.device()).detach()))
            }
            other => Ok(other.resolve(&inputs.rows(0, 1))?),
        }
    }
}
