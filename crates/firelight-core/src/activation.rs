//! Element-wise functions through firelight's own CPU kernels where flex calls libm per element.
//!
//! flex computes `sigmoid`, `exp`, `tanh`, `erf` and GELU one element at a time with scalar libm
//! calls, on one thread: on torchvision's EfficientNet-B0 (a sigmoid in every SiLU and
//! squeeze-excitation gate) that was a third of an Integrated Gradients run, and ConvNeXt's
//! GELUs (an `Erf` node each in its ONNX export) sit on its largest tensors. Here they run as
//! branch-free polynomials that the compiler vectorises: `exp` is Cephes' `expf` (Cody-Waite
//! reduction by ln 2, a degree-6 polynomial, the exponent put in by bit arithmetic), `tanh`
//! Cephes' `tanhf`, `erf` its Maclaurin series near 0 and Numerical Recipes' `erfcc` (relative
//! error below 1.2e-7) elsewhere; both sides of a branch are computed and one kept, so that the
//! loop has no jumps. They are compiled for AVX-512 and AVX2 and chosen at run time on x86_64,
//! plain SSE2 (or wasm simd128) otherwise, and split over rayon's threads on large tensors.
//! `exp` and `sigmoid` are within 2 ulp of libm's, `tanh` within 2 and `erf` within 4 ulp (1 and
//! 3 measured), GELU within 4e-7 of its exact value relative to it even at -13; the same number on every CPU, since the polynomials
//! are evaluated with separate multiplies and adds (no FMA contraction) in every variant. The
//! backward passes of `sigmoid` and `exp` are Burn's (`sigmoid_backward`, `grad * exp(x)`) from
//! the saved output; `tanh`'s (`1 - y^2`, from the output), `erf`'s and GELU's (from the saved
//! input) are single vectorised passes too, and so is SiLU (`x * sigmoid(x)`, which the ONNX
//! interpreter fuses from a `Sigmoid` and a `Mul`) each way, from the saved input. Like [`crate::conv`] this is a backend extension, so
//! Burn is not forked, and `FIRELIGHT_KERNELS=burn` turns it off.

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

    /// `tanh(x)`, as Burn's `tanh`.
    fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_tanh(x)
    }

    /// The error function, as Burn's `erf`.
    fn fast_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_erf(x)
    }

    /// The exact GELU `x * Phi(x)` (`Phi` the standard normal CDF), as Burn's `gelu`.
    fn fast_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }

    /// SiLU (swish), `x * sigmoid(x)`, as Burn's `silu`.
    fn fast_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let s = Self::sigmoid(x.clone());
        Self::float_mul(x, s)
    }

    /// `grad * s * (1 + x * (1 - s))` with `s = sigmoid(x)`: the input gradient of SiLU at `x`.
    fn fast_silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let s = Self::sigmoid(x.clone());
        let one_minus = Self::float_add_scalar(Self::float_neg(s.clone()), 1.0.into());
        let slope = Self::float_add_scalar(Self::float_mul(x, one_minus), 1.0.into());
        Self::float_mul(grad, Self::float_mul(s, slope))
    }

    /// `grad * 2 / sqrt(pi) * exp(-x^2)`: the input gradient of `erf` at `x`.
    fn fast_erf_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let square = Self::float_mul(x.clone(), x);
        let density = Self::float_mul_scalar(
            Self::float_exp(Self::float_neg(square)),
            (2.0 / std::f64::consts::PI.sqrt()).into(),
        );
        Self::float_mul(grad, density)
    }

    /// `grad * (1 - y^2)`: the input gradient of `tanh` from its output `y`.
    fn fast_tanh_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let square = Self::float_mul(y.clone(), y);
        let slope = Self::float_add_scalar(Self::float_neg(square), 1.0.into());
        Self::float_mul(grad, slope)
    }

    /// `grad * (Phi(x) + x * phi(x))`: the input gradient of the exact GELU at `x`.
    fn fast_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_backward(x, grad)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ActivationOps for burn_cubecl::CubeBackend {}

// The autodiff rule runs on the client, so a server sees Burn's own ops only.
#[cfg(feature = "remote")]
impl ActivationOps for burn::backend::Remote {}

