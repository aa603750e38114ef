//! Lucid's Fourier parameterisation of a picture (`fft_image`): each channel is the inverse real
//! 2-D FFT of a half spectrum whose coefficients are scaled by `1 / frequency^decay_power`, so that
//! gradient steps move low frequencies as much as high ones and pictures come out smooth rather
//! than grainy.
//!
//! The transform is written as separable sums with cosine and sine tables (no FFT library): its
//! cost is a few million multiply-adds per 128-pixel channel, small next to the model's forward
//! and backward passes, and its adjoint (what carries the picture's gradient back to the
//! spectrum) is the same sums transposed.

/// NumPy's `irfft2(re + i im, s=(h, w))`: `re` and `im` are `[h, w / 2 + 1]` (row-major), the
/// picture `[h, w]`. As NumPy does, the imaginary parts of the zero-frequency column (and of the
/// Nyquist column when `w` is even) are ignored.
pub fn irfft2(re: &[f32], im: &[f32], h: usize, w: usize) -> Vec<f32> {
    Fourier::new(h, w, 0.0).inverse(re, im)
}

/// The spectrum parameterisation of an `h` x `w` channel, with its tables.
#[derive(Clone, Debug)]
pub struct Fourier {
    h: usize,
    w: usize,
    /// Columns of the half spectrum: `w / 2 + 1`.
    k: usize,
    /// `cos(2 pi m / h)` and `sin(2 pi m / h)` for `m` in `0..h`.
    cos_h: Vec<f32>,
    sin_h: Vec<f32>,
    /// `[k, w]`: column weight (1 for the zero and Nyquist columns, else 2) times
    /// `cos(2 pi kx x / w)`, and the same for the sine.
    cos_w: Vec<f32>,
    sin_w: Vec<f32>,
    /// `[h, k]`: Lucid's `1 / max(f, 1 / max(h, w))^decay_power * sqrt(h w)`.
    scale: Vec<f32>,
}

impl Fourier {
    /// The tables for an `h` x `w` channel, spectrum scaled with `decay_power` (Lucid: 1).
    pub fn new(h: usize, w: usize, decay_power: f32) -> Self {
        let k = w / 2 + 1;
        let turn = |m: usize, n: usize| 2.0 * std::f64::consts::PI * m as f64 / n as f64;
        let cos_h = (0..h).map(|m| turn(m, h).cos() as f32).collect();
        let sin_h = (0..h).map(|m| turn(m, h).sin() as f32).collect();
        let mut cos_w = vec![0.0; k * w];
        let mut sin_w = vec![0.0; k * w];
        for kx in 0..k {
            let weight = if kx == 0 || (w.is_multiple_of(2) && kx == w / 2) {
                1.0
            } else {
                2.0
            };
            for x in 0..w {
                let a = turn((kx * x) % w, w);
                cos_w[kx * w + x] = (weight * a.cos()) as f32;
                sin_w[kx * w + x] = (weight * a.sin()) as f32;
            }
        }
        // NumPy's fftfreq: k / n for the first half, (k - n) / n after.
        let freq = |m: usize, n: usize| {
            let m = if m <= (n - 1) / 2 {
                m as f64
            } else {
                m as f64 - n as f64
            };
            m / n as f64
        };
        let floor = 1.0 / h.max(w) as f64;
        let root = ((h * w) as f64).sqrt();
        let scale = (0..h * k)
            .map(|i| {
                let (fy, fx) = (freq(i / k, h), (i % k) as f64 / w as f64);
                let f = (fy * fy + fx * fx).sqrt().max(floor);
                (root / f.powf(f64::from(decay_power))) as f32
            })
            .collect();
        Self {
            h,
            w,
            k,
            cos_h,
            sin_h,
            cos_w,
            sin_w,
            scale,
        }
    }

    /// Coefficients per channel: real parts then imaginary parts, `2 * h * (w / 2 + 1)`.
    pub fn coefficients(&self) -> usize {
        2 * self.h * self.k
    }

    /// The channel of the scaled spectrum `params` (Lucid's `fft_image` before its division by
    /// 4): `irfft2(scale * (re + i im))`.
    pub fn image(&self, params: &[f32]) -> Vec<f32> {
        let (re, im) = params.split_at(self.h * self.k);
        let scaled =
            |v: &[f32]| -> Vec<f32> { v.iter().zip(&self.scale).map(|(a, s)| a * s).collect() };
        self.inverse(&scaled(re), &scaled(im))
    }

