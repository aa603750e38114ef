//! A value times one factor per channel, as one pass each way where broadcasting takes three.
//!
//! Squeeze-and-excitation gates (`x[b, c, h, w] * gate[b, c, 1, 1]`: EfficientNet, MobileNetV3,
//! RegNet-Y) and layer scales (`x[b, c, h, w] * gamma[c, 1, 1]`: ConvNeXt) are products by a
//! factor that is constant along the other axes. Written as a broadcast product, flex walks the
//! expanded factor on one thread forward, and backward multiplies again and sums the product
//! over the broadcast axes in separate passes, also on one thread. Here both are one pass, on
//! every core: `x` is seen as `[outer, channels, inner]` and `scale` as `[channels]`; forward
//! `y = x * scale`, backward `dx = dy * scale` (the same kernel) and, where the factor takes
//! gradients (a gate computed from the input), `dscale[c] = sum(dy * x)` over `outer` and
//! `inner`. The sums run in a fixed order, so results do not depend on the number of threads.
//! Other backends and `FIRELIGHT_KERNELS=burn` run Burn's ops. A backend extension, as
//! [`crate::norm`] is.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::tensor::Tensor;

/// Per-channel products with firelight's kernels; the default bodies are Burn's ops.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Remote: cfg(feature = "remote"),
    Autodiff,
)]
pub trait ScaleOps: Backend {
    /// `x` (`[outer, channels, inner]`) times `scale` (`[channels]`), broadcast over `outer`
    /// and `inner`.
    fn fast_scale_channels(x: FloatTensor<Self>, scale: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::scale_channels::<Self>(x, scale)
    }

    /// `sum(a * b)` over the first and last axes of two `[outer, channels, inner]` tensors:
    /// `[channels]`, the gradient of [`fast_scale_channels`](ScaleOps::fast_scale_channels)'s
    /// `scale` when `a` is the output gradient and `b` the input.
    fn fast_channel_dot(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::channel_dot::<Self>(a, b)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ScaleOps for burn_cubecl::CubeBackend {}

// The autodiff rule runs on the client, so a server sees Burn's own ops only.
#[cfg(feature = "remote")]
impl ScaleOps for burn::backend::Remote {}

/// Both ops in Burn's, on any backend.
mod reference {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, TensorMetadata};
    use burn::tensor::Shape;

    pub(super) fn scale_channels<B: Backend>(
        x: FloatTensor<B>,
        scale: FloatTensor<B>,
    ) -> FloatTensor<B> {
        let channels = scale.shape().num_elements();
        B::float_mul(x, B::float_reshape(scale, Shape::new([1, channels, 1])))
    }

    pub(super) fn channel_dot<B: Backend>(a: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
        let channels = a.shape()[1];
        let product = B::float_mul(a, b);
        let summed = B::float_sum_dim(B::float_sum_dim(product, 2), 0);
        B::float_reshape(summed, Shape::new([channels]))
    }
}

#[cfg(feature = "flex")]
mod flex {
    use super::{ScaleOps, reference};
    use crate::flex_data::{len, tensor, values};
    use burn::backend::Flex;
    use burn::backend::TensorMetadata;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::DType;
    use rayon::prelude::*;

    /// Elements per rayon task, at least one row (as `activation`'s tasks).
    const CHUNK: usize = 1 << 15;

    /// How a `[outer, channels, inner]` buffer is cut into rows that each take one factor, or
    /// (for `inner == 1`, channels last) the whole `scale` vector.
    #[derive(Clone, Copy)]
    struct Rows {
        channels: usize,
        inner: usize,
    }

    impl Rows {
        /// Whether a row is one channel's `inner` values (else a whole `[channels]` vector).
        fn per_channel(self) -> bool {
            self.inner > 1
        }

        fn len(self) -> usize {
            if self.per_channel() {
                self.inner
            } else {
                self.channels
            }
        }

        /// Rows per rayon task.
        fn per_task(self) -> usize {
            (CHUNK / self.len().max(1)).max(1)
        }
    }

