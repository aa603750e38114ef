//! Feature visualisation by activation maximisation (Olah et al. 2017, as Lucid optimises): the
//! picture that most excites a unit, a channel, a whole layer (DeepDream's objective) or a
//! direction in a layer's space (a concept's CAV), found by gradient ascent with Adam on the
//! picture, through a sigmoid that keeps it in [0, 1] and random jitter that keeps it from
//! exploiting single pixels.

use firelight_core::gradients::input_gradients;
use firelight_core::{
    Device, DynTensor, Embedding, Error, Inputs, Model, ReluPolicy, Result, Target,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

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
    /// The mean over positions of the activations' dot product with a vector of one value per
    /// channel (Lucid's `direction`; a CAV shows what its concept looks like to the model).
    Direction(Vec<f32>),
}

/// A picture found by [`ActivationMaximization::run`].
#[derive(Clone, Debug)]
pub struct Visualization {
    /// The picture, `[1, channels, size, size]`, values in [0, 1] (before the model's
    /// normalisation).
    pub image: DynTensor,
    /// The objective after every step.
    pub objective: Vec<f32>,
}

/// Activation maximisation: `steps` Adam steps (`lr`) on a `size` x `size` picture in sigmoid
/// space, each through a random jitter of up to `jitter` pixels, the picture normalised by
/// `mean` and `std` per channel before the model sees it. Lucid's defaults: 512 steps, lr 0.05,
/// 128 pixels; jitter 8.
pub struct ActivationMaximization<'m> {
    model: &'m dyn Model,
    layer: String,
    objective: Objective,
    steps: usize,
    lr: f32,
    size: usize,
    channels: usize,
    jitter: usize,
    mean: Vec<f32>,
    std: Vec<f32>,
    seed: u64,
    device: Device,
    progress: Option<Box<dyn Fn(usize, usize) + 'm>>,
}

impl<'m> ActivationMaximization<'m> {
    /// The picture that maximises `objective` at `layer` of `model` (RGB, no normalisation).
    pub fn new(model: &'m dyn Model, layer: impl Into<String>, objective: Objective) -> Self {
        Self {
            model,
            layer: layer.into(),
            objective,
            steps: 512,
            lr: 0.05,
            size: 128,
            channels: 3,
            jitter: 8,
            mean: vec![0.0; 3],
            std: vec![1.0; 3],
            seed: 0,
            device: Device::flex(),
            progress: None,
        }
    }

    /// Adam steps.
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Adam's learning rate.
    pub fn lr(mut self, lr: f32) -> Self {
        self.lr = lr;
        self
    }

    /// The picture's side.
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// The largest random shift per step, in pixels (0: none).
    pub fn jitter(mut self, jitter: usize) -> Self {
        self.jitter = jitter;
        self
    }

    /// The model's input normalisation, per channel (its channel count).
    pub fn normalization(mut self, mean: Vec<f32>, std: Vec<f32>) -> Self {
        self.channels = mean.len();
        self.mean = mean;
        self.std = std;
        self
    }