    /// The gradient of the spectrum `params` given the gradient `grad` of [`Fourier::image`].
    pub fn image_adjoint(&self, grad: &[f32]) -> Vec<f32> {
        let mut out = self.inverse_adjoint(grad);
        let hk = self.h * self.k;
        for (i, g) in out.iter_mut().enumerate() {
            *g *= self.scale[i % hk];
        }
        out
    }

    /// `irfft2` of an unscaled half spectrum.
    fn inverse(&self, re: &[f32], im: &[f32]) -> Vec<f32> {
        let (h, w, k) = (self.h, self.w, self.k);
        // Along the rows: u[y, kx] = sum over ky of S[ky, kx] e^{2 pi i ky y / h}.
        let mut ur = vec![0.0f32; h * k];
        let mut ui = vec![0.0f32; h * k];
        for y in 0..h {
            let (ur, ui) = (&mut ur[y * k..(y + 1) * k], &mut ui[y * k..(y + 1) * k]);
            for ky in 0..h {
                let (c, s) = (self.cos_h[(ky * y) % h], self.sin_h[(ky * y) % h]);
                let (re, im) = (&re[ky * k..(ky + 1) * k], &im[ky * k..(ky + 1) * k]);
                for kx in 0..k {
                    ur[kx] += re[kx] * c - im[kx] * s;
                    ui[kx] += re[kx] * s + im[kx] * c;
                }
            }
        }
        // Along the columns, the real part only, with the Hermitian column weights.
        let norm = 1.0 / (h * w) as f32;
        let mut out = vec![0.0f32; h * w];
        for y in 0..h {
            let row = &mut out[y * w..(y + 1) * w];
            for kx in 0..k {
                let (a, b) = (ur[y * k + kx] * norm, ui[y * k + kx] * norm);
                let (c, s) = (
                    &self.cos_w[kx * w..(kx + 1) * w],
                    &self.sin_w[kx * w..(kx + 1) * w],
                );
                for x in 0..w {
                    row[x] += a * c[x] - b * s[x];
                }
            }
        }
        out
    }

    /// The adjoint of [`Fourier::inverse`]: from `[h, w]` to real parts then imaginary parts.
    fn inverse_adjoint(&self, grad: &[f32]) -> Vec<f32> {
        let (h, w, k) = (self.h, self.w, self.k);
        let norm = 1.0 / (h * w) as f32;
        let mut gr = vec![0.0f32; h * k];
        let mut gi = vec![0.0f32; h * k];
        for y in 0..h {
            let row = &grad[y * w..(y + 1) * w];
            for kx in 0..k {
                let (c, s) = (
                    &self.cos_w[kx * w..(kx + 1) * w],
                    &self.sin_w[kx * w..(kx + 1) * w],
                );
                let (mut a, mut b) = (0.0f32, 0.0f32);
                for x in 0..w {
                    a += row[x] * c[x];
                    b += row[x] * s[x];
                }
                gr[y * k + kx] = a * norm;
                gi[y * k + kx] = -b * norm;
            }
        }
        let mut out = vec![0.0f32; 2 * h * k];
        let (g_re, g_im) = out.split_at_mut(h * k);
        for y in 0..h {
            let (gr, gi) = (&gr[y * k..(y + 1) * k], &gi[y * k..(y + 1) * k]);
            for ky in 0..h {
                let (c, s) = (self.cos_h[(ky * y) % h], self.sin_h[(ky * y) % h]);
                let (re, im) = (
                    &mut g_re[ky * k..(ky + 1) * k],
                    &mut g_im[ky * k..(ky + 1) * k],
                );
                for kx in 0..k {
                    re[kx] += gr[kx] * c + gi[kx] * s;
                    im[kx] += gi[kx] * c - gr[kx] * s;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// <A p, g> = <p, A^T g> for the scaled transform, even and odd sides.
    #[test]
    fn the_adjoint_is_the_transpose() {
        for (h, w) in [(6, 8), (5, 7), (4, 1)] {
            let f = Fourier::new(h, w, 1.0);
            let p = noise(f.coefficients(), 1);
            let g = noise(h * w, 2);
            let forward: f64 = f
                .image(&p)
                .iter()
                .zip(&g)
                .map(|(a, b)| f64::from(a * b))
                .sum();
            let back: f64 = f
                .image_adjoint(&g)
                .iter()
                .zip(&p)
                .map(|(a, b)| f64::from(a * b))
                .sum();
            assert!(
                (forward - back).abs() < 1e-4 * forward.abs().max(1.0),
                "{h}x{w}: {forward} vs {back}"
            );
        }
    }
}
