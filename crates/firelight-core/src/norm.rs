//! Layer normalisation as one kernel each way where Burn's ops take a dozen passes.
//!
//! Written with Burn's tensor ops, `(x - mean) / sqrt(var + eps) * gamma + beta` is a mean, a
//! subtraction, a square, a second mean, a square root, a reciprocal, two products and a sum:
//! each a pass over the whole tensor forward and about as many again backward, where autodiff
//! keeps every intermediate. In a transformer or ConvNeXt (a LayerNorm per block, on tensors of
//! the block's full width) that is a large share of a gradient's cost. Here, on flex, the
//! forward pass makes one pass per row (the statistics, then the output, while the row is in
//! cache) and the backward pass one more, from the saved input: with `x_hat = (x - mean) * r`,
//! `r = 1 / sqrt(var + eps)` and `g = dy * gamma`,
//! `dx = r * (g - mean(g) - x_hat * mean(g * x_hat))` per row. Rows are split over rayon's
//! threads, and the loops compiled for AVX-512 and AVX2 and chosen at run time. `gamma` and
//! `beta` are constants for this rule (a model being explained); where either takes gradients
//! (training) Burn's ops run, as they do on every other backend and under
//! `FIRELIGHT_KERNELS=burn`. Like [`crate::conv`], a backend extension: Burn is not forked.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::tensor::Tensor;

/// Layer normalisation with firelight's kernels; the default bodies are Burn's ops.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Remote: cfg(feature = "remote"),
    Autodiff,
)]
pub trait NormOps: Backend {
    /// Each row of `x` (`[rows, width]`) normalised to mean 0 and variance 1 (the biased
    /// variance, plus `epsilon`), times `gamma` plus `beta` (both `[width]`).
    fn fast_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        reference::forward::<Self>(x, gamma, beta, epsilon)
    }

    /// The gradient of [`fast_layer_norm`](NormOps::fast_layer_norm)'s input `x`, given the
    /// output gradient `grad`, with `gamma` constant.
    fn fast_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        reference::backward::<Self>(x, gamma, grad, epsilon)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl NormOps for burn_cubecl::CubeBackend {}

// The autodiff rule runs on the client, so a server sees Burn's own ops only.
#[cfg(feature = "remote")]
impl NormOps for burn::backend::Remote {}

/// Both passes in Burn's ops, on any backend.
mod reference {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, TensorMetadata};
    use burn::tensor::Shape;

    /// `v` (`[width]`) as a row, `[1, width]`, to broadcast over the rows.
    fn row<B: Backend>(v: FloatTensor<B>) -> FloatTensor<B> {
        let width = v.shape().num_elements();
        B::float_reshape(v, Shape::new([1, width]))
    }

    /// `x - mean` and `1 / sqrt(var + epsilon)` (`[rows, 1]`), row by row.
    fn statistics<B: Backend>(x: FloatTensor<B>, epsilon: f64) -> [FloatTensor<B>; 2] {
        let mean = B::float_mean_dim(x.clone(), 1);
        let centred = B::float_sub(x, mean);
        let variance = B::float_mean_dim(B::float_mul(centred.clone(), centred.clone()), 1);
        let inv_std = B::float_recip(B::float_sqrt(B::float_add_scalar(variance, epsilon.into())));
        [centred, inv_std]
    }

    pub(super) fn forward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        epsilon: f64,
    ) -> FloatTensor<B> {
        let [centred, inv_std] = statistics::<B>(x, epsilon);
        let normalised = B::float_mul(centred, inv_std);
        B::float_add(B::float_mul(normalised, row::<B>(gamma)), row::<B>(beta))
    }

    pub(super) fn backward<B: Backend>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        grad: FloatTensor<B>,
        epsilon: f64,
    ) -> FloatTensor<B> {
        let [centred, inv_std] = statistics::<B>(x, epsilon);
        let normalised = B::float_mul(centred, inv_std.clone());
        let g = B::float_mul(grad, row::<B>(gamma));
        let g_mean = B::float_mean_dim(g.clone(), 1);
        let projection = B::float_mean_dim(B::float_mul(g.clone(), normalised.clone()), 1);
        let inner = B::float_sub(
            B::float_sub(g, g_mean),
            B::float_mul(normalised, projection),
        );
        B::float_mul(inner, inv_std)
    }
}

#[cfg(feature = "flex")]
mod flex {
    use super::{NormOps, reference};
    use crate::flex_data::{tensor, values, writable};
    use burn::backend::Flex;
    use burn::backend::TensorMetadata;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::DType;
    use rayon::prelude::*;

    /// Elements per rayon task, at least one row (as `activation`'s tasks).
    const CHUNK: usize = 1 << 15;

