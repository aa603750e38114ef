//! The input gradient of a depthwise convolution of f32 NCHW tensors on the CPU, directly.
//!
//! A depthwise convolution (`groups` = input channels: MobileNet, EfficientNet) is one small
//! kernel per channel plane. flex's forward pass already walks the planes directly, but its input
//! gradient is a grouped transposed convolution: an im2col-shaped product and a col2im scatter
//! per group, 5-8x the forward's time. Here each output-gradient row is added into the input
//! gradient once per kernel tap (`input_row += w * grad_row`), which the compiler vectorises.
//!
//! A strided convolution writes every `stride`-th input column, which does not vectorise; the
//! gradient is accumulated in phase planes instead (input column `j * stride + p` is column `j`
//! of phase `p`), where every tap writes one contiguous run, and the phases are interleaved once
//! at the end.
//!
//! The sums are in a fixed order, with separate multiplies and adds (no FMA contraction), so
//! every SIMD variant gives the same numbers.

use rayon::prelude::*;

/// The shape of a depthwise convolution: every output channel `o` reads input channel
/// `o / multiplier` alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Depthwise {
    /// Rows of the batch.
    pub batch: usize,
    /// Input channels (= the groups).
    pub channels: usize,
    /// Output channels per input channel.
    pub multiplier: usize,
    /// Input height and width.
    pub size: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along the height and the width.
    pub stride: [usize; 2],
    /// Dilation along the height and the width.
    pub dilation: [usize; 2],
    /// Zero padding `(begin, end)` of the height, then of the width.
    pub padding: [(usize, usize); 2],
}

impl Depthwise {
    /// The output length along axis `a`, when the padded input holds at least one kernel.
    fn out_len(&self, a: usize) -> Option<usize> {
        let padded = self.size[a] + self.padding[a].0 + self.padding[a].1;
        let span = self.dilation[a] * (self.kernel[a] - 1) + 1;
        (padded >= span && self.stride[a] > 0).then(|| (padded - span) / self.stride[a] + 1)
    }

    /// Whether the shape is one the kernels compute (nonzero sizes, a kernel that fits).
    pub fn is_valid(&self) -> bool {
        let nonzero = [
            self.batch,
            self.channels,
            self.multiplier,
            self.kernel[0],
            self.kernel[1],
            self.dilation[0],
            self.dilation[1],
        ]
        .iter()
        .all(|&v| v > 0);
        nonzero && self.out_len(0).is_some_and(|h| h > 0) && self.out_len(1).is_some_and(|w| w > 0)
    }

    /// `[out_h, out_w]` (the shape must be valid).
    pub fn out_size(&self) -> [usize; 2] {
        [self.out_len(0).unwrap_or(0), self.out_len(1).unwrap_or(0)]
    }

    /// `[batch, channels * multiplier, out_h, out_w]`.
    pub fn out_dims(&self) -> [usize; 4] {
        let [oh, ow] = self.out_size();
        [self.batch, self.channels * self.multiplier, oh, ow]
    }

    /// `[batch, channels, h, w]`.
    pub fn in_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.size[0], self.size[1]]
    }

    fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }
}

/// Where tap column `kx` reads: input column `ox * stride + offset` for output column `ox`,
/// which is column `ox + shift` of phase plane `phase`, for `ox` in `lo..hi` (the columns whose
/// input is inside the image; the rest read padding).
#[derive(Clone, Copy, Debug)]
struct TapColumns {
    phase: usize,
    shift: isize,
    lo: usize,
    hi: usize,
}

/// The columns of a phase-split plane of width `width` split by `stride`: phase `p` holds input
/// columns `p, p + stride, ...`, `phase_width` of them at most (the row pitch of every phase).
fn phase_width(width: usize, stride: usize) -> usize {
    width.div_ceil(stride)
}

