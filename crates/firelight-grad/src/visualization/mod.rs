//! Feature visualisation (Olah et al. 2017, as Lucid and Lucent do it): pictures found by
//! gradient ascent on what a unit, a channel, a layer or a direction in a layer's space
//! responds to.
//!
//! - [`ActivationMaximization`]: a picture from noise, parameterised in Fourier space with
//!   decorrelated colour and a sigmoid, seen through random pad, jitter, scale and rotation;
//! - [`DeepDream`]: a photo pushed towards what a layer responds to, octave by octave.
//!
//! The shared parts live here: the objectives as targets of the model cut at the layer, the
//! picture's gradient in one pass, Adam, and the colour decorrelation; [`fourier`] holds the
//! spectrum parameterisation and [`resample`] the geometric transforms (linear maps with their
//! adjoints, so that the model's input gradient is carried back to the parameters exactly).

mod activation_maximization;
mod deep_dream;
pub mod fourier;
mod picture;
pub mod resample;

pub use activation_maximization::{ActivationMaximization, Transforms};
pub use deep_dream::DeepDream;
pub use picture::{Parameterization, Picture};

use std::sync::{Arc, Mutex};

use firelight_core::gradients::input_gradients;
use firelight_core::{
    Device, DynTensor, Embedding, Error, Inputs, Model, ReluPolicy, Result, Target,
};

/// What the picture should excite, at the visualiser's layer (`[channels, height, width]`
/// per sample, or a flat `[units]`).
#[derive(Clone, Debug, PartialEq)]
pub enum Objective {
    /// The mean of one channel over its positions (Lucid's `channel`).
    Channel(usize),
    /// One unit: a channel at a position (Lucid's `neuron`), or a flat layer's unit
    /// (`y = x = 0`).
    Neuron {
        /// Its channel.
        channel: usize,
        /// Its row.
        y: usize,
        /// Its column.
        x: usize,
    },
    /// The mean of the squared activations (DeepDream's objective, Lucid's `L2` of a layer).
    Layer,
    /// A direction in the layer's space: one value per channel, dotted with the activations at
    /// every position and averaged over them (Lucid's `direction`), or one value per feature of
    /// the flattened layer, dotted with the whole value (a CAV's score: what its concept looks
    /// like to the model).
    Direction(Vec<f32>),
}

/// A picture found by [`ActivationMaximization::run`] or [`DeepDream::run`].
#[derive(Clone, Debug)]
pub struct Visualization {
    /// The picture, `[1, channels, height, width]`, values in [0, 1] (before the model's
    /// normalisation).
    pub image: DynTensor,
    /// The objective after every step.
    pub objective: Vec<f32>,
}