    /// `sum(v)` in 16 lanes, which the compiler keeps in one vector register.
    #[inline(always)]
    fn sum(v: &[f32]) -> f32 {
        let mut lanes = [0f32; 16];
        let mut chunks = v.chunks_exact(16);
        for c in &mut chunks {
            for (l, x) in lanes.iter_mut().zip(c) {
                *l += x;
            }
        }
        for (l, x) in lanes.iter_mut().zip(chunks.remainder()) {
            *l += x;
        }
        lanes.iter().sum()
    }

    /// `sum((v - mean)^2)` in 16 lanes.
    #[inline(always)]
    fn squared_deviations(v: &[f32], mean: f32) -> f32 {
        let mut lanes = [0f32; 16];
        let mut chunks = v.chunks_exact(16);
        for c in &mut chunks {
            for (l, x) in lanes.iter_mut().zip(c) {
                let d = x - mean;
                *l += d * d;
            }
        }
        for (l, x) in lanes.iter_mut().zip(chunks.remainder()) {
            let d = x - mean;
            *l += d * d;
        }
        lanes.iter().sum()
    }

    /// The row's mean and `1 / sqrt(var + epsilon)`, two passes (no cancellation).
    #[inline(always)]
    fn moments(x: &[f32], epsilon: f32) -> (f32, f32) {
        let n = x.len() as f32;
        let mean = sum(x) / n;
        let variance = squared_deviations(x, mean) / n;
        (mean, 1.0 / (variance + epsilon).sqrt())
    }

    #[inline(always)]
    fn forward_rows(x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f32, y: &mut [f32]) {
        let width = gamma.len();
        for (x, y) in x.chunks_exact(width).zip(y.chunks_exact_mut(width)) {
            let (mean, inv_std) = moments(x, epsilon);
            for (((y, x), g), b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
                *y = (x - mean) * inv_std * g + b;
            }
        }
    }

    /// `grad` (`[rows, width]`) becomes the input gradient, in place.
    #[inline(always)]
    fn backward_rows(x: &[f32], gamma: &[f32], epsilon: f32, grad: &mut [f32]) {
        let width = gamma.len();
        let n = width as f32;
        for (x, grad) in x.chunks_exact(width).zip(grad.chunks_exact_mut(width)) {
            let (mean, inv_std) = moments(x, epsilon);
            let mut g_lanes = [0f32; 16];
            let mut gx_lanes = [0f32; 16];
            let mut accumulate = |dy: &[f32], x: &[f32], gamma: &[f32]| {
                for j in 0..dy.len() {
                    let g = dy[j] * gamma[j];
                    g_lanes[j] += g;
                    gx_lanes[j] += g * ((x[j] - mean) * inv_std);
                }
            };
            let (mut dys, mut xs, mut gs) = (
                grad.chunks_exact(16),
                x.chunks_exact(16),
                gamma.chunks_exact(16),
            );
            for ((dy, x), g) in (&mut dys).zip(&mut xs).zip(&mut gs) {
                accumulate(dy, x, g);
            }
            accumulate(dys.remainder(), xs.remainder(), gs.remainder());
            let g_mean = g_lanes.iter().sum::<f32>() / n;
            let projection = gx_lanes.iter().sum::<f32>() / n;
            for ((dy, x), g) in grad.iter_mut().zip(x).zip(gamma) {
                let normalised = (x - mean) * inv_std;
                *dy = inv_std * (*dy * g - g_mean - normalised * projection);
            }
        }
    }

    fn forward_chunk(x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f32, y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            fn avx512(x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f32, y: &mut [f32]) {
                forward_rows(x, gamma, beta, epsilon, y)
            }
            #[target_feature(enable = "avx2")]
            fn avx2(x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f32, y: &mut [f32]) {
                forward_rows(x, gamma, beta, epsilon, y)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                return unsafe { avx512(x, gamma, beta, epsilon, y) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { avx2(x, gamma, beta, epsilon, y) };
            }
        }
        forward_rows(x, gamma, beta, epsilon, y)
    }

    fn backward_chunk(x: &[f32], gamma: &[f32], epsilon: f32, grad: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            fn avx512(x: &[f32], gamma: &[f32], epsilon: f32, grad: &mut [f32]) {
                backward_rows(x, gamma, epsilon, grad)
            }
            #[target_feature(enable = "avx2")]
            fn avx2(x: &[f32], gamma: &[f32], epsilon: f32, grad: &mut [f32]) {
                backward_rows(x, gamma, epsilon, grad)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                return unsafe { avx512(x, gamma, epsilon, grad) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { avx2(x, gamma, epsilon, grad) };
            }
        }
        backward_rows(x, gamma, epsilon, grad)
    }

    /// Rows per rayon task.
    fn rows_per_task(width: usize) -> usize {
        (CHUNK / width.max(1)).max(1)
    }

