//! RISE's causal metrics (Petsiuk et al. 2018): deletion removes the most salient positions
//! first, `step` at a time, and insertion adds them to a blurred copy, the target's score read
//! after every step; the area under that curve (`auc`) summarises it. A faithful map makes the
//! deletion curve fall fast (low AUC) and the insertion curve rise fast (high AUC).

use firelight_core::{DynTensor, Error, Model, Result, Target};

use crate::base::{check_chunk, per_position, scores};

/// Which way the curve goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CausalMode {
    /// From the input to the substrate, most salient positions first.
    Deletion,
    /// From the substrate to the input, most salient positions first.
    Insertion,
}

/// What replaces the input's values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Substrate {
    /// A constant (RISE's deletion: zeros).
    Constant(f32),
    /// RISE's blur for insertion: its `gkern(klen, nsig)` (a unit impulse through SciPy's
    /// `gaussian_filter`, reflecting at the edges) convolved over each channel with zero padding.
    Blur {
        /// The kernel's side (RISE: 11).
        kernel: usize,
        /// The Gaussian's sigma (RISE: 5).
        sigma: f32,
    },
}

/// One sample's curve.
#[derive(Clone, Debug, PartialEq)]
pub struct CausalCurve {
    /// The target's score before the first step and after each, `ceil(positions / step) + 1`
    /// values.
    pub scores: Vec<f32>,
    /// RISE's area under the curve: the trapezoid rule over steps spaced evenly in `[0, 1]`.
    pub auc: f32,
}

/// RISE's `CausalMetric`.
///
/// ```
/// use firelight_core::{Device, DynTensor, LayerInfo, Model, Inputs, Result, Taps, Target, Tensor};
/// use firelight_metrics::CausalMetric;
///
/// /// out = the sum of the input.
/// struct Sum;
/// impl Model for Sum {
///     fn forward(&self, inputs: &Inputs, _: &mut Taps<'_>) -> Result<Tensor<2>> {
///         Ok(inputs.single_float()?.into_flat().sum_dim(1))
///     }
///     fn layers(&self) -> Vec<LayerInfo> { Vec::new() }
/// }
/// let device = Device::flex();
/// let x = DynTensor::from_vec(vec![1.0, 1.0, 1.0, 1.0], vec![1, 4], &device)?;
/// let map = DynTensor::from_vec(vec![0.4, 0.3, 0.2, 0.1], vec![1, 4], &device)?;
/// let curve = CausalMetric::deletion(&Sum).step(1).curves(&x, &map, &Target::class(0))?;
/// assert_eq!(curve[0].scores, vec![4.0, 3.0, 2.0, 1.0, 0.0]);
/// assert_eq!(curve[0].auc, 2.0);
/// # Ok::<(), firelight_core::Error>(())
/// ```
pub struct CausalMetric<'m> {
    model: &'m dyn Model,
    mode: CausalMode,
    step: usize,
    substrate: Substrate,
    max_examples_per_batch: Option<usize>,
}

impl<'m> CausalMetric<'m> {
    /// Deletion as RISE runs it: 224 positions a step, zeros as the substrate.
    pub fn deletion(model: &'m dyn Model) -> Self {
        Self {
            model,
            mode: CausalMode::Deletion,
            step: 224,
            substrate: Substrate::Constant(0.0),
            max_examples_per_batch: Some(64),
        }
    }

    /// Insertion as RISE runs it: 224 positions a step into `gkern(11, 5)`'s blur.
    pub fn insertion(model: &'m dyn Model) -> Self {
        Self {
            mode: CausalMode::Insertion,
            substrate: Substrate::Blur {
                kernel: 11,
                sigma: 5.0,
            },
            ..Self::deletion(model)
        }
    }

    /// Positions changed per step.
    pub fn step(mut self, step: usize) -> Self {
        self.step = step;
        self
    }

    /// What replaces the input.
    pub fn substrate(mut self, substrate: Substrate) -> Self {
        self.substrate = substrate;
        self
    }

    /// At most this many steps' copies per forward pass (64 by default); the curve does not
    /// depend on it.
    pub fn max_examples_per_batch(mut self, n: usize) -> Self {
        self.max_examples_per_batch = Some(n);
        self
    }

    /// The curve of each sample of `inputs` (`[batch, channels, ...positions]` or `[batch,
    /// features]`) under `saliency` (over its positions; an input-shaped map is summed over the
    /// channels), the target's score read at every step. Ties in the map go in position order.
    pub fn curves(
        &self,
        inputs: &DynTensor,
        saliency: &DynTensor,
        target: &Target,
    ) -> Result<Vec<CausalCurve>> {
        if self.step == 0 {
            return Err(Error::parameter("step", 0, "must be at least 1"));
        }
        check_chunk(self.max_examples_per_batch)?;
        let batch = inputs.batch();
        target.check_batch(batch)?;
        let (positions, map) = per_position(inputs, saliency)?;
        let features = inputs.features();
        let channels = features / positions.max(1);
        let x = inputs.to_vec()?;
        let substrate = self.substrate_values(inputs, &x)?;
        let steps = positions.div_ceil(self.step);
        let mut curves = Vec::with_capacity(batch);
        for b in 0..batch {
            let row = &map[b * positions..(b + 1) * positions];
            let mut order: Vec<usize> = (0..positions).collect();
            // Most salient first; a stable sort keeps ties in position order.
            order.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
            let (from, to) = match self.mode {
                CausalMode::Deletion => (&x, &substrate),
                CausalMode::Insertion => (&substrate, &x),
            };
            let mut current: Vec<f32> = from[b * features..(b + 1) * features].to_vec();
            let mut copies = Vec::with_capacity((steps + 1) * features);
            copies.extend_from_slice(&current);
            for s in 0..steps {
                for &p in &order[s * self.step..((s + 1) * self.step).min(positions)] {
                    for c in 0..channels {
                        let e = c * positions + p;
                        current[e] = to[b * features + e];
                    }
                }
                copies.extend_from_slice(&current);
            }
            let mut shape = inputs.shape().to_vec();
            shape[0] = steps + 1;
            let rows = DynTensor::from_vec(copies, shape, &inputs.device())?;
            let curve = scores(
                self.model,
                &rows,
                target,
                &vec![b; steps + 1],
                self.max_examples_per_batch,
            )?;
            curves.push(CausalCurve {
                auc: auc(&curve),
                scores: curve,
            });
        }
        Ok(curves)
    }

