//! The picture's parameterisation, as Lucid's `param.image`: pixels or a Fourier spectrum
//! ([`Fourier`]), Lucid's colour decorrelation for RGB, and a sigmoid that keeps values in
//! [0, 1]; with the adjoint that carries a gradient at the picture back to the parameters.

use super::fourier::Fourier;
use super::{decorrelate, decorrelate_adjoint, sigmoid};

/// How the picture is parameterised.
#[derive(Clone, Debug, PartialEq)]
pub enum Parameterization {
    /// One parameter per pixel and channel (Lucid's `naive`): fast to converge, grainy.
    Pixel,
    /// Lucid's `fft_image`: a half spectrum per channel, scaled by
    /// `1 / frequency^decay_power` (Lucid: 1).
    Fft {
        /// How fast the spectrum's scale falls with frequency.
        decay_power: f32,
    },
}

/// Parameters to picture, as Lucid's `image(..., fft, decorrelate)`: spectrum or pixels, then
/// decorrelated colour (RGB), then a sigmoid into [0, 1].
#[derive(Clone, Debug)]
pub struct Picture {
    fourier: Option<Fourier>,
    decorrelate: bool,
    channels: usize,
    side: usize,
}

/// Lucid divides the Fourier picture by 4 ("magic") before its colour transform.
const FFT_MAGIC: f32 = 4.0;

impl Picture {
    /// The parameterisation of a `channels` x `side` x `side` picture; `decorrelate` applies
    /// Lucid's colour transform (for 3 channels only).
    pub fn new(param: &Parameterization, decorrelate: bool, channels: usize, side: usize) -> Self {
        let decorrelate = decorrelate && channels == 3;
        let fourier = match param {
            Parameterization::Pixel => None,
            Parameterization::Fft { decay_power } => Some(Fourier::new(side, side, *decay_power)),
        };
        Self {
            fourier,
            decorrelate,
            channels,
            side,
        }
    }

    /// How many parameters: per channel, a pixel each or the spectrum's real and imaginary
    /// parts ([`Fourier::coefficients`]), channels one after another.
    pub fn parameters(&self) -> usize {
        self.channels
            * self
                .fourier
                .as_ref()
                .map_or(self.side * self.side, Fourier::coefficients)
    }

    /// The picture in [0, 1], `[channels, side, side]`.
    pub fn image(&self, p: &[f32]) -> Vec<f32> {
        let pixels = self.side * self.side;
        let mut t = match &self.fourier {
            None => p.to_vec(),
            Some(f) => p
                .chunks(f.coefficients())
                .flat_map(|spectrum| f.image(spectrum).into_iter().map(|v| v / FFT_MAGIC))
                .collect(),
        };
        if self.decorrelate {
            decorrelate(&mut t, pixels);
        }
        t.iter_mut().for_each(|v| *v = sigmoid(*v));
        t
    }

    /// The gradient of the parameters given the picture's gradient `g` (`image`: the picture of
    /// the parameters).
    pub fn adjoint(&self, image: &[f32], mut g: Vec<f32>) -> Vec<f32> {
        let pixels = self.side * self.side;
        for (g, s) in g.iter_mut().zip(image) {
            *g *= s * (1.0 - s);
        }
        if self.decorrelate {
            decorrelate_adjoint(&mut g, pixels);
        }
        match &self.fourier {
            None => g,
            Some(f) => g
                .chunks(pixels)
                .flat_map(|channel| {
                    let scaled: Vec<f32> = channel.iter().map(|v| v / FFT_MAGIC).collect();
                    f.image_adjoint(&scaled)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The adjoint is the derivative: finite differences of a linear functional of the picture.
    #[test]
    fn the_adjoint_is_the_gradient_of_the_picture() {
        for param in [
            Parameterization::Pixel,
            Parameterization::Fft { decay_power: 1.0 },
        ] {
            let picture = Picture::new(&param, true, 3, 6);
            let p: Vec<f32> = (0..picture.parameters())
                .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.01)
                .collect();
            let weights: Vec<f32> = (0..3 * 36)
                .map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.1)
                .collect();
            let score = |p: &[f32]| -> f64 {
                picture
                    .image(p)
                    .iter()
                    .zip(&weights)
                    .map(|(a, b)| f64::from(a * b))
                    .sum()
            };
            let grad = picture.adjoint(&picture.image(&p), weights.clone());
            for i in [0, 5, 40, picture.parameters() - 1] {
                let mut up = p.clone();
                let mut down = p.clone();
                up[i] += 1e-2;
                down[i] -= 1e-2;
                let numeric = (score(&up) - score(&down)) / 2e-2;
                assert!(
                    (numeric - f64::from(grad[i])).abs() < 1e-3 * numeric.abs().max(1e-2),
                    "{param:?} parameter {i}: {numeric} vs {}",
                    grad[i]
                );
            }
        }
    }
}
