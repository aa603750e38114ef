//! `firelight_core::conv::conv2d` (Winograd on flex where it applies) against Burn's own
//! `conv2d`, forward and input gradient, on random shapes, strides, paddings, dilations and
//! groups: the same numbers to float rounding wherever a fast path (Winograd, depthwise,
//! pointwise) is taken or not.

use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use firelight_core::Device;
use firelight_core::conv::conv2d;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One convolution case.
#[derive(Clone, Debug)]
struct Case {
    batch: usize,
    channels_in: usize,
    channels_out: usize,
    groups: usize,
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: [(usize, usize); 2],
    bias: bool,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        1usize..4,
        prop_oneof![Just(3usize), 8usize..24],
        prop_oneof![Just(1usize), 8usize..24],
        prop_oneof![Just(1usize), Just(1), Just(2)],
        3usize..20,
        3usize..20,
        prop_oneof![Just([3usize, 3]), Just([1, 1]), Just([3, 1]), Just([5, 5])],
        prop_oneof![Just([1usize, 1]), Just([1, 1]), Just([2, 2]), Just([1, 2])],
        prop_oneof![Just([1usize, 1]), Just([1, 1]), Just([2, 1])],
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        any::<bool>(),
    )
        .prop_map(
            |(batch, ci, co, g, h, w, kernel, stride, dilation, (pt, pb, pl, pr), bias)| {
                // Channels divisible by the groups.
                let (channels_in, channels_out) = (ci * g, co * g);
                Case {
                    batch,
                    channels_in,
                    channels_out,
                    groups: g,
                    height: h + kernel[0] * dilation[0],
                    width: w + kernel[1] * dilation[1],
                    kernel,
                    stride,
                    dilation,
                    padding: [(pt, pb), (pl, pr)],
                    bias,
                }
            },
        )
}

/// Cases that take the Winograd path (3x3, stride 1, undilated, ungrouped, 8+ channels):
/// uneven and over-wide paddings, odd sizes, batches.
fn winograd_cases() -> impl Strategy<Value = Case> {
    (
        1usize..4,
        8usize..24,
        8usize..24,
        1usize..16,
        1usize..16,
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        any::<bool>(),
    )
        .prop_map(
            |(batch, channels_in, channels_out, h, w, (pt, pb, pl, pr), bias)| Case {
                batch,
                channels_in,
                channels_out,
                groups: 1,
                height: h + 2,
                width: w + 2,
                kernel: [3, 3],
                stride: [1, 1],
                dilation: [1, 1],
                padding: [(pt, pb), (pl, pr)],
                bias,
            },
        )
}

/// Depthwise cases (every group one input channel, one or two outputs each), which take the
/// direct depthwise path both ways: any kernel, stride, dilation and padding.
fn depthwise_cases() -> impl Strategy<Value = Case> {
    (
        1usize..4,
        1usize..12,
        prop_oneof![Just(1usize), Just(1), Just(2)],
        1usize..20,
        1usize..20,
        prop_oneof![Just([3usize, 3]), Just([5, 5]), Just([1, 1]), Just([3, 1])],
        prop_oneof![Just([1usize, 1]), Just([2, 2]), Just([1, 2]), Just([3, 3])],
        prop_oneof![Just([1usize, 1]), Just([1, 1]), Just([2, 1])],
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        any::<bool>(),
    )
        .prop_map(
            |(batch, channels, m, h, w, kernel, stride, dilation, (pt, pb, pl, pr), bias)| Case {
                batch,
                channels_in: channels,
                channels_out: channels * m,
                groups: channels,
                height: h + (kernel[0] - 1) * dilation[0],
                width: w + (kernel[1] - 1) * dilation[1],
                kernel,
                stride,
                dilation,
                padding: [(pt, pb), (pl, pr)],
                bias,
            },
        )
}

/// Pointwise cases (1x1, stride 1, unpadded), whose input gradient is one matrix product per
/// image and group: any groups and dilation, planes down to one value.
fn pointwise_cases() -> impl Strategy<Value = Case> {
    (
        1usize..4,
        prop_oneof![Just(1usize), 2usize..24],
        prop_oneof![Just(1usize), 2usize..24],
        prop_oneof![Just(1usize), Just(1), Just(2), Just(3)],
        1usize..20,
        1usize..20,
        prop_oneof![Just([1usize, 1]), Just([2, 3])],
        any::<bool>(),
    )
        .prop_map(|(batch, ci, co, g, height, width, dilation, bias)| Case {
            batch,
            channels_in: ci * g,
            channels_out: co * g,
            groups: g,
            height,
            width,
            kernel: [1, 1],
            stride: [1, 1],
            dilation,
            padding: [(0, 0), (0, 0)],
            bias,
        })
}

fn random<const D: usize>(shape: [usize; D], rng: &mut StdRng, device: &Device) -> Tensor<D> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

fn assert_close(got: &[f32], want: &[f32], what: &str, case: &Case) {
    assert_eq!(got.len(), want.len(), "{what}: {case:?}");
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 2e-5 * scale,
            "{what} [{i}]: {g} vs Burn's {w} (scale {scale}) in {case:?}"
        );
    }
}

