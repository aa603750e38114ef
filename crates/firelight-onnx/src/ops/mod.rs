//! One evaluator per ONNX operator family; [`eval`] dispatches a typed onnx-ir node to it.
//!
//! Every evaluator takes the node's input values in ONNX order (`None` for omitted optional
//! inputs) and returns its outputs in ONNX order.

pub(crate) mod deeplift;
mod elementwise;
pub(crate) mod nn;
mod reduce;
mod shape;

use firelight_core::{Error, ReluPolicy, Result};
use onnx_ir::Node;

use crate::value::{MAX_RANK, Value};

/// The ONNX operator types the interpreter runs, in ONNX's spelling.
///
/// This list is the contract checked at load (any other op is reported with its node name before
/// anything runs), the list the conformance tests select ONNX's node tests by, and the table in
/// the docs (`docs/onnx-ops.md`, regenerated from it by a test).
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "Attention",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Cos",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "LRN",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pad",
    "Pow",
    "PRelu",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Round",
    "Selu",
    "Shape",
    "Sigmoid",
    "Sign",
    "Sin",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tan",
    "Tanh",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// What an evaluator needs besides its inputs.
#[derive(Clone, Copy)]
pub(crate) struct Context {
    /// How ReLU nodes pass gradients back (Guided Backprop, Deconvolution), and under DeepLift
    /// and LRP every nonlinear node.
    pub relu: ReluPolicy,
    /// Whether this node is the graph's first affine one (Conv or Gemm): LRP composites give it
    /// their first-layer rule.
    pub first_affine: bool,
}

/// The ONNX operator type of a typed node, in ONNX's spelling (onnx-ir splits some by rank and
/// fuses Gemm/MatMul+Add into `Linear`; this undoes the renaming for messages and listings).
pub(crate) fn onnx_op_type(node: &Node) -> String {
    use Node as N;
    let name = match node {
        N::Conv1d(_) | N::Conv2d(_) | N::Conv3d(_) => "Conv",
        N::ConvTranspose1d(_) | N::ConvTranspose2d(_) | N::ConvTranspose3d(_) => "ConvTranspose",
        N::AveragePool1d(_) | N::AveragePool2d(_) | N::AveragePool3d(_) => "AveragePool",
        N::MaxPool1d(_) | N::MaxPool2d(_) | N::MaxPool3d(_) => "MaxPool",
        N::LpPool1d(_) | N::LpPool2d(_) => "LpPool",
        N::Linear(_) => "Gemm",
        N::Custom(c) => return format!("{}::{}", display_domain(&c.domain), c.op_type),
        other => return other.node_type().to_string().replace("Lrn", "LRN"),
    };
    name.to_string()
}

fn display_domain(domain: &str) -> &str {
    if domain.is_empty() { "ai.onnx" } else { domain }
}

/// Whether the interpreter can run `node` (checked for every node at load).
pub(crate) fn is_supported(node: &Node) -> bool {
    use Node as N;
    match node {
        N::Conv3d(_) | N::AveragePool3d(_) | N::MaxPool3d(_) => false,
        // Only Y: the optional Indices of MaxPool and the caches of Attention are not produced.
        N::MaxPool2d(n) => n.outputs.len() == 1,
        N::MaxPool1d(n) => n.outputs.len() == 1,
        N::Attention(n) => n.outputs.len() == 1,
        N::Custom(_) => false,
        other => SUPPORTED_OPS.contains(&onnx_op_type(other).as_str()),
    }
}

/// Runs one node.
pub(crate) fn eval(node: &Node, inputs: &[Option<Value>], ctx: &Context) -> Result<Vec<Value>> {
    if matches!(ctx.relu, ReluPolicy::DeepLift | ReluPolicy::Lrp(_)) {
        deeplift::check(node, inputs, ctx.relu)?;
    }
    if let Some(out) = elementwise::eval(node, inputs, ctx)? {
        return Ok(out);
    }
    if let Some(out) = nn::eval(node, inputs, ctx)? {
        return Ok(out);
    }
    if let Some(out) = reduce::eval(node, inputs)? {
        return Ok(out);
    }
    if let Some(out) = shape::eval(node, inputs)? {
        return Ok(out);
    }
    Err(Error::Model(format!(
        "operator {} is not supported",
        onnx_op_type(node)
    )))
}

/// The `index`-th input, or an error when the model omits a required one.
pub(crate) fn required(inputs: &[Option<Value>], index: usize) -> Result<&Value> {
    inputs
        .get(index)
        .and_then(Option::as_ref)
        .ok_or_else(|| Error::Model(format!("required input #{index} is missing")))
}

/// The `index`-th input when present.
pub(crate) fn optional(inputs: &[Option<Value>], index: usize) -> Option<&Value> {
    inputs.get(index).and_then(Option::as_ref)
}

/// The physical axis of logical axis `axis` in a value of logical rank `rank`.
pub(crate) fn physical(rank: usize, axis: usize) -> usize {
    MAX_RANK - rank + axis
}

/// A possibly negative ONNX axis resolved against `rank`.
pub(crate) fn resolve_axis(axis: i64, rank: usize) -> Result<usize> {
    let resolved = if axis < 0 { axis + rank as i64 } else { axis };
    if resolved < 0 || resolved >= rank.max(1) as i64 {
        return Err(Error::Model(format!(
            "axis {axis} is out of range for rank {rank}"
        )));
    }
    Ok(resolved as usize)
}

/// NumPy's broadcast of two shapes.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        let offset = rank - s.len();
        if i < offset { 1 } else { s[i - offset] }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            (x, y) => Err(Error::Model(format!(
                "shapes {a:?} and {b:?} do not broadcast (axis {i}: {x} vs {y})"
            ))),
        })
        .collect()
}

/// A list of integers a node reads from the host (shapes, axes, pads), with a clear error when
/// the input is missing.
pub(crate) fn host_ints(inputs: &[Option<Value>], index: usize) -> Result<Vec<i64>> {
    Ok(required(inputs, index)?.to_i64s())
}
