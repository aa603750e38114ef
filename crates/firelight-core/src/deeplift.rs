//! DeepLift's rules (Shrikumar et al., 2017, as Captum's `DeepLift` applies them): a model's
//! nonlinearities pass back the ratio of the change of their output to the change of their input
//! between the input and its reference, instead of their gradient.
//!
//! Models apply their nonlinearities through [`Taps::nonlinear`](crate::Taps::nonlinear),
//! their ReLUs through [`Taps::relu`](crate::Taps::relu) and max pooling through
//! [`Taps::max_pool2d`](crate::Taps::max_pool2d); under [`ReluPolicy::DeepLift`](crate::ReluPolicy)
//! those use the rules here. The batch then holds the inputs and, after them, their references:
//! `[x; x0]`, row `i` paired with row `i + n/2`.
//!
//! Each rule is written as `detach(f(x)) + M(x - detach(x))` with `M` linear: the forward value is
//! exactly `f(x)` (the second term is zero), and the backward pass is `M`'s transpose, the rule's
//! multipliers. So any backend's autodiff runs the rules, with no custom backward op, and a
//! nonlinearity that a model applies twice gets the rule at each use (Captum's module hooks see a
//! reused module once per call only when it is not reused; captum#1082).

use burn::tensor::module::{max_pool2d as plain_max_pool2d, max_pool2d_with_indices};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Bool, Tensor};

/// Below this change of the input, the rules fall back to the gradient (Captum's `eps`).
pub const EPS: f64 = 1e-10;

/// `t`'s halves `[a; b]` along `axis` as `(a, b)`.
fn halves<const D: usize>(t: Tensor<D>, axis: usize) -> (Tensor<D>, Tensor<D>) {
    let half = t.dims()[axis] / 2;
    (t.clone().narrow(axis, 0, half), t.narrow(axis, half, half))
}

/// Whether `x` can take a rule: a tracked value whose batch (along `axis`) pairs inputs with
/// references.
fn paired<const D: usize>(x: &Tensor<D>, axis: usize) -> bool {
    let n = x.dims()[axis];
    n > 0 && n.is_multiple_of(2) && x.is_tracked()
}

/// `delta` with the elements where `|delta| < EPS` set to 1 (they take the gradient instead), and
/// the mask of those elements.
fn safe_delta<const D: usize>(delta: Tensor<D>) -> (Tensor<D>, Tensor<D, Bool>) {
    let near = delta.clone().abs().lower_elem(EPS);
    (delta.mask_fill(near.clone(), 1.0), near)
}

/// `f(x)` whose backward pass is DeepLift's Rescale rule: the multiplier of every element is
/// `(f(x) - f(x0)) / (x - x0)` of its pair (for both rows of the pair, as Captum), or `f`'s
/// gradient where `|x - x0| < EPS`. An element-wise `f` only. A value that is not tracked or
/// whose batch is odd (not a DeepLift pass) gets `f(x)` unchanged.
pub fn rescale<const D: usize>(x: Tensor<D>, f: impl Fn(Tensor<D>) -> Tensor<D>) -> Tensor<D> {
    rescale_along(x, 0, f)
}

