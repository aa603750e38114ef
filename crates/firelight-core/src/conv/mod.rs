//! 2-D convolution through firelight's own CPU kernels where they beat the backend's.
//!
//! [`conv2d`] is Burn's `conv2d` with the same arguments and results. On flex, the 3x3 stride-1
//! convolutions that make up most of a ResNet or VGG run as Winograd F(2x2, 3x3) (`winograd`),
//! forward and, because the input gradient of a stride-1 convolution is itself a 3x3 stride-1
//! convolution (with the kernel flipped and its channel axes swapped), backward too, in place of
//! flex's im2col + gemm forward and col2im transposed convolution backward. Every other
//! convolution, and every other backend, runs Burn's own op. The input gradients of depthwise
//! convolutions (MobileNet, EfficientNet) of any kernel, stride and dilation run directly, plane
//! by plane (`depthwise`), in place of flex's grouped transposed convolution; their forward pass
//! is flex's, which already runs them directly. It is a backend extension, as the
//! ReLU policies are, so Burn itself is not forked. `FIRELIGHT_KERNELS=burn` in the environment
//! turns firelight's kernels off (Burn's ops everywhere), for comparison.

#[cfg(feature = "flex")]
mod depthwise;
#[cfg(feature = "flex")]
mod pointwise;
#[cfg(feature = "flex")]
mod winograd;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

/// Convolutions with firelight's kernels; the default bodies are Burn's ops.
///
/// With and without a bias are two methods because `backend_extension` routes tensors and
/// plain values but not an `Option` of a tensor.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Remote: cfg(feature = "remote"),
    Autodiff,
)]
pub trait ConvOps: Backend {
    /// The forward convolution without a bias, as Burn's `conv2d`.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    /// The forward convolution plus a bias per output channel, as Burn's `conv2d`.
    fn fast_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), options)
    }

    /// The gradient of [`fast_conv2d`](ConvOps::fast_conv2d)'s input, as Burn's
    /// `conv2d_x_backward` (`x` is read for its shape).
    fn fast_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl ConvOps for burn_cubecl::CubeBackend {}

// The autodiff rule runs on the client, so a server sees Burn's own convolutions only.
#[cfg(feature = "remote")]
impl ConvOps for burn::backend::Remote {}

/// Whether `FIRELIGHT_KERNELS=burn` asks for Burn's own kernels everywhere (to compare, or to
/// rule firelight's out when something looks wrong), convolutions and [`crate::activation`]'s
/// alike; read once.
#[cfg(feature = "flex")]
pub(crate) fn burn_kernels_only() -> bool {
    static BURN_ONLY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BURN_ONLY.get_or_init(|| std::env::var("FIRELIGHT_KERNELS").is_ok_and(|v| v == "burn"))
}

#[cfg(feature = "flex")]
mod flex {
    use super::depthwise::{self, Depthwise};
    use super::pointwise::{self, Pointwise};
    use super::winograd::{Conv3x3, WeightLayout, conv3x3};
    use super::{ConvOps, burn_kernels_only};
    use crate::flex_data::{tensor, values};
    use burn::backend::Flex;
    use burn::backend::TensorMetadata;
    use burn::backend::ops::ModuleOps;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::DType;
    use burn::tensor::ops::ConvOptions;

    /// Below this many 2x2 output tiles the 16 products are too thin: streaming the transformed
    /// weights (16 values per tap pair, against the kernel's 9) costs more than the
    /// multiplications saved, and flex's im2col runs instead (measured with `benches/conv.rs`:
    /// ResNet's 512-channel 7x7 layer at batch 1, 16 tiles, ran 2x slower backward).
    const MIN_TILES: usize = 32;
    /// Below this many channels on either side, the 16 products are too thin for gemm.
    const MIN_CHANNELS: usize = 8;

    /// The Winograd shape of a convolution, when it is one Winograd computes exactly: f32, 3x3,
    /// stride 1, undilated, ungrouped, and big enough to pay.
    fn winograd_shape(
        x: &FloatTensor<Flex>,
        weight: &FloatTensor<Flex>,
        options: &ConvOptions<2>,
    ) -> Option<Conv3x3> {
        if x.dtype() != DType::F32 || weight.dtype() != DType::F32 || burn_kernels_only() {
            return None;
        }
        let [batch, channels_in, height, width] = x.shape().dims();
        let [channels_out, weight_in, kh, kw] = weight.shape().dims();
        let shape = Conv3x3 {
            batch,
            channels_in,
            height,
            width,
            channels_out,
            padding: options.padding,
        };
        let fits = (kh, kw) == (3, 3)
            && options.stride == [1, 1]
            && options.dilation == [1, 1]
            && options.groups == 1
            && weight_in == channels_in
            && channels_in.min(channels_out) >= MIN_CHANNELS
            && shape.is_valid()
            && shape.tiles() >= MIN_TILES;
        fits.then_some(shape)
    }

