//! Elementwise operators: arithmetic, activations, comparisons, logic, `Where`, variadic `Max`/`Sum`.

use burn::tensor::activation;
use burn::tensor::{Bool, Int, Tensor};
use firelight_core::{Error, ReluPolicy, Result, Taps};
use onnx_ir::Node;
use onnx_ir::node::clip::ClipInput;
use onnx_ir::node::gelu::GeluApproximate;

use super::{Context, broadcast, optional, required};
use crate::value::{Kind, MAX_RANK, Value, padded};

type F = Tensor<MAX_RANK>;
type I = Tensor<MAX_RANK, Int>;
type B = Tensor<MAX_RANK, Bool>;

fn unary_float(x: &Value, f: impl FnOnce(F) -> F) -> Result<Vec<Value>> {
    Ok(vec![Value::float6(
        f(x.float("input")?),
        x.shape().to_vec(),
    )])
}

/// `Float ∘ Float` or `Int ∘ Int` with NumPy broadcasting; mixed kinds compute in float.
fn binary(
    a: &Value,
    b: &Value,
    on_float: impl FnOnce(F, F) -> F,
    on_int: impl FnOnce(I, I) -> I,
) -> Result<Vec<Value>> {
    let shape = broadcast(a.shape(), b.shape())?;
    let out = if a.kind() == Kind::Int && b.kind() == Kind::Int {
        let dims = padded(&shape);
        Value::int6(
            on_int(a.as_int().expand(dims), b.as_int().expand(dims)),
            shape,
        )
    } else {
        let (x, y) = expand_pair(a.as_float(), b.as_float(), &shape);
        Value::float6(on_float(x, y), shape)
    };
    Ok(vec![out])
}

/// Both operands broadcast to `shape`: explicit, because not every pairwise op broadcasts.
fn expand_pair(x: F, y: F, shape: &[usize]) -> (F, F) {
    let dims = padded(shape);
    let x = if x.dims() == dims { x } else { x.expand(dims) };
    let y = if y.dims() == dims { y } else { y.expand(dims) };
    (x, y)
}

fn compare(
    a: &Value,
    b: &Value,
    on_float: impl FnOnce(F, F) -> B,
    on_int: impl FnOnce(I, I) -> B,
) -> Result<Vec<Value>> {
    let shape = broadcast(a.shape(), b.shape())?;
    let dims = padded(&shape);
    let out = if a.kind() != Kind::Float && b.kind() != Kind::Float {
        on_int(a.as_int().expand(dims), b.as_int().expand(dims))
    } else {
        on_float(a.as_float().expand(dims), b.as_float().expand(dims))
    };
    Ok(vec![Value::bool6(out, shape)])
}

fn logic(a: &Value, b: &Value, f: impl FnOnce(B, B) -> B) -> Result<Vec<Value>> {
    let shape = broadcast(a.shape(), b.shape())?;
    let dims = padded(&shape);
    let out = f(a.as_bool().expand(dims), b.as_bool().expand(dims));
    Ok(vec![Value::bool6(out, shape)])
}

/// Folds a variadic op (`Max`, `Min`, `Sum`, `Mean`) over its inputs with broadcasting.
fn variadic(
    inputs: &[Option<Value>],
    on_float: impl Fn(F, F) -> F,
    on_int: impl Fn(I, I) -> I,
) -> Result<Value> {
    let mut values = inputs.iter().flatten();
    let mut acc = values
        .next()
        .ok_or_else(|| Error::Model("needs at least one input".into()))?
        .clone();
    for v in values {
        acc = binary(&acc, v, &on_float, &on_int)?.remove(0);
    }
    Ok(acc)
}

fn clip_bound(bound: &Option<ClipInput>, inputs: &[Option<Value>]) -> Option<f64> {
    match bound {
        Some(ClipInput::Static(v)) => Some(*v),
        Some(ClipInput::Runtime(r)) => {
            optional(inputs, r.input_index).and_then(|v| v.to_f64s().first().copied())
        }
        None => None,
    }
}