fn tap_columns(s: &Depthwise, kx: usize, out_w: usize) -> TapColumns {
    let (width, stride) = (s.size[1] as isize, s.stride[1] as isize);
    let offset = (kx * s.dilation[1]) as isize - s.padding[1].0 as isize;
    let phase = offset.rem_euclid(stride);
    let shift = offset.div_euclid(stride);
    // Columns in phase `phase`: j with phase + j * stride < width.
    let in_phase = (width - phase + stride - 1).div_euclid(stride);
    let lo = (-shift).max(0);
    let hi = (in_phase - shift).clamp(0, out_w as isize);
    TapColumns {
        phase: phase as usize,
        shift,
        lo: lo as usize,
        hi: (hi.max(lo)) as usize,
    }
}

/// The input row read by tap row `ky` of output row `oy`, if inside the image.
fn tap_row(s: &Depthwise, oy: usize, ky: usize) -> Option<usize> {
    (oy * s.stride[0] + ky * s.dilation[0])
        .checked_sub(s.padding[0].0)
        .filter(|&iy| iy < s.size[0])
}

/// `dst[i] += w * src[i]`, a separate multiply and add (no FMA contraction); inlined into
/// [`with_widest_simd`]'s variants, which is what vectorises it.
#[inline(always)]
fn axpy(dst: &mut [f32], w: f32, src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += w * *s;
    }
}

/// Runs `f` compiled for the widest vector unit this CPU has (AVX-512F, AVX2, else the
/// target's baseline), chosen at run time; `f`'s body is inlined into each variant.
#[inline(always)]
fn with_widest_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Interleaves the phase planes (`stride` planes of `rows x phase_width`) into `plane`
/// (`rows x width`): `plane[y][j * stride + p] = split[p][y][j]`.
#[inline(always)]
fn join_phases(split: &[f32], width: usize, stride: usize, plane: &mut [f32]) {
    let pw = phase_width(width, stride);
    let rows = plane.len() / width;
    for (y, row) in plane.chunks_exact_mut(width).enumerate() {
        for p in 0..stride.min(width) {
            let phase = &split[(p * rows + y) * pw..][..pw];
            for (v, s) in row[p..].iter_mut().step_by(stride).zip(phase) {
                *v = *s;
            }
        }
    }
}

/// Planes per rayon task: enough multiply-adds (about 64K) that a task outweighs its cost.
fn planes_per_task(plane_work: usize, planes: usize) -> usize {
    let per = (1usize << 16).div_ceil(plane_work.max(1));
    // Keep at least two tasks per thread where there are planes enough, for balance.
    let threads = rayon::current_num_threads().max(1);
    per.min(planes.div_ceil(2 * threads)).max(1)
}

