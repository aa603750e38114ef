//! Reductions over axes: `Reduce*`, `ArgMax`, `ArgMin`.

use burn::tensor::Tensor;
use firelight_core::{Error, Result};
use onnx_ir::Node;
use onnx_ir::node::reduce::{ReduceAxes, ReduceConfig};

use super::{physical, required, resolve_axis};
use crate::value::{Kind, MAX_RANK, Value, padded};

type F = Tensor<MAX_RANK>;

/// The logical axes a reduction runs over (all of them for ONNX's empty list).
fn axes(
    config: &ReduceConfig,
    inputs: &[Option<Value>],
    rank: usize,
) -> Result<Option<Vec<usize>>> {
    let listed: Vec<usize> = match &config.axes {
        ReduceAxes::Static(axes) => axes.clone(),
        ReduceAxes::Runtime(r) => match inputs.get(r.input_index).and_then(Option::as_ref) {
            Some(v) => v
                .to_i64s()
                .into_iter()
                .map(|a| resolve_axis(a, rank))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        },
    };
    if listed.is_empty() {
        if config.noop_with_empty_axes {
            return Ok(None);
        }
        return Ok(Some((0..rank).collect()));
    }
    if let Some(bad) = listed.iter().find(|a| **a >= rank.max(1)) {
        return Err(Error::Model(format!(
            "axis {bad} is out of range for rank {rank}"
        )));
    }
    Ok(Some(listed))
}

#[allow(clippy::too_many_arguments)]
fn reduce(
    v: &Value,
    config: &ReduceConfig,
    inputs: &[Option<Value>],
    empty: f64,
    pre: impl Fn(F) -> F,
    op: impl Fn(F, usize) -> F,
    post: impl Fn(F) -> F,
) -> Result<Value> {
    let rank = v.rank();
    let Some(axes) = axes(config, inputs, rank)? else {
        return Ok(v.clone());
    };
    let shape = reduced_shape(v.shape(), &axes, config.keepdims);
    if axes.iter().any(|&a| v.shape()[a] == 0) {
        // Reducing an empty set gives the reduction's identity (0 for sums, -inf for max, ...).
        let count: usize = shape.iter().product();
        let data = burn::tensor::TensorData::new(vec![empty as f32; count], shape.clone());
        return Value::from_data(data, &v.device());
    }
    let mut t = pre(v.as_float());
    for &axis in &axes {
        if rank > 0 {
            t = op(t, physical(rank, axis));
        }
    }
    let t = post(t);
    let out = Value::float6(t.reshape(padded(&shape)), shape);
    // Integer and bool reductions (ReduceMax over shapes or masks, say) keep their kind.
    Ok(match v.kind() {
        Kind::Int => Value::int6(out.as_int(), out.shape().to_vec()),
        Kind::Bool => Value::bool6(out.as_bool(), out.shape().to_vec()),
        Kind::Float => out,
    })
}

fn reduced_shape(input: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    if keepdims {
        input
            .iter()
            .enumerate()
            .map(|(i, d)| if axes.contains(&i) { 1 } else { *d })
            .collect()
    } else {
        input
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, d)| *d)
            .collect()
    }
}

fn id(t: F) -> F {
    t
}

/// Evaluates `node` when it is a reduction.
pub(super) fn eval(node: &Node, inputs: &[Option<Value>]) -> Result<Option<Vec<Value>>> {
    use Node as N;
    let v = || required(inputs, 0);
    let sum = |t: F, a: usize| t.sum_dim(a);
    let out = match node {
        N::ReduceSum(n) => reduce(v()?, &n.config, inputs, 0.0, id, sum, id)?,
        N::ReduceMean(n) => reduce(
            v()?,
            &n.config,
            inputs,
            f64::NAN,
            id,
            |t, a| t.mean_dim(a),
            id,
        )?,
        N::ReduceMax(n) => reduce(
            v()?,
            &n.config,
            inputs,
            f64::NEG_INFINITY,
            id,
            |t, a| t.max_dim(a),
            id,
        )?,
        N::ReduceMin(n) => reduce(
            v()?,
            &n.config,
            inputs,
            f64::INFINITY,
            id,
            |t, a| t.min_dim(a),
            id,
        )?,
        N::ReduceProd(n) => reduce(v()?, &n.config, inputs, 1.0, id, |t, a| t.prod_dim(a), id)?,
        N::ReduceL1(n) => reduce(v()?, &n.config, inputs, 0.0, |t| t.abs(), sum, id)?,
        N::ReduceL2(n) => reduce(
            v()?,
            &n.config,
            inputs,
            0.0,
            |t| t.powi_scalar(2),
            sum,
            |t| t.sqrt(),
        )?,
        N::ReduceSumSquare(n) => {
            reduce(v()?, &n.config, inputs, 0.0, |t| t.powi_scalar(2), sum, id)?
        }
        N::ReduceLogSumExp(n) => {
            let x = v()?;
            // Shifted by the maximum so large inputs do not overflow.
            let max = reduce(
                x,
                &keep(&n.config),
                inputs,
                f64::NEG_INFINITY,
                id,
                |t, a| t.max_dim(a),
                id,
            )?;
            let shifted = x.as_float() - max.as_float();
            let shifted = Value::float6(shifted, x.shape().to_vec());
            let lse = reduce(
                &shifted,
                &keep(&n.config),
                inputs,
                f64::NEG_INFINITY,
                |t| t.exp(),
                sum,
                |t| t.log(),
            )?;
            let total = Value::float6(lse.as_float() + max.as_float(), lse.shape().to_vec());
            if n.config.keepdims {
                total
            } else {
                let squeezed = reduce(x, &n.config, inputs, 0.0, id, sum, id)?;
                total.reshaped(squeezed.shape().to_vec())?
            }
        }
        N::ArgMax(n) => arg(
            v()?,
            n.config.axis,
            n.config.keepdims,
            n.config.select_last_index,
            true,
        )?,
        N::ArgMin(n) => arg(
            v()?,
            n.config.axis,
            n.config.keepdims,
            n.config.select_last_index,
            false,
        )?,
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}

fn keep(config: &ReduceConfig) -> ReduceConfig {
    ReduceConfig {
        keepdims: true,
        ..config.clone()
    }
}

fn arg(v: &Value, axis: usize, keepdims: bool, last: bool, max: bool) -> Result<Value> {
    if axis >= v.rank() {
        return Err(Error::Model(format!(
            "axis {axis} is out of range for rank {}",
            v.rank()
        )));
    }
    let phys = physical(v.rank(), axis);
    let dim = v.shape()[axis] as i64;
    // The last of equal extremes is the first one of the reversed axis.
    let t = if last {
        v.as_float().flip([phys])
    } else {
        v.as_float()
    };
    let idx = if max { t.argmax(phys) } else { t.argmin(phys) };
    let idx = if last { idx.neg() + (dim - 1) } else { idx };
    let mut shape = v.shape().to_vec();
    if keepdims {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    Ok(Value::int6(idx.reshape(padded(&shape)), shape))
}