fn gelu_tanh(x: F) -> F {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as ONNX defines approximate="tanh".
    let inner =
        (x.clone() + x.clone().powf_scalar(3.0) * 0.044715) * (2.0 / std::f64::consts::PI).sqrt();
    x * (firelight_core::activation::tanh(inner) + 1.0) * 0.5
}

/// The value of input `i` when it is a one-element float constant of the file (an initializer
/// or a `Constant` node's output), such as GELU's `/ sqrt 2`, `* 0.5` and `+ 1` in an `Erf`
/// export.
fn scalar_constant(node: &Node, inputs: &[Option<Value>], i: usize) -> Option<f64> {
    let value = inputs.get(i)?.as_ref()?;
    if value.num_elements() != 1 || value.kind() != Kind::Float {
        return None;
    }
    let data = node.inputs().get(i)?.value()?;
    data.convert::<f64>()
        .try_to_vec::<f64>()
        .ok()?
        .first()
        .copied()
}

/// `Add`, `Sub`, `Mul` or `Div` of a float value and a one-element constant as Burn's scalar op:
/// the same numbers as broadcasting the constant, without expanding it to the value's shape,
/// whose backward pass then walked the expanded constant element by element (its reciprocal,
/// for `Div`: 4% of Integrated Gradients on ConvNeXt-Tiny). `None` where it does not apply (the
/// constant on the left of `Sub` or `Div`, a broadcast that widens the value, integers).
fn scalar_arithmetic(node: &Node, inputs: &[Option<Value>]) -> Result<Option<Vec<Value>>> {
    let (x, y) = (required(inputs, 0)?, required(inputs, 1)?);
    let commutative = matches!(node, Node::Add(_) | Node::Mul(_));
    let (value, constant) = if let Some(c) = scalar_constant(node, inputs, 1) {
        (x, c)
    } else if let Some(c) = scalar_constant(node, inputs, 0).filter(|_| commutative) {
        (y, c)
    } else {
        return Ok(None);
    };
    if value.kind() != Kind::Float || broadcast(x.shape(), y.shape())? != value.shape() {
        return Ok(None);
    }
    let t = value.as_float();
    let out = match node {
        Node::Add(_) => t.add_scalar(constant),
        Node::Sub(_) => t.sub_scalar(constant),
        Node::Mul(_) => t.mul_scalar(constant),
        Node::Div(_) => t.div_scalar(constant),
        _ => return Ok(None),
    };
    Ok(Some(vec![Value::float6(out, value.shape().to_vec())]))
}

/// `Mul` of a float value by a factor that varies along one run of adjacent axes and is
/// constant along the others (a squeeze-and-excitation gate `[b, c, 1, 1]`, a layer scale
/// `[c, 1, 1]`, a per-feature weight `[features]`) as [`firelight_core::scale::scale_channels`]:
/// the same numbers as the broadcast product, in one pass each way where broadcasting takes a
/// pass on one thread forward and three backward (IG-50 on EfficientNet-B0 4-5% faster, with
/// the direct 1x1 input gradient: BENCHMARKS.md).
/// `None` where the factor is not of that form (or is one element: [`scalar_arithmetic`]'s, or
/// a broadcast of both operands).
fn channel_product(a: &Value, b: &Value) -> Result<Option<Vec<Value>>> {
    if a.kind() != Kind::Float || b.kind() != Kind::Float {
        return Ok(None);
    }
    let shape = broadcast(a.shape(), b.shape())?;
    let (value, factor) = if a.shape() == shape && b.shape() != shape {
        (a, b)
    } else if b.shape() == shape && a.shape() != shape {
        (b, a)
    } else {
        return Ok(None);
    };
    let dims = &padded(factor.shape())[MAX_RANK - shape.len()..];
    let (Some(first), Some(last)) = (
        dims.iter().position(|&d| d != 1),
        dims.iter().rposition(|&d| d != 1),
    ) else {
        return Ok(None);
    };
    if dims[first..=last] != shape[first..=last] {
        return Ok(None);
    }
    let size = |axes: &[usize]| axes.iter().product::<usize>();
    let (outer, channels, inner) = (
        size(&shape[..first]),
        size(&shape[first..=last]),
        size(&shape[last + 1..]),
    );
    let y = firelight_core::scale::scale_channels(
        value.as_float().reshape([outer, channels, inner]),
        factor.as_float().reshape([channels]),
    );
    Ok(Some(vec![Value::float6(y.reshape(padded(&shape)), shape)]))
}