/// The gradient of a depthwise convolution's input, from the gradient of its output
/// (`[batch, channels * multiplier, out_h, out_w]`); `[batch, channels, h, w]`.
pub(crate) fn input_gradient(output_grad: &[f32], weight: &[f32], s: &Depthwise) -> Vec<f32> {
    let [h, w] = s.size;
    let [oh, ow] = s.out_size();
    let [kh, kw] = s.kernel;
    let sw = s.stride[1];
    let out_channels = s.channels * s.multiplier;
    let columns: Vec<TapColumns> = (0..kw).map(|kx| tap_columns(s, kx, ow)).collect();
    let pw = phase_width(w, sw);
    let mut grad = vec![0f32; s.batch * s.channels * h * w];
    let plane_in = h * w;
    let chunk = planes_per_task(oh * ow * s.taps() * s.multiplier, s.batch * s.channels);
    grad.par_chunks_mut(plane_in * chunk)
        .enumerate()
        .for_each(|(task, planes)| {
            with_widest_simd(|| {
                let mut split = if sw > 1 {
                    vec![0f32; sw * h * pw]
                } else {
                    Vec::new()
                };
                for (i, plane) in planes.chunks_exact_mut(plane_in).enumerate() {
                    let p = task * chunk + i;
                    let (n, c) = (p / s.channels, p % s.channels);
                    // Accumulate into the phase planes (zeroed: the padding columns past a phase's
                    // end are never joined back) and join them once.
                    let (target, pitch): (&mut [f32], usize) = if sw > 1 {
                        split.fill(0.0);
                        (&mut split[..], pw)
                    } else {
                        (&mut plane[..], w)
                    };
                    for o in c * s.multiplier..(c + 1) * s.multiplier {
                        let g_plane = &output_grad[(n * out_channels + o) * oh * ow..][..oh * ow];
                        let kernel = &weight[o * kh * kw..][..kh * kw];
                        for oy in 0..oh {
                            let g_row = &g_plane[oy * ow..][..ow];
                            for ky in 0..kh {
                                let Some(iy) = tap_row(s, oy, ky) else {
                                    continue;
                                };
                                for (kx, col) in columns.iter().enumerate() {
                                    if col.lo < col.hi {
                                        let start =
                                            ((col.phase * h + iy) * pitch) as isize + col.shift;
                                        let dst = &mut target[(start + col.lo as isize) as usize..]
                                            [..col.hi - col.lo];
                                        axpy(dst, kernel[ky * kw + kx], &g_row[col.lo..col.hi]);
                                    }
                                }
                            }
                        }
                    }
                    if sw > 1 {
                        join_phases(&split, w, sw, plane);
                    }
                }
            })
        });
    grad
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook loops, in f64.
    fn direct(x: &[f32], weight: &[f32], bias: Option<&[f32]>, s: &Depthwise) -> Vec<f64> {
        let [h, w] = s.size;
        let [oh, ow] = s.out_size();
        let [kh, kw] = s.kernel;
        let co = s.channels * s.multiplier;
        let mut y = vec![0f64; s.batch * co * oh * ow];
        for n in 0..s.batch {
            for o in 0..co {
                let c = o / s.multiplier;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = bias.map_or(0.0, |b| b[o] as f64);
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * s.stride[0] + ky * s.dilation[0]) as isize
                                    - s.padding[0].0 as isize;
                                let ix = (ox * s.stride[1] + kx * s.dilation[1]) as isize
                                    - s.padding[1].0 as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    let xv = x[((n * s.channels + c) * h + iy as usize) * w
                                        + ix as usize];
                                    acc += xv as f64 * weight[(o * kh + ky) * kw + kx] as f64;
                                }
                            }
                        }
                        y[((n * co + o) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (v >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    fn shapes() -> Vec<Depthwise> {
        let mut shapes = Vec::new();
        for (kernel, stride, dilation, padding) in [
            ([3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]),
            ([3, 3], [2, 2], [1, 1], [(0, 1), (0, 1)]),
            ([5, 5], [2, 2], [1, 1], [(2, 2), (2, 2)]),
            ([3, 3], [3, 2], [2, 1], [(2, 0), (1, 3)]),
            ([1, 3], [1, 3], [1, 2], [(0, 0), (4, 2)]),
        ] {
            for (size, multiplier) in [([7, 9], 1), ([12, 11], 2), ([5, 4], 1)] {
                shapes.push(Depthwise {
                    batch: 2,
                    channels: 3,
                    multiplier,
                    size,
                    kernel,
                    stride,
                    dilation,
                    padding,
                });
            }
        }
        shapes
    }

    /// The input gradient is the transpose of the forward map: <grad_of(g), x> = <g, forward(x)>
    /// for every x, checked one input position at a time.
    #[test]
    fn input_gradient_is_the_transpose_of_the_forward_map() {
        for s in shapes().into_iter().filter(Depthwise::is_valid) {
            let n_in: usize = s.in_dims().iter().product();
            let n_out: usize = s.out_dims().iter().product();
            let weight = values(s.channels * s.multiplier * s.taps(), 4);
            let g = values(n_out, 5);
            let got = input_gradient(&g, &weight, &s);
            assert_eq!(got.len(), n_in);
            for i in 0..n_in {
                let mut e = vec![0f32; n_in];
                e[i] = 1.0;
                let column = direct(&e, &weight, None, &s);
                let want: f64 = column.iter().zip(&g).map(|(a, b)| a * *b as f64).sum();
                assert!(
                    (got[i] as f64 - want).abs() < 1e-5,
                    "[{i}] {} vs {want} in {s:?}",
                    got[i]
                );
            }
        }
    }
}