    /// The seed of the start and the jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The device the model runs on (flex by default).
    pub fn device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// Told `(done, total)` steps.
    pub fn progress(mut self, f: impl Fn(usize, usize) + 'm) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// The objective as a target of the model cut at the layer (its value flattened).
    fn target(&self, shape: &[usize]) -> Result<Target> {
        let (channels, positions) = match shape {
            [c, rest @ ..] if !rest.is_empty() => (*c, rest.iter().product::<usize>()),
            [c] => (*c, 1),
            _ => (1, 1),
        };
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
        let weights: Vec<f32> = match &self.objective {
            Objective::Channel(c) => {
                range("channel", *c, channels)?;
                (0..channels * positions)
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
                (0..channels * positions)
                    .map(|i| f32::from(u8::from(i == at)))
                    .collect()
            }
            Objective::Direction(v) => {
                if v.len() != channels {
                    return Err(Error::ShapeMismatch {
                        what: "direction (one value per channel of the layer)".into(),
                        expected: vec![channels],
                        got: vec![v.len()],
                    });
                }
                (0..channels * positions)
                    .map(|i| v[i / positions] / positions as f32)
                    .collect()
            }
            Objective::Layer => Vec::new(),
        };
        let squares = self.objective == Objective::Layer;
        Ok(Target::custom(move |outputs, _| {
            let [rows, features] = outputs.dims();
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

    /// Runs the optimisation.
    pub fn run(&self) -> Result<Visualization> {
        if self.steps == 0 || self.size == 0 || self.channels == 0 {
            return Err(Error::parameter(
                "steps",
                self.steps,
                "steps, size and channels must be at least 1",
            ));
        }
        if self.std.len() != self.channels || self.std.contains(&0.0) {
            return Err(Error::parameter(
                "std",
                format!("{:?}", self.std),
                "one non-zero value per channel",
            ));
        }
        let cut = Embedding::new(self.model, self.layer.clone())?;
        let (c, n) = (self.channels, self.size);
        let mut rng = StdRng::seed_from_u64(self.seed);
        let start = Normal::new(0.0f32, 0.01).expect("a valid normal");
        let mut p: Vec<f32> = (0..c * n * n).map(|_| start.sample(&mut rng)).collect();
        let (mut m, mut v) = (vec![0.0f32; p.len()], vec![0.0f32; p.len()]);
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
        let mut target = None;
        let mut trace = Vec::with_capacity(self.steps);
        for step in 0..self.steps {
            let j = self.jitter as i64;
            let (dy, dx) = if j > 0 {
                (rng.random_range(-j..=j), rng.random_range(-j..=j))
            } else {
                (0, 0)
            };
            // The picture, rolled by (dy, dx), normalised: what the model sees.
            let source = |ch: usize, y: usize, x: usize| {
                let sy = (y as i64 - dy).rem_euclid(n as i64) as usize;
                let sx = (x as i64 - dx).rem_euclid(n as i64) as usize;
                (ch * n + sy) * n + sx
            };
            let mut seen = vec![0.0f32; c * n * n];
            for ch in 0..c {
                for y in 0..n {
                    for x in 0..n {
                        let s = sigmoid(p[source(ch, y, x)]);
                        seen[(ch * n + y) * n + x] = (s - self.mean[ch]) / self.std[ch];
                    }
                }
            }
            let input = DynTensor::from_vec(seen, vec![1, c, n, n], &self.device)?;
            if target.is_none() {
                let value =
                    cut.layer_value(&Inputs::from(input.clone()), &mut Default::default())?;
                target = Some(self.target(value.sample_shape())?);
            }
            let target = target.as_ref().expect("set above");
            let inputs = Inputs::from(input.clone());
            let score = firelight_core::gradients::target_scores(&cut, &inputs, target, &[0])?;
            let value: Vec<f32> = score
                .into_data()
                .convert::<f32>()
                .try_into_vec()
                .unwrap_or_default();
            trace.push(value.first().copied().unwrap_or(f32::NAN));
            let grad = input_gradients(&cut, &inputs, target, &[0], ReluPolicy::Standard)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Model("no gradient for the picture".into()))?
                .to_vec()?;
            // Back through the normalisation, the roll and the sigmoid; then an Adam ascent step.
            let t = (step + 1) as i32;
            for ch in 0..c {
                for y in 0..n {
                    for x in 0..n {
                        let i = source(ch, y, x);
                        let s = sigmoid(p[i]);
                        let g = grad[(ch * n + y) * n + x] / self.std[ch] * s * (1.0 - s);
                        m[i] = b1 * m[i] + (1.0 - b1) * g;
                        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                        let (mh, vh) = (m[i] / (1.0 - b1.powi(t)), v[i] / (1.0 - b2.powi(t)));
                        p[i] += self.lr * mh / (vh.sqrt() + eps);
                    }
                }
            }
            if let Some(f) = &self.progress {
                f(step + 1, self.steps);
            }
        }
        let image = DynTensor::from_vec(
            p.iter().map(|z| sigmoid(*z)).collect(),
            vec![1, c, n, n],
            &self.device,
        )?;
        Ok(Visualization {
            image,
            objective: trace,
        })
    }
}
