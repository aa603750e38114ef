//! Network layers: convolution, pooling, normalisation, matrix products, softmax, dropout.

use burn::tensor::module::{avg_pool2d, conv1d, max_pool2d, max_pool2d_with_indices};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Tensor, activation};
use firelight_core::conv::conv2d;
use firelight_core::lrp::{self, AffineKind};
use firelight_core::{Error, ReluPolicy, Result};
use onnx_ir::Node;
use onnx_ir::node::batch_norm::BatchNormConfig;
use onnx_ir::node::dropout::DropoutInput;
use onnx_ir::node::padding::{AutoPad, PaddingConfig1d, PaddingConfig2d};

use super::{Context, broadcast, optional, physical, required, resolve_axis};
use crate::value::{Kind, MAX_RANK, Value, padded};

type F = Tensor<MAX_RANK>;

fn rank_error(what: &str, expected: usize, got: &[usize]) -> Error {
    Error::Model(format!(
        "{what} expects a rank-{expected} input, got shape {got:?}"
    ))
}

fn nonzero(values: &[usize], what: &str) -> Result<()> {
    if values.contains(&0) {
        return Err(Error::Model(format!(
            "{what} must be non-zero, got {values:?}"
        )));
    }
    Ok(())
}

/// Per-side padding of one spatial axis under ONNX's `auto_pad` (SAME_* pad so that the output is
/// `ceil(input / stride)`; the odd pixel goes at the end for SAME_UPPER).
fn same_padding(
    auto_pad: &AutoPad,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Option<(usize, usize)> {
    let upper = match auto_pad {
        AutoPad::SameUpper => true,
        AutoPad::SameLower => false,
        AutoPad::Valid => return Some((0, 0)),
        _ => return None,
    };
    let out = input.div_ceil(stride.max(1));
    let effective = kernel.saturating_sub(1) * dilation + 1;
    let total = (out.saturating_sub(1) * stride + effective).saturating_sub(input);
    let (small, large) = (total / 2, total - total / 2);
    Some(if upper {
        (small, large)
    } else {
        (large, small)
    })
}

fn pads_2d(
    padding: &PaddingConfig2d,
    auto_pad: &AutoPad,
    spatial: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> [(usize, usize); 2] {
    let explicit = match padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(*top, *bottom), (*left, *right)],
        _ => [(0, 0), (0, 0)],
    };
    std::array::from_fn(|i| {
        same_padding(auto_pad, spatial[i], kernel[i], stride[i], dilation[i]).unwrap_or(explicit[i])
    })
}