/// Evaluates `node` when it is elementwise.
pub(super) fn eval(
    node: &Node,
    inputs: &[Option<Value>],
    ctx: &Context,
) -> Result<Option<Vec<Value>>> {
    use Node as N;
    let x = || required(inputs, 0);
    let y = || required(inputs, 1);
    if matches!(node, N::Add(_) | N::Sub(_) | N::Mul(_) | N::Div(_))
        && let Some(out) = scalar_arithmetic(node, inputs)?
    {
        return Ok(Some(out));
    }
    let out = match node {
        N::Add(_)
            if matches!(ctx.relu, ReluPolicy::Lrp(_))
                && x()?.kind() == Kind::Float
                && y()?.kind() == Kind::Float
                && x()?.shape() == y()?.shape() =>
        {
            // A residual sum under LRP: zennit's Norm rule for sums.
            let (a, b) = (x()?, y()?);
            vec![Value::float6(
                firelight_core::lrp::sum_norm(a.as_float(), b.as_float()),
                a.shape().to_vec(),
            )]
        }
        N::Add(_) => binary(x()?, y()?, |a, b| a + b, |a, b| a + b)?,
        N::Sub(_) => binary(x()?, y()?, |a, b| a - b, |a, b| a - b)?,
        N::Mul(_) => match channel_product(x()?, y()?)? {
            Some(out) => out,
            None => binary(x()?, y()?, |a, b| a * b, |a, b| a * b)?,
        },
        N::Div(_) => binary(x()?, y()?, |a, b| a / b, |a, b| a / b)?,
        // ONNX's `fmod = 1` is C's fmod (the sign of the dividend); `fmod = 0` is the floor
        // modulo of integers (the sign of the divisor), Burn's `remainder`.
        N::Mod(n) if n.config.fmod => binary(
            x()?,
            y()?,
            |a, b| a.clone() - b.clone() * (a / b).trunc(),
            |a, b| {
                let (fa, fb) = (a.float(), b.float());
                (fa.clone() - fb.clone() * (fa / fb).trunc()).int()
            },
        )?,
        N::Mod(_) => binary(x()?, y()?, |a, b| a.remainder(b), |a, b| a.remainder(b))?,
        N::Pow(_) => {
            let (base, exponent) = (x()?, y()?);
            let shape = broadcast(base.shape(), exponent.shape())?;
            let out = if exponent.num_elements() == 1 {
                // A scalar exponent keeps integral powers of negative bases real (x^2, x^3).
                let e = exponent.to_f64s()[0];
                let b = base.as_float();
                let dims = padded(&shape);
                let b = if b.dims() == dims { b } else { b.expand(dims) };
                if e == e.round() && e.abs() <= 64.0 {
                    b.powi_scalar(e as i64)
                } else {
                    b.powf_scalar(e)
                }
            } else {
                let (b, e) = expand_pair(base.as_float(), exponent.as_float(), &shape);
                b.powf(e)
            };
            if base.kind() == Kind::Int {
                vec![Value::int6(out.int(), shape)]
            } else {
                vec![Value::float6(out, shape)]
            }
        }
        N::Neg(_) => {
            let v = x()?;
            match v.kind() {
                Kind::Int => vec![Value::int6(v.as_int().neg(), v.shape().to_vec())],
                _ => unary_float(v, |t| t.neg())?,
            }
        }
        N::Abs(_) => {
            let v = x()?;
            match v.kind() {
                Kind::Int => vec![Value::int6(v.as_int().abs(), v.shape().to_vec())],
                _ => unary_float(v, |t| t.abs())?,
            }
        }
        N::Sign(_) => {
            let v = x()?;
            match v.kind() {
                Kind::Int => vec![Value::int6(v.as_int().sign(), v.shape().to_vec())],
                _ => unary_float(v, |t| t.sign())?,
            }
        }
        N::Reciprocal(_) => unary_float(x()?, |t| t.recip())?,
        N::Sqrt(_) => unary_float(x()?, |t| t.sqrt())?,
        N::Exp(_) => unary_float(x()?, firelight_core::activation::exp)?,
        N::Log(_) => unary_float(x()?, |t| t.log())?,
        N::Ceil(_) => unary_float(x()?, |t| t.ceil())?,
        N::Floor(_) => unary_float(x()?, |t| t.floor())?,
        N::Round(_) => unary_float(x()?, |t| t.round())?,
        N::Erf(_) => nonlinear(x()?, ctx, firelight_core::activation::erf)?,
        N::Sin(_) => unary_float(x()?, |t| t.sin())?,
        N::Cos(_) => unary_float(x()?, |t| t.cos())?,
        N::Tan(_) => unary_float(x()?, |t| t.clone().sin() / t.cos())?,
        N::Tanh(_) => nonlinear(x()?, ctx, firelight_core::activation::tanh)?,
        N::Sigmoid(_) => nonlinear(x()?, ctx, firelight_core::activation::sigmoid)?,
        N::Relu(_) if ctx.relu == ReluPolicy::DeepLift => {
            nonlinear(x()?, ctx, burn::tensor::activation::relu)?
        }
        N::Relu(_) => unary_float(x()?, |t| relu(t, ctx.relu))?,
        N::LeakyRelu(n) => nonlinear(x()?, ctx, |t| activation::leaky_relu(t, n.config.alpha))?,
        N::Elu(n) => nonlinear(x()?, ctx, |t| activation::elu(t, n.config.alpha))?,
        N::Celu(n) => nonlinear(x()?, ctx, |t| activation::celu(t, n.config.alpha))?,
        N::Selu(n) => {
            let (alpha, gamma) = (n.config.alpha, n.config.gamma);
            nonlinear(x()?, ctx, |t| {
                let negative = (t.clone().exp() - 1.0) * alpha;
                t.clone().mask_where(t.lower_equal_elem(0.0), negative) * gamma
            })?
        }
        N::Gelu(n) => match n.config.approximate {
            GeluApproximate::Exact => nonlinear(x()?, ctx, firelight_core::activation::gelu)?,
            _ => nonlinear(x()?, ctx, gelu_tanh)?,
        },
        N::HardSigmoid(n) => nonlinear(x()?, ctx, |t| {
            activation::hard_sigmoid(t, n.config.alpha, n.config.beta)
        })?,
        N::HardSwish(_) => nonlinear(x()?, ctx, |t| {
            t.clone() * activation::hard_sigmoid(t, 1.0 / 6.0, 0.5)
        })?,
        N::Softplus(_) => nonlinear(x()?, ctx, |t| activation::softplus(t, 1.0))?,
        N::Softsign(_) => nonlinear(x()?, ctx, |t| t.clone() / (t.abs() + 1.0))?,
        N::Mish(_) => nonlinear(x()?, ctx, activation::mish)?,
        N::PRelu(_) => {
            let (v, slope) = (x()?, y()?);
            let shape = broadcast(v.shape(), slope.shape())?;
            let (t, s) = expand_pair(v.as_float(), slope.as_float(), &shape);
            let negative = t.clone() * s;
            vec![Value::float6(
                t.clone().mask_where(t.lower_elem(0.0), negative),
                shape,
            )]
        }
        N::Clip(n) => {
            let v = x()?;
            let min = clip_bound(&n.config.min, inputs);
            let max = clip_bound(&n.config.max, inputs);
            let shape = v.shape().to_vec();
            match v.kind() {
                Kind::Int => {
                    let mut t = v.as_int();
                    if let Some(min) = min {
                        t = t.clamp_min(min as i64);
                    }
                    if let Some(max) = max {
                        t = t.clamp_max(max as i64);
                    }
                    vec![Value::int6(t, shape)]
                }
                _ => nonlinear(v, ctx, |mut t| {
                    if let Some(min) = min {
                        t = t.clamp_min(min);
                    }
                    if let Some(max) = max {
                        t = t.clamp_max(max);
                    }
                    t
                })?,
            }
        }
        N::Max(_) => vec![variadic(
            inputs,
            |a, b| a.max_pair(b),
            |a, b| a.max_pair(b),
        )?],
        N::Min(_) => vec![variadic(
            inputs,
            |a, b| a.min_pair(b),
            |a, b| a.min_pair(b),
        )?],
        N::Sum(_) => vec![variadic(inputs, |a, b| a + b, |a, b| a + b)?],
        N::Mean(_) => {
            let count = inputs.iter().flatten().count();
            let sum = variadic(inputs, |a, b| a + b, |a, b| a + b)?;
            let shape = sum.shape().to_vec();
            vec![Value::float6(sum.as_float() / count as f64, shape)]
        }
        N::Equal(_) => compare(x()?, y()?, |a, b| a.equal(b), |a, b| a.equal(b))?,
        N::Greater(_) => compare(x()?, y()?, |a, b| a.greater(b), |a, b| a.greater(b))?,
        N::GreaterOrEqual(_) => compare(
            x()?,
            y()?,
            |a, b| a.greater_equal(b),
            |a, b| a.greater_equal(b),
        )?,
        N::Less(_) => compare(x()?, y()?, |a, b| a.lower(b), |a, b| a.lower(b))?,
        N::LessOrEqual(_) => compare(x()?, y()?, |a, b| a.lower_equal(b), |a, b| a.lower_equal(b))?,
        N::IsNaN(_) => {
            let v = x()?;
            vec![Value::bool6(v.as_float().is_nan(), v.shape().to_vec())]
        }
        N::IsInf(n) => {
            let v = x()?;
            let t = v.as_float();
            let mut mask = t.clone().is_inf();
            if !n.config.detect_positive {
                mask = mask.bool_and(t.clone().lower_elem(0.0));
            }
            if !n.config.detect_negative {
                mask = mask.bool_and(t.greater_elem(0.0));
            }
            vec![Value::bool6(mask, v.shape().to_vec())]
        }
        N::Not(_) => {
            let v = x()?;
            vec![Value::bool6(v.as_bool().bool_not(), v.shape().to_vec())]
        }
        N::And(_) => logic(x()?, y()?, |a, b| a.bool_and(b))?,
        N::Or(_) => logic(x()?, y()?, |a, b| a.bool_or(b))?,
        N::Xor(_) => logic(x()?, y()?, |a, b| a.not_equal(b))?,
        N::Where(_) => {
            let (cond, a, b) = (x()?, y()?, required(inputs, 2)?);
            let shape = broadcast(&broadcast(cond.shape(), a.shape())?, b.shape())?;
            let dims = padded(&shape);
            let mask = cond.as_bool().expand(dims);
            let out = if a.kind() == Kind::Int && b.kind() == Kind::Int {
                Value::int6(
                    b.as_int()
                        .expand(dims)
                        .mask_where(mask, a.as_int().expand(dims)),
                    shape,
                )
            } else {
                let (on_true, on_false) = expand_pair(a.as_float(), b.as_float(), &shape);
                Value::float6(on_false.mask_where(mask, on_true), shape)
            };
            vec![out]
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

/// An element-wise nonlinearity: `f(x)`, under DeepLift with the Rescale rule along the value's
/// batch axis (its first), so every activation node of a graph gets the rule, however often the
/// exported module was reused; under LRP passing relevance unchanged.
fn nonlinear(x: &Value, ctx: &Context, f: impl Fn(F) -> F) -> Result<Vec<Value>> {
    if let ReluPolicy::Lrp(_) = ctx.relu {
        // LRP's activations pass relevance unchanged (zennit's Pass).
        return unary_float(x, |t| firelight_core::lrp::pass(t, f));
    }
    if ctx.relu != ReluPolicy::DeepLift || x.rank() == 0 {
        return unary_float(x, f);
    }
    let axis = super::physical(x.rank(), 0);
    unary_float(x, |t| firelight_core::deeplift::rescale_along(t, axis, f))
}

/// ReLU under the policy of the pass, so Guided Backprop and Deconvolution see every ReLU node.
fn relu(x: F, policy: ReluPolicy) -> F {
    Taps::none().relu_policy(policy).relu(x)
}
