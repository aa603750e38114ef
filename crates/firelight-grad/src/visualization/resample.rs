//! Geometric transforms of a picture as one bilinear resampling: a linear map (plus a constant
//! where the view falls outside the picture) whose adjoint carries the gradient of what the
//! model saw back to the picture. Lucid's pad, jitter, scale and rotation compose into one such
//! map per step, so the picture is interpolated once, not four times.

/// What a sample that falls outside the picture reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outside {
    /// A constant (Lucid pads with 0.5, mid-grey).
    Fill(f32),
    /// The nearest edge pixel.
    Clamp,
    /// The other side (a roll, as DeepDream's jitter).
    Wrap,
}

/// A resampling of one `[height, width]` channel to `[out_height, out_width]`, the same for every
/// channel.
#[derive(Clone, Debug)]
pub struct Resampler {
    source: [usize; 2],
    out: [usize; 2],
    /// Four (source index, weight) taps per output pixel.
    taps: Vec<[(u32, f32); 4]>,
    /// The weight of the outside fill per output pixel.
    fill_weight: Vec<f32>,
    fill: f32,
}

impl Resampler {
    /// Output pixel `(y, x)` reads the source at `at(y + 0.5, x + 0.5)` (continuous coordinates:
    /// pixel `i` spans `[i, i + 1)`), interpolated bilinearly.
    pub fn new(
        source: [usize; 2],
        out: [usize; 2],
        outside: Outside,
        at: impl Fn(f32, f32) -> (f32, f32),
    ) -> Self {
        let [h, w] = source;
        let mut taps = Vec::with_capacity(out[0] * out[1]);
        let mut fill_weight = Vec::with_capacity(out[0] * out[1]);
        for yo in 0..out[0] {
            for xo in 0..out[1] {
                let (sy, sx) = at(yo as f32 + 0.5, xo as f32 + 0.5);
                let (sy, sx) = (sy - 0.5, sx - 0.5);
                let (y0, x0) = (sy.floor(), sx.floor());
                let (fy, fx) = (sy - y0, sx - x0);
                let mut four = [(0u32, 0.0f32); 4];
                let mut outside_weight = 0.0;
                for (i, (dy, dx, wgt)) in [
                    (0, 0, (1.0 - fy) * (1.0 - fx)),
                    (0, 1, (1.0 - fy) * fx),
                    (1, 0, fy * (1.0 - fx)),
                    (1, 1, fy * fx),
                ]
                .into_iter()
                .enumerate()
                {
                    let (y, x) = (y0 as i64 + dy, x0 as i64 + dx);
                    let index = match outside {
                        Outside::Wrap => Some((y.rem_euclid(h as i64), x.rem_euclid(w as i64))),
                        Outside::Clamp => {
                            Some((y.clamp(0, h as i64 - 1), x.clamp(0, w as i64 - 1)))
                        }
                        Outside::Fill(_) => {
                            (y >= 0 && y < h as i64 && x >= 0 && x < w as i64).then_some((y, x))
                        }
                    };
                    match index {
                        Some((y, x)) => four[i] = ((y as usize * w + x as usize) as u32, wgt),
                        None => outside_weight += wgt,
                    }
                }
                taps.push(four);
                fill_weight.push(outside_weight);
            }
        }
        let fill = match outside {
            Outside::Fill(v) => v,
            _ => 0.0,
        };
        Self {
            source,
            out,
            taps,
            fill_weight,
            fill,
        }
    }

    /// A plain resize of the whole picture (half-pixel centres, edges clamped).
    pub fn resize(source: [usize; 2], out: [usize; 2]) -> Self {
        let (ry, rx) = (
            source[0] as f32 / out[0] as f32,
            source[1] as f32 / out[1] as f32,
        );
        Self::new(source, out, Outside::Clamp, |y, x| (y * ry, x * rx))
    }

    /// The output's `[height, width]`.
    pub fn out(&self) -> [usize; 2] {
        self.out
    }

    /// `channels` channels of the source, resampled.
    pub fn apply(&self, source: &[f32], channels: usize) -> Vec<f32> {
        let (n_in, n_out) = (self.source[0] * self.source[1], self.out[0] * self.out[1]);
        let mut out = vec![0.0f32; channels * n_out];
        for c in 0..channels {
            let src = &source[c * n_in..(c + 1) * n_in];
            for (i, (four, fill)) in self.taps.iter().zip(&self.fill_weight).enumerate() {
                out[c * n_out + i] =
                    four.iter().map(|&(j, w)| w * src[j as usize]).sum::<f32>() + fill * self.fill;
            }
        }
        out
    }

    /// The adjoint of [`Resampler::apply`] (without its constant): the gradient at the source
    /// from the gradient at the output.
    pub fn adjoint(&self, grad: &[f32], channels: usize) -> Vec<f32> {
        let (n_in, n_out) = (self.source[0] * self.source[1], self.out[0] * self.out[1]);
        let mut out = vec![0.0f32; channels * n_in];
        for c in 0..channels {
            let dst = &mut out[c * n_in..(c + 1) * n_in];
            for (g, four) in grad[c * n_out..(c + 1) * n_out].iter().zip(&self.taps) {
                for &(j, w) in four {
                    dst[j as usize] += w * g;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_map_copies_and_a_whole_pixel_shift_moves() {
        let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let same = Resampler::new([3, 4], [3, 4], Outside::Fill(0.5), |y, x| (y, x));
        assert_eq!(same.apply(&src, 1), src);
        let rolled = Resampler::new([3, 4], [3, 4], Outside::Wrap, |y, x| (y, x - 1.0));
        assert_eq!(rolled.apply(&src, 1)[..4], [3.0, 0.0, 1.0, 2.0]);
        let padded = Resampler::new([3, 4], [3, 4], Outside::Fill(0.5), |y, x| (y - 1.0, x));
        assert_eq!(padded.apply(&src, 1)[..5], [0.5, 0.5, 0.5, 0.5, 0.0]);
    }

    #[test]
    fn the_adjoint_is_the_transpose() {
        let map = Resampler::new([5, 6], [4, 7], Outside::Fill(0.0), |y, x| {
            (0.8 * y + 0.3 * x - 0.4, 1.1 * x - 0.2 * y + 0.7)
        });
        let p: Vec<f32> = (0..60).map(|v| ((v * 7919) % 13) as f32 - 6.0).collect();
        let g: Vec<f32> = (0..56).map(|v| ((v * 104729) % 11) as f32 - 5.0).collect();
        let forward: f32 = map.apply(&p, 2).iter().zip(&g).map(|(a, b)| a * b).sum();
        let back: f32 = map.adjoint(&g, 2).iter().zip(&p).map(|(a, b)| a * b).sum();
        assert!((forward - back).abs() < 1e-3, "{forward} vs {back}");
    }
}