    fn substrate_values(&self, inputs: &DynTensor, x: &[f32]) -> Result<Vec<f32>> {
        match self.substrate {
            Substrate::Constant(v) => Ok(vec![v; x.len()]),
            Substrate::Blur { kernel, sigma } => {
                let [batch, channels, height, width] = inputs.shape() else {
                    return Err(Error::parameter(
                        "substrate",
                        "blur",
                        format!(
                            "blurs images [batch, channels, height, width], not {:?}",
                            inputs.shape()
                        ),
                    ));
                };
                if kernel == 0 || sigma.is_nan() || sigma <= 0.0 {
                    return Err(Error::parameter(
                        "substrate",
                        format!("blur {kernel} / {sigma}"),
                        "needs a kernel of at least 1 and a sigma above 0",
                    ));
                }
                let k = rise_kernel(kernel, f64::from(sigma));
                Ok(blur(x, [*batch, *channels, *height, *width], &k, kernel))
            }
        }
    }
}

/// RISE's `auc`: `(sum - first / 2 - last / 2) / (len - 1)`.
pub fn auc(scores: &[f32]) -> f32 {
    match scores {
        [] => 0.0,
        [only] => *only,
        _ => {
            let sum: f64 = scores.iter().map(|&v| f64::from(v)).sum();
            let ends = f64::from(scores[0] + scores[scores.len() - 1]) / 2.0;
            ((sum - ends) / (scores.len() - 1) as f64) as f32
        }
    }
}

/// SciPy's `gaussian_filter1d` weights (truncate 4), `radius = int(4 sigma + 0.5)`.
fn gaussian_weights(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let w: Vec<f64> = (-radius..=radius)
        .map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp())
        .collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|v| v / total).collect()
}

/// SciPy's `reflect` mode (`d c b a | a b c d | d c b a`) for index `i` of `n`.
fn reflect(mut i: i64, n: i64) -> usize {
    let period = 2 * n;
    i = i.rem_euclid(period);
    (if i < n { i } else { period - 1 - i }) as usize
}

/// RISE's `gkern(klen, nsig)`: a unit impulse at the centre of a `klen` x `klen` grid through
/// `gaussian_filter(., nsig)`; separable, so it is the outer product of one filtered impulse.
fn rise_kernel(klen: usize, sigma: f64) -> Vec<f64> {
    let w = gaussian_weights(sigma);
    let radius = (w.len() / 2) as i64;
    let n = klen as i64;
    let centre = n / 2;
    let line: Vec<f64> = (0..n)
        .map(|i| {
            (-radius..=radius)
                .filter(|d| reflect(i + d, n) == centre as usize)
                .map(|d| w[(d + radius) as usize])
                .sum()
        })
        .collect();
    line.iter()
        .flat_map(|a| line.iter().map(move |b| a * b))
        .collect()
}

/// Each channel of `x` correlated with `kernel` (`side` x `side`), zero padding `side / 2`: RISE's
/// `conv2d(x, kern, padding=klen // 2)` with the kernel on the diagonal of the channels.
fn blur(
    x: &[f32],
    [batch, channels, height, width]: [usize; 4],
    kernel: &[f64],
    side: usize,
) -> Vec<f32> {
    let pad = (side / 2) as i64;
    let mut out = vec![0.0f32; x.len()];
    for plane in 0..batch * channels {
        let base = plane * height * width;
        for y in 0..height as i64 {
            for xx in 0..width as i64 {
                let mut acc = 0.0f64;
                for ky in 0..side as i64 {
                    let sy = y + ky - pad;
                    if sy < 0 || sy >= height as i64 {
                        continue;
                    }
                    for kx in 0..side as i64 {
                        let sx = xx + kx - pad;
                        if sx < 0 || sx >= width as i64 {
                            continue;
                        }
                        acc += kernel[(ky as usize) * side + kx as usize]
                            * f64::from(x[base + sy as usize * width + sx as usize]);
                    }
                }
                out[base + y as usize * width + xx as usize] = acc as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_kernel_sums_to_one_and_peaks_at_its_centre() {
        let k = rise_kernel(11, 5.0);
        let total: f64 = k.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let centre = k[5 * 11 + 5];
        assert!(k.iter().all(|&v| v <= centre));
    }

    #[test]
    fn reflection_mirrors_beyond_both_ends() {
        let n = 4;
        let got: Vec<usize> = (-5..9).map(|i| reflect(i, n)).collect();
        assert_eq!(got, [3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
    }
}
