//! `firelight_core::norm::layer_norm` (one kernel each way on flex) against layer normalisation
//! written with Burn's tensor ops, forward and input gradient, on random shapes (widths below,
//! at and above the kernel's 16 lanes), offsets, scales and views (a transposed input, a
//! slice), small and split over threads: the same numbers to float rounding. Parameters that
//! take gradients still get Burn's.

use burn::tensor::{Tensor, TensorData};
use firelight_core::Device;
use firelight_core::norm::layer_norm;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random<const D: usize>(shape: [usize; D], lo: f32, hi: f32, rng: &mut StdRng) -> Tensor<D> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

/// Layer normalisation over the last axis in Burn's ops (as Burn's `nn::LayerNorm` computes it).
fn burns(x: Tensor<3>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> Tensor<3> {
    let (var, mean) = x.clone().var_mean_bias(2);
    let normalised = (x - mean) / (var + epsilon).sqrt();
    normalised * gamma.unsqueeze::<3>() + beta.unsqueeze::<3>()
}

/// How the input reaches the function.
#[derive(Clone, Copy, Debug)]
enum View {
    Owned,
    Transposed,
    Sliced,
}

/// Values and input gradient of `sum(f(x) * r)`.
fn run(
    f: &dyn Fn(Tensor<3>) -> Tensor<3>,
    x: &Tensor<3>,
    view: View,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let leaf = x.clone().autodiff().require_grad();
    let input = match view {
        View::Owned => leaf.clone() * 1.0,
        View::Transposed => leaf.clone().swap_dims(0, 1),
        View::Sliced => {
            let [a, b, c] = leaf.dims();
            leaf.clone().slice([0..a, b / 3..b, 0..c])
        }
    };
    let y = f(input);
    let r = random(
        y.dims(),
        -1.0,
        1.0,
        &mut StdRng::seed_from_u64(seed ^ 0x5eed),
    );
    let grads = (y.clone() * r).sum().backward();
    let grad = leaf.grad(&grads).expect("input gradient");
    (values(y.inner()), values(grad))
}

fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tolerance,
            "{what} [{i}]: {g} vs Burn's {w}"
        );
    }
}

fn check(shape: [usize; 3], offset: f32, spread: f32, view: View, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = random(shape, offset - spread, offset + spread, &mut rng);
    let width = shape[2];
    let gamma = random([width], -2.0, 2.0, &mut rng);
    let beta = random([width], -1.0, 1.0, &mut rng);
    let epsilon = 1e-5;
    let ours = |t: Tensor<3>| layer_norm(t, gamma.clone(), beta.clone(), epsilon);
    let theirs = |t: Tensor<3>| burns(t, gamma.clone(), beta.clone(), epsilon);
    let (y, grad) = run(&ours, &x, view, seed);
    let (want_y, want_grad) = run(&theirs, &x, view, seed);
    let what = format!("{shape:?} around {offset} +- {spread}, {view:?}");
    // x - mean loses the offset's digits in both computations (their means round apart).
    let digits = 1.0 + offset.abs() / spread;
    assert_close(&y, &want_y, 4e-6 * 2.0 * digits, &format!("{what}: values"));
    let largest = want_grad.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert_close(
        &grad,
        &want_grad,
        1e-5 * largest * digits,
        &format!("{what}: input gradient"),
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn layer_norm_equals_burns_forward_and_backward(
        shape in (1usize..4, 1usize..12, prop_oneof![1usize..20, 30usize..70]),
        offset in prop_oneof![Just(0.0f32), Just(5.0)],
        spread in prop_oneof![Just(1.0f32), Just(0.01), Just(30.0)],
        view in prop_oneof![Just(View::Owned), Just(View::Transposed), Just(View::Sliced)],
        seed in 0u64..1000,
    ) {
        check([shape.0, shape.1, shape.2], offset, spread, view, seed);
    }
}

/// Enough rows to be split over rayon's threads, an odd count so tasks are uneven.
#[test]
fn large_tensors_split_over_threads_equal_burns() {
    for view in [View::Owned, View::Transposed, View::Sliced] {
        check([3, 1111, 96], 0.5, 2.0, view, 11);
    }
}

/// A scale and shift that take gradients (training) get Burn's rule, and the input's gradient
/// is unchanged.
#[test]
fn tracked_parameters_get_burns_gradients() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = random([2, 5, 24], -1.0, 1.0, &mut rng).autodiff();
    let gamma = random([24], -2.0, 2.0, &mut rng);
    let beta = random([24], -1.0, 1.0, &mut rng);
    let r = random([2, 5, 24], -1.0, 1.0, &mut rng).autodiff();
    let grads_of = |f: &dyn Fn(Tensor<3>, Tensor<1>, Tensor<1>) -> Tensor<3>| {
        let (g, b) = (
            gamma.clone().autodiff().require_grad(),
            beta.clone().autodiff().require_grad(),
        );
        let grads = (f(x.clone(), g.clone(), b.clone()) * r.clone())
            .sum()
            .backward();
        (
            values(g.grad(&grads).expect("gamma's gradient")),
            values(b.grad(&grads).expect("beta's gradient")),
        )
    };
    let (g_ours, b_ours) = grads_of(&|x, g, b| layer_norm(x, g, b, 1e-5));
    let (g_burn, b_burn) = grads_of(&|x, g, b| burns(x, g, b, 1e-5));
    assert_close(&g_ours, &g_burn, 1e-5, "gamma's gradient");
    assert_close(&b_ours, &b_burn, 1e-5, "beta's gradient");
}

#[test]
fn empty_rows_come_back_empty() {
    let x = Tensor::<3>::zeros([2, 0, 8], &Device::flex());
    let y = layer_norm(
        x,
        Tensor::ones([8], &Device::flex()),
        Tensor::zeros([8], &Device::flex()),
        1e-5,
    );
    assert_eq!(y.dims(), [2, 0, 8]);
}