/// The scalar kernels, shared by every SIMD variant (they are inlined into each).
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
// The coefficients as their sources print them, some with more digits than f32 holds.
#[allow(clippy::excessive_precision)]
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
        exp_sum(x, 0.0)
    }

    /// `exp(hi + lo)` for `|lo|` well below `|hi|`, without rounding `hi + lo` first: `lo` is
    /// added after the reduction by ln 2, where the sum is small. `exp(-z^2)` with `-z^2` held as
    /// an exact `hi` and a `lo` is then accurate to a few ulp even where `z^2` is about 80 (an
    /// ulp of 80 would be a relative error of 1e-5 in the result).
    #[inline(always)]
    pub fn exp_sum(hi: f32, lo: f32) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        // ln 2 split in two (Cody-Waite): n * LN2_HI is exact for the n that occur.
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        let x = hi + lo;
        let t = x * LOG2E + ROUND;
        let n = t - ROUND;
        let r = (hi - n * LN2_HI + lo) - n * LN2_LO;
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

    /// `-a^2 * scale` as an exact `hi` and a small `lo` (for [`exp_sum`]), `scale` a power of 2:
    /// `a` cut to its top 12 significant bits squares exactly in f32.
    #[inline(always)]
    fn minus_square(a: f32, scale: f32) -> (f32, f32) {
        let top = f32::from_bits(a.to_bits() & 0xffff_f000);
        let lo = -((a - top) * (a + top)) * scale;
        // That is inf - inf for an infinite `a`: it keeps its `hi` of -inf and a `lo` of 0 (a
        // NaN `a` has a NaN `hi` already).
        (-(top * top) * scale, if a.is_infinite() { 0.0 } else { lo })
    }

    /// `exp(-a^2 * scale)`, `scale` a power of 2, to a few ulp for every `a`.
    #[inline(always)]
    pub fn exp_minus_square(a: f32, scale: f32) -> f32 {
        let (hi, lo) = minus_square(a, scale);
        exp_sum(hi, lo)
    }

    /// `1 / (1 + exp(-x))`, from `exp(-|x|)` so that nothing overflows.
    #[inline(always)]
    pub fn sigmoid(x: f32) -> f32 {
        let e = exp(-x.abs());
        let r = 1.0 / (1.0 + e);
        if x < 0.0 { e * r } else { r }
    }

    /// `tanh(x)` (Cephes `tanhf`): an odd polynomial below 0.625 in magnitude, and above it
    /// `1 - 2 / (exp(2|x|) + 1)` (no cancellation there: tanh(0.625) is 0.55); both computed
    /// and one kept, so that a loop of it vectorises.
    #[inline(always)]
    pub fn tanh(x: f32) -> f32 {
        let a = x.abs();
        let s = x * x;
        let mut p = -5.704_988_7e-3;
        p = p * s + 2.063_908_9e-2;
        p = p * s - 5.373_971_6e-2;
        p = p * s + 1.333_144_2e-1;
        p = p * s - 3.333_328_2e-1;
        let small = p * s * x + x;
        // exp overflows to infinity past 44, where tanh is 1 in f32 anyway.
        let large = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
        if a < 0.625 { small } else { large }
    }

    /// `erfc(z)` for `z >= 0`, with a relative error below 1.2e-7 everywhere (Numerical
    /// Recipes' Chebyshev fit `erfcc`, `t exp(-z^2 + P(t))` with `t = 1 / (1 + z / 2)`): the tail
    /// stays accurate where `1 - erf` would cancel. `-z^2` comes in as [`minus_square`]'s pair,
    /// so that the caller can square a value it holds exactly (GELU's `x`, not `x / sqrt 2`).
    #[inline(always)]
    fn erfc_nonnegative(z: f32, minus_z_squared: (f32, f32)) -> f32 {
        let t = 1.0 / (1.0 + 0.5 * z);
        let mut p = 0.170_872_77;
        p = p * t - 0.822_152_23;
        p = p * t + 1.488_515_9;
        p = p * t - 1.135_204;
        p = p * t + 0.278_868_07;
        p = p * t - 0.186_288_06;
        p = p * t + 0.096_784_18;
        p = p * t + 0.374_091_96;
        p = p * t + 1.000_023_7;
        p = p * t - 1.265_512_2;
        let (hi, lo) = minus_z_squared;
        t * exp_sum(hi, lo + p)
    }

    /// `erf(x)`: its Maclaurin series below 0.5 in magnitude (where `1 - erfc` would lose the
    /// relative precision of small values), `1 - erfc(|x|)` with `x`'s sign above.
    #[inline(always)]
    pub fn erf(x: f32) -> f32 {
        // 2 / sqrt(pi) * (-1)^n / (n! (2n + 1)), n = 0..7: at 0.5 the next term is below 1e-10.
        const C: [f32; 8] = [
            std::f32::consts::FRAC_2_SQRT_PI,
            -0.376_126_4,
            0.112_837_92,
            -2.686_617e-2,
            5.223_977_5e-3,
            -8.548_327e-4,
            1.205_533_3e-4,
            -1.492_565_6e-5,
        ];
        let s = x * x;
        let mut p = C[7];
        for c in C[..7].iter().rev() {
            p = p * s + c;
        }
        let small = p * x;
        let a = x.abs();
        let large = (1.0 - erfc_nonnegative(a, minus_square(a, 1.0))).copysign(x);
        if a < 0.5 { small } else { large }
    }

    /// `Phi(x)`, the standard normal CDF: `erfc(|x| / sqrt 2) / 2` on the left (accurate in the
    /// tail, where Burn's `(1 + erf(x / sqrt 2)) / 2` cancels), one minus it on the right.
    #[inline(always)]
    pub fn normal_cdf(x: f32) -> f32 {
        let a = x.abs();
        let z = a * std::f32::consts::FRAC_1_SQRT_2;
        let half_tail = 0.5 * erfc_nonnegative(z, minus_square(a, 0.5));
        if x < 0.0 { half_tail } else { 1.0 - half_tail }
    }

    /// The exact GELU, `x * Phi(x)`.
    #[inline(always)]
    pub fn gelu(x: f32) -> f32 {
        x * normal_cdf(x)
    }

    /// `1 / sqrt(2 pi)`: the standard normal density at 0.
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

    /// GELU's derivative, `Phi(x) + x * phi(x)`, times `grad`.
    #[inline(always)]
    pub fn gelu_backward(x: f32, grad: f32) -> f32 {
        let density = FRAC_1_SQRT_2PI * exp_minus_square(x, 0.5);
        grad * (normal_cdf(x) + x * density)
    }

    /// erf's derivative, `2 / sqrt(pi) * exp(-x^2)`, times `grad`.
    #[inline(always)]
    pub fn erf_backward(x: f32, grad: f32) -> f32 {
        grad * (std::f32::consts::FRAC_2_SQRT_PI * exp_minus_square(x, 1.0))
    }

    /// SiLU, `x * sigmoid(x)`.
    #[inline(always)]
    pub fn silu(x: f32) -> f32 {
        x * sigmoid(x)
    }

    /// SiLU's derivative, `s (1 + x (1 - s))` with `s = sigmoid(x)`, times `grad`.
    #[inline(always)]
    pub fn silu_backward(x: f32, grad: f32) -> f32 {
        let s = sigmoid(x);
        grad * (s * (1.0 + x * (1.0 - s)))
    }

    /// tanh's derivative from its output, `1 - y^2`, times `grad`.
    #[inline(always)]
    pub fn tanh_backward(y: f32, grad: f32) -> f32 {
        grad * (1.0 - y * y)
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

    /// An element-wise function, as a type whose `apply` is always inlined. A plain `Fn` is
    /// not enough: the loop calls it through its `Fn::call` shim, which the compiler is free not
    /// to inline, and did not for `erf` (a scalar call per element inside the AVX-512 loop: 17%
    /// of a ConvNeXt run).
    trait Unary: Copy + Send + Sync {
        fn apply(self, x: f32) -> f32;
    }

    /// A function of two elements (a backward rule's saved value and the gradient), as [`Unary`].
    trait Binary: Copy + Send + Sync {
        fn apply(self, a: f32, b: f32) -> f32;
    }

    /// A [`Unary`] or [`Binary`] unit type for each of [`lanes`]' functions.
    macro_rules! lane_types {
        ($($name:ident: $trait:ident($($arg:ident),+) = $f:path;)*) => {$(
            #[derive(Clone, Copy)]
            struct $name;
            impl $trait for $name {
                #[inline(always)]
                fn apply(self, $($arg: f32),+) -> f32 {
                    $f($($arg),+)
                }
            }
        )*};
    }

    lane_types! {
        Sigmoid: Unary(x) = lanes::sigmoid;
        Exp: Unary(x) = lanes::exp;
        Tanh: Unary(x) = lanes::tanh;
        Erf: Unary(x) = lanes::erf;
        Gelu: Unary(x) = lanes::gelu;
        Silu: Unary(x) = lanes::silu;
        SiluBackward: Binary(x, grad) = lanes::silu_backward;
        ErfBackward: Binary(x, grad) = lanes::erf_backward;
        TanhBackward: Binary(y, grad) = lanes::tanh_backward;
        GeluBackward: Binary(x, grad) = lanes::gelu_backward;
    }

    /// `dst[i] = lane(src[i])`, or `lane(dst[i])` in place without a `src`, with the widest
    /// vector unit this CPU has (`lane` is inlined into each variant, which is what vectorises
    /// it: see [`Unary`]).
    fn map_slice<F: Unary>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
        #[inline(always)]
        fn each<F: Unary>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
            match src {
                Some(src) => {
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = lane.apply(*s);
                    }
                }
                None => {
                    for v in dst {
                        *v = lane.apply(*v);
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            fn avx512<F: Unary>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
                each(src, dst, lane)
            }
            #[target_feature(enable = "avx2")]
            fn avx2<F: Unary>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
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
    fn map_values<F: Unary>(src: Option<&[f32]>, dst: &mut [f32], lane: F) {
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
    fn map<F: Unary>(
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

    /// `dst[i] = lane(a[i], dst[i])` with the widest vector unit this CPU has, as [`map_slice`].
    fn zip_slice<F: Binary>(a: &[f32], dst: &mut [f32], lane: F) {
        #[inline(always)]
        fn each<F: Binary>(a: &[f32], dst: &mut [f32], lane: F) {
            for (d, a) in dst.iter_mut().zip(a) {
                *d = lane.apply(*a, *d);
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            fn avx512<F: Binary>(a: &[f32], dst: &mut [f32], lane: F) {
                each(a, dst, lane)
            }
            #[target_feature(enable = "avx2")]
            fn avx2<F: Binary>(a: &[f32], dst: &mut [f32], lane: F) {
                each(a, dst, lane)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                return unsafe { avx512(a, dst, lane) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { avx2(a, dst, lane) };
            }
        }
        each(a, dst, lane)
    }

    /// `lane(a, grad)` element by element, for a backward rule whose saved tensor `a` has the
    /// gradient's shape: written into `grad`'s storage when the gradient owns it (it usually
    /// does: it was just computed), into a new tensor otherwise. `Err` as [`map`].
    // Both tensors come back on `Err` to the caller's fallback, once per op: not worth a box.
    #[allow(clippy::result_large_err)]
    fn zip<F: Binary>(
        a: FloatTensor<Flex>,
        grad: FloatTensor<Flex>,
        lane: F,
    ) -> Result<FloatTensor<Flex>, (FloatTensor<Flex>, FloatTensor<Flex>)> {
        if a.dtype() != DType::F32
            || grad.dtype() != DType::F32
            || a.shape() != grad.shape()
            || crate::conv::burn_kernels_only()
        {
            return Err((a, grad));
        }
        let n = grad.shape().num_elements();
        let a_contiguous = a.to_contiguous();
        let Some(a_values) = a_contiguous.as_slice::<f32>() else {
            return Err((a, grad));
        };
        let a_values = &a_values[..n];
        let mut out =
            if grad.is_unique() && grad.is_contiguous() && grad.layout().start_offset() == 0 {
                grad
            } else {
                // A copy, or a second handle on a contiguous buffer that `storage_mut` then copies
                // on write once `grad` has let go of it.
                let contiguous = grad.to_contiguous();
                drop(grad);
                contiguous
            };
        let dst = &mut out.storage_mut::<f32>()[..n];
        if n <= CHUNK {
            zip_slice(a_values, dst, lane);
        } else {
            dst.par_chunks_mut(CHUNK)
                .zip(a_values.par_chunks(CHUNK))
                .for_each(|(d, a)| zip_slice(a, d, lane));
        }
        Ok(out)
    }

    impl ActivationOps for Flex {
        fn fast_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
            map(x, Sigmoid).unwrap_or_else(Flex::sigmoid)
        }

        fn fast_exp(x: FloatTensor<Self>) -> FloatTensor<Self> {
            map(x, Exp).unwrap_or_else(Flex::float_exp)
        }

        fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
            map(x, Tanh).unwrap_or_else(Flex::float_tanh)
        }

        fn fast_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
            map(x, Erf).unwrap_or_else(Flex::float_erf)
        }

        fn fast_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            map(x, Gelu).unwrap_or_else(Flex::gelu)
        }

        fn fast_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            map(x, Silu).unwrap_or_else(|x| {
                let s = Flex::sigmoid(x.clone());
                Flex::float_mul(x, s)
            })
        }

        fn fast_silu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
            zip(x, grad, SiluBackward).unwrap_or_else(|(x, grad)| {
                let s = Flex::sigmoid(x.clone());
                let one_minus = Flex::float_add_scalar(Flex::float_neg(s.clone()), 1.0.into());
                let slope = Flex::float_add_scalar(Flex::float_mul(x, one_minus), 1.0.into());
                Flex::float_mul(grad, Flex::float_mul(s, slope))
            })
        }

        fn fast_erf_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
            zip(x, grad, ErfBackward).unwrap_or_else(|(x, grad)| {
                let square = Flex::float_mul(x.clone(), x);
                let density = Flex::float_mul_scalar(
                    Flex::float_exp(Flex::float_neg(square)),
                    std::f32::consts::FRAC_2_SQRT_PI.into(),
                );
                Flex::float_mul(grad, density)
            })
        }

        fn fast_tanh_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
            zip(y, grad, TanhBackward).unwrap_or_else(|(y, grad)| {
                let square = Flex::float_mul(y.clone(), y);
                let slope = Flex::float_add_scalar(Flex::float_neg(square), 1.0.into());
                Flex::float_mul(grad, slope)
            })
        }

        fn fast_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
            zip(x, grad, GeluBackward).unwrap_or_else(|(x, grad)| Flex::gelu_backward(x, grad))
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

    /// `y = tanh(x)`; `dx = dy * (1 - y^2)` from the saved `y`.
    #[derive(Debug)]
    struct Tanh;

    impl<B: ActivationOps> Backward<B, 1> for Tanh {
        type State = FloatTensor<B>;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let output = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::fast_tanh_backward(output, grad)
            });
        }
    }

    /// `y = erf(x)`; `dx = dy * 2 / sqrt(pi) * exp(-x^2)` from the saved `x`.
    #[derive(Debug)]
    struct Erf;

    impl<B: ActivationOps> Backward<B, 1> for Erf {
        type State = FloatTensor<B>;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let input = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::fast_erf_backward(input, grad)
            });
        }
    }

    /// `y = gelu(x)`; `dx = dy * (Phi(x) + x phi(x))` from the saved `x`.
    #[derive(Debug)]
    struct Gelu;

    impl<B: ActivationOps> Backward<B, 1> for Gelu {
        type State = FloatTensor<B>;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let input = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::fast_gelu_backward(input, grad)
            });
        }
    }

    /// `y = x * sigmoid(x)`; `dx = dy * s (1 + x (1 - s))` from the saved `x`.
    #[derive(Debug)]
    struct Silu;

    impl<B: ActivationOps> Backward<B, 1> for Silu {
        type State = FloatTensor<B>;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let input = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::fast_silu_backward(input, grad)
            });
        }
    }

    /// `forward` of `x` on `B`, recording `backward` with the input as its state.
    fn from_input<B, C, Op>(
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
                let input = x.into_primitive();
                prep.finish(input.clone(), forward(input))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive())),
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

        fn fast_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
            from_output::<B, C, _>(Tanh, x, B::fast_tanh)
        }

        fn fast_erf(x: FloatTensor<Self>) -> FloatTensor<Self> {
            from_input::<B, C, _>(Erf, x, B::fast_erf)
        }

        fn fast_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            from_input::<B, C, _>(Gelu, x, B::fast_gelu)
        }

        fn fast_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
            from_input::<B, C, _>(Silu, x, B::fast_silu)
        }
    }
}