/// Forward values, and the input gradient of `sum(y * r)` for a random `r`, by `conv`.
fn run(
    case: &Case,
    conv: impl Fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>,
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: &Option<Tensor<1>>,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let options =
        ConvOptions::new_with_padding(case.stride, case.padding, case.dilation, case.groups);
    let leaf = x.clone().autodiff().require_grad();
    let y = conv(leaf.clone(), weight.clone(), bias.clone(), options);
    let r = random(y.dims(), &mut StdRng::seed_from_u64(seed), &y.device());
    let grads = (y.clone() * r).sum().backward();
    let grad = leaf.grad(&grads).expect("input gradient");
    (values(y.inner()), values(grad))
}

fn check(case: &Case, seed: u64) {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(seed);
    let x = random(
        [case.batch, case.channels_in, case.height, case.width],
        &mut rng,
        &device,
    );
    let weight = random(
        [
            case.channels_out,
            case.channels_in / case.groups,
            case.kernel[0],
            case.kernel[1],
        ],
        &mut rng,
        &device,
    );
    let bias = case
        .bias
        .then(|| random([case.channels_out], &mut rng, &device));
    let (y, grad) = run(case, conv2d, &x, &weight, &bias, seed + 1);
    let (want_y, want_grad) = run(case, burn_conv2d, &x, &weight, &bias, seed + 1);
    assert_close(&y, &want_y, "forward", case);
    assert_close(&grad, &want_grad, "input gradient", case);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_equals_burns_forward_and_backward(case in cases(), seed in 0u64..1000) {
        check(&case, seed);
    }

    #[test]
    fn depthwise_equals_burns_forward_and_backward(case in depthwise_cases(), seed in 0u64..1000) {
        check(&case, seed);
    }

    #[test]
    fn pointwise_equals_burns_forward_and_backward(case in pointwise_cases(), seed in 0u64..1000) {
        check(&case, seed);
    }

    #[test]
    fn winograd_equals_burns_forward_and_backward(case in winograd_cases(), seed in 0u64..1000) {
        check(&case, seed);
    }
}

/// The shapes of a ResNet's 3x3 layers, which take the Winograd path both ways.
#[test]
fn resnet_shaped_3x3_convolutions_equal_burns() {
    for (batch, channels, size) in [(2, 64, 14), (1, 32, 28), (3, 16, 9)] {
        let case = Case {
            batch,
            channels_in: channels,
            channels_out: channels,
            groups: 1,
            height: size,
            width: size,
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            padding: [(1, 1), (1, 1)],
            bias: true,
        };
        check(&case, 3);
    }
}

/// The depthwise layers of EfficientNet and MobileNet (3x3 and 5x5, strides 1 and 2, "same"
/// padding, uneven where TensorFlow pads the end more).
#[test]
fn efficientnet_shaped_depthwise_convolutions_equal_burns() {
    for (channels, size, k, stride, padding) in [
        (32, 24, 3, 1, [(1, 1), (1, 1)]),
        (24, 23, 3, 2, [(0, 1), (0, 1)]),
        (16, 14, 5, 2, [(2, 2), (2, 2)]),
        (40, 7, 5, 1, [(2, 2), (2, 2)]),
    ] {
        let case = Case {
            batch: 2,
            channels_in: channels,
            channels_out: channels,
            groups: channels,
            height: size,
            width: size,
            kernel: [k, k],
            stride: [stride, stride],
            dilation: [1, 1],
            padding,
            bias: true,
        };
        check(&case, 4);
    }
}

/// The expansions and projections of EfficientNet and MobileNet: one image (one product,
/// split by gemm over threads when it is big enough), a batch (one product per image, on
/// rayon's threads) and a grouped one (RegNet's).
#[test]
fn efficientnet_shaped_pointwise_convolutions_equal_burns() {
    for (batch, channels_in, channels_out, groups, size) in [
        (1, 96, 24, 1, 56),
        (1, 16, 96, 1, 20),
        (3, 24, 144, 1, 14),
        (2, 48, 48, 2, 9),
    ] {
        let case = Case {
            batch,
            channels_in,
            channels_out,
            groups,
            height: size,
            width: size,
            kernel: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            padding: [(0, 0), (0, 0)],
            bias: true,
        };
        check(&case, 6);
    }
}

/// Weights that take gradients (as when training) keep Burn's rule, which also returns theirs.
#[test]
fn tracked_weights_get_their_gradient() {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(5);
    let x: Tensor<4> = random([2, 16, 10, 10], &mut rng, &device);
    let weight: Tensor<4> = random([16, 16, 3, 3], &mut rng, &device);
    let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let grad_of =
        |conv: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>| {
            let w = weight.clone().autodiff().require_grad();
            let grads = conv(x.clone().autodiff(), w.clone(), None, options())
                .sum()
                .backward();
            values(w.grad(&grads).expect("weight gradient"))
        };
    let got = grad_of(conv2d);
    let want = grad_of(burn_conv2d);
    let case = Case {
        batch: 2,
        channels_in: 16,
        channels_out: 16,
        groups: 1,
        height: 10,
        width: 10,
        kernel: [3, 3],
        stride: [1, 1],
        dilation: [1, 1],
        padding: [(1, 1), (1, 1)],
        bias: false,
    };
    assert_close(&got, &want, "weight gradient", &case);
}
