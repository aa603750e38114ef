//! `firelight_core::scale::scale_channels` (one kernel each way on flex) against Burn's
//! broadcast product `x * scale.reshape([1, channels, 1])`: values and the gradients of both
//! operands (each tracked alone, and both, as a squeeze-and-excitation gate computed from the
//! input is), on random shapes (one value per row and channels last, rows shorter and longer
//! than the kernel's 16 lanes), views of the input (transposed, sliced), small and split over
//! threads: the same numbers to float rounding.

use burn::tensor::{Tensor, TensorData};
use firelight_core::Device;
use firelight_core::scale::scale_channels;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random<const D: usize>(shape: [usize; D], rng: &mut StdRng) -> Tensor<D> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

fn burns(x: Tensor<3>, scale: Tensor<1>) -> Tensor<3> {
    let channels = scale.dims()[0];
    x * scale.reshape([1, channels, 1])
}

/// How the input reaches the function.
#[derive(Clone, Copy, Debug)]
enum View {
    Owned,
    Transposed,
    Sliced,
}

/// Which operands take gradients.
#[derive(Clone, Copy, Debug)]
enum Tracked {
    Input,
    Scale,
    Both,
}

/// What one run gives: the values and the gradients of `sum(f(x, scale) * r)`.
struct Run {
    values: Vec<f32>,
    input_grad: Option<Vec<f32>>,
    scale_grad: Option<Vec<f32>>,
}

type Product = dyn Fn(Tensor<3>, Tensor<1>) -> Tensor<3>;

fn run(f: &Product, shape: [usize; 3], view: View, tracked: Tracked, seed: u64) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let [outer, channels, inner] = shape;
    let leaf_shape = match view {
        View::Owned => shape,
        View::Transposed => [channels, outer, inner],
        View::Sliced => [outer, channels + 3, inner],
    };
    let leaf = random(leaf_shape, &mut rng).autodiff();
    let scale_leaf = random([channels], &mut rng).autodiff();
    let track_input = matches!(tracked, Tracked::Input | Tracked::Both);
    let track_scale = matches!(tracked, Tracked::Scale | Tracked::Both);
    let leaf = if track_input {
        leaf.require_grad()
    } else {
        leaf
    };
    let scale_leaf = if track_scale {
        scale_leaf.require_grad()
    } else {
        scale_leaf
    };
    let input = match view {
        View::Owned => leaf.clone() * 1.0,
        View::Transposed => leaf.clone().swap_dims(0, 1),
        View::Sliced => leaf.clone().slice([0..outer, 2..channels + 2, 0..inner]),
    };
    // A gate computed from something, as squeeze-and-excitation's is (not a leaf itself).
    let y = f(input, scale_leaf.clone() * 1.0);
    let r = random(y.dims(), &mut StdRng::seed_from_u64(seed ^ 0x5eed)).autodiff();
    let grads = (y.clone() * r).sum().backward();
    Run {
        values: values(y.inner()),
        input_grad: track_input.then(|| values(leaf.grad(&grads).expect("input gradient"))),
        scale_grad: track_scale.then(|| values(scale_leaf.grad(&grads).expect("scale gradient"))),
    }
}

fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance * (1.0 + w.abs()),
            "{what} [{i}]: {g} vs Burn's {w}"
        );
    }
}

fn check(shape: [usize; 3], view: View, tracked: Tracked, seed: u64) {
    let ours = run(&|x, s| scale_channels(x, s), shape, view, tracked, seed);
    let theirs = run(&burns, shape, view, tracked, seed);
    let what = format!("{shape:?}, {view:?}, {tracked:?} tracked");
    // One product per value: exactly Burn's.
    assert_eq!(ours.values, theirs.values, "{what}: values");
    if let (Some(got), Some(want)) = (&ours.input_grad, &theirs.input_grad) {
        assert_eq!(got, want, "{what}: input gradient");
    }
    assert_eq!(ours.input_grad.is_some(), theirs.input_grad.is_some());
    // A sum of outer * inner products, added in another order than Burn's.
    let terms = (shape[0] * shape[2]) as f32;
    match (&ours.scale_grad, &theirs.scale_grad) {
        (Some(got), Some(want)) => assert_close(
            got,
            want,
            2e-7 * terms.sqrt() * 8.0,
            &format!("{what}: scale gradient"),
        ),
        (None, None) => {}
        _ => panic!("{what}: one side has a scale gradient, the other not"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn scale_channels_equals_burns_broadcast_product_forward_and_backward(
        shape in (1usize..4, 1usize..20, prop_oneof![Just(1usize), 2usize..40, 60usize..300]),
        view in prop_oneof![Just(View::Owned), Just(View::Transposed), Just(View::Sliced)],
        tracked in prop_oneof![Just(Tracked::Input), Just(Tracked::Scale), Just(Tracked::Both)],
        seed in 0u64..1000,
    ) {
        check([shape.0, shape.1, shape.2], view, tracked, seed);
    }
}

/// Enough values to be split over rayon's threads, odd sizes so tasks are uneven: a
/// squeeze-and-excitation gate (`outer` 1, a row per image and channel), a layer scale (a row
/// per channel, several images) and channels last.
#[test]
fn large_tensors_split_over_threads_equal_burns() {
    for shape in [[1, 8 * 37, 3137], [3, 37, 3137], [3137, 37, 1]] {
        for view in [View::Owned, View::Sliced] {
            check(shape, view, Tracked::Both, 7);
        }
    }
}

/// The scale's gradient is summed in a fixed order, so it is the same on every run (and every
/// number of threads).
#[test]
fn scale_gradient_is_the_same_on_every_run() {
    let first = run(
        &|x, s| scale_channels(x, s),
        [2, 19, 40_000],
        View::Owned,
        Tracked::Both,
        5,
    );
    for _ in 0..3 {
        let again = run(
            &|x, s| scale_channels(x, s),
            [2, 19, 40_000],
            View::Owned,
            Tracked::Both,
            5,
        );
        assert_eq!(again.scale_grad, first.scale_grad);
    }
}

#[test]
fn empty_values_come_back_empty() {
    let x = Tensor::<3>::zeros([2, 0, 8], &Device::flex());
    let y = scale_channels(x, Tensor::ones([0], &Device::flex()));
    assert_eq!(y.dims(), [2, 0, 8]);
}
