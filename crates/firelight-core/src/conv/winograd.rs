//! Winograd F(2x2, 3x3) convolution of f32 NCHW tensors on the CPU (Lavin and Gray, 2015).
//!
//! A 3x3 stride-1 convolution spends 36 multiply-adds per 2x2 output tile and channel pair; the
//! Winograd form spends 16, as 16 independent matrix products of the transformed weights
//! `U[ξ]` (`[out, in]`) with the transformed input tiles `V[ξ]` (`[in, tiles]`). F(2x2, 3x3) is
//! the variant whose transforms hold only 0, ±1 and ±½, which are exact in binary, so its results
//! differ from a direct convolution's by float rounding only (F(4x4, 3x3) saves more but loses
//! about two digits in f32).
//!
//! Tiles are processed in blocks small enough for their `V` and `M` to stay in cache: each block
//! is transformed, multiplied (`gemm`, one thread) and transformed back by one rayon task.

use rayon::prelude::*;

/// The shape of a 3x3, stride-1, undilated, ungrouped convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conv3x3 {
    /// Rows of the batch.
    pub batch: usize,
    /// Input channels.
    pub channels_in: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub channels_out: usize,
    /// Zero padding `(begin, end)` of the height, then of the width.
    pub padding: [(usize, usize); 2],
}

/// How the `[a, b, 3, 3]` weight tensor given to [`conv3x3`] is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WeightLayout {
    /// `[channels_out, channels_in, 3, 3]`: the ordinary forward convolution.
    Forward,
    /// `[channels_in, channels_out, 3, 3]`, flipped in both spatial axes: the weights of the
    /// convolution that is the input gradient of a stride-1 convolution (`channels_in` here is
    /// that convolution's output channels).
    FlippedTransposed,
}

impl Conv3x3 {
    /// Output height (the padded height less 2).
    pub fn out_height(&self) -> usize {
        self.height + self.padding[0].0 + self.padding[0].1 - 2
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        self.width + self.padding[1].0 + self.padding[1].1 - 2
    }

    /// `[batch, out, out_h, out_w]`.
    pub fn out_dims(&self) -> [usize; 4] {
        [
            self.batch,
            self.channels_out,
            self.out_height(),
            self.out_width(),
        ]
    }

    /// Whether the padded input holds at least one 3x3 window.
    pub fn is_valid(&self) -> bool {
        self.height + self.padding[0].0 + self.padding[0].1 >= 3
            && self.width + self.padding[1].0 + self.padding[1].1 >= 3
    }

    fn tile_rows(&self) -> usize {
        self.out_height().div_ceil(2)
    }

    fn tile_cols(&self) -> usize {
        self.out_width().div_ceil(2)
    }

    /// 2x2 output tiles over the whole batch.
    pub fn tiles(&self) -> usize {
        self.batch * self.tile_rows() * self.tile_cols()
    }
}

/// `U[ξ][o][i] = (G g G^T)[ξ]` for every output and input channel, `[16, out, in]`.
fn transform_weights(weight: &[f32], shape: &Conv3x3, layout: WeightLayout) -> Vec<f32> {
    let (outs, ins) = (shape.channels_out, shape.channels_in);
    let mut u = vec![0f32; 16 * outs * ins];
    let plane = outs * ins;
    // One output channel's row of every ξ plane per task; the planes are written through a
    // pointer because each task's rows are interleaved with the others'.
    let u_ptr = SharedMut(u.as_mut_ptr());
    (0..outs).into_par_iter().for_each(|o| {
        for i in 0..ins {
            let g: [f32; 9] = match layout {
                WeightLayout::Forward => {
                    let at = (o * ins + i) * 9;
                    weight[at..at + 9].try_into().expect("nine taps")
                }
                WeightLayout::FlippedTransposed => {
                    let at = (i * outs + o) * 9;
                    let mut g = [0f32; 9];
                    for (k, tap) in g.iter_mut().enumerate() {
                        *tap = weight[at + 8 - k];
                    }
                    g
                }
            };
            // G g: rows g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2 of the 3x3 kernel's rows.
            let mut t = [[0f32; 3]; 4];
            for c in 0..3 {
                let (a, b, d) = (g[c], g[3 + c], g[6 + c]);
                t[0][c] = a;
                t[1][c] = 0.5 * (a + b + d);
                t[2][c] = 0.5 * (a - b + d);
                t[3][c] = d;
            }
            // (G g) G^T, the same combination of the columns.
            for (r, row) in t.iter().enumerate() {
                let (a, b, d) = (row[0], row[1], row[2]);
                let v = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                for (c, value) in v.into_iter().enumerate() {
                    // SAFETY: (r*4+c, o, i) is written by this task only, inside the buffer.
                    unsafe { u_ptr.write((r * 4 + c) * plane + o * ins + i, value) };
                }
            }
        }
    });
    u
}