fn pads_1d(
    padding: &PaddingConfig1d,
    auto_pad: &AutoPad,
    len: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> (usize, usize) {
    let explicit = match padding {
        PaddingConfig1d::Explicit(left, right) => (*left, *right),
        _ => (0, 0),
    };
    same_padding(auto_pad, len, kernel, stride, dilation).unwrap_or(explicit)
}

/// Refuses windows larger than the padded input and empty inputs before Burn sees them.
fn check_window(
    what: &str,
    input: &[usize],
    pads: &[(usize, usize)],
    kernel: &[usize],
    dilation: &[usize],
) -> Result<()> {
    if input.contains(&0) {
        return Err(Error::Model(format!(
            "{what} cannot run on an empty input of shape {input:?}"
        )));
    }
    let spatial = &input[input.len() - kernel.len()..];
    for i in 0..kernel.len() {
        let window = (kernel[i].max(1) - 1) * dilation[i] + 1;
        if spatial[i] + pads[i].0 + pads[i].1 < window {
            return Err(Error::Model(format!(
                "the {what} kernel {kernel:?} (dilation {dilation:?}) is larger than the padded input: spatial size {spatial:?}, padding {pads:?}"
            )));
        }
    }
    Ok(())
}

fn dims4(v: &Value, what: &str) -> Result<[usize; 4]> {
    v.shape()
        .try_into()
        .map_err(|_| rank_error(what, 4, v.shape()))
}

fn out4(t: Tensor<4>) -> Value {
    let shape = t.dims().to_vec();
    Value::float6(t.reshape(padded(&shape)), shape)
}

/// Max or average pooling, under the rule of the pass.
#[derive(Clone, Copy)]
enum Pool {
    Max(PoolRule),
    /// Average pooling, counting padded cells or not.
    Average {
        count_include_pad: bool,
        rule: PoolRule,
    },
}

/// What a pooling layer passes back.
#[derive(Clone, Copy, PartialEq)]
enum PoolRule {
    /// Its gradient.
    Gradient,
    /// DeepLift's max-pool rule (average pooling is linear: its gradient).
    DeepLift,
    /// zennit's LRP: the Norm rule for average pooling; a max pool passes each window's
    /// relevance to its winner (its gradient).
    Norm,
    /// LRP's epsilon rule for both (Captum's defaults).
    Epsilon,
}

impl PoolRule {
    fn of(ctx: &Context) -> Self {
        match ctx.relu {
            ReluPolicy::DeepLift => PoolRule::DeepLift,
            ReluPolicy::Lrp(c) if c.pools_by_epsilon() => PoolRule::Epsilon,
            ReluPolicy::Lrp(_) => PoolRule::Norm,
            _ => PoolRule::Gradient,
        }
    }
}

/// Captum's epsilon for pooling layers.
const CAPTUM_EPSILON: f64 = 1e-9;

/// A pooling window in two dimensions; 1-D pools run as 2-D with a window of height 1.
struct Window {
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [(usize, usize); 2],
    dilation: [usize; 2],
    ceil_mode: bool,
}

impl Window {
    fn one_d(
        kernel: usize,
        stride: usize,
        pads: (usize, usize),
        dilation: usize,
        ceil_mode: bool,
    ) -> Self {
        Self {
            kernel: [1, kernel],
            strides: [1, stride],
            pads: [(0, 0), pads],
            dilation: [1, dilation],
            ceil_mode,
        }
    }
}

/// Pools `[batch, channels, h, w]` after the checks Burn would otherwise panic on.
fn pool2d(pool: Pool, x: Tensor<4>, window: Window) -> Result<Tensor<4>> {
    let what = match pool {
        Pool::Max(_) => "MaxPool",
        Pool::Average { .. } => "AveragePool",
    };
    nonzero(&window.kernel, &format!("{what} kernel_shape"))?;
    nonzero(&window.strides, &format!("{what} strides"))?;
    nonzero(&window.dilation, &format!("{what} dilations"))?;
    check_window(
        what,
        &x.dims(),
        &window.pads,
        &window.kernel,
        &window.dilation,
    )?;
    Ok(match pool {
        Pool::Max(rule) => {
            let options = MaxPoolOptions::new(window.kernel)
                .with_stride(window.strides)
                .with_padding_pairs(window.pads)
                .with_dilation(window.dilation)
                .with_ceil_mode(window.ceil_mode);
            match rule {
                PoolRule::DeepLift => firelight_core::deeplift::max_pool2d(x, options),
                PoolRule::Epsilon => lrp::max_pool_epsilon(
                    x,
                    CAPTUM_EPSILON,
                    |t| max_pool2d(t, options.clone()),
                    |xd, u| at_winners(xd, u, options.clone()),
                ),
                PoolRule::Gradient | PoolRule::Norm => max_pool2d(x, options),
            }
        }
        Pool::Average {
            count_include_pad,
            rule,
        } => {
            if window.dilation != [1, 1] {
                return Err(Error::Model(format!(
                    "AveragePool with dilations {:?} is not supported (only 1)",
                    window.dilation
                )));
            }
            let options = AvgPoolOptions::new(window.kernel)
                .with_stride(window.strides)
                .with_padding_pairs(window.pads)
                .with_count_include_pad(count_include_pad)
                .with_ceil_mode(window.ceil_mode);
            let pool = |t| avg_pool2d(t, options.clone());
            match rule {
                PoolRule::Norm => lrp::norm(x, pool),
                PoolRule::Epsilon => lrp::norm_with(x, CAPTUM_EPSILON, pool),
                PoolRule::Gradient | PoolRule::DeepLift => pool(x),
            }
        }
    })
}

/// `u` at the winners of `x`'s max-pool windows: the max pool's Jacobian at `x` applied to `u`.
fn at_winners(x: Tensor<4>, u: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let (_, indices) = max_pool2d_with_indices(x, options);
    let [_, _, ho, wo] = indices.dims();
    u.reshape([n, c, h * w])
        .gather(2, indices.reshape([n, c, ho * wo]))
        .reshape([n, c, ho, wo])
}

/// The length of a `[batch, channels, length]` input.
fn len3(v: &Value, what: &str) -> Result<usize> {
    let [_, _, len]: [usize; 3] = v
        .shape()
        .try_into()
        .map_err(|_| rank_error(what, 3, v.shape()))?;
    Ok(len)
}

/// A `[batch, channels, length]` value as an image of height 1.
fn as_image(v: &Value) -> Result<Tensor<4>> {
    let [b, c, len]: [usize; 3] = v
        .shape()
        .try_into()
        .map_err(|_| rank_error("pooling", 3, v.shape()))?;
    Ok(v.float("input")?.reshape([b, c, 1, len]))
}

/// An image of height 1 back to `[batch, channels, length]`.
fn out3(t: Tensor<4>) -> Value {
    let [b, c, _, len] = t.dims();
    Value::float6(t.reshape(padded(&[b, c, len])), vec![b, c, len])
}

/// `[C]` parameters shaped to broadcast along axis 1 of a rank-`rank` input.
fn per_channel(param: &Value, rank: usize) -> Result<F> {
    let c = param.num_elements();
    let mut shape = vec![1; rank];
    if rank < 2 {
        return Err(Error::Model(format!(
            "per-channel parameters need rank >= 2 inputs, got rank {rank}"
        )));
    }
    shape[1] = c;
    Ok(param.as_float().reshape(padded(&shape)))
}

/// Evaluates `node` when it is a layer.
/// A 2-D Conv node's input, weight, bias and options, after the checks Burn would panic on.
fn conv2d_parts(
    c: &onnx_ir::node::conv2d::Conv2dConfig,
    inputs: &[Option<Value>],
) -> Result<(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>)> {
    let v = required(inputs, 0)?;
    let [_, _, h, w] = dims4(v, "Conv")?;
    nonzero(&c.stride, "Conv strides")?;
    nonzero(&c.dilation, "Conv dilations")?;
    if c.groups == 0 {
        return Err(Error::Model("Conv group must be non-zero".into()));
    }
    let pads = pads_2d(
        &c.padding,
        &c.auto_pad,
        [h, w],
        c.kernel_size,
        c.stride,
        c.dilation,
    );
    let weight = required(inputs, 1)?;
    let wd = dims4(weight, "Conv weight")?;
    check_window("Conv", v.shape(), &pads, &[wd[2], wd[3]], &c.dilation)?;
    let bias = optional(inputs, 2).map(|b| b.as_float().reshape([b.num_elements()]));
    let options = ConvOptions::new_with_padding(c.stride, pads, c.dilation, c.groups);
    if v.shape()[1] != wd[1] * c.groups {
        return Err(Error::Model(format!(
            "Conv input has {} channels but the weight {wd:?} with group {} expects {}",
            v.shape()[1],
            c.groups,
            wd[1] * c.groups
        )));
    }
    Ok((v.float_at::<4>()?, weight.float_at::<4>()?, bias, options))
}

/// A 2-D Conv node followed by the BatchNormalization node `bn` (whose scale, bias, mean and
/// variance are `bn_params`), run as one affine layer under LRP: the batch norm merged into the
/// convolution's weights and bias, as zennit's canonizers do, so the rule sees the layer the
/// relevance actually flows through. Returns the batch norm's output.
pub(crate) fn conv_bn_lrp(
    conv: &Node,
    inputs: &[Option<Value>],
    bn: &Node,
    bn_params: [&Value; 4],
    ctx: &Context,
) -> Result<Vec<Value>> {
    let (Node::Conv2d(c), Node::BatchNormalization(b), ReluPolicy::Lrp(composite)) =
        (conv, bn, ctx.relu)
    else {
        return Err(Error::Model(
            "a Conv + BatchNormalization merge outside LRP".into(),
        ));
    };
    let epsilon = match &b.config {
        BatchNormConfig::Static(c) => c.epsilon,
        BatchNormConfig::Runtime(c) => c.epsilon,
    };
    let (x, weight, bias, options) = conv2d_parts(&c.config, inputs)?;
    let [out_channels, ..] = weight.dims();
    let vector = |v: &Value| -> Result<Tensor<1>> {
        if v.num_elements() != out_channels {
            return Err(Error::Model(format!(
                "BatchNormalization parameter of {} values after a Conv of {out_channels} channels",
                v.num_elements()
            )));
        }
        Ok(v.as_float().reshape([out_channels]))
    };
    let [scale, shift, mean, var] = bn_params;
    let gain = vector(scale)? / (vector(var)? + epsilon).sqrt();
    let merged_weight = weight * gain.clone().reshape([out_channels, 1, 1, 1]);
    let conv_bias = bias.unwrap_or_else(|| mean.as_float().reshape([out_channels]).zeros_like());
    let merged_bias = (conv_bias - vector(mean)?) * gain + vector(shift)?;
    let y = lrp::affine(
        composite.rule(AffineKind::Convolution, ctx.first_affine),
        x,
        merged_weight,
        Some(merged_bias),
        |x, w, b| conv2d(x, w, b, options.clone()),
    );
    Ok(vec![out4(y)])
}

pub(super) fn eval(
    node: &Node,
    inputs: &[Option<Value>],
    ctx: &Context,
) -> Result<Option<Vec<Value>>> {
    let deeplift = ctx.relu == ReluPolicy::DeepLift;
    use Node as N;
    let x = || required(inputs, 0);
    let out = match node {
        N::Conv2d(n) => {
            let (x, weight, bias, options) = conv2d_parts(&n.config, inputs)?;
            let y = match ctx.relu {
                ReluPolicy::Lrp(composite) => lrp::affine(
                    composite.rule(AffineKind::Convolution, ctx.first_affine),
                    x,
                    weight,
                    bias,
                    |x, w, b| conv2d(x, w, b, options.clone()),
                ),
                _ => conv2d(x, weight, bias, options),
            };
            vec![out4(y)]
        }
        N::Conv1d(n) => {
            let c = &n.config;
            let v = x()?;
            let [_, _, len]: [usize; 3] = v
                .shape()
                .try_into()
                .map_err(|_| rank_error("Conv", 3, v.shape()))?;
            nonzero(
                &[c.stride, c.dilation, c.groups],
                "Conv stride/dilation/group",
            )?;
            let pads = pads_1d(
                &c.padding,
                &c.auto_pad,
                len,
                c.kernel_size,
                c.stride,
                c.dilation,
            );
            let weight = required(inputs, 1)?;
            let kernel = *weight.shape().last().unwrap_or(&1);
            check_window("Conv", v.shape(), &[pads], &[kernel], &[c.dilation])?;
            if weight.rank() != 3 || v.shape()[1] != weight.shape()[1] * c.groups {
                return Err(Error::Model(format!(
                    "Conv input {:?} does not fit weight {:?} with group {}",
                    v.shape(),
                    weight.shape(),
                    c.groups
                )));
            }
            let bias = optional(inputs, 2).map(|b| b.as_float().reshape([b.num_elements()]));
            let options = ConvOptions::new_with_padding([c.stride], [pads], [c.dilation], c.groups);
            let y = conv1d(v.float_at::<3>()?, weight.float_at::<3>()?, bias, options);
            let shape = y.dims().to_vec();
            vec![Value::float6(y.reshape(padded(&shape)), shape)]
        }
        N::MaxPool2d(n) => {
            let c = &n.config;
            let v = x()?;
            let [_, _, h, w] = dims4(v, "MaxPool")?;
            let pads = pads_2d(
                &c.padding,
                &c.auto_pad,
                [h, w],
                c.kernel_size,
                c.strides,
                c.dilation,
            );
            let window = Window {
                kernel: c.kernel_size,
                strides: c.strides,
                pads,
                dilation: c.dilation,
                ceil_mode: c.ceil_mode,
            };
            vec![out4(pool2d(
                Pool::Max(PoolRule::of(ctx)),
                v.float_at::<4>()?,
                window,
            )?)]
        }
        N::MaxPool1d(n) => {
            let c = &n.config;
            let v = x()?;
            let len = len3(v, "MaxPool")?;
            let pads = pads_1d(
                &c.padding,
                &c.auto_pad,
                len,
                c.kernel_size,
                c.stride,
                c.dilation,
            );
            let window = Window::one_d(c.kernel_size, c.stride, pads, c.dilation, c.ceil_mode);
            vec![out3(pool2d(
                Pool::Max(PoolRule::of(ctx)),
                as_image(v)?,
                window,
            )?)]
        }
        N::AveragePool2d(n) => {
            let c = &n.config;
            let v = x()?;
            let [_, _, h, w] = dims4(v, "AveragePool")?;
            let pads = pads_2d(
                &c.padding,
                &c.auto_pad,
                [h, w],
                c.kernel_size,
                c.strides,
                [1, 1],
            );
            let window = Window {
                kernel: c.kernel_size,
                strides: c.strides,
                pads,
                dilation: c.dilation,
                ceil_mode: c.ceil_mode,
            };
            let pool = Pool::Average {
                count_include_pad: c.count_include_pad,
                rule: PoolRule::of(ctx),
            };
            vec![out4(pool2d(pool, v.float_at::<4>()?, window)?)]
        }
        N::AveragePool1d(n) => {
            let c = &n.config;
            let v = x()?;
            let len = len3(v, "AveragePool")?;
            let pads = pads_1d(&c.padding, &c.auto_pad, len, c.kernel_size, c.stride, 1);
            let window = Window::one_d(c.kernel_size, c.stride, pads, c.dilation, c.ceil_mode);
            let pool = Pool::Average {
                count_include_pad: c.count_include_pad,
                rule: PoolRule::of(ctx),
            };
            vec![out3(pool2d(pool, as_image(v)?, window)?)]
        }
        N::GlobalAveragePool(_) | N::GlobalMaxPool(_) => {
            let v = x()?;
            if v.rank() < 3 {
                return Err(rank_error("global pooling", 3, v.shape()));
            }
            check_window("global pooling", v.shape(), &[], &[], &[])?;
            let [b, c] = [v.shape()[0], v.shape()[1]];
            let spatial: usize = v.shape()[2..].iter().product();
            let t = v.float("input")?.reshape([b, c, spatial]);
            let t = if matches!(node, N::GlobalAveragePool(_)) {
                match PoolRule::of(ctx) {
                    PoolRule::Norm => lrp::norm(t, |t| t.mean_dim(2)),
                    PoolRule::Epsilon => lrp::norm_with(t, CAPTUM_EPSILON, |t| t.mean_dim(2)),
                    _ => t.mean_dim(2),
                }
            } else {
                t.max_dim(2)
            };
            let mut shape = vec![b, c];
            shape.extend(std::iter::repeat_n(1, v.rank() - 2));
            vec![Value::float6(t.reshape(padded(&shape)), shape)]
        }
        N::BatchNormalization(n) => {
            let epsilon = match &n.config {
                BatchNormConfig::Static(c) => c.epsilon,
                BatchNormConfig::Runtime(c) => c.epsilon,
            };
            let v = x()?;
            let rank = v.rank();
            let scale = per_channel(required(inputs, 1)?, rank)?;
            let bias = per_channel(required(inputs, 2)?, rank)?;
            let mean = per_channel(required(inputs, 3)?, rank)?;
            let var = per_channel(required(inputs, 4)?, rank)?;
            // Folded to one multiply-add over the activations: the per-channel work is tiny.
            let gain = scale / (var + epsilon).sqrt();
            let shift = bias - mean * gain.clone();
            vec![Value::float6(
                v.float("input")? * gain + shift,
                v.shape().to_vec(),
            )]
        }
        N::InstanceNormalization(n) => {
            let v = x()?;
            if v.rank() < 3 {
                return Err(rank_error("InstanceNormalization", 3, v.shape()));
            }
            let [b, c] = [v.shape()[0], v.shape()[1]];
            let spatial: usize = v.shape()[2..].iter().product();
            let t = v.float("input")?.reshape([b, c, spatial]);
            let normalised = normalise_last(t, n.config.epsilon).reshape(padded(v.shape()));
            let scale = per_channel(required(inputs, 1)?, v.rank())?;
            let bias = per_channel(required(inputs, 2)?, v.rank())?;
            vec![Value::float6(normalised * scale + bias, v.shape().to_vec())]
        }
        N::LayerNormalization(n) => {
            let v = x()?;
            let axis = resolve_axis(n.config.axis, v.rank())?;
            let outer: usize = v.shape()[..axis].iter().product();
            let inner: usize = v.shape()[axis..].iter().product();
            if n.outputs.len() <= 1
                && let Some(y) = fused_layer_norm(v, inputs, [outer, inner], n.config.epsilon)?
            {
                return Ok(Some(vec![y]));
            }
            let t = v.float("input")?.reshape([1, outer, inner]);
            let mean = t.clone().mean_dim(2);
            let centred = t - mean.clone();
            let inv_std = (centred.clone().powi_scalar(2).mean_dim(2) + n.config.epsilon)
                .sqrt()
                .recip();
            let normalised = (centred * inv_std.clone()).reshape(padded(v.shape()));
            let trailing = |p: &Value| -> Result<F> {
                let shape = broadcast(v.shape(), p.shape())?;
                if shape != v.shape() {
                    return Err(Error::Model(format!(
                        "LayerNormalization parameter of shape {:?} does not fit input {:?}",
                        p.shape(),
                        v.shape()
                    )));
                }
                Ok(p.as_float())
            };
            let mut y = normalised * trailing(required(inputs, 1)?)?;
            if let Some(bias) = optional(inputs, 2) {
                y = y + trailing(bias)?;
            }
            // The optional Mean and InvStdDev outputs keep the input's rank with ones from `axis`.
            let mut stat_shape = v.shape().to_vec();
            stat_shape[axis..].iter_mut().for_each(|d| *d = 1);
            let stat =
                |t: Tensor<3>| Value::float6(t.reshape(padded(&stat_shape)), stat_shape.clone());
            let mut out = vec![Value::float6(y, v.shape().to_vec())];
            if n.outputs.len() > 1 {
                out.push(stat(mean));
                out.push(stat(inv_std));
            }
            out
        }
        N::Lrn(n) => {
            let c = &n.config;
            let v = x()?;
            let [b, ch, h, w] = dims4(v, "LRN")?;
            check_window("LRN", v.shape(), &[], &[], &[])?;
            let size = usize::try_from(c.size)
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| {
                    Error::Model(format!("LRN size must be positive, got {}", c.size))
                })?;
            let t = v.float_at::<4>()?;
            // The window sum over channels as an average pool over a [channels, pixels] image.
            let squares = t.clone().powi_scalar(2).reshape([b, 1, ch, h * w]);
            let options = AvgPoolOptions::new([size, 1])
                .with_stride([1, 1])
                .with_padding_pairs([((size - 1) / 2, size / 2), (0, 0)])
                .with_count_include_pad(true);
            let mean = avg_pool2d(squares, options).reshape([b, ch, h, w]);
            let denominator = (mean * c.alpha as f64 + c.bias as f64).powf_scalar(c.beta as f64);
            vec![out4(t / denominator)]
        }
        N::Gemm(n) => {
            let c = &n.config;
            let (a, bv) = (x()?, required(inputs, 1)?);
            let mut a2 = a.float_at::<2>()?;
            let mut b2 = bv.float_at::<2>()?;
            if c.trans_a != 0 {
                a2 = a2.transpose();
            }
            if c.trans_b != 0 {
                b2 = b2.transpose();
            }
            if a2.dims()[1] != b2.dims()[0] {
                return Err(Error::Model(format!(
                    "Gemm inner dimensions differ: A is {:?}, B is {:?} (after transA/transB)",
                    a2.dims(),
                    b2.dims()
                )));
            }
            let mut y = a2.matmul(b2);
            if c.alpha != 1.0 {
                y = y * c.alpha as f64;
            }
            let shape = y.dims().to_vec();
            let mut y = y.reshape(padded(&shape));
            if let Some(bias) = optional(inputs, 2) {
                broadcast(&shape, bias.shape())?;
                let mut bias = bias.as_float();
                if c.beta != 1.0 {
                    bias = bias * c.beta as f64;
                }
                y = y + bias;
            }
            vec![Value::float6(y, shape)]
        }
        N::Linear(n) => {
            let (v, weight) = (x()?, required(inputs, 1)?);
            let mut w = weight.float_at::<2>()?;
            if n.config.transpose_weight {
                w = w.transpose();
            }
            let [fan_in, fan_out] = w.dims();
            let features = *v.shape().last().unwrap_or(&0);
            if features != fan_in {
                return Err(Error::Model(format!(
                    "input of shape {:?} does not fit a weight of {fan_in} inputs",
                    v.shape()
                )));
            }
            let rows = v.num_elements() / fan_in.max(1);
            let x2 = v.float("input")?.reshape([rows, fan_in]);
            let bias = optional(inputs, 2).map(|b| b.as_float().reshape([b.num_elements()]));
            let gemm = |x: Tensor<2>, w: Tensor<2>, b: Option<Tensor<1>>| {
                let y = x.matmul(w);
                match b {
                    Some(b) => {
                        let n = b.dims()[0];
                        y + b.reshape([1, n])
                    }
                    None => y,
                }
            };
            let y = match ctx.relu {
                ReluPolicy::Lrp(composite) => lrp::affine(
                    composite.rule(AffineKind::FullyConnected, ctx.first_affine),
                    x2,
                    w,
                    bias,
                    gemm,
                ),
                _ => gemm(x2, w, bias),
            };
            let mut shape = v.shape().to_vec();
            *shape.last_mut().expect("checked non-empty") = fan_out;
            vec![Value::float6(y.reshape(padded(&shape)), shape)]
        }
        N::MatMul(_) => vec![matmul(x()?, required(inputs, 1)?)?],
        N::Attention(n) => vec![attention(&n.config, inputs)?],
        N::Softmax(n) => {
            let v = x()?;
            let axis = physical(v.rank(), n.config.axis);
            let batch_axis = physical(v.rank(), 0);
            let t = v.float("input")?;
            let y = if deeplift && v.rank() >= 2 && axis != batch_axis {
                firelight_core::deeplift::softmax_along(t, batch_axis, |t| {
                    activation::softmax(t, axis)
                })
            } else {
                activation::softmax(t, axis)
            };
            vec![Value::float6(y, v.shape().to_vec())]
        }
        N::LogSoftmax(n) => {
            let v = x()?;
            let axis = physical(v.rank(), n.config.axis);
            vec![Value::float6(
                activation::log_softmax(v.float("input")?, axis),
                v.shape().to_vec(),
            )]
        }
        N::Dropout(n) => {
            // Inference: the identity; the optional mask output is all true.
            let ratio = match &n.config.prob {
                DropoutInput::Static(r) => *r,
                DropoutInput::Runtime(r) => optional(inputs, r.input_index)
                    .and_then(|v| v.to_f64s().first().copied())
                    .unwrap_or(0.5),
            };
            let training = optional(inputs, 2).is_some_and(|t| t.to_i64s().first() == Some(&1));
            if training && ratio > 0.0 {
                return Err(Error::Model(
                    "Dropout in training mode is random; firelight runs models for inference only"
                        .into(),
                ));
            }
            let v = x()?.clone();
            let mut out = vec![v.clone()];
            if n.outputs.len() > 1 {
                let mask = v.as_float().ones_like().bool();
                out.push(Value::bool6(mask, v.shape().to_vec()));
            }
            out
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

/// `(x - mean) / sqrt(var + eps)` over the last axis of a rank-3 tensor (population variance).
/// `LayerNormalization` of `v` viewed as `[outer, inner]` rows through
/// [`firelight_core::norm::layer_norm`] (one kernel each way on flex), when its scale and bias
/// are exactly as long as a row; `None` where they broadcast (the caller's ops do that).
fn fused_layer_norm(
    v: &Value,
    inputs: &[Option<Value>],
    [outer, inner]: [usize; 2],
    epsilon: f64,
) -> Result<Option<Value>> {
    let fits = |p: &Value| -> Result<bool> {
        Ok(p.kind() == Kind::Float
            && p.num_elements() == inner
            && broadcast(v.shape(), p.shape())? == v.shape())
    };
    let scale = required(inputs, 1)?;
    let bias = optional(inputs, 2);
    if v.kind() != Kind::Float || !fits(scale)? || !bias.map_or(Ok(true), fits)? {
        return Ok(None);
    }
    let t: Tensor<2> = v.float("input")?.reshape([outer, inner]);
    let gamma: Tensor<1> = scale.as_float().reshape([inner]);
    let beta = match bias {
        Some(b) => b.as_float().reshape([inner]),
        None => Tensor::zeros([inner], &t.device()),
    };
    let y = firelight_core::norm::layer_norm(t, gamma, beta, epsilon);
    Ok(Some(Value::float6(
        y.reshape(padded(v.shape())),
        v.shape().to_vec(),
    )))
}

fn normalise_last(t: Tensor<3>, epsilon: f64) -> Tensor<3> {
    let mean = t.clone().mean_dim(2);
    let centred = t - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(2);
    centred / (var + epsilon).sqrt()
}

/// NumPy `matmul`: rank-1 operands are promoted and the added axis removed, batch axes broadcast.
fn matmul(a: &Value, b: &Value) -> Result<Value> {
    let (mut sa, mut sb) = (a.shape().to_vec(), b.shape().to_vec());
    let (vector_a, vector_b) = (sa.len() == 1, sb.len() == 1);
    if vector_a {
        sa.insert(0, 1);
    }
    if vector_b {
        sb.push(1);
    }
    if sa.len() < 2 || sb.len() < 2 {
        return Err(Error::Model(format!(
            "MatMul needs operands of rank >= 1, got {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    if k != k2 {
        return Err(Error::Model(format!(
            "MatMul inner dimensions differ: {:?} x {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let batch = broadcast(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    let with = |tail: [usize; 2]| {
        let mut s = batch.clone();
        s.extend(tail);
        padded(&s)
    };
    let ta = a.float("MatMul input A")?.reshape(padded(&sa));
    let tb = b.float("MatMul input B")?.reshape(padded(&sb));
    let (da, db) = (with([m, k]), with([k, n]));
    let ta = if ta.dims() == da { ta } else { ta.expand(da) };
    let tb = if tb.dims() == db { tb } else { tb.expand(db) };
    let y = ta.matmul(tb);
    let mut shape = batch;
    if !vector_a {
        shape.push(m);
    }
    if !vector_b {
        shape.push(n);
    }
    Ok(Value::float6(y.reshape(padded(&shape)), shape))
}

/// ONNX `Attention` (opset 23), which onnx-ir also fuses from the MatMul/Softmax pattern:
/// `softmax(softcap(Q K^T * scale) + mask) V` over heads, with grouped K/V heads repeated.
fn attention(
    c: &onnx_ir::node::attention::AttentionConfig,
    inputs: &[Option<Value>],
) -> Result<Value> {
    let parts = attention_probabilities(c, inputs)?;
    let probabilities = parts.probabilities.clone();
    attention_output(&probabilities, parts)
}

/// An `Attention` node halfway: its attention probabilities `[batch, heads, queries, keys]`
/// (what attention maps, rollout and Chefer's relevance read, and where a tap may stand) and
/// what turns them into the node's output.
pub(crate) struct AttentionParts {
    /// `softmax(softcap(Q K^T * scale) + mask)`, a 4-D float value.
    pub probabilities: Value,
    values: Tensor<4>,
    split: bool,
}

/// `probabilities V`, heads merged back when the inputs were 3-D. `probabilities` replaces
/// `parts.probabilities` (the value a tap handed back).
pub(crate) fn attention_output(probabilities: &Value, parts: AttentionParts) -> Result<Value> {
    let y = probabilities.float_at::<4>()?.matmul(parts.values);
    Ok(if parts.split {
        let [b, hq, sq, dv] = y.dims();
        let y = y.swap_dims(1, 2).reshape([b, sq, hq * dv]);
        let shape = y.dims().to_vec();
        Value::float6(y.reshape(padded(&shape)), shape)
    } else {
        out4(y)
    })
}

/// The first half of ONNX `Attention`: the probabilities, and the values they weight.
pub(crate) fn attention_probabilities(
    c: &onnx_ir::node::attention::AttentionConfig,
    inputs: &[Option<Value>],
) -> Result<AttentionParts> {
    let (q, k, v) = (
        required(inputs, 0)?,
        required(inputs, 1)?,
        required(inputs, 2)?,
    );
    if inputs.len() > 4 && inputs[4..].iter().any(Option::is_some) {
        return Err(Error::Model(
            "Attention with past key/value caches is not supported".into(),
        ));
    }
    // 3-D inputs [batch, seq, heads * size] are split into heads; 4-D are [batch, heads, seq, size].
    let heads4 = |t: &Value, heads: Option<usize>, what: &str| -> Result<(Tensor<4>, bool)> {
        match t.rank() {
            4 => Ok((t.float_at::<4>()?, false)),
            3 => {
                let [b, s, hidden]: [usize; 3] = t.shape().try_into().expect("rank 3");
                let h = heads.filter(|h| *h > 0 && hidden % h == 0).ok_or_else(|| {
                    Error::Model(format!(
                        "Attention {what} of shape {:?} needs a head count dividing {hidden}",
                        t.shape()
                    ))
                })?;
                Ok((
                    t.float_at::<3>()?
                        .reshape([b, s, h, hidden / h])
                        .swap_dims(1, 2),
                    true,
                ))
            }
            _ => Err(rank_error("Attention", 4, t.shape())),
        }
    };
    let (q4, split) = heads4(q, c.q_num_heads, "Q")?;
    let (mut k4, _) = heads4(k, c.kv_num_heads, "K")?;
    let (mut v4, _) = heads4(v, c.kv_num_heads, "V")?;
    let [b, hq, sq, d] = q4.dims();
    let hk = k4.dims()[1];
    if hk == 0 || hq % hk != 0 || k4.dims()[3] != d {
        return Err(Error::Model(format!(
            "Attention Q {:?} does not fit K {:?}",
            q4.dims(),
            k4.dims()
        )));
    }
    if hk != hq {
        let group = hq / hk;
        let [_, _, sk, dk] = k4.dims();
        let dv = v4.dims()[3];
        k4 = k4
            .reshape([b, hk, 1, sk * dk])
            .repeat_dim(2, group)
            .reshape([b, hq, sk, dk]);
        v4 = v4
            .reshape([b, hk, 1, sk * dv])
            .repeat_dim(2, group)
            .reshape([b, hq, sk, dv]);
    }
    let sk = k4.dims()[2];
    let scale = c.scale.unwrap_or(1.0 / (d as f64).sqrt());
    let mut scores = q4.matmul(k4.swap_dims(2, 3)) * scale;
    if c.softcap > 0.0 {
        scores = (scores / c.softcap).tanh() * c.softcap;
    }
    let dims4 = [b, hq, sq, sk];
    if let Some(mask) = optional(inputs, 3) {
        let mut shape = vec![1; 4 - mask.rank().min(4)];
        shape.extend_from_slice(mask.shape());
        broadcast(&shape, &dims4)?;
        let padded_shape = padded(&shape);
        match mask.kind() {
            crate::value::Kind::Bool => {
                let keep = mask
                    .as_bool()
                    .reshape(padded_shape)
                    .reshape([shape[0], shape[1], shape[2], shape[3]])
                    .expand(dims4);
                scores = scores.mask_fill(keep.bool_not(), f64::NEG_INFINITY);
            }
            _ => {
                let add = mask
                    .as_float()
                    .reshape([shape[0], shape[1], shape[2], shape[3]]);
                scores = scores + add;
            }
        }
    }
    if c.is_causal {
        let causal = Tensor::<2, burn::tensor::Bool>::tril_mask([sq, sk], 0, &scores.device());
        scores = scores.mask_fill(causal.unsqueeze::<4>().expand(dims4), f64::NEG_INFINITY);
    }
    Ok(AttentionParts {
        probabilities: out4(activation::softmax(scores, 3)),
        values: v4,
        split,
    })
}