/// Burn's `sigmoid` (same results to float rounding), through firelight's CPU kernel on flex.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as ActivationOps>::fast_sigmoid(x.into_dispatch()))
}

/// Burn's `silu`, `x * sigmoid(x)` (same results to float rounding), through firelight's CPU
/// kernel on flex: one pass each way, where the product of two tensors takes three backward.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as ActivationOps>::fast_silu(x.into_dispatch()))
}

/// Burn's `exp` (same results to float rounding), through firelight's CPU kernel on flex.
pub fn exp<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as ActivationOps>::fast_exp(x.into_dispatch()))
}

/// Burn's `tanh` (same results to float rounding), through firelight's CPU kernel on flex.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as ActivationOps>::fast_tanh(x.into_dispatch()))
}

/// Burn's `erf`, through firelight's CPU kernel on flex (within a few ulp of the exact value).
pub fn erf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as ActivationOps>::fast_erf(x.into_dispatch()))
}

/// Burn's exact `gelu`, through firelight's CPU kernel on flex; more accurate than Burn's in the
/// left tail, where `1 + erf(x / sqrt 2)` cancels: its normal CDF is `erfc(|x| / sqrt 2) / 2` there.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as ActivationOps>::fast_gelu(x.into_dispatch()))
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

    /// Within `ulp` units in the last place of the f64 value, or within `absolute` of it.
    fn assert_near(name: &str, x: f32, ours: f32, exact: f64, ulp: u32, absolute: f64) {
        let rounded = exact as f32;
        let close = ulps(ours, rounded) <= ulp || (ours as f64 - exact).abs() <= absolute;
        assert!(close, "{name}({x}) = {ours}, exact {exact}");
    }

    /// Every step of `step` through `[lo, hi)`.
    fn sweep(lo: f32, hi: f32, step: f32) -> impl Iterator<Item = f32> {
        let n = ((hi - lo) / step) as usize;
        (0..n).map(move |i| lo + i as f32 * step)
    }

    #[test]
    fn tanh_is_within_two_ulp_of_libm() {
        for x in sweep(-12.0, 12.0, 0.000_29) {
            assert_near("tanh", x, lanes::tanh(x), (x as f64).tanh(), 2, 0.0);
        }
        for x in [1e-30f32, 1e-7, 0.624_999_9, 0.625, 50.0, 1e30] {
            assert_near("tanh", x, lanes::tanh(x), (x as f64).tanh(), 2, 0.0);
            assert_eq!(lanes::tanh(-x), -lanes::tanh(x));
        }
        assert_eq!(lanes::tanh(f32::INFINITY), 1.0);
        assert_eq!(lanes::tanh(f32::NEG_INFINITY), -1.0);
        assert!(lanes::tanh(f32::NAN).is_nan());
    }

    #[test]
    fn erf_is_within_four_ulp_or_1e7_of_libm() {
        for x in sweep(-6.0, 6.0, 0.000_23) {
            assert_near("erf", x, lanes::erf(x), libm::erf(x as f64), 4, 1e-7);
        }
        // Near 0 the relative error matters (erf is x * 2 / sqrt(pi) there): no absolute slack.
        for x in sweep(-0.6, 0.6, 0.000_11).chain([1e-30, 1e-10, 0.499_999_97, 0.5]) {
            assert_near("erf", x, lanes::erf(x), libm::erf(x as f64), 4, 0.0);
        }
        assert_eq!(lanes::erf(f32::INFINITY), 1.0);
        assert_eq!(lanes::erf(f32::NEG_INFINITY), -1.0);
        assert_eq!(lanes::erf(0.0), 0.0);
        assert!(lanes::erf(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_keeps_its_relative_precision_in_the_left_tail() {
        let exact = |x: f64| 0.5 * x * libm::erfc(-x / std::f64::consts::SQRT_2);
        // Relative: the tail, where (1 + erf) would cancel, is where this form is needed.
        for x in sweep(-13.0, 8.0, 0.000_7) {
            let (ours, want) = (lanes::gelu(x) as f64, exact(x as f64));
            let tolerance = 1e-6 * want.abs() + 1e-37;
            assert!(
                (ours - want).abs() <= tolerance,
                "gelu({x}) = {ours}, exact {want}"
            );
        }
        assert_eq!(lanes::gelu(0.0), 0.0);
        assert_eq!(lanes::gelu(f32::INFINITY), f32::INFINITY);
        assert!(lanes::gelu(f32::NAN).is_nan());
    }

    #[test]
    fn backward_lanes_are_the_derivatives() {
        let sqrt_pi = std::f64::consts::PI.sqrt();
        for x in sweep(-9.0, 9.0, 0.001_3) {
            let x64 = x as f64;
            let erf = 2.0 / sqrt_pi * (-x64 * x64).exp();
            let phi = (-0.5 * x64 * x64).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let gelu = 0.5 * libm::erfc(-x64 / std::f64::consts::SQRT_2) + x64 * phi;
            let tanh = 1.0 - x64.tanh().powi(2);
            for (name, ours, want) in [
                ("erf'", lanes::erf_backward(x, 1.5), 1.5 * erf),
                ("gelu'", lanes::gelu_backward(x, 1.5), 1.5 * gelu),
                (
                    "tanh'",
                    lanes::tanh_backward(lanes::tanh(x), 1.5),
                    1.5 * tanh,
                ),
            ] {
                let tolerance = 2e-6 * want.abs() + 4e-7;
                assert!(
                    (ours as f64 - want).abs() <= tolerance,
                    "{name}({x}) = {ours}, exact {want}"
                );
            }
        }
    }
}
