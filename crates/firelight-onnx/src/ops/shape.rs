//! Operators that move, select or create values rather than compute on them.

use burn::tensor::ops::PadMode as BurnPad;
use burn::tensor::{DType, Int, Tensor, TensorData};
use firelight_core::{Error, Result};
use onnx_ir::Node;
use onnx_ir::node::constant_of_shape::ConstantOfShapeShape;
use onnx_ir::node::expand::ExpandConfig;
use onnx_ir::node::pad::{AxesInput, ConstantValueInput, PadInput, PadMode};
use onnx_ir::node::range::RangeInput;
use onnx_ir::node::reshape::ReshapeInput;
use onnx_ir::node::slice::SliceInput;
use onnx_ir::node::split::SplitSizesInput;
use onnx_ir::node::squeeze::SqueezeInput;
use onnx_ir::node::tile::TileInput;
use onnx_ir::node::unsqueeze::UnsqueezeConfig;
use onnx_ir::{RuntimeInputRef, TensorDataExt};

use super::{broadcast, host_ints, physical, required, resolve_axis};
use crate::value::{Kind, MAX_RANK, Value, any_kind, padded};

/// The integers of a runtime input named by a config.
fn runtime(inputs: &[Option<Value>], r: &RuntimeInputRef) -> Result<Vec<i64>> {
    host_ints(inputs, r.input_index)
}

/// A shape from a (possibly hostile) model, refused before anything is allocated when its
/// values (4 bytes each) would not fit the memory budget.
pub(crate) fn element_budget(shape: &[usize]) -> Result<()> {
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    firelight_core::budget::check(|| format!("a tensor of shape {shape:?}"), count, 4)
}

fn to_dims(values: &[i64], what: &str) -> Result<Vec<usize>> {
    let dims = values
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| Error::Model(format!("{what} has a negative dimension: {values:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    element_budget(&dims)?;
    Ok(dims)
}

/// ONNX `Reshape` semantics: `0` copies the input dimension, `-1` is inferred.
fn reshape_target(input: &[usize], spec: &[i64]) -> Result<Vec<usize>> {
    let mut shape = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            0 => shape.push(*input.get(i).ok_or_else(|| {
                Error::Model(format!(
                    "Reshape copies axis {i} of {input:?}, which does not exist"
                ))
            })?),
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            d if d > 0 => shape.push(d as usize),
            _ => return Err(Error::Model(format!("invalid Reshape target {spec:?}"))),
        }
    }
    let total: usize = input.iter().product();
    if let Some(i) = infer {
        let known: usize = shape.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(Error::Model(format!(
                "cannot reshape {input:?} to {spec:?}"
            )));
        }
        shape[i] = total / known;
    }
    Ok(shape)
}

fn slice_ints(input: &SliceInput, inputs: &[Option<Value>]) -> Result<Vec<i64>> {
    match input {
        SliceInput::Static(v) => Ok(v.clone()),
        SliceInput::Runtime(r) => runtime(inputs, r),
    }
}

/// Indices along one axis taken by ONNX `Slice` with clamped `start`, `end` and `step`.
fn slice_indices(dim: usize, start: i64, end: i64, step: i64) -> Result<Vec<i64>> {
    if step == 0 {
        return Err(Error::Model("Slice step must be non-zero".into()));
    }
    let d = dim as i64;
    let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (start, end) = (norm(start), norm(end));
    let mut out = Vec::new();
    if step > 0 {
        let (s, e) = (start.clamp(0, d), end.clamp(0, d));
        let mut i = s;
        while i < e {
            out.push(i);
            i += step;
        }
    } else {
        let (s, e) = (start.clamp(-1, d - 1), end.clamp(-1, d - 1));
        let mut i = s;
        while i > e {
            out.push(i);
            i += step;
        }
    }
    Ok(out)
}

