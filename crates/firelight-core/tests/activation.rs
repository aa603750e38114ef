//! `firelight_core::activation::{sigmoid, exp, tanh, erf, gelu, silu}` (firelight's vectorised kernels
//! on flex) against Burn's own ops, forward and input gradient, on random shapes and values,
//! contiguous and not (a transposed or sliced view, a tensor shared with the graph), small and
//! split over threads: the same numbers to float rounding.

use burn::tensor::{Tensor, TensorData, activation};
use firelight_core::Device;
use firelight_core::activation::{erf, exp, gelu, sigmoid, silu, tanh};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the input reaches the function.
#[derive(Clone, Copy, Debug)]
enum View {
    /// A fresh, uniquely owned tensor (computed in place).
    Owned,
    /// A transposed view of another tensor (not contiguous).
    Transposed,
    /// A slice of a larger tensor (contiguous rows at an offset, or strided).
    Sliced,
}

fn random(shape: [usize; 3], scale: f32, rng: &mut StdRng, device: &Device) -> Tensor<3> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

/// Within 4 ulp of Burn's value, relative to its magnitude, or within `absolute`.
fn assert_close(got: &[f32], want: &[f32], absolute: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tolerance = 5e-7 * w.abs() + absolute;
        assert!(
            (g - w).abs() <= tolerance || (g.is_infinite() && g == w),
            "{what} [{i}]: {g} vs Burn's {w}"
        );
    }
}

/// `f`'s values and the input gradient of `sum(f(x) * r)`, through `view`.
fn run(
    f: impl Fn(Tensor<3>) -> Tensor<3>,
    x: &Tensor<3>,
    view: View,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let leaf = x.clone().autodiff().require_grad();
    let input = match view {
        // `* 1.0` gives the function a value of its own, as a layer's output is.
        View::Owned => leaf.clone() * 1.0,
        View::Transposed => leaf.clone().swap_dims(1, 2),
        View::Sliced => {
            let [a, b, c] = leaf.dims();
            leaf.clone().slice([0..a, b / 3..b, 0..c])
        }
    };
    let y = f(input);
    let r = Tensor::from_data(
        TensorData::new(
            (0..y.shape().num_elements())
                .map({
                    // Not x's stream: r would be x / scale.
                    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
                    move |_| rng.random_range(-1.0f32..1.0)
                })
                .collect::<Vec<_>>(),
            y.dims(),
        ),
        &y.device(),
    );
    let grads = (y.clone() * r).sum().backward();
    let grad = leaf.grad(&grads).expect("input gradient");
    (values(y.inner()), values(grad))
}

fn check(shape: [usize; 3], scale: f32, view: View, seed: u64) {
    let device = Device::flex();
    let x = random(shape, scale, &mut StdRng::seed_from_u64(seed), &device);
    // Burn's GELU is `x (1 + erf(x / sqrt 2)) / 2`, which cancels left of 0: an ulp of erf
    // near -1 is 2^-24 absolute, times |x|. Ours keeps its relative precision there (its unit
    // tests check it against the exact value), so the two differ by that much.
    let gelu_slack = 2.0 * f32::EPSILON * scale;
    for (name, ours, burns, absolute) in [
        (
            "sigmoid",
            &sigmoid::<3> as &dyn Fn(Tensor<3>) -> Tensor<3>,
            &activation::sigmoid::<3> as &dyn Fn(Tensor<3>) -> Tensor<3>,
            0.0,
        ),
        ("exp", &exp::<3>, &|t: Tensor<3>| t.exp(), 0.0),
        ("tanh", &tanh::<3>, &|t: Tensor<3>| t.tanh(), 0.0),
        // erf is within 4 ulp of the exact value, Burn's (libm's erff) within 1.
        ("erf", &erf::<3>, &|t: Tensor<3>| t.erf(), f32::EPSILON),
        ("gelu", &gelu::<3>, &activation::gelu::<3>, gelu_slack),
        ("silu", &silu::<3>, &activation::silu::<3>, 0.0),
    ] {
        let (y, grad) = run(ours, &x, view, seed);
        let (want_y, want_grad) = run(burns, &x, view, seed);
        let what = format!("{name} of {shape:?} (scale {scale}, {view:?})");
        assert_close(&y, &want_y, absolute, &format!("{what}: values"));
        // Sigmoid's gradient y (1 - y) and tanh's 1 - y^2 cancel near |y| = 1: an ulp of y
        // there moves them by 2^-24 absolute, in Burn's value as in ours; GELU's cancels as
        // its value does.
        let largest = want_grad.iter().fold(0f32, |m, v| m.max(v.abs()));
        let absolute = 4.0 * f32::EPSILON * largest + absolute;
        assert_close(
            &grad,
            &want_grad,
            absolute,
            &format!("{what}: input gradient"),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn activations_equal_burns_forward_and_backward(
        shape in (1usize..4, 1usize..40, 1usize..40),
        scale in prop_oneof![Just(1.0f32), Just(10.0), Just(80.0)],
        view in prop_oneof![Just(View::Owned), Just(View::Transposed), Just(View::Sliced)],
        seed in 0u64..1000,
    ) {
        check([shape.0, shape.1, shape.2], scale, view, seed);
    }
}

/// Large enough to be split over rayon's threads (and an odd length, so chunks are uneven).
#[test]
fn large_tensors_split_over_threads_equal_burns() {
    for view in [View::Owned, View::Transposed, View::Sliced] {
        check([3, 181, 307], 20.0, view, 7);
    }
}

#[test]
fn nan_and_infinities_come_out_as_burns_do() {
    let device = Device::flex();
    let x = Tensor::<1>::from_data(
        TensorData::new(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0], [4]),
        &device,
    );
    let s = values(sigmoid(x.clone() * 1.0));
    assert!(s[0].is_nan());
    assert_eq!(&s[1..], &[1.0, 0.0, 0.5]);
    let e = values(exp(x.clone() * 1.0));
    assert!(e[0].is_nan());
    assert_eq!(&e[1..], &[f32::INFINITY, 0.0, 1.0]);
    let t = values(tanh(x.clone() * 1.0));
    assert!(t[0].is_nan());
    assert_eq!(&t[1..], &[1.0, -1.0, 0.0]);
    let e = values(erf(x.clone() * 1.0));
    assert!(e[0].is_nan());
    assert_eq!(&e[1..], &[1.0, -1.0, 0.0]);
    // GELU at -inf is -inf * 0, NaN, in Burn's formula as in ours.
    let (g, want) = (
        values(gelu(x.clone() * 1.0)),
        values(activation::gelu(x.clone())),
    );
    assert!(g[0].is_nan() && g[3] == 0.0 && g[1] == f32::INFINITY);
    assert_eq!(g[2].is_nan(), want[2].is_nan());
    let (s, want) = (values(silu(x.clone() * 1.0)), values(activation::silu(x)));
    assert!(s[0].is_nan() && s[1] == f32::INFINITY && s[3] == 0.0);
    assert_eq!(s[2].is_nan(), want[2].is_nan());
}