    /// Whether the kernels take these tensors: f32, `x` `[rows, width]` with `width > 0`, the
    /// others `[width]`, and firelight's kernels on.
    fn fits(x: &FloatTensor<Flex>, params: &[&FloatTensor<Flex>]) -> bool {
        let dims = x.shape();
        dims.num_dims() == 2
            && dims[1] > 0
            && x.dtype() == DType::F32
            && params
                .iter()
                .all(|p| p.dtype() == DType::F32 && p.shape().dims::<1>() == [dims[1]])
            && !crate::conv::burn_kernels_only()
    }

    impl NormOps for Flex {
        fn fast_layer_norm(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self> {
            if !fits(&x, &[&gamma, &beta]) {
                return reference::forward::<Flex>(x, gamma, beta, epsilon);
            }
            let width = x.shape()[1];
            let (xs, gs, bs) = (values(&x), values(&gamma), values(&beta));
            let n = x.shape().num_elements();
            let (xs, gs, bs) = (&xs[..n], &gs[..width], &bs[..width]);
            let epsilon = epsilon as f32;
            // Zeroed by calloc's fresh pages, not by a pass over them.
            let mut y = vec![0f32; n];
            let task = rows_per_task(width) * width;
            y.par_chunks_mut(task)
                .zip(xs.par_chunks(task))
                .for_each(|(y, x)| forward_chunk(x, gs, bs, epsilon, y));
            tensor(y, x.shape())
        }

        fn fast_layer_norm_backward(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self> {
            if !fits(&x, &[&gamma]) || grad.dtype() != DType::F32 || grad.shape() != x.shape() {
                return reference::backward::<Flex>(x, gamma, grad, epsilon);
            }
            let width = x.shape()[1];
            let (xs, gs) = (values(&x), values(&gamma));
            let n = x.shape().num_elements();
            let (xs, gs) = (&xs[..n], &gs[..width]);
            let epsilon = epsilon as f32;
            let mut out = writable(grad);
            let dst = &mut out.storage_mut::<f32>()[..n];
            let task = rows_per_task(width) * width;
            dst.par_chunks_mut(task)
                .zip(xs.par_chunks(task))
                .for_each(|(d, x)| backward_chunk(x, gs, epsilon, d));
            out
        }
    }
}

mod autodiff {
    use super::{NormOps, reference};
    use burn::backend::tensor::FloatTensor;
    use burn_autodiff::Autodiff;
    use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
    use burn_autodiff::grads::Gradients;
    use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};

    /// Layer normalisation as a function of its input alone (constant `gamma` and `beta`).
    #[derive(Debug)]
    struct LayerNormOfInput;

    impl<B: NormOps> Backward<B, 1> for LayerNormOfInput {
        /// The input, `gamma` and epsilon.
        type State = (FloatTensor<B>, FloatTensor<B>, f64);

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let (x, gamma, epsilon) = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::fast_layer_norm_backward(x, gamma, grad, epsilon)
            });
        }
    }

    impl<B: NormOps, C: CheckpointStrategy> NormOps for Autodiff<B, C> {
        fn fast_layer_norm(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            epsilon: f64,
        ) -> FloatTensor<Self> {
            // Parameters that take gradients get them from Burn's ops (training).
            if gamma.is_tracked() || beta.is_tracked() {
                return reference::forward::<Self>(x, gamma, beta, epsilon);
            }
            let (gamma, beta) = (gamma.into_primitive(), beta.into_primitive());
            match LayerNormOfInput
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let x = x.into_primitive();
                    let state = (x.clone(), gamma.clone(), epsilon);
                    prep.finish(state, B::fast_layer_norm(x, gamma, beta, epsilon))
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(B::fast_layer_norm(x.into_primitive(), gamma, beta, epsilon))
                }
            }
        }
    }
}

/// Layer normalisation over the last axis of `x`: each vector along it normalised to mean 0
/// and variance 1 (the biased variance plus `epsilon`), times `gamma` plus `beta`, both as long
/// as that axis. Burn's `LayerNorm` (and ONNX's `LayerNormalization` on the last axis) to float
/// rounding, through firelight's CPU kernels on flex.
///
/// # Panics
///
/// When `gamma` or `beta` is not as long as `x`'s last axis (a caller's shapes, as Burn's
/// tensor ops panic on).
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Tensor<D> {
    use burn::backend::Dispatch;
    let dims = x.dims();
    let width = dims[D - 1];
    assert!(
        gamma.dims() == [width] && beta.dims() == [width],
        "layer_norm: gamma {:?} and beta {:?} must be [{width}]",
        gamma.dims(),
        beta.dims()
    );
    let rows: usize = dims[..D - 1].iter().product();
    if rows * width == 0 {
        return x;
    }
    let flat = x.reshape([rows, width]).into_dispatch();
    let y = <Dispatch as NormOps>::fast_layer_norm(
        flat,
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    Tensor::<2>::from_dispatch(y).reshape(dims)
}