    /// `dst = src * scale` (or `dst *= scale` without `src`) over the rows starting at row
    /// `first`.
    fn scale_rows(src: Option<&[f32]>, dst: &mut [f32], scale: &[f32], rows: Rows, first: usize) {
        let width = rows.len();
        for (i, d) in dst.chunks_exact_mut(width).enumerate() {
            let s = src.map(|s| &s[i * width..(i + 1) * width]);
            if rows.per_channel() {
                let factor = scale[(first + i) % rows.channels];
                match s {
                    Some(s) => d.iter_mut().zip(s).for_each(|(d, s)| *d = s * factor),
                    None => d.iter_mut().for_each(|d| *d *= factor),
                }
            } else {
                match s {
                    Some(s) => d
                        .iter_mut()
                        .zip(s)
                        .zip(scale)
                        .for_each(|((d, s), f)| *d = s * f),
                    None => d.iter_mut().zip(scale).for_each(|(d, f)| *d *= f),
                }
            }
        }
    }

    /// `sum(a * b)` in 16 lanes, which the compiler keeps in vector registers.
    #[inline]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut lanes = [0f32; 16];
        let (mut ac, mut bc) = (a.chunks_exact(16), b.chunks_exact(16));
        for (a, b) in (&mut ac).zip(&mut bc) {
            for ((l, a), b) in lanes.iter_mut().zip(a).zip(b) {
                *l += a * b;
            }
        }
        for ((l, a), b) in lanes.iter_mut().zip(ac.remainder()).zip(bc.remainder()) {
            *l += a * b;
        }
        lanes.iter().sum()
    }

    /// Whether the kernels take `x` and `scale`: f32, `x` `[outer, channels, inner]` and
    /// `scale` `[channels]`, firelight's kernels on.
    fn fits(x: &FloatTensor<Flex>, scale: &FloatTensor<Flex>) -> Option<Rows> {
        let dims = x.shape();
        let ok = dims.num_dims() == 3
            && x.dtype() == DType::F32
            && scale.dtype() == DType::F32
            && scale.shape().dims::<1>() == [dims[1]]
            && dims.num_elements() > 0
            && !crate::conv::burn_kernels_only();
        ok.then_some(Rows {
            channels: dims[1],
            inner: dims[2],
        })
    }

    impl ScaleOps for Flex {
        fn fast_scale_channels(
            x: FloatTensor<Self>,
            scale: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            let Some(rows) = fits(&x, &scale) else {
                return reference::scale_channels::<Flex>(x, scale);
            };
            let factors = values(&scale);
            let factors = &factors[..rows.channels];
            let n = len(&x);
            let task = rows.per_task() * rows.len();
            // In place when `x` is an intermediate nobody else holds; one pass into a new
            // buffer otherwise, rather than a copy and then a pass over the copy.
            if x.is_unique() && x.is_contiguous() && x.layout().start_offset() == 0 {
                let mut out = x;
                let dst = &mut out.storage_mut::<f32>()[..n];
                dst.par_chunks_mut(task)
                    .enumerate()
                    .for_each(|(t, d)| scale_rows(None, d, factors, rows, t * rows.per_task()));
                return out;
            }
            let src = values(&x);
            // Zeroed by calloc's fresh pages, not by a pass over them.
            let mut dst = vec![0f32; n];
            dst.par_chunks_mut(task)
                .zip(src[..n].par_chunks(task))
                .enumerate()
                .for_each(|(t, (d, s))| scale_rows(Some(s), d, factors, rows, t * rows.per_task()));
            tensor(dst, x.shape())
        }