    /// The depthwise shape of a convolution, when it is one: f32, every group one input channel
    /// (`weight` is `[channels * multiplier, 1, kh, kw]`).
    fn depthwise_shape(
        x: &FloatTensor<Flex>,
        weight: &FloatTensor<Flex>,
        options: &ConvOptions<2>,
    ) -> Option<Depthwise> {
        if x.dtype() != DType::F32 || weight.dtype() != DType::F32 || burn_kernels_only() {
            return None;
        }
        let [batch, channels, height, width] = x.shape().dims();
        let [channels_out, weight_in, kh, kw] = weight.shape().dims();
        let fits = options.groups == channels
            && weight_in == 1
            && channels > 0
            && channels_out % channels == 0;
        let shape = Depthwise {
            batch,
            channels,
            multiplier: channels_out / channels.max(1),
            size: [height, width],
            kernel: [kh, kw],
            stride: options.stride,
            dilation: options.dilation,
            padding: options.padding,
        };
        (fits && shape.is_valid()).then_some(shape)
    }

    /// The pointwise shape of a convolution, when it is one: f32, 1x1, stride 1, unpadded, any
    /// groups (dilation does not matter to a 1x1 kernel).
    fn pointwise_shape(
        x: &FloatTensor<Flex>,
        weight: &FloatTensor<Flex>,
        options: &ConvOptions<2>,
    ) -> Option<Pointwise> {
        if x.dtype() != DType::F32 || weight.dtype() != DType::F32 || burn_kernels_only() {
            return None;
        }
        let [batch, channels_in, height, width] = x.shape().dims();
        let [channels_out, weight_in, kh, kw] = weight.shape().dims();
        let groups = options.groups;
        let fits = (kh, kw) == (1, 1)
            && options.stride == [1, 1]
            && options.padding == [(0, 0), (0, 0)]
            && groups > 0
            && channels_in % groups == 0
            && channels_out % groups == 0
            && weight_in * groups == channels_in;
        fits.then_some(Pointwise {
            batch,
            channels_in,
            channels_out,
            groups,
            plane: height * width,
            size: [height, width],
        })
    }

    /// The Winograd convolution when it applies, flex's own otherwise.
    fn forward(
        x: FloatTensor<Flex>,
        weight: FloatTensor<Flex>,
        bias: Option<FloatTensor<Flex>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Flex> {
        let Some(shape) = winograd_shape(&x, &weight, &options) else {
            return Flex::conv2d(x, weight, bias, options);
        };
        let bias = bias.as_ref().map(values);
        let y = conv3x3(
            &values(&x),
            &values(&weight),
            bias.as_deref(),
            &shape,
            WeightLayout::Forward,
        );
        tensor(y, shape.out_dims())
    }

    impl ConvOps for Flex {
        fn fast_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self> {
            forward(x, weight, None, options)
        }

        fn fast_conv2d_bias(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self> {
            forward(x, weight, Some(bias), options)
        }

        fn fast_conv2d_x_backward(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            output_grad: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self> {
            if let Some(shape) = depthwise_shape(&x, &weight, &options)
                && output_grad.shape().dims::<4>() == shape.out_dims()
            {
                let grad =
                    depthwise::input_gradient(&values(&output_grad), &values(&weight), &shape);
                return tensor(grad, shape.in_dims());
            }
            if let Some(shape) = pointwise_shape(&x, &weight, &options)
                && output_grad.dtype() == DType::F32
                && output_grad.shape().dims::<4>() == shape.out_dims()
            {
                let grad =
                    pointwise::input_gradient(&values(&output_grad), &values(&weight), &shape);
                return tensor(grad, shape.in_dims());
            }
            // The input gradient of a stride-1 convolution padded (b, e) is the output gradient
            // convolved with the flipped, transposed kernel, padded (2 - b, 2 - e).
            let backward = winograd_shape(&x, &weight, &options).and_then(|forward| {
                let [(top, bottom), (left, right)] = forward.padding;
                let flip = |p: usize| 2usize.checked_sub(p);
                let [batch, channels, height, width] = output_grad.shape().dims();
                let shape = Conv3x3 {
                    batch,
                    channels_in: channels,
                    height,
                    width,
                    channels_out: forward.channels_in,
                    padding: [(flip(top)?, flip(bottom)?), (flip(left)?, flip(right)?)],
                };
                let same = shape.out_height() == forward.height
                    && shape.out_width() == forward.width
                    && channels == forward.channels_out;
                (same && shape.tiles() >= MIN_TILES).then_some(shape)
            });
            let Some(shape) = backward else {
                return Flex::conv2d_x_backward(x, weight, output_grad, options);
            };
            let grad = conv3x3(
                &values(&output_grad),
                &values(&weight),
                None,
                &shape,
                WeightLayout::FlippedTransposed,
            );
            tensor(grad, shape.out_dims())
        }
    }
}

mod autodiff {
    use super::ConvOps;
    use burn::backend::ops::ModuleOps;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::ops::ConvOptions;
    use burn_autodiff::Autodiff;
    use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
    use burn_autodiff::grads::Gradients;
    use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};

    /// The convolution as a function of its input alone (constant weights and bias, as in a
    /// model being explained).
    #[derive(Debug)]
    struct ConvOfInput;

    impl<B: ConvOps> Backward<B, 1> for ConvOfInput {
        /// The input (for its shape), the weights and the options.
        type State = (FloatTensor<B>, FloatTensor<B>, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let (x, weight, options) = ops.state;
            unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                B::fast_conv2d_x_backward(x, weight, grad, options)
            });
        }
    }