/// Transformed weights kept across calls: a model's convolutions run with the same weights
/// call after call (IG's steps, a data set's chunks, forward and backward), and the transform
/// costs as much as the products when the tiles are few. An entry is found by its weights'
/// values, compared in full, so weights changed in place can never be served stale.
struct WeightCache {
    entries: std::collections::VecDeque<CachedWeights>,
    bytes: usize,
}

struct CachedWeights {
    outs: usize,
    ins: usize,
    layout: WeightLayout,
    original: Vec<f32>,
    transformed: std::sync::Arc<Vec<f32>>,
}

impl CachedWeights {
    fn bytes(&self) -> usize {
        4 * (self.original.len() + self.transformed.len())
    }
}

/// What the cache may hold (originals and transforms), oldest evicted first: ResNet-50's
/// 3x3 layers need about 110 MiB.
const WEIGHT_CACHE_BYTES: usize = 256 << 20;

static WEIGHT_CACHE: std::sync::Mutex<WeightCache> = std::sync::Mutex::new(WeightCache {
    entries: std::collections::VecDeque::new(),
    bytes: 0,
});

fn bits(values: &[f32]) -> &[u8] {
    bytemuck::cast_slice(values)
}

/// [`transform_weights`], from the cache when these weights were transformed before.
fn cached_weights(
    weight: &[f32],
    shape: &Conv3x3,
    layout: WeightLayout,
) -> std::sync::Arc<Vec<f32>> {
    let (outs, ins) = (shape.channels_out, shape.channels_in);
    // Bit for bit (a memcmp), not by float equality, which is slower and would take -0 for 0.
    let same = |e: &CachedWeights| {
        e.outs == outs && e.ins == ins && e.layout == layout && bits(&e.original) == bits(weight)
    };
    // A poisoned lock only means another thread panicked mid-update; the cache stays
    // consistent (entries are pushed whole), so it is used as it is.
    {
        let mut cache = WEIGHT_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = cache.entries.iter().position(same) {
            let entry = cache.entries.remove(at).expect("found");
            let transformed = entry.transformed.clone();
            cache.entries.push_back(entry);
            return transformed;
        }
    }
    let transformed = std::sync::Arc::new(transform_weights(weight, shape, layout));
    let entry = CachedWeights {
        outs,
        ins,
        layout,
        original: weight.to_vec(),
        transformed: transformed.clone(),
    };
    if entry.bytes() <= WEIGHT_CACHE_BYTES {
        let mut cache = WEIGHT_CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache.bytes += entry.bytes();
        cache.entries.push_back(entry);
        while cache.bytes > WEIGHT_CACHE_BYTES {
            let Some(old) = cache.entries.pop_front() else {
                break;
            };
            cache.bytes -= old.bytes();
        }
    }
    transformed
}

/// Floats between the ends of the 16 planes of a block's buffers: planes a multiple of 4 KiB
/// apart map to the same cache sets, and 16 streams of them thrash an 8- or 12-way L1.
const PLANE_PAD: usize = 16;

fn add(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    std::array::from_fn(|k| a[k] + b[k])
}

fn sub(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    std::array::from_fn(|k| a[k] - b[k])
}

/// A thread's buffers for its blocks, kept between calls: allocating and zeroing them per
/// block showed as memset, page faults and TLB shootdowns in the profile.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    placed: Vec<Tile>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// A pointer that tasks writing disjoint elements may share.
struct SharedMut(*mut f32);
// SAFETY: every use writes elements no other task touches, and the buffer outlives the tasks.
unsafe impl Sync for SharedMut {}
unsafe impl Send for SharedMut {}

impl SharedMut {
    /// The element `at`.
    ///
    /// # Safety
    /// `at` is inside the buffer, and no other task writes that element.
    unsafe fn write(&self, at: usize, value: f32) {
        // SAFETY: as the caller promises.
        unsafe { *self.0.add(at) = value }
    }
}

/// Where one 2x2 output tile lies.
#[derive(Clone, Copy)]
struct Tile {
    /// Offset of its batch row in the input.
    input_row: usize,
    /// Offset of its batch row in the output.
    output_row: usize,
    /// Output row and column of its top-left element.
    out_y: usize,
    out_x: usize,
}

