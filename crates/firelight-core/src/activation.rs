//! Element-wise functions through firelight's own CPU kernels where flex calls libm per element.
//!
//! flex computes `sigmoid` and `exp` one element at a time with a scalar `expf` call, on one
//! thread: on torchvision's EfficientNet-B0 (a sigmoid in every SiLU and squeeze-excitation gate)
//! that was a third of an Integrated Gradients run. Here they run as one branch-free polynomial
//! `exp` (Cephes' `expf`: Cody-Waite reduction by ln 2, a degree-6 polynomial, the exponent put
//! in by bit arithmetic) that the compiler vectorises: compiled for AVX-512 and AVX2 and chosen at
//! run time on x86_64, plain SSE2 (or wasm simd128) otherwise, split over rayon's threads on
//! large tensors. The result is within 2 ulp of libm's; it is also the same number on every CPU,
//! since the polynomial is evaluated with separate multiplies and adds (no FMA contraction) in
//! every variant. The backward passes are Burn's (`sigmoid_backward`, `grad * exp(x)`), from the
//! saved output. Like [`crate::conv`] this is a backend extension, so Burn is not forked, and
//! `FIRELIGHT_KERNELS=burn` turns it off.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::tensor::Tensor;

/// Element-wise functions with firelight's kernels; the default bodies are Burn's ops.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Remote: cfg(feature = "remote"),
    Autodiff,
)]
pub trait ActivationOps: Backend {
    /// The logistic function `1 / (1 + exp(-x))`, as Burn's `sigmoid`.
    fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::sigmoid(x)
    }

    /// `exp(x)`, as Burn's `exp`.
    fn fast_exp(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_exp(x)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ActivationOps for burn_cubecl::CubeBackend {}

// The autodiff rule runs on the client, so a server sees Burn's own ops only.
#[cfg(feature = "remote")]
impl ActivationOps for burn::backend::Remote {}

/// The scalar kernels, shared by every SIMD variant (they are inlined into each).
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
mod lanes {
    /// Above this `exp` overflows f32 (ln of f32::MAX).
    const EXP_HI: f32 = 88.722_83;
    /// Below this `exp` is subnormal; it returns 0 there (flushed, as the exponent trick cannot
    /// build a subnormal).
    const EXP_LO: f32 = -87.336_54;
    /// 1.5 * 2^23: adding it rounds a float below 2^22 in magnitude to the nearest integer,
    /// which then sits in the low mantissa bits (no `round` call, which SSE2 lacks).
    const ROUND: f32 = 12_582_912.0;

    /// `exp(x)` (Cephes `expf`), branch-free so that a loop of it vectorises.
    #[inline(always)]
    pub fn exp(x: f32) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        // ln 2 split in two (Cody-Waite): n * LN2_HI is exact for the n that occur.
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        let t = x * LOG2E + ROUND;
        let n = t - ROUND;
        let r = x - n * LN2_HI - n * LN2_LO;
        let mut p = 1.987_569_1e-4;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5; // Cephes writes 5.0000001201e-1, which is 0.5 in f32
        let y = p * (r * r) + r + 1.0;
        // 2^n from n's bits (the low mantissa bits of `t` hold n, offset by ROUND's), as two
        // factors 2^h * 2^(n - h): n runs from -126 to 128, and 2^128 is not a float.
        let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
        let h = n >> 1;
        let power = |k: i32| f32::from_bits((k.wrapping_add(127) as u32) << 23);
        let e = y * power(h) * power(n - h);
        if x > EXP_HI {
            f32::INFINITY
        } else if x < EXP_LO {
            0.0
        } else {
            e // NaN stays NaN: every comparison above is false for it
        }
    }

    /// `1 / (1 + exp(-x))`, from `exp(-|x|)` so that nothing overflows.
    #[inline(always)]
    pub fn sigmoid(x: f32) -> f32 {
        let e = exp(-x.abs());
        let r = 1.0 / (1.0 + e);
        if x < 0.0 { e * r } else { r }
    }
}

#[cfg(feature = "flex")]
mod flex {
    use super::{ActivationOps, lanes};
    use burn::backend::Flex;
    use burn::backend::TensorMetadata;
    use burn::backend::ops::{ActivationOps as _, FloatTensorOps};
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::{DType, TensorData};
    use rayon::prelude::*;

    /// Elements per rayon task: below it one thread does the whole tensor (a task costs about
    /// as much as a few thousand `exp`s).
    const CHUNK: usize = 1 << 15;

