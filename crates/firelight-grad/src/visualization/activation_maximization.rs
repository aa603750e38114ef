//! Activation maximisation as Lucid's `render_vis` does it: the picture that most excites a
//! unit, a channel, a layer or a direction, from noise, by Adam on a parameterisation of the
//! picture (Fourier spectrum with decorrelated colour and a sigmoid) seen through random
//! transforms (pad, jitter, scale, rotation), so that what comes out is what the model responds
//! to and not an adversarial pattern of single pixels.

use firelight_core::{Device, DynTensor, Error, Model, Result};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::picture::{Parameterization, Picture};
use super::resample::{Outside, Resampler};
use super::{Adam, Ascent, Objective, Visualization};

/// Lucid's random transforms, applied each step before the model sees the picture: pad with
/// grey, a random crop (`jitter`), a random scale, a random rotation, a second random crop.
/// Composed into one bilinear resampling per step (see [`Resampler`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Transforms {
    /// Grey pixels added on every side (Lucid: 12).
    pub pad: usize,
    /// The largest shift of the first crop, in pixels (Lucid: 8).
    pub jitter: usize,
    /// Scales drawn from (Lucid: 0.90 to 1.10 by 0.02).
    pub scales: Vec<f32>,
    /// Rotations in degrees drawn from (Lucid: -10 to 10, with 0 six times).
    pub angles: Vec<f32>,
    /// The largest shift of the last crop (Lucid: 4).
    pub final_jitter: usize,
}

impl Transforms {
    /// Lucid's `standard_transforms`.
    pub fn lucid() -> Self {
        Self {
            pad: 12,
            jitter: 8,
            scales: (0..11).map(|i| 1.0 + (i as f32 - 5.0) / 50.0).collect(),
            angles: (-10..=10)
                .map(|a| a as f32)
                .chain(std::iter::repeat_n(0.0, 5))
                .collect(),
            final_jitter: 4,
        }
    }

    /// Only a random shift of up to `jitter` pixels (no pad, scale or rotation).
    pub fn jitter_only(jitter: usize) -> Self {
        Self {
            pad: 0,
            jitter,
            scales: vec![1.0],
            angles: vec![0.0],
            final_jitter: 0,
        }
    }

    /// The side of the view of an `n`-pixel picture at the picture's own scale: padded, less
    /// both crops (Lucid's output size before its random scale).
    pub fn view_side(&self, n: usize) -> usize {
        (n + 2 * self.pad)
            .saturating_sub(self.jitter + self.final_jitter)
            .max(1)
    }

    /// One draw: the view of an `n`-pixel picture as an `out`-pixel input. The window shows the
    /// padded picture less both crops, centred on the picture's centre moved by the crops'
    /// offsets, turned and scaled about it.
    fn draw(&self, n: usize, out: usize, rng: &mut StdRng) -> Resampler {
        let scale = self.scales.choose(rng).copied().unwrap_or(1.0);
        let angle = self.angles.choose(rng).copied().unwrap_or(0.0).to_radians();
        let mut offset = || {
            let first = rng.random_range(0..=self.jitter) as f32 - self.jitter as f32 / 2.0;
            let last =
                rng.random_range(0..=self.final_jitter) as f32 - self.final_jitter as f32 / 2.0;
            first + last / scale
        };
        let (oy, ox) = (offset(), offset());
        let ratio = self.view_side(n) as f32 / out as f32 / scale;
        let (sin, cos) = angle.sin_cos();
        let centre = n as f32 / 2.0;
        Resampler::new([n, n], [out, out], Outside::Fill(0.5), move |y, x| {
            let (qy, qx) = (
                (y - out as f32 / 2.0) * ratio,
                (x - out as f32 / 2.0) * ratio,
            );
            (
                centre + oy + cos * qy - sin * qx,
                centre + ox + sin * qy + cos * qx,
            )
        })
    }
}