/// Selects `indices` along logical `axis` of `v` (any kind), as `Slice` and `Gather` need.
fn take(v: &Value, axis: usize, indices: Vec<i64>) -> Value {
    let phys = physical(v.rank(), axis);
    let n = indices.len();
    let mut shape = v.shape().to_vec();
    shape[axis] = n;
    let contiguous = indices.windows(2).all(|w| w[1] == w[0] + 1);
    if n > 0 && contiguous {
        let start = indices[0] as usize;
        return any_kind!(v, shape, |t| t.narrow(phys, start, n));
    }
    let index = Tensor::<1, Int>::from_data(TensorData::new(indices, [n]), &v.device());
    any_kind!(v, shape, |t| t.select(phys, index.clone()))
}

/// Evaluates `node` when it moves, selects or creates values.
pub(super) fn eval(node: &Node, inputs: &[Option<Value>]) -> Result<Option<Vec<Value>>> {
    use Node as N;
    let x = || required(inputs, 0);
    let out = match node {
        N::Identity(_) | N::Constant(_) => vec![x()?.clone()],
        N::Cast(n) => {
            let v = x()?;
            let shape = v.shape().to_vec();
            let out = match n.config.to {
                DType::F64 | DType::F32 | DType::F16 | DType::BF16 | DType::Flex32 => {
                    Value::float6(v.as_float(), shape)
                }
                DType::Bool(_) => Value::bool6(v.as_bool(), shape),
                DType::QFloat(_) => {
                    return Err(Error::Model(
                        "Cast to a quantised type is not supported".into(),
                    ));
                }
                _ => Value::int6(v.as_int(), shape),
            };
            vec![out]
        }
        N::Concat(n) => {
            let values: Vec<&Value> = inputs.iter().flatten().collect();
            let first = values
                .first()
                .ok_or_else(|| Error::Model("Concat needs inputs".into()))?;
            let axis = n.config.axis;
            let rank = first.rank();
            if axis >= rank {
                return Err(Error::Model(format!(
                    "Concat axis {axis} is out of range for rank {rank}"
                )));
            }
            let mut shape = first.shape().to_vec();
            shape[axis] = 0;
            for v in &values {
                let same_rest = v.rank() == rank
                    && v.shape()
                        .iter()
                        .zip(first.shape())
                        .enumerate()
                        .all(|(i, (a, b))| i == axis || a == b);
                if !same_rest {
                    return Err(Error::Model(format!(
                        "Concat inputs {:?} and {:?} differ outside axis {axis}",
                        first.shape(),
                        v.shape()
                    )));
                }
                shape[axis] += v.shape()[axis];
            }
            let phys = physical(rank, axis);
            let kind = if values.iter().all(|v| v.kind() == Kind::Int) {
                Kind::Int
            } else if values.iter().all(|v| v.kind() == Kind::Bool) {
                Kind::Bool
            } else {
                Kind::Float
            };
            // Empty inputs contribute nothing and some backends refuse zero-sized parts.
            let parts: Vec<&Value> = values
                .iter()
                .copied()
                .filter(|v| v.num_elements() > 0)
                .collect();
            if parts.is_empty() {
                vec![(*first).reshaped(shape)?]
            } else {
                vec![match kind {
                    Kind::Int => Value::int6(
                        Tensor::cat(parts.iter().map(|v| v.as_int()).collect(), phys),
                        shape,
                    ),
                    Kind::Bool => Value::bool6(
                        Tensor::cat(parts.iter().map(|v| v.as_bool()).collect(), phys),
                        shape,
                    ),
                    Kind::Float => Value::float6(
                        Tensor::cat(parts.iter().map(|v| v.as_float()).collect(), phys),
                        shape,
                    ),
                }]
            }
        }
        N::Flatten(n) => {
            let v = x()?;
            let axis = n.config.axis.min(v.rank());
            let outer = v.shape()[..axis].iter().product();
            let inner = v.shape()[axis..].iter().product();
            vec![v.reshaped(vec![outer, inner])?]
        }
        N::Reshape(n) => {
            let v = x()?;
            let spec = match &n.config.shape {
                ReshapeInput::Static(s) => s.clone(),
                ReshapeInput::Runtime(r) => runtime(inputs, r)?,
            };
            vec![v.reshaped(reshape_target(v.shape(), &spec)?)?]
        }
        N::Shape(n) => {
            let v = x()?;
            let (start, end) = (n.config.start.min(v.rank()), n.config.end.min(v.rank()));
            let dims: Vec<i64> = v.shape()[start..end.max(start)]
                .iter()
                .map(|&d| d as i64)
                .collect();
            let len = dims.len();
            vec![Value::from_data(TensorData::new(dims, [len]), &v.device())?]
        }
        N::Size(_) => {
            let v = x()?;
            let count = v.num_elements() as i64;
            vec![Value::from_data(
                TensorData::new(vec![count], Vec::<usize>::new()),
                &v.device(),
            )?]
        }
        N::Squeeze(n) => {
            let v = x()?;
            let axes: Vec<usize> = match &n.config.axes {
                None => (0..v.rank()).filter(|&i| v.shape()[i] == 1).collect(),
                Some(SqueezeInput::Static(a)) => a
                    .iter()
                    .map(|&a| resolve_axis(a, v.rank()))
                    .collect::<Result<_>>()?,
                Some(SqueezeInput::Runtime(r)) => runtime(inputs, r)?
                    .into_iter()
                    .map(|a| resolve_axis(a, v.rank()))
                    .collect::<Result<_>>()?,
            };
            if let Some(a) = axes.iter().find(|&&a| v.shape()[a] != 1) {
                return Err(Error::Model(format!(
                    "cannot squeeze axis {a} of shape {:?}: it is not 1",
                    v.shape()
                )));
            }
            let shape = v
                .shape()
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, d)| *d)
                .collect();
            vec![v.reshaped(shape)?]
        }
        N::Unsqueeze(n) => {
            let v = x()?;
            let axes = match &n.config {
                UnsqueezeConfig::Static(a) => a.clone(),
                UnsqueezeConfig::Runtime(r) => runtime(inputs, r)?,
            };
            let out_rank = v.rank() + axes.len();
            let mut axes = axes
                .into_iter()
                .map(|a| resolve_axis(a, out_rank))
                .collect::<Result<Vec<_>>>()?;
            axes.sort_unstable();
            let mut shape = v.shape().to_vec();
            for a in axes {
                shape.insert(a.min(shape.len()), 1);
            }
            vec![v.reshaped(shape)?]
        }
        N::Transpose(n) => {
            let v = x()?;
            let rank = v.rank();
            let perm: Vec<usize> = if n.config.perm.is_empty() {
                (0..rank).rev().collect()
            } else {
                n.config
                    .perm
                    .iter()
                    .map(|&p| resolve_axis(p, rank))
                    .collect::<Result<_>>()?
            };
            let mut seen = perm.clone();
            seen.sort_unstable();
            if seen != (0..rank).collect::<Vec<_>>() {
                return Err(Error::Model(format!(
                    "Transpose perm {:?} is not a permutation of rank {rank}",
                    n.config.perm
                )));
            }
            let offset = MAX_RANK - rank;
            let mut axes = [0; MAX_RANK];
            for (i, a) in axes.iter_mut().enumerate() {
                *a = if i < offset {
                    i
                } else {
                    offset + perm[i - offset]
                };
            }
            let shape: Vec<usize> = perm.iter().map(|&p| v.shape()[p]).collect();
            vec![any_kind!(v, shape, |t| t.permute(axes))]
        }
        N::Slice(n) => {
            let v = x()?;
            let starts = slice_ints(&n.config.starts, inputs)?;
            let ends = slice_ints(&n.config.ends, inputs)?;
            let axes = match &n.config.axes {
                Some(a) => slice_ints(a, inputs)?,
                None => (0..starts.len() as i64).collect(),
            };
            let steps = match &n.config.steps {
                Some(s) => slice_ints(s, inputs)?,
                None => vec![1; starts.len()],
            };
            if ends.len() != starts.len()
                || axes.len() != starts.len()
                || steps.len() != starts.len()
            {
                return Err(Error::Model(
                    "Slice starts, ends, axes and steps differ in length".into(),
                ));
            }
            let mut out = v.clone();
            for i in 0..starts.len() {
                let axis = resolve_axis(axes[i], v.rank())?;
                let dim = out.shape()[axis];
                let indices = slice_indices(dim, starts[i], ends[i], steps[i])?;
                if indices.len() == dim && indices.iter().enumerate().all(|(j, &k)| j as i64 == k) {
                    continue;
                }
                out = take(&out, axis, indices);
            }
            vec![out]
        }
        N::Gather(n) => {
            let (data, idx) = (x()?, required(inputs, 1)?);
            let axis = n.config.axis;
            if axis >= data.rank() {
                return Err(Error::Model(format!(
                    "Gather axis {axis} is out of range for {:?}",
                    data.shape()
                )));
            }
            let dim = data.shape()[axis] as i64;
            let mut indices = idx.to_i64s();
            for i in &mut indices {
                if *i < -dim || *i >= dim {
                    return Err(Error::Model(format!(
                        "Gather index {i} is out of range for axis {axis} of size {dim}"
                    )));
                }
                if *i < 0 {
                    *i += dim;
                }
            }
            let mut shape = data.shape()[..axis].to_vec();
            shape.extend_from_slice(idx.shape());
            shape.extend_from_slice(&data.shape()[axis + 1..]);
            vec![take(data, axis, indices).reshaped(shape)?]
        }
        N::Expand(n) => {
            let v = x()?;
            let target = match &n.config {
                ExpandConfig::Static(s) => s.clone(),
                ExpandConfig::Runtime(r) => runtime(inputs, r)?,
            };
            let shape = broadcast(v.shape(), &to_dims(&target, "Expand shape")?)?;
            element_budget(&shape)?;
            let dims = padded(&shape);
            vec![any_kind!(v, shape, |t| t.expand(dims))]
        }
        N::Tile(n) => {
            let v = x()?;
            let repeats: Vec<usize> = match &n.config.repeats {
                TileInput::Static(r) => r.clone(),
                TileInput::Runtime(r) => to_dims(&runtime(inputs, r)?, "Tile repeats")?,
            };
            if repeats.len() != v.rank() {
                return Err(Error::Model(format!(
                    "Tile repeats {repeats:?} do not match rank {}",
                    v.rank()
                )));
            }
            let shape: Vec<usize> = v.shape().iter().zip(&repeats).map(|(d, r)| d * r).collect();
            element_budget(&shape)?;
            let sizes = padded(&repeats);
            vec![any_kind!(v, shape, |t| t.repeat(&sizes))]
        }
        N::Pad(n) => {
            let v = x()?;
            let rank = v.rank();
            let pairs: Vec<(usize, usize)> = match &n.config.pads {
                PadInput::Static(p) => p.clone(),
                PadInput::Runtime { input, axes } => {
                    let flat = to_dims(&runtime(inputs, input)?, "Pad pads")?;
                    let axes: Vec<usize> = match axes {
                        None => (0..rank).collect(),
                        Some(AxesInput::Static(a)) => a.clone(),
                        Some(AxesInput::Runtime(r)) => runtime(inputs, r)?
                            .into_iter()
                            .map(|a| resolve_axis(a, rank))
                            .collect::<Result<_>>()?,
                    };
                    if flat.len() != 2 * axes.len() || axes.iter().any(|&a| a >= rank) {
                        return Err(Error::Model(format!(
                            "Pad pads {flat:?} do not match axes {axes:?} of rank {rank}"
                        )));
                    }
                    let mut pairs = vec![(0, 0); rank];
                    for (i, &a) in axes.iter().enumerate() {
                        pairs[a] = (flat[i], flat[i + axes.len()]);
                    }
                    pairs
                }
            };
            if pairs.len() != rank {
                return Err(Error::Model(format!(
                    "Pad pads {pairs:?} do not match rank {rank}"
                )));
            }
            let value = match &n.config.constant_value {
                ConstantValueInput::Static(c) => *c as f64,
                ConstantValueInput::Runtime(r) => required(inputs, r.input_index)?
                    .to_f64s()
                    .first()
                    .copied()
                    .unwrap_or(0.0),
            };
            let mode = match n.config.mode {
                PadMode::Constant => BurnPad::Constant(value as f32),
                PadMode::Reflect => BurnPad::Reflect,
                PadMode::Edge => BurnPad::Edge,
            };
            for (i, (before, after)) in pairs.iter().enumerate() {
                let d = v.shape()[i];
                let bad = match n.config.mode {
                    PadMode::Reflect => d == 0 || *before >= d || *after >= d,
                    PadMode::Edge => d == 0 && before + after > 0,
                    PadMode::Constant => false,
                };
                if bad {
                    return Err(Error::Model(format!(
                        "Pad {pairs:?} does not fit shape {:?} in this mode",
                        v.shape()
                    )));
                }
            }
            let shape: Vec<usize> = v
                .shape()
                .iter()
                .zip(&pairs)
                .map(|(d, (b, a))| d + b + a)
                .collect();
            element_budget(&shape)?;
            let mut full = vec![(0, 0); MAX_RANK - rank];
            full.extend(pairs);
            let out = match mode {
                BurnPad::Constant(value) => constant_pad(v.as_float(), &full, value),
                _ => v.as_float().pad(full.as_slice(), mode),
            };
            let out = Value::float6(out, shape);
            vec![if v.kind() == Kind::Int {
                Value::int6(out.as_int(), out.shape().to_vec())
            } else {
                out
            }]
        }
        N::Split(n) => {
            let v = x()?;
            let axis = n.config.axis;
            if axis >= v.rank() {
                return Err(Error::Model(format!(
                    "Split axis {axis} is out of range for {:?}",
                    v.shape()
                )));
            }
            let dim = v.shape()[axis];
            let outputs = n.outputs.len().max(1);
            let sizes: Vec<usize> = match (&n.config.split_sizes, n.config.split_size) {
                (Some(SplitSizesInput::Static(s)), _) => s.clone(),
                (Some(SplitSizesInput::Runtime(r)), _) => {
                    to_dims(&runtime(inputs, r)?, "Split sizes")?
                }
                (None, Some(size)) if size > 0 => (0..dim.div_ceil(size))
                    .map(|i| size.min(dim - i * size))
                    .collect(),
                _ => {
                    let count = n.config.num_outputs.unwrap_or(outputs).max(1);
                    let size = dim.div_ceil(count);
                    (0..count)
                        .map(|i| size.min(dim.saturating_sub(i * size)))
                        .collect()
                }
            };
            if sizes.iter().sum::<usize>() != dim {
                return Err(Error::Model(format!(
                    "Split sizes {sizes:?} do not add up to {dim}"
                )));
            }
            let mut start = 0;
            sizes
                .into_iter()
                .map(|len| {
                    let part = take(v, axis, (start as i64..(start + len) as i64).collect());
                    start += len;
                    part
                })
                .collect()
        }
        N::ConstantOfShape(n) => {
            let dims = match &n.config.shape {
                ConstantOfShapeShape::Static(s) => s.clone(),
                ConstantOfShapeShape::Runtime(r) => runtime(inputs, r)?,
            };
            let shape = to_dims(&dims, "ConstantOfShape shape")?;
            let device = inputs
                .iter()
                .flatten()
                .next()
                .map(Value::device)
                .unwrap_or_default();
            let (dtype, fill) = match &n.config.value {
                Some(data) => {
                    // `scalar_f64` refuses bools (and some integer widths): read them directly.
                    let fill = match data.dtype() {
                        DType::Bool(_) => data.iter::<bool>().next().map(f64::from),
                        _ => data.scalar_f64().ok(),
                    };
                    let fill = fill.ok_or_else(|| {
                        Error::Model(format!(
                            "ConstantOfShape value of type {:?} cannot be read",
                            data.dtype()
                        ))
                    })?;
                    (data.dtype(), fill)
                }
                None => (DType::F32, 0.0),
            };
            let count: usize = shape.iter().product();
            let data = match dtype {
                DType::Bool(_) => TensorData::new(vec![fill != 0.0; count], shape.clone()),
                DType::F64 | DType::F32 | DType::F16 | DType::BF16 => {
                    TensorData::new(vec![fill as f32; count], shape.clone())
                }
                _ => TensorData::new(vec![fill as i64; count], shape.clone()),
            };
            vec![Value::from_data(data, &device)?]
        }
        N::Range(n) => {
            let read = |r: &RangeInput| -> Result<f64> {
                match r {
                    RangeInput::Static(v) => Ok(*v as f64),
                    RangeInput::StaticFloat(v) => Ok(*v),
                    RangeInput::Runtime(r) => Ok(required(inputs, r.input_index)?
                        .to_f64s()
                        .first()
                        .copied()
                        .unwrap_or(0.0)),
                }
            };
            let (start, limit, delta) = (
                read(&n.config.start)?,
                read(&n.config.limit)?,
                read(&n.config.delta)?,
            );
            if delta == 0.0 || !delta.is_finite() || !start.is_finite() || !limit.is_finite() {
                return Err(Error::Model(format!(
                    "Range delta {delta} (start {start}, limit {limit}) is invalid"
                )));
            }
            let count = ((limit - start) / delta).ceil().max(0.0) as usize;
            element_budget(&[count])?;
            let device = inputs
                .iter()
                .flatten()
                .next()
                .map(Value::device)
                .unwrap_or_default();
            let is_float = matches!(&n.config.start, RangeInput::StaticFloat(_))
                || inputs.iter().flatten().any(|v| v.kind() == Kind::Float);
            let data = if is_float {
                TensorData::new(
                    (0..count)
                        .map(|i| (start + i as f64 * delta) as f32)
                        .collect::<Vec<_>>(),
                    [count],
                )
            } else {
                TensorData::new(
                    (0..count)
                        .map(|i| start as i64 + i as i64 * delta as i64)
                        .collect::<Vec<_>>(),
                    [count],
                )
            };
            vec![Value::from_data(data, &device)?]
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

/// Constant padding from device operations: Burn's own `pad` fills its output with
/// `Tensor::full`, which under autodiff builds the whole padded tensor on the host and uploads it
/// (Burn 0.22's autodiff backend has no `float_full` of its own). On a GPU or a remote device that
/// was one upload of every padded activation per Pad node per call: 19 MB per image through
/// EfficientNet-Lite0 over the wire, over 99% of what a remote Integrated Gradients sent.
fn constant_pad(x: Tensor<MAX_RANK>, pads: &[(usize, usize)], value: f32) -> Tensor<MAX_RANK> {
    let dims = x.dims();
    let padded: [usize; MAX_RANK] = std::array::from_fn(|i| dims[i] + pads[i].0 + pads[i].1);
    let mut out = Tensor::<MAX_RANK>::zeros(padded, &x.device()).cast(x.dtype());
    if value != 0.0 {
        out = out.add_scalar(value);
    }
    let center: [std::ops::Range<usize>; MAX_RANK] =
        std::array::from_fn(|i| pads[i].0..pads[i].0 + dims[i]);
    out.slice_assign(center, x)
}