        fn fast_channel_dot(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
            let dims = a.shape();
            let fits = dims.num_dims() == 3
                && b.shape() == dims
                && a.dtype() == DType::F32
                && b.dtype() == DType::F32
                && dims.num_elements() > 0
                && !crate::conv::burn_kernels_only();
            let rows = fits.then(|| Rows {
                channels: dims[1],
                inner: dims[2],
            });
            let Some(rows) = rows else {
                return reference::channel_dot::<Flex>(a, b);
            };
            let n = len(&a);
            let (av, bv) = (values(&a), values(&b));
            let (av, bv) = (&av[..n], &bv[..n]);
            let channels = rows.channels;
            let mut sums = vec![0f32; channels];
            if rows.per_channel() {
                // One dot product per row, then each channel's rows added in order.
                let width = rows.inner;
                let mut row_dots = vec![0f32; n / width];
                let per_task = rows.per_task();
                row_dots
                    .par_chunks_mut(per_task)
                    .zip(av.par_chunks(per_task * width))
                    .zip(bv.par_chunks(per_task * width))
                    .for_each(|((dots, a), b)| {
                        for ((d, a), b) in dots
                            .iter_mut()
                            .zip(a.chunks_exact(width))
                            .zip(b.chunks_exact(width))
                        {
                            *d = dot(a, b);
                        }
                    });
                for row in row_dots.chunks_exact(channels) {
                    sums.iter_mut().zip(row).for_each(|(s, d)| *s += d);
                }
            } else {
                // Channels last: a partial `[channels]` sum per task, added in task order.
                let task = rows.per_task() * channels;
                let partials: Vec<Vec<f32>> = av
                    .par_chunks(task)
                    .zip(bv.par_chunks(task))
                    .map(|(a, b)| {
                        let mut partial = vec![0f32; channels];
                        for (a, b) in a.chunks_exact(channels).zip(b.chunks_exact(channels)) {
                            for ((p, a), b) in partial.iter_mut().zip(a).zip(b) {
                                *p += a * b;
                            }
                        }
                        partial
                    })
                    .collect();
                for partial in &partials {
                    sums.iter_mut().zip(partial).for_each(|(s, p)| *s += p);
                }
            }
            tensor(sums, [channels])
        }
    }
}

mod autodiff {
    use super::ScaleOps;
    use burn::backend::tensor::FloatTensor;
    use burn_autodiff::Autodiff;
    use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
    use burn_autodiff::grads::Gradients;
    use burn_autodiff::ops::{Backward, Ops, OpsKind, binary};

    /// `x * scale` per channel, differentiable in both.
    #[derive(Debug)]
    struct ScaleChannels;

    impl<B: ScaleOps> Backward<B, 2> for ScaleChannels {
        /// `x` where `scale` takes a gradient, `scale` where `x` does.
        type State = (Option<FloatTensor<B>>, Option<FloatTensor<B>>);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let (x, scale) = ops.state;
            binary::<B, _, _>(
                ops.parents,
                ops.node,
                grads,
                |grad| B::fast_scale_channels(grad, scale.expect("saved when x is tracked")),
                |grad| B::fast_channel_dot(grad, x.expect("saved when scale is tracked")),
            );
        }
    }

    impl<B: ScaleOps, C: CheckpointStrategy> ScaleOps for Autodiff<B, C> {
        fn fast_scale_channels(
            x: FloatTensor<Self>,
            scale: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            let (x_tracked, scale_tracked) = (x.is_tracked(), scale.is_tracked());
            match ScaleChannels
                .prepare::<C>([x.node(), scale.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (x, scale) = (x.into_primitive(), scale.into_primitive());
                    let state = (
                        scale_tracked.then(|| x.clone()),
                        x_tracked.then(|| scale.clone()),
                    );
                    prep.finish(state, B::fast_scale_channels(x, scale))
                }
                OpsKind::UnTracked(prep) => prep.finish(B::fast_scale_channels(
                    x.into_primitive(),
                    scale.into_primitive(),
                )),
            }
        }
    }
}

/// `x` (`[outer, channels, inner]`) times `scale` (`[channels]`), broadcast over the first and
/// last axes: Burn's `x * scale.reshape([1, channels, 1])` to float rounding, differentiable in
/// both, through firelight's CPU kernels on flex. A squeeze-and-excitation gate of
/// `[b, c, h, w]` is `scale_channels(x.reshape([1, b * c, h * w]), gate.reshape([b * c]))`.
///
/// # Panics
///
/// When `scale` is not as long as `x`'s middle axis (a caller's shapes, as Burn's tensor ops
/// panic on).
pub fn scale_channels(x: Tensor<3>, scale: Tensor<1>) -> Tensor<3> {
    use burn::backend::Dispatch;
    let dims = x.dims();
    assert!(
        scale.dims() == [dims[1]],
        "scale_channels: scale {:?} must be [{}]",
        scale.dims(),
        dims[1]
    );
    if dims.iter().product::<usize>() == 0 {
        return x;
    }
    Tensor::from_dispatch(<Dispatch as ScaleOps>::fast_scale_channels(
        x.into_dispatch(),
        scale.into_dispatch(),
    ))
}