    /// `dst[i] = lane(src[i])`, or `lane(dst[i])` in place without a `src`, with the widest
    /// vector unit this CPU has (`lane` is inlined into each variant, which is what vectorises
    /// it).
    fn map_slice<F: Fn(f32) -> f32 + Copy>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
        #[inline(always)]
        fn each<F: Fn(f32) -> f32>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
            match src {
                Some(src) => {
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = lane(*s);
                    }
                }
                None => {
                    for v in dst {
                        *v = lane(*v);
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            fn avx512<F: Fn(f32) -> f32>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
                each(src, dst, lane)
            }
            #[target_feature(enable = "avx2")]
            fn avx2<F: Fn(f32) -> f32>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
                each(src, dst, lane)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                return unsafe { avx512(src, dst, lane) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { avx2(src, dst, lane) };
            }
        }
        each(src, dst, lane)
    }

    /// [`map_slice`], split over rayon's threads when there are enough elements.
    fn map_values<F: Fn(f32) -> f32 + Copy + Send + Sync>(
        src: Option<&[f32]>,
        dst: &mut [f32],
        lane: F,
    ) {
        if dst.len() <= CHUNK {
            return map_slice(src, dst, lane);
        }
        match src {
            Some(src) => dst
                .par_chunks_mut(CHUNK)
                .zip(src.par_chunks(CHUNK))
                .for_each(|(d, s)| map_slice(Some(s), d, lane)),
            None => dst
                .par_chunks_mut(CHUNK)
                .for_each(|d| map_slice(None, d, lane)),
        }
    }

    /// `lane` over every element of `x`: in place when `x` owns its contiguous storage (an
    /// intermediate value of a forward pass), into a new tensor in one pass otherwise (a value
    /// the graph also holds, as SiLU's `x * sigmoid(x)` does). `Err(x)` when `x` is not f32 or
    /// firelight's kernels are turned off.
    fn map<F: Fn(f32) -> f32 + Copy + Send + Sync>(
        mut x: FloatTensor<Flex>,
        lane: F,
    ) -> Result<FloatTensor<Flex>, FloatTensor<Flex>> {
        if x.dtype() != DType::F32 || crate::conv::burn_kernels_only() {
            return Err(x);
        }
        let n = x.shape().num_elements();
        if x.is_unique() && x.is_contiguous() && x.layout().start_offset() == 0 {
            map_values(None, &mut x.storage_mut::<f32>()[..n], lane);
            return Ok(x);
        }
        let contiguous = x.to_contiguous();
        let Some(src) = contiguous.as_slice::<f32>() else {
            return Err(x);
        };
        // Zeroed by calloc's fresh pages, not by a pass over them.
        let mut dst = vec![0f32; n];
        map_values(Some(src), &mut dst, lane);
        Ok(FloatTensor::<Flex>::from_data(TensorData::new(
            dst,
            x.shape(),
        )))
    }

    impl ActivationOps for Flex {
        fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
            map(x, lanes::sigmoid).unwrap_or_else(Flex::sigmoid)
        }

        fn fast_exp(x: FloatTensor<Self>) -> FloatTensor<Self> {
            map(x, lanes::exp).unwrap_or_else(Flex::float_exp)
        }
    }
}

mod autodiff {
    use super::ActivationOps;
    use burn::backend::tensor::FloatTensor;
    use burn_autodiff::Autodiff;
    use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
    use burn_autodiff::grads::Gradients;
    use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};

    /// `y = sigmoid(x)`; `dx = dy * y * (1 - y)` from the saved `y`.
    #[derive(Debug)]
    struct Sigmoid;

    impl<B: ActivationOps> Backward<B, 1> for Sigmoid {
        type State = FloatTensor<B>;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let output = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::sigmoid_backward(output, grad)
            });
        }
    }

    /// `y = exp(x)`; `dx = dy * y` from the saved `y`.
    #[derive(Debug)]
    struct Exp;

    impl<B: ActivationOps> Backward<B, 1> for Exp {
        type State = FloatTensor<B>;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let output = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::float_mul(grad, output)
            });
        }
    }

    /// `forward` of `x` on `B`, recording `backward` with the output as its state.
    fn from_output<B, C, Op>(
        backward: Op,
        x: FloatTensor<Autodiff<B, C>>,
        forward: fn(FloatTensor<B>) -> FloatTensor<B>,
    ) -> FloatTensor<Autodiff<B, C>>
    where
        B: ActivationOps,
        C: CheckpointStrategy,
        Op: Backward<B, 1, State = FloatTensor<B>>,
    {
        match backward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = forward(x.into_primitive());
                prep.finish(output.clone(), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive())),
        }
    }

    impl<B: ActivationOps, C: CheckpointStrategy> ActivationOps for Autodiff<B, C> {
        fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
            from_output::<B, C, _>(Sigmoid, x, B::fast_sigmoid)
        }

        fn fast_exp(x: FloatTensor<Self>) -> FloatTensor<Self> {
            from_output::<B, C, _>(Exp, x, B::fast_exp)
        }
    }
}

/// Burn's `sigmoid` (same results to float rounding), through firelight's CPU kernel on flex.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as ActivationOps>::fast_sigmoid(x.into_dispatch()))
}

/// Burn's `exp` (same results to float rounding), through firelight's CPU kernel on flex.
pub fn exp<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as ActivationOps>::fast_exp(x.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use super::lanes;

    /// Distance in units in the last place between two finite floats of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_over_its_whole_range() {
        let mut x = -87.0f32;
        let mut worst = 0;
        while x < 88.5 {
            let (ours, libm) = (lanes::exp(x), x.exp());
            worst = worst.max(ulps(ours, libm));
            x += 0.000_37;
        }
        assert!(worst <= 2, "worst {worst} ulp");
    }

    #[test]
    fn exp_overflows_underflows_and_keeps_nan_as_libm_does() {
        assert_eq!(lanes::exp(0.0), 1.0);
        assert_eq!(lanes::exp(89.0), f32::INFINITY);
        assert_eq!(lanes::exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(lanes::exp(-104.0), 0.0);
        assert_eq!(lanes::exp(f32::NEG_INFINITY), 0.0);
        assert!(lanes::exp(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_is_within_two_ulp_of_the_exact_formula() {
        let mut x = -80.0f32;
        let mut worst = 0;
        while x < 80.0 {
            let exact = (1.0 / (1.0 + (-(x as f64)).exp())) as f32;
            worst = worst.max(ulps(lanes::sigmoid(x), exact));
            x += 0.000_31;
        }
        assert!(worst <= 2, "worst {worst} ulp");
        assert_eq!(lanes::sigmoid(f32::INFINITY), 1.0);
        assert_eq!(lanes::sigmoid(f32::NEG_INFINITY), 0.0);
        assert!(lanes::sigmoid(f32::NAN).is_nan());
    }
}
