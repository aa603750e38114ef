//! The ONNX file's own names for onnx-ir's nodes and values.
//!
//! onnx-ir renames every node `<type><n>` and every output `<node>_out<k>` (it was written for
//! code generation). Users name layers as the file does (`/layer4/layer4.1/relu_1/Relu_output_0`),
//! so the names are recovered by walking both graphs together: each typed node is matched to the
//! file's node of the same operator that reads the same (already recovered) values. Nodes that
//! onnx-ir creates itself (simplifications, fused attention) keep onnx-ir's names.

use std::collections::{HashMap, HashSet};

use onnx_ir::{GraphProto, Node, ValueSource};

/// onnx-ir's names mapped back to the file's.
#[derive(Debug, Default)]
pub(crate) struct OriginalNames {
    /// onnx-ir value name → the file's value name.
    pub values: HashMap<String, String>,
    /// Per typed node (in order), the file's node name where one matched.
    pub nodes: Vec<Option<String>>,
}

/// Lowercase ONNX operator families an onnx-ir node type may come from.
fn families(node: &Node) -> Vec<String> {
    if let Node::Custom(custom) = node {
        return vec![custom.op_type.to_lowercase()];
    }
    let t = node.node_type().to_string().to_lowercase();
    let base = t
        .trim_end_matches("1d")
        .trim_end_matches("2d")
        .trim_end_matches("3d");
    match base {
        "linear" => vec!["gemm".into(), "matmul".into()],
        "upsample" => vec!["upsample".into(), "resize".into()],
        other => vec![other.to_string()],
    }
}

fn is_dynamic(arg: &onnx_ir::Argument) -> bool {
    matches!(arg.value_source, ValueSource::Dynamic)
}

/// Matches `nodes` (onnx-ir's, whose graph inputs are `graph_inputs`) to the file's `proto`.
pub(crate) fn recover(
    proto: &GraphProto,
    nodes: &[Node],
    graph_inputs: &[String],
) -> OriginalNames {
    // Identity nodes disappear in onnx-ir: their readers read the Identity's input instead.
    let mut alias: HashMap<&str, &str> = HashMap::new();
    for n in &proto.node {
        if n.op_type == "Identity" && n.input.len() == 1 && n.output.len() == 1 {
            let source = alias
                .get(n.input[0].as_str())
                .copied()
                .unwrap_or(n.input[0].as_str());
            alias.insert(n.output[0].as_str(), source);
        }
    }
    let canonical = |name: &str| -> String { alias.get(name).copied().unwrap_or(name).to_string() };
    let proto_inputs: Vec<HashSet<String>> = proto
        .node
        .iter()
        .map(|n| n.input.iter().map(|i| canonical(i)).collect())
        .collect();

    let mut names = OriginalNames::default();
    let initializers: HashSet<&str> = proto.initializer.iter().map(|t| t.name.as_str()).collect();
    let file_inputs = proto
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()));
    for (input, original) in graph_inputs.iter().zip(file_inputs) {
        names.values.insert(input.clone(), original.name.clone());
    }
    let mut used = vec![false; proto.node.len()];
    let mut cursor = 0;
    for node in nodes {
        let known: Vec<String> = node
            .inputs()
            .iter()
            .filter(|a| is_dynamic(a))
            .filter_map(|a| names.values.get(&a.name).cloned())
            .collect();
        let families = families(node);
        let fits = |i: usize| {
            !used[i]
                && families.contains(&proto.node[i].op_type.to_lowercase())
                && known.iter().all(|k| proto_inputs[i].contains(k))
        };
        // The file's order is onnx-ir's order, so the next fitting node after the last match is
        // preferred; an earlier unmatched one is taken only when none follows.
        let found = (cursor..proto.node.len())
            .find(|&i| fits(i))
            .or_else(|| (0..cursor).find(|&i| fits(i)));
        let Some(index) = found else {
            names.nodes.push(None);
            continue;
        };
        used[index] = true;
        cursor = index + 1;
        let matched = &proto.node[index];
        names
            .nodes
            .push(Some(matched.name.clone()).filter(|n| !n.is_empty()));
        let mut outputs: Vec<String> = matched.output.clone();
        // MatMul + Add fused into one Linear: the fused node's value is the Add's output.
        if matched.op_type == "MatMul"
            && matches!(node, Node::Linear(_))
            && node.inputs().len() > 2
            && let Some(add) = proto.node.iter().position(|n| {
                n.op_type == "Add" && n.input.iter().any(|i| Some(i) == matched.output.first())
            })
        {
            used[add] = true;
            outputs = proto.node[add].output.clone();
        }
        for (arg, original) in node.outputs().iter().zip(outputs) {
            if !original.is_empty() {
                names.values.insert(arg.name.clone(), original);
            }
        }
    }
    names
}