/// Activation maximisation: `steps` Adam steps (`lr`) on a `size` x `size` picture, each seen
/// through a random draw of `transforms`, normalised by `mean` and `std` per channel before
/// the model sees it. Lucid's defaults: 512 steps, lr 0.05, 128 pixels, the Fourier
/// parameterisation with decorrelated colour and a sigmoid, `standard_transforms`.
pub struct ActivationMaximization<'m> {
    model: &'m dyn Model,
    layer: String,
    objective: Objective,
    steps: usize,
    lr: f32,
    size: usize,
    input_size: Option<usize>,
    channels: usize,
    parameterization: Parameterization,
    decorrelate: bool,
    transforms: Transforms,
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
            input_size: None,
            channels: 3,
            parameterization: Parameterization::Fft { decay_power: 1.0 },
            decorrelate: true,
            transforms: Transforms::lucid(),
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

    /// The side of the view the model is fed (default: [`Transforms::view_side`], the picture
    /// at its own scale); a model with a fixed input size needs its own, and sees the view
    /// resampled to it.
    pub fn input_size(mut self, side: usize) -> Self {
        self.input_size = Some(side);
        self
    }

    /// How the picture is parameterised (default: Lucid's Fourier spectrum).
    pub fn parameterization(mut self, parameterization: Parameterization) -> Self {
        self.parameterization = parameterization;
        self
    }

    /// Whether colours are decorrelated as Lucid does for RGB (default true; ignored for other
    /// channel counts).
    pub fn decorrelate(mut self, decorrelate: bool) -> Self {
        self.decorrelate = decorrelate;
        self
    }

    /// The random transforms of every step (default [`Transforms::lucid`]).
    pub fn transforms(mut self, transforms: Transforms) -> Self {
        self.transforms = transforms;
        self
    }

    /// Shorthand for [`Transforms::jitter_only`]: a random shift of up to `jitter` pixels and
    /// nothing else.
    pub fn jitter(self, jitter: usize) -> Self {
        self.transforms(Transforms::jitter_only(jitter))
    }

    /// The model's input normalisation, per channel (its channel count).
    pub fn normalization(mut self, mean: Vec<f32>, std: Vec<f32>) -> Self {
        self.channels = mean.len();
        self.mean = mean;
        self.std = std;
        self
    }

    /// The seed of the start and the transforms.
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

    fn check(&self) -> Result<()> {
        if self.steps == 0 || self.size == 0 || self.channels == 0 || self.input_size == Some(0) {
            return Err(Error::parameter(
                "steps",
                self.steps,
                "steps, size, input size and channels must be at least 1",
            ));
        }
        if self.std.len() != self.channels || self.std.contains(&0.0) {
            return Err(Error::parameter(
                "std",
                format!("{:?}", self.std),
                "one non-zero value per channel",
            ));
        }
        let t = &self.transforms;
        if t.scales.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || t.angles.iter().any(|a| !a.is_finite())
        {
            return Err(Error::parameter(
                "transforms",
                format!("scales {:?}, angles {:?}", t.scales, t.angles),
                "scales must be positive and angles finite",
            ));
        }
        if let Parameterization::Fft { decay_power } = self.parameterization
            && !decay_power.is_finite()
        {
            return Err(Error::parameter(
                "decay_power",
                decay_power,
                "a finite number",
            ));
        }
        Ok(())
    }

    /// Runs the optimisation.
    pub fn run(&self) -> Result<Visualization> {
        self.check()?;
        let mut ascent = Ascent::new(
            self.model,
            &self.layer,
            self.objective.clone(),
            (&self.mean, &self.std),
            &self.device,
        )?;
        let (c, n) = (self.channels, self.size);
        let out = self
            .input_size
            .unwrap_or_else(|| self.transforms.view_side(n));
        let picture = Picture::new(&self.parameterization, self.decorrelate && c == 3, c, n);
        let mut rng = StdRng::seed_from_u64(self.seed);
        let start = Normal::new(0.0f32, 0.01).expect("a valid normal");
        let mut p: Vec<f32> = (0..picture.parameters())
            .map(|_| start.sample(&mut rng))
            .collect();
        let mut adam = Adam::new(self.lr, p.len());
        let mut trace = Vec::with_capacity(self.steps);
        for step in 0..self.steps {
            let image = picture.image(&p);
            let view = self.transforms.draw(n, out, &mut rng);
            let (score, grad) = ascent.step(view.apply(&image, c), [1, c, out, out])?;
            trace.push(score);
            let at_picture = view.adjoint(&grad, c);
            let g = picture.adjoint(&image, at_picture);
            adam.ascend(&mut p, &g);
            if let Some(f) = &self.progress {
                f(step + 1, self.steps);
            }
        }
        let image = DynTensor::from_vec(picture.image(&p), vec![1, c, n, n], &self.device)?;
        Ok(Visualization {
            image,
            objective: trace,
        })
    }
}