/// The objective as a target of the model cut at the layer, whose value per sample has `shape`.
pub(crate) fn objective_target(objective: &Objective, shape: &[usize]) -> Result<Target> {
    let (channels, positions) = match shape {
        [c, rest @ ..] if !rest.is_empty() => (*c, rest.iter().product::<usize>()),
        [c] => (*c, 1),
        _ => (1, 1),
    };
    let features = channels * positions;
    let width = shape.get(2).copied().unwrap_or(1);
    let height = shape.get(1).copied().unwrap_or(1);
    let range = |what: &str, got: usize, limit: usize| {
        if got >= limit {
            Err(Error::parameter(
                "objective",
                format!("{what} {got}"),
                format!("layer has {limit} {what}s (shape {shape:?})"),
            ))
        } else {
            Ok(())
        }
    };
    let weights: Vec<f32> = match objective {
        Objective::Channel(c) => {
            range("channel", *c, channels)?;
            (0..features)
                .map(|i| {
                    if i / positions == *c {
                        1.0 / positions as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        }
        Objective::Neuron { channel, y, x } => {
            range("channel", *channel, channels)?;
            range("row", *y, height)?;
            range("column", *x, width)?;
            let at = channel * positions + y * width + x;
            (0..features)
                .map(|i| f32::from(u8::from(i == at)))
                .collect()
        }
        Objective::Direction(v) if v.len() == features => v.clone(),
        Objective::Direction(v) if v.len() == channels => (0..features)
            .map(|i| v[i / positions] / positions as f32)
            .collect(),
        Objective::Direction(v) => {
            return Err(Error::ShapeMismatch {
                what: format!(
                    "direction (one value per channel of the layer, or one per feature of the \
                     flattened layer: {channels} or {features})"
                ),
                expected: vec![channels],
                got: vec![v.len()],
            });
        }
        Objective::Layer => Vec::new(),
    };
    let squares = *objective == Objective::Layer;
    Ok(Target::custom(move |outputs, _| {
        let [rows, features] = outputs.dims();
        if !squares && features != weights.len() {
            return Err(Error::ShapeMismatch {
                what: "the layer's values for the objective".into(),
                expected: vec![weights.len()],
                got: vec![features],
            });
        }
        if squares {
            return Ok((outputs.clone() * outputs).mean_dim(1).reshape([rows]));
        }
        let w = burn::tensor::Tensor::<2>::from_data(
            burn::tensor::TensorData::new(weights.clone(), [1, features]),
            &outputs.device(),
        );
        Ok((outputs * w).sum_dim(1).reshape([rows]))
    }))
}

/// The model cut at a layer, with the objective's target made on first use and again whenever
/// the input's shape changes (it needs the layer's shape): the picture's objective and gradient
/// come from one forward and backward. Pictures are in [0, 1]; the model's normalisation (`mean`
/// and `std` per channel, checked by the caller) is applied here, and its gradient carried back.
pub(crate) struct Ascent<'m> {
    cut: Embedding<&'m dyn Model>,
    objective: Objective,
    mean: Vec<f32>,
    std: Vec<f32>,
    /// The objective's target and the input shape it was made for.
    target: Option<(Target, [usize; 4])>,
    score: Arc<Mutex<f32>>,
    device: Device,
}

impl<'m> Ascent<'m> {
    pub(crate) fn new(
        model: &'m dyn Model,
        layer: &str,
        objective: Objective,
        (mean, std): (&[f32], &[f32]),
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            cut: Embedding::new(model, layer.to_string())?,
            objective,
            mean: mean.to_vec(),
            std: std.to_vec(),
            target: None,
            score: Arc::new(Mutex::new(f32::NAN)),
            device: device.clone(),
        })
    }

    /// The objective at `picture` (`[1, channels, height, width]`, values in [0, 1], before the
    /// model's normalisation) and its gradient there.
    pub(crate) fn step(
        &mut self,
        mut picture: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<(f32, Vec<f32>)> {
        let pixels = shape[2] * shape[3];
        for (ch, chunk) in picture.chunks_mut(pixels).enumerate() {
            chunk
                .iter_mut()
                .for_each(|v| *v = (*v - self.mean[ch]) / self.std[ch]);
        }
        let input = DynTensor::from_vec(picture, shape.to_vec(), &self.device)?;
        let inputs = Inputs::from(input);
        if self
            .target
            .as_ref()
            .is_none_or(|(_, made_for)| *made_for != shape)
        {
            let value = self.cut.layer_value(&inputs, &mut Default::default())?;
            let inner = objective_target(&self.objective, value.sample_shape())?;
            let score = Arc::clone(&self.score);
            // Records the score on its way to the backward pass: no second forward for it.
            let target = Target::custom(move |outputs, samples| {
                let scores = inner.scores(outputs, samples)?;
                let value = scores
                    .clone()
                    .detach()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .ok()
                    .and_then(|v| v.first().copied())
                    .unwrap_or(f32::NAN);
                if let Ok(mut slot) = score.lock() {
                    *slot = value;
                }
                Ok(scores)
            });
            self.target = Some((target, shape));
        }
        let (target, _) = self.target.as_ref().expect("set above");
        let mut grad = input_gradients(&self.cut, &inputs, target, &[0], ReluPolicy::Standard)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Model("no gradient for the picture".into()))?
            .to_vec()?;
        // Back through the normalisation.
        for (ch, chunk) in grad.chunks_mut(pixels).enumerate() {
            chunk.iter_mut().for_each(|g| *g /= self.std[ch]);
        }
        let score = self.score.lock().map(|s| *s).unwrap_or(f32::NAN);
        Ok((score, grad))
    }
}

/// Adam (Kingma and Ba), ascending: Lucid's and Lucent's optimiser.
pub(crate) struct Adam {
    lr: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    pub(crate) fn new(lr: f32, len: usize) -> Self {
        Self {
            lr,
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: 0,
        }
    }

    /// One step up the gradient `g` of the parameters `p`.
    pub(crate) fn ascend(&mut self, p: &mut [f32], g: &[f32]) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        self.t += 1;
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for (((p, g), m), v) in p.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p += self.lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
    }
}

/// Lucid's colour correlation of ImageNet photos (the square root of its covariance, from an
/// SVD), scaled so that its largest column has norm 1: a parameter vector of unit norm maps to
/// colours of natural spread.
const COLOR_CORRELATION_SVD_SQRT: [[f32; 3]; 3] =
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];

fn color_matrix() -> [[f32; 3]; 3] {
    let m = COLOR_CORRELATION_SVD_SQRT;
    let max_norm = (0..3)
        .map(|col| {
            (0..3)
                .map(|row| m[row][col] * m[row][col])
                .sum::<f32>()
                .sqrt()
        })
        .fold(0.0f32, f32::max);
    m.map(|row| row.map(|v| v / max_norm))
}

/// Lucid's `_linear_decorrelate_color` on a `[3, pixels]` picture (in place): each pixel's
/// colour `t` becomes `M t`.
pub(crate) fn decorrelate(t: &mut [f32], pixels: usize) {
    let m = color_matrix();
    for i in 0..pixels {
        let c = [t[i], t[pixels + i], t[2 * pixels + i]];
        for (row, m) in m.iter().enumerate() {
            t[row * pixels + i] = m[0] * c[0] + m[1] * c[1] + m[2] * c[2];
        }
    }
}

/// The adjoint of [`decorrelate`]: `g` becomes `M^T g` per pixel.
pub(crate) fn decorrelate_adjoint(g: &mut [f32], pixels: usize) {
    let m = color_matrix();
    for i in 0..pixels {
        let c = [g[i], g[pixels + i], g[2 * pixels + i]];
        for col in 0..3 {
            g[col * pixels + i] = m[0][col] * c[0] + m[1][col] * c[1] + m[2][col] * c[2];
        }
    }
}

pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}
