//! The input gradient of a 1x1, stride-1, unpadded convolution as one matrix product per image
//! and group, written straight into the gradient.
//!
//! Such a convolution is `y_b = W x_b` per image (`W` `[out, in]`, `x_b` `[in, h * w]`), so its
//! input gradient is `dx_b = W^T dy_b`. Flex computes it as a transposed convolution: the
//! product into a column buffer, then a col2im pass that adds the columns into a zeroed output,
//! which for a 1x1 kernel is a copy. Here `gemm` reads `W` transposed through its strides and
//! writes `dx_b` itself: no column buffer, no second pass. These are most of the convolutions
//! of MobileNet, EfficientNet and RegNet (the expansions and projections around each depthwise
//! layer).

/// A pointwise convolution's shape.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pointwise {
    pub batch: usize,
    pub channels_in: usize,
    pub channels_out: usize,
    pub groups: usize,
    /// Height times width.
    pub plane: usize,
    /// Height and width.
    pub size: [usize; 2],
}

impl Pointwise {
    pub(super) fn in_dims(&self) -> [usize; 4] {
        [self.batch, self.channels_in, self.size[0], self.size[1]]
    }

    pub(super) fn out_dims(&self) -> [usize; 4] {
        [self.batch, self.channels_out, self.size[0], self.size[1]]
    }
}

/// Below this many multiply-adds a product runs on one thread (flex's own threshold for its 1x1
/// forward pass).
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// `dx` (`[batch, in, h, w]`) from `dy` (`[batch, out, h, w]`) and `weight` (`[out, in / groups,
/// 1, 1]`), all row-major.
pub(super) fn input_gradient(dy: &[f32], weight: &[f32], s: &Pointwise) -> Vec<f32> {
    use rayon::prelude::*;
    let (ins, outs) = (s.channels_in / s.groups, s.channels_out / s.groups);
    let plane = s.plane;
    let mut dx = vec![0f32; s.batch * s.channels_in * plane];
    if dx.is_empty() {
        return dx;
    }
    // One task per image and group: `dx`'s rows `ins * plane` long each.
    let task = |(t, dst): (usize, &mut [f32]), parallelism: gemm::Parallelism| {
        let (b, g) = (t / s.groups, t % s.groups);
        let dy = &dy[(b * s.channels_out + g * outs) * plane..][..outs * plane];
        let w = &weight[g * outs * ins..][..outs * ins];
        if outs == 0 {
            return;
        }
        // SAFETY: `dst` is `ins x plane` (row stride `plane`), `w` read as its transpose is
        // `ins x outs` (element (i, o) at `o * ins + i`), `dy` is `outs x plane`; every index
        // lies inside the slices, which the asserting slice operations above bound.
        unsafe {
            gemm::gemm(
                ins,
                plane,
                outs,
                dst.as_mut_ptr(),
                1,
                plane as isize,
                false,
                w.as_ptr(),
                ins as isize,
                1,
                dy.as_ptr(),
                1,
                plane as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    let tasks = s.batch * s.groups;
    let work = ins * outs * plane;
    if tasks >= rayon::current_num_threads() {
        dx.par_chunks_mut(ins * plane)
            .enumerate()
            .for_each(|t| task(t, gemm::Parallelism::None));
    } else {
        let parallelism = if work >= PARALLEL_WORK {
            gemm::Parallelism::Rayon(0)
        } else {
            gemm::Parallelism::None
        };
        dx.chunks_mut(ins * plane)
            .enumerate()
            .for_each(|t| task(t, parallelism));
    }
    dx
}