    /// The convolution of `x` by constant `weight` and `bias` on `B`, with [`ConvOfInput`]'s
    /// backward; Burn's own rule where the weights take gradients, since it computes theirs.
    fn conv_of_input<B: ConvOps, C: CheckpointStrategy>(
        x: FloatTensor<Autodiff<B, C>>,
        weight: FloatTensor<Autodiff<B, C>>,
        bias: Option<FloatTensor<Autodiff<B, C>>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Autodiff<B, C>> {
        if weight.is_tracked() || bias.as_ref().is_some_and(|b| b.is_tracked()) {
            return Autodiff::<B, C>::conv2d(x, weight, bias, options);
        }
        let weight = weight.into_primitive();
        let bias = bias.map(|b| b.into_primitive());
        let run = |x: FloatTensor<B>, weight: FloatTensor<B>, options: ConvOptions<2>| match bias {
            Some(bias) => B::fast_conv2d_bias(x, weight, bias, options),
            None => B::fast_conv2d(x, weight, options),
        };
        match ConvOfInput
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let state = (x.clone(), weight.clone(), options.clone());
                prep.finish(state, run(x, weight, options))
            }
            OpsKind::UnTracked(prep) => prep.finish(run(x.into_primitive(), weight, options)),
        }
    }

    impl<B: ConvOps, C: CheckpointStrategy> ConvOps for Autodiff<B, C> {
        fn fast_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self> {
            conv_of_input::<B, C>(x, weight, None, options)
        }

        fn fast_conv2d_bias(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self> {
            conv_of_input::<B, C>(x, weight, Some(bias), options)
        }
    }
}

/// Burn's `conv2d` (same arguments, same results to float rounding), through firelight's CPU
/// kernels where they are faster.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    use burn::backend::Dispatch;
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        Some(bias) => {
            <Dispatch as ConvOps>::fast_conv2d_bias(x, weight, bias.into_dispatch(), options)
        }
        None => <Dispatch as ConvOps>::fast_conv2d(x, weight, options),
    })
}

/// A `burn::nn::conv::Conv2d`'s forward pass through [`conv2d`].
pub fn conv2d_module(conv: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    use burn::nn::PaddingConfig2d;
    let [_, _, height, width] = x.dims();
    // Burn's own rule (its helper is crate-private): "same" splits the padding that keeps
    // ceil(size / stride) outputs, the smaller half first.
    let same = |kernel: usize, stride: usize, size: usize| {
        let out = size.div_ceil(stride);
        let total = if out > 0 {
            ((out - 1) * stride + kernel).saturating_sub(size)
        } else {
            0
        };
        (total / 2, total - total / 2)
    };
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => [
            same(conv.kernel_size[0], conv.stride[0], height),
            same(conv.kernel_size[1], conv.stride[1], width),
        ],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}
