//! DeepDream (Mordvintsev et al. 2015, as the original notebook does it): a photo pushed up the
//! gradient of what a layer responds to, from coarse to fine. The photo is shrunk `octaves - 1`
//! times by `octave_scale`; from the smallest, each octave takes gradient steps (normalised by
//! their mean magnitude, under a random roll) on the photo at that size plus the detail found so
//! far, and hands the detail up to the next size.

use firelight_core::{Device, DynTensor, Error, Model, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::resample::{Outside, Resampler};
use super::{Ascent, Objective, Visualization};

/// DeepDream on a photo: the original's defaults, 4 octaves of scale 1.4, 10 steps each of 1.5
/// (on 0..255 pixels, so 1.5 / 255 here), rolls of up to 32 pixels, the whole layer's mean
/// square as the objective.
pub struct DeepDream<'m> {
    model: &'m dyn Model,
    layer: String,
    objective: Objective,
    octaves: usize,
    octave_scale: f32,
    steps: usize,
    step_size: f32,
    jitter: usize,
    input_size: Option<usize>,
    mean: Vec<f32>,
    std: Vec<f32>,
    seed: u64,
    device: Device,
    progress: Option<Box<dyn Fn(usize, usize) + 'm>>,
}

impl<'m> DeepDream<'m> {
    /// DeepDream at `layer` of `model`, maximising the layer's mean square.
    pub fn new(model: &'m dyn Model, layer: impl Into<String>) -> Self {
        Self {
            model,
            layer: layer.into(),
            objective: Objective::Layer,
            octaves: 4,
            octave_scale: 1.4,
            steps: 10,
            step_size: 1.5 / 255.0,
            jitter: 32,
            input_size: None,
            mean: vec![0.0; 3],
            std: vec![1.0; 3],
            seed: 0,
            device: Device::flex(),
            progress: None,
        }
    }

    /// Another objective (a channel, a direction) instead of the layer's mean square.
    pub fn objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self
    }

    /// How many sizes the photo is dreamt at.
    pub fn octaves(mut self, octaves: usize) -> Self {
        self.octaves = octaves;
        self
    }

    /// The ratio of one octave's side to the next smaller one's.
    pub fn octave_scale(mut self, scale: f32) -> Self {
        self.octave_scale = scale;
        self
    }

    /// Gradient steps per octave.
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// The size of a step, on pixel values in [0, 1], after the gradient is divided by its mean
    /// magnitude.
    pub fn step_size(mut self, step_size: f32) -> Self {
        self.step_size = step_size;
        self
    }

    /// The largest random roll per step, in pixels of the octave.
    pub fn jitter(mut self, jitter: usize) -> Self {
        self.jitter = jitter;
        self
    }

    /// The side the model must be fed (a model with a fixed input size): every octave is
    /// resampled to it, the gradient carried back.
    pub fn input_size(mut self, side: usize) -> Self {
        self.input_size = Some(side);
        self
    }

    /// The model's input normalisation, per channel.
    pub fn normalization(mut self, mean: Vec<f32>, std: Vec<f32>) -> Self {
        self.mean = mean;
        self.std = std;
        self
    }

    /// The seed of the rolls.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The device the model runs on (flex by default).
    pub fn device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// Told `(done, total)` steps over all octaves.
    pub fn progress(mut self, f: impl Fn(usize, usize) + 'm) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Dreams on `photo`, `[1, channels, height, width]` with values in [0, 1].
    pub fn run(&self, photo: &DynTensor) -> Result<Visualization> {
        let &[1, c, h, w] = photo.shape() else {
            return Err(Error::ShapeMismatch {
                what: "photo for DeepDream [1, channels, height, width]".into(),
                expected: vec![1, self.mean.len(), 224, 224],
                got: photo.shape().to_vec(),
            });
        };
        if c != self.mean.len() || self.std.len() != c || self.std.contains(&0.0) {
            return Err(Error::parameter(
                "std",
                format!("{:?} for {c} channels", self.std),
                "one non-zero mean and std per channel of the photo",
            ));
        }
        if self.octaves == 0
            || self.steps == 0
            || !self.octave_scale.is_finite()
            || self.octave_scale < 1.0
        {
            return Err(Error::parameter(
                "octaves",
                format!(
                    "{} octaves of scale {}, {} steps",
                    self.octaves, self.octave_scale, self.steps
                ),
                "at least one octave and one step, and a scale of at least 1",
            ));
        }
        let base = photo.to_vec()?;
        let bad: Vec<usize> = (0..base.len()).filter(|&i| !base[i].is_finite()).collect();
        if let Some(&first_index) = bad.first() {
            return Err(Error::NonFinite {
                what: "DeepDream's photo".into(),
                count: bad.len(),
                first_index,
            });
        }
        // The octaves' sizes, largest first, and the photo at each.
        let sizes: Vec<[usize; 2]> = (0..self.octaves)
            .map(|i| {
                let f = self.octave_scale.powi(i as i32);
                [
                    ((h as f32 / f).round() as usize).max(1),
                    ((w as f32 / f).round() as usize).max(1),
                ]
            })
            .collect();
        let mut ascent = Ascent::new(
            self.model,
            &self.layer,
            self.objective.clone(),
            (&self.mean, &self.std),
            &self.device,
        )?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let total = self.octaves * self.steps;
        let mut trace = Vec::with_capacity(total);
        let mut detail: Option<(Vec<f32>, [usize; 2])> = None;
        let mut dreamt = base.clone();
        for (octave, &size) in sizes.iter().enumerate().rev() {
            let octave_base = if size == [h, w] {
                base.clone()
            } else {
                Resampler::resize([h, w], size).apply(&base, c)
            };
            let mut src = octave_base.clone();
            if let Some((d, from)) = &detail {
                let up = Resampler::resize(*from, size).apply(d, c);
                src.iter_mut().zip(&up).for_each(|(s, d)| *s += d);
            }
            let out = self.input_size.map_or(size, |side| [side, side]);
            for step in 0..self.steps {
                let j = self.jitter as i64;
                let (dy, dx) = if j > 0 {
                    (
                        rng.random_range(-j..=j) as f32,
                        rng.random_range(-j..=j) as f32,
                    )
                } else {
                    (0.0, 0.0)
                };
                let (ry, rx) = (
                    size[0] as f32 / out[0] as f32,
                    size[1] as f32 / out[1] as f32,
                );
                let view =
                    Resampler::new(size, out, Outside::Wrap, |y, x| (y * ry - dy, x * rx - dx));
                let (score, grad) = ascent.step(view.apply(&src, c), [1, c, out[0], out[1]])?;
                trace.push(score);
                let g = view.adjoint(&grad, c);
                let mean_abs = g.iter().map(|v| v.abs()).sum::<f32>() / g.len() as f32;
                if mean_abs > 0.0 && mean_abs.is_finite() {
                    let k = self.step_size / mean_abs;
                    for (s, g) in src.iter_mut().zip(&g) {
                        *s = (*s + k * g).clamp(0.0, 1.0);
                    }
                }
                if let Some(f) = &self.progress {
                    f((sizes.len() - 1 - octave) * self.steps + step + 1, total);
                }
            }
            detail = Some((
                src.iter().zip(&octave_base).map(|(s, b)| s - b).collect(),
                size,
            ));
            dreamt = src;
        }
        let image = DynTensor::from_vec(dreamt, vec![1, c, h, w], &self.device)?;
        Ok(Visualization {
            image,
            objective: trace,
        })
    }
}