/// The convolution of `x` (`[batch, in, h, w]`, contiguous) with a 3x3 kernel read as `layout`
/// says, plus `bias` per output channel: `[batch, out, out_h, out_w]`, contiguous.
pub(crate) fn conv3x3(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    shape: &Conv3x3,
    layout: WeightLayout,
) -> Vec<f32> {
    let Conv3x3 {
        batch,
        channels_in: ins,
        height,
        width,
        channels_out: outs,
        padding,
    } = *shape;
    debug_assert_eq!(x.len(), batch * ins * height * width);
    debug_assert_eq!(weight.len(), outs * ins * 9);
    let (out_h, out_w) = (shape.out_height(), shape.out_width());
    let (tile_rows, tile_cols) = (shape.tile_rows(), shape.tile_cols());
    let per_image = tile_rows * tile_cols;
    let tiles = shape.tiles();
    let mut y = vec![0f32; batch * outs * out_h * out_w];
    if tiles == 0 || outs == 0 {
        return y;
    }
    let u = cached_weights(weight, shape, layout);

    // Blocks of tiles: enough of them to keep every thread busy, each small enough that its
    // transformed tiles (16 x in x block) and products (16 x out x block) stay in cache.
    let threads = rayon::current_num_threads().max(1);
    let cap = (16384 / ins.max(outs)).clamp(16, 512);
    let block = tiles.div_ceil(threads).clamp(1, cap);
    let blocks = tiles.div_ceil(block);

    let y_ptr = SharedMut(y.as_mut_ptr());
    let (pad_top, pad_left) = (padding[0].0 as isize, padding[1].0 as isize);
    let (h, w) = (height as isize, width as isize);
    (0..blocks).into_par_iter().for_each(|b| {
        SCRATCH.with_borrow_mut(|scratch| {
            let Scratch { v, m, placed } = scratch;
            // Every element a block reads is written first (V by the transform, M by gemm),
            // so the buffers are only grown, never cleared.
            grow(v, 16 * (ins * block + PLANE_PAD));
            grow(m, 16 * (outs * block + PLANE_PAD));
            let first = b * block;
            let count = block.min(tiles - first);
            placed.clear();
            placed.extend((first..first + count).map(|t| {
                let (n, r) = (t / per_image, t % per_image);
                Tile {
                    input_row: n * ins * height * width,
                    output_row: n * outs * out_h * out_w,
                    out_y: 2 * (r / tile_cols),
                    out_x: 2 * (r % tile_cols),
                }
            }));

            // V[ξ][i][t] = (B^T d B)[ξ] of the 4x4 input patch under each tile.
            let v_plane = ins * count + PLANE_PAD;
            let v_ptr = v.as_mut_ptr();
            for i in 0..ins {
                for (t, tile) in placed.iter().enumerate() {
                    let top = tile.out_y as isize - pad_top;
                    let left = tile.out_x as isize - pad_left;
                    let channel = &x[tile.input_row + i * height * width..][..height * width];
                    let mut d = [[0f32; 4]; 4];
                    if top >= 0 && left >= 0 && top + 4 <= h && left + 4 <= w {
                        for (r, row) in d.iter_mut().enumerate() {
                            let at = (top as usize + r) * width + left as usize;
                            row.copy_from_slice(&channel[at..at + 4]);
                        }
                    } else {
                        for (r, row) in d.iter_mut().enumerate() {
                            let yy = top + r as isize;
                            if yy < 0 || yy >= h {
                                continue;
                            }
                            for (c, value) in row.iter_mut().enumerate() {
                                let xx = left + c as isize;
                                if xx >= 0 && xx < w {
                                    *value = channel[yy as usize * width + xx as usize];
                                }
                            }
                        }
                    }
                    // B^T d: rows d0-d2, d1+d2, d2-d1, d1-d3.
                    let e = [
                        sub(d[0], d[2]),
                        add(d[1], d[2]),
                        sub(d[2], d[1]),
                        sub(d[1], d[3]),
                    ];
                    // (B^T d) B: the same combination of the columns.
                    for (r, row) in e.iter().enumerate() {
                        let out = [
                            row[0] - row[2],
                            row[1] + row[2],
                            row[2] - row[1],
                            row[1] - row[3],
                        ];
                        for (c, value) in out.into_iter().enumerate() {
                            // SAFETY: ξ < 16, i < ins and t < count index inside the
                            // 16 x (ins x block + PLANE_PAD) buffer.
                            unsafe { *v_ptr.add((r * 4 + c) * v_plane + i * count + t) = value };
                        }
                    }
                }
            }

            // M[ξ] = U[ξ] V[ξ]: [out, in] x [in, count], one thread (the blocks are the tasks).
            let m_plane = outs * count + PLANE_PAD;
            for xi in 0..16 {
                // SAFETY: the three matrices lie inside their buffers with the strides given.
                unsafe {
                    gemm::gemm(
                        outs,
                        count,
                        ins,
                        m[xi * m_plane..].as_mut_ptr(),
                        1,
                        count as isize,
                        false,
                        u[xi * outs * ins..].as_ptr(),
                        1,
                        ins as isize,
                        v[xi * v_plane..].as_ptr(),
                        1,
                        count as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }

            // Y = A^T M A per tile, plus the bias.
            for o in 0..outs {
                let offset = bias.map_or(0.0, |b| b[o]);
                for (t, tile) in placed.iter().enumerate() {
                    // Row r of the 4x4 product tile is ξ = 4r..4r+4.
                    let row = |r: usize| -> [f32; 4] {
                        std::array::from_fn(|c| m[(4 * r + c) * m_plane + o * count + t])
                    };
                    let (m0, m1, m2, m3) = (row(0), row(1), row(2), row(3));
                    let s = [add(add(m0, m1), m2), sub(sub(m1, m2), m3)];
                    let base = tile.output_row + o * out_h * out_w;
                    for (r, row) in s.iter().enumerate() {
                        let yy = tile.out_y + r;
                        if yy >= out_h {
                            break;
                        }
                        let pair = [row[0] + row[1] + row[2], row[1] - row[2] - row[3]];
                        for (c, value) in pair.into_iter().enumerate() {
                            let xx = tile.out_x + c;
                            if xx < out_w {
                                // SAFETY: each output element belongs to one tile, and each
                                // tile to one block, so no two tasks write the same element.
                                unsafe { y_ptr.write(base + yy * out_w + xx, value + offset) };
                            }
                        }
                    }
                }
            }
        })
    });
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The textbook loop: cross-correlation with zero padding.
    fn direct(x: &[f32], w: &[f32], bias: Option<&[f32]>, s: &Conv3x3) -> Vec<f32> {
        let (oh, ow) = (s.out_height(), s.out_width());
        let mut y = vec![0f32; s.batch * s.channels_out * oh * ow];
        for n in 0..s.batch {
            for o in 0..s.channels_out {
                for yy in 0..oh {
                    for xx in 0..ow {
                        let mut acc = bias.map_or(0.0, |b| b[o]) as f64;
                        for i in 0..s.channels_in {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let iy = (yy + ky) as isize - s.padding[0].0 as isize;
                                    let ix = (xx + kx) as isize - s.padding[1].0 as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= s.height as isize
                                        || ix >= s.width as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((n * s.channels_in + i) * s.height + iy as usize)
                                        * s.width
                                        + ix as usize];
                                    let wv = w[((o * s.channels_in + i) * 3 + ky) * 3 + kx];
                                    acc += (xv * wv) as f64;
                                }
                            }
                        }
                        y[((n * s.channels_out + o) * oh + yy) * ow + xx] = acc as f32;
                    }
                }
            }
        }
        y
    }

    fn random(n: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn winograd_equals_the_direct_convolution_on_odd_sizes_and_uneven_padding() {
        let mut rng = StdRng::seed_from_u64(7);
        for (batch, ins, outs, h, w, padding) in [
            (1, 1, 1, 3, 3, [(0, 0), (0, 0)]),
            (2, 3, 5, 7, 6, [(1, 1), (1, 1)]),
            (1, 4, 2, 5, 9, [(2, 0), (0, 2)]),
            (3, 17, 9, 11, 4, [(1, 2), (2, 1)]),
            (1, 2, 3, 1, 1, [(1, 1), (1, 1)]),
        ] {
            let s = Conv3x3 {
                batch,
                channels_in: ins,
                height: h,
                width: w,
                channels_out: outs,
                padding,
            };
            let x = random(batch * ins * h * w, &mut rng);
            let wt = random(outs * ins * 9, &mut rng);
            let b = random(outs, &mut rng);
            let got = conv3x3(&x, &wt, Some(&b), &s, WeightLayout::Forward);
            let want = direct(&x, &wt, Some(&b), &s);
            assert_eq!(got.len(), want.len());
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{s:?}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn flipped_transposed_weights_are_read_as_the_flipped_transposed_kernel() {
        let mut rng = StdRng::seed_from_u64(11);
        let s = Conv3x3 {
            batch: 2,
            channels_in: 4,
            height: 6,
            width: 5,
            channels_out: 3,
            padding: [(1, 1), (2, 2)],
        };
        // The original kernel is [channels_in = 4, channels_out = 3, 3, 3] from this conv's side.
        let original = random(4 * 3 * 9, &mut rng);
        let mut flipped = vec![0f32; 3 * 4 * 9];
        for o in 0..3 {
            for i in 0..4 {
                for k in 0..9 {
                    flipped[(o * 4 + i) * 9 + k] = original[(i * 3 + o) * 9 + 8 - k];
                }
            }
        }
        let x = random(2 * 4 * 6 * 5, &mut rng);
        let got = conv3x3(&x, &original, None, &s, WeightLayout::FlippedTransposed);
        let want = direct(&x, &flipped, None, &s);
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g} vs {e}");
        }
    }
}
