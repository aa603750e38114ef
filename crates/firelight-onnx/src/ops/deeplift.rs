//! Which ONNX operators DeepLift can pass: those with a rule (applied by their evaluators under
//! [`ReluPolicy::DeepLift`](firelight_core::ReluPolicy)), and those linear in the values that
//! depend on the input, whose gradient already is DeepLift's multiplier. Any other operator on a
//! value that depends on the input is refused with its name (the caller adds the node's), never
//! passed through as a plain gradient.

use firelight_core::{Error, ReluPolicy, Result};
use onnx_ir::Node;

use super::onnx_op_type;
use crate::value::{Kind, Value};

/// Operators with a DeepLift rule: the Rescale rule for element-wise nonlinearities, Captum's
/// max-pool rule for `MaxPool` (2-D, and 1-D run as 2-D) and its softmax rule for `Softmax`.
pub const RULE_OPS: &[&str] = &[
    "Celu",
    "Clip",
    "Elu",
    "Erf",
    "Gelu",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "MaxPool",
    "Mish",
    "Relu",
    "Selu",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Softsign",
    "Tanh",
];

/// Operators that are linear (or affine) in every input that depends on the model's input.
pub const LINEAR_OPS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "DepthToSpace",
    "Dropout",
    "Expand",
    "Flatten",
    "Gather",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "Mean",
    "Neg",
    "Pad",
    "ReduceMean",
    "ReduceSum",
    "Reshape",
    "Resize",
    "Shape",
    "Size",
    "Slice",
    "SpaceToDepth",
    "Split",
    "Squeeze",
    "Sub",
    "Sum",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// Operators linear in each operand while the others are constant (one input-dependent operand).
const BILINEAR_OPS: &[&str] = &["Einsum", "MatMul", "Mul"];

fn tracked(value: &Option<Value>) -> bool {
    value
        .as_ref()
        .is_some_and(|v| v.kind() == Kind::Float && v.as_float().is_tracked())
}

/// Fails for a node DeepLift (or LRP, `policy`) has no rule for, applied to values that depend
/// on the input.
pub(crate) fn check(node: &Node, inputs: &[Option<Value>], policy: ReluPolicy) -> Result<()> {
    let op = onnx_op_type(node);
    let dependent: Vec<usize> = (0..inputs.len()).filter(|&i| tracked(&inputs[i])).collect();
    if let ReluPolicy::Lrp(_) = policy {
        return check_lrp(node, &op, inputs, !dependent.is_empty());
    }
    let fine = dependent.is_empty()
        || RULE_OPS.contains(&op.as_str())
        || LINEAR_OPS.contains(&op.as_str())
        || (BILINEAR_OPS.contains(&op.as_str()) && dependent.len() == 1)
        || (op == "Div" && dependent == [0]);
    if fine {
        return Ok(());
    }
    Err(Error::Model(format!(
        "DeepLift has no rule for operator {op} on values that depend on the input (rules: {}; \
         linear operators pass); explain this model with integrated_gradients or a perturbation \
         method",
        RULE_OPS.join(", ")
    )))
}

/// Operators that only move, select or copy values once: their gradient passes relevance
/// unchanged, so LRP needs no rule for them.
const STRUCTURAL_OPS: &[&str] = &[
    "Cast",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Dropout",
    "Flatten",
    "Gather",
    "Identity",
    "Pad",
    "Reshape",
    "Shape",
    "Size",
    "Slice",
    "Split",
    "Squeeze",
    "Transpose",
    "Unsqueeze",
];

/// LRP's operators: 2-D convolutions and fully connected layers take the composite's rule,
/// average pooling (global or windowed) and residual sums Norm, activations Pass, max pooling its gradient
/// (the arg-max), and the structural operators pass relevance as they are. Any other operator on
/// an input-dependent value (a Mul, a BatchNormalization that the interpreter could not merge
/// into the convolution before it) would pass a gradient, not relevance: it is refused.
fn check_lrp(node: &Node, op: &str, inputs: &[Option<Value>], dependent: bool) -> Result<()> {
    let elementwise = RULE_OPS.contains(&op) && !matches!(op, "MaxPool" | "Softmax");
    // A residual sum of two same-shaped values takes the Norm rule for sums.
    let residual = op == "Add" && matches!(inputs, [Some(a), Some(b)] if a.shape() == b.shape());
    let fine = !dependent
        || residual
        || matches!(node, Node::Conv2d(_) | Node::MaxPool2d(_))
        || matches!(op, "Gemm" | "GlobalAveragePool" | "AveragePool")
        || elementwise
        || STRUCTURAL_OPS.contains(&op);
    if fine {
        return Ok(());
    }
    Err(Error::Model(format!(
        "LRP has no rule for operator {op} on values that depend on the input (it runs Conv, \
         Gemm, AveragePool, GlobalAveragePool, MaxPool, residual Add, activations and reshaping \
         operators); explain this model with deeplift or integrated_gradients"
    )))
}

/// How DeepLift treats the ONNX operator `op` (for the operator table in `docs/onnx-ops.md`).
pub fn treatment(op: &str) -> &'static str {
    if op == "MaxPool" {
        "max-pool rule"
    } else if op == "Softmax" {
        "softmax rule (Rescale, centred per pair)"
    } else if RULE_OPS.contains(&op) {
        "Rescale rule"
    } else if LINEAR_OPS.contains(&op) {
        "linear"
    } else if BILINEAR_OPS.contains(&op) {
        "linear in one input-dependent operand"
    } else if op == "Div" {
        "linear in an input-dependent numerator"
    } else {
        "refused on input-dependent values"
    }
}