/// [`rescale`] for a value whose batch is along `axis` (the ONNX interpreter's padded values).
pub fn rescale_along<const D: usize>(
    x: Tensor<D>,
    axis: usize,
    f: impl Fn(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let y = f(x.clone());
    if !paired(&x, axis) {
        return y;
    }
    let (xd, yd) = (x.clone().detach(), y.clone().detach());
    let (multiplier, near) = multipliers(xd.clone(), yd.clone(), axis);
    (yd + multiplier * (x - xd)).mask_where(near, y)
}

/// The Rescale multipliers `(y - y0) / (x - x0)` of each input-reference pair along `axis`,
/// computed on one half and shared by both rows of the pair, and the mask of the elements where
/// `|x - x0| < EPS` (which take the gradient instead).
fn multipliers<const D: usize>(
    xd: Tensor<D>,
    yd: Tensor<D>,
    axis: usize,
) -> (Tensor<D>, Tensor<D, Bool>) {
    let difference = |t: Tensor<D>| {
        let (a, b) = halves(t, axis);
        a - b
    };
    let (dx, near) = safe_delta(difference(xd));
    let half = difference(yd) / dx;
    (
        Tensor::cat(vec![half.clone(), half], axis),
        Tensor::cat(vec![near.clone(), near], axis),
    )
}

/// Max pooling whose backward pass is Captum's DeepLift rule for `MaxPool2d`: each window's output
/// difference `y - y0` goes to the input's arg-max when `y >= y0` and to the reference's arg-max
/// otherwise, divided by the input difference there (the gradient where it is below `EPS`).
///
/// Overlapping windows add their contributions (the transpose of a gather), where Captum's
/// `max_unpool2d` keeps only one, so completeness holds for ResNet's 3x3 stride-2 pooling too.
/// The references' rows get the plain max pool.
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    if !paired(&x, 0) {
        return plain_max_pool2d(x, options);
    }
    let (y, indices) = max_pool2d_with_indices(x.clone(), options);
    let [n, c, h, w] = x.dims();
    let [_, _, ho, wo] = y.dims();
    let half = n / 2;
    let (y_in, y_ref) = halves(y.clone(), 0);
    let (y_in, y_ref_d) = (y_in.detach(), y_ref.detach());
    let larger = y_in.clone().max_pair(y_ref_d.clone());
    let to_input = larger.clone() - y_ref_d;
    let to_reference = y_in.clone() - larger;
    let (i_in, i_ref) = {
        let i_in = indices.clone().narrow(0, 0, half);
        let i_ref = indices.narrow(0, half, half);
        let flat = |i: Tensor<4, burn::tensor::Int>| i.reshape([half, c, ho * wo]);
        (flat(i_in), flat(i_ref))
    };
    let (x_in, x_ref) = halves(x.clone(), 0);
    let x_in_d = x_in.clone().detach();
    let (dx, near) = safe_delta(x_in_d.clone() - x_ref.detach());
    let zero = x_in - x_in_d;
    let gather = |t: Tensor<4>, i: Tensor<3, burn::tensor::Int>| {
        t.reshape([half, c, h * w])
            .gather(2, i)
            .reshape([half, c, ho, wo])
    };
    let far = zero.clone().mask_fill(near.clone(), 0.0) / dx;
    let close = zero.mask_fill(near.bool_not(), 0.0);
    let linear = gather(close, i_in.clone())
        + to_input * gather(far.clone(), i_in)
        + to_reference * gather(far, i_ref);
    let (_, y_ref) = halves(y, 0);
    Tensor::cat(vec![y_in + linear, y_ref], 0)
}

/// `f(x)` for a softmax `f` (along an axis other than the batch's), whose backward pass is
/// Captum's DeepLift rule for `Softmax`: the Rescale multipliers (the gradient where
/// `|x - x0| < EPS`), then minus their mean, so the multipliers of a softmax's inputs sum to
/// zero as its outputs do. Captum takes that mean over the whole batch, coupling the samples;
/// here it is over each input-reference pair, which is Captum's at batch 1 and does not change
/// with the batch's other samples.
pub fn softmax_along<const D: usize>(
    x: Tensor<D>,
    batch_axis: usize,
    f: impl Fn(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let y = f(x.clone());
    if !paired(&x, batch_axis) {
        return y;
    }
    let (xd, yd) = (x.clone().detach(), y.detach());
    let (multiplier, near) = multipliers(xd.clone(), yd.clone(), batch_axis);
    let v = x - xd.clone();
    let centred = v.clone() - pair_mean(v, batch_axis);
    let near = near.float();
    // Where the input did not change, the softmax's own gradient; elsewhere the multipliers.
    let through_softmax = f(xd + centred.clone() * near.clone()) - yd.clone();
    let rescaled = centred * (near.neg() + 1.0) * multiplier;
    yd + through_softmax + rescaled
}

/// The mean of every element of each input-reference pair (rows `i` and `i + n/2` along
/// `batch_axis`), broadcast back to `t`'s shape.
fn pair_mean<const D: usize>(t: Tensor<D>, batch_axis: usize) -> Tensor<D> {
    let dims = t.dims();
    let per_row: usize = dims
        .iter()
        .enumerate()
        .filter(|(axis, _)| *axis != batch_axis)
        .map(|(_, d)| d)
        .product();
    let mut sums = t;
    for axis in (0..D).filter(|&a| a != batch_axis) {
        sums = sums.sum_dim(axis);
    }
    let (a, b) = halves(sums, batch_axis);
    let mean = (a + b) / (2 * per_row.max(1)) as f64;
    Tensor::cat(vec![mean.clone(), mean], batch_axis).expand(dims)
}
