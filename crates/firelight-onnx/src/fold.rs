//! Integer arithmetic on constants, folded before onnx-ir reads a graph it would otherwise refuse.
//!
//! `torch.onnx` exports `unflatten` (torchvision's ViT attention splits q, k, v that way) as
//! `Slice(Shape(x), starts, ends)` whose bounds are `Reshape(Mod(Constant, Constant))`. onnx-ir
//! evaluates no `Mod` on constants, so it cannot tell how long the sliced shape is, and refuses
//! the `Reshape` that uses it ("no statically known length"). Folding such nodes into constants
//! first gives it static bounds. Only small integer tensors are folded (shape arithmetic), and
//! only when the plain parse failed, so graphs that load today load as they did.

use std::collections::HashMap;
use std::path::Path;

use firelight_core::{Error, Result};
use onnx_ir::{AttributeProto, AttributeType, ModelProto, NodeProto, TensorProto};

/// ONNX element types.
const INT32: i32 = 6;
const INT64: i32 = 7;
/// The most elements a folded tensor may have: shapes and indices, not data.
const MAX_ELEMENTS: usize = 64;

/// An integer constant: its shape, values and ONNX element type.
#[derive(Clone, Debug)]
struct Ints {
    dims: Vec<i64>,
    values: Vec<i64>,
    data_type: i32,
}

impl Ints {
    fn from_tensor(t: &TensorProto) -> Option<Self> {
        let values: Vec<i64> = match t.data_type {
            INT64 if !t.raw_data.is_empty() => t
                .raw_data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            INT64 => t.int64_data.clone(),
            INT32 if !t.raw_data.is_empty() => t
                .raw_data
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
            INT32 => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
            _ => return None,
        };
        let count: i64 = t.dims.iter().product();
        (values.len() as i64 == count && values.len() <= MAX_ELEMENTS).then(|| Ints {
            dims: t.dims.clone(),
            values,
            data_type: t.data_type,
        })
    }

    fn to_tensor(&self, name: &str) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.to_string();
        t.dims = self.dims.clone();
        t.data_type = self.data_type;
        if self.data_type == INT32 {
            t.int32_data = self.values.iter().map(|&v| v as i32).collect();
        } else {
            t.int64_data = self.values.clone();
        }
        t
    }
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// The integer value a `Constant` node holds.
fn constant_value(node: &NodeProto) -> Option<Ints> {
    if let Some(a) = attribute(node, "value") {
        return a.t.as_ref().and_then(Ints::from_tensor);
    }
    if let Some(a) = attribute(node, "value_int") {
        return Some(Ints {
            dims: Vec::new(),
            values: vec![a.i],
            data_type: INT64,
        });
    }
    attribute(node, "value_ints").map(|a| Ints {
        dims: vec![a.ints.len() as i64],
        values: a.ints.clone(),
        data_type: INT64,
    })
}

/// Element-wise `f` of two constants of one shape, or one of them a single element.
fn elementwise(a: &Ints, b: &Ints, f: impl Fn(i64, i64) -> Option<i64>) -> Option<Ints> {
    let (dims, n) = match (a.values.len(), b.values.len()) {
        (x, y) if x == y && a.dims == b.dims => (a.dims.clone(), x),
        (1, y) => (b.dims.clone(), y),
        (x, 1) => (a.dims.clone(), x),
        _ => return None,
    };
    let at = |v: &Ints, i: usize| v.values[if v.values.len() == 1 { 0 } else { i }];
    let values = (0..n)
        .map(|i| f(at(a, i), at(b, i)))
        .collect::<Option<Vec<_>>>()?;
    Some(Ints {
        dims,
        values,
        data_type: a.data_type,
    })
}

/// `node` evaluated, when it is integer arithmetic on the constants `known`.
fn evaluate(node: &NodeProto, known: &HashMap<String, Ints>) -> Option<Ints> {
    let inputs = node
        .input
        .iter()
        .map(|i| known.get(i))
        .collect::<Option<Vec<_>>>()?;
    match (node.op_type.as_str(), inputs.as_slice()) {
        ("Mod", [a, b]) => {
            let fmod = attribute(node, "fmod").is_some_and(|f| f.i == 1);
            elementwise(a, b, |x, y| match (y, fmod) {
                (0, _) => None,
                // C's fmod: the sign of the dividend (Rust's `%`).
                (_, true) => Some(x % y),
                // Floor modulo: the sign of the divisor.
                (_, false) => {
                    let r = x % y;
                    Some(if r != 0 && (r < 0) != (y < 0) {
                        r + y
                    } else {
                        r
                    })
                }
            })
        }
        ("Add", [a, b]) => elementwise(a, b, i64::checked_add),
        ("Sub", [a, b]) => elementwise(a, b, i64::checked_sub),
        ("Mul", [a, b]) => elementwise(a, b, i64::checked_mul),
        ("Reshape", [data, shape]) => {
            let count = data.values.len() as i64;
            let mut dims: Vec<i64> = shape
                .values
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    if d == 0 {
                        data.dims.get(i).copied().unwrap_or(0)
                    } else {
                        d
                    }
                })
                .collect();
            if let Some(free) = dims.iter().position(|&d| d == -1) {
                let known: i64 = dims.iter().filter(|&&d| d != -1).product();
                if known == 0 || count % known != 0 {
                    return None;
                }
                dims[free] = count / known;
            }
            (dims.iter().all(|&d| d >= 0) && dims.iter().product::<i64>() == count).then(|| Ints {
                dims,
                values: data.values.clone(),
                data_type: data.data_type,
            })
        }
        ("Concat", parts) if !parts.is_empty() && parts.iter().all(|p| p.dims.len() == 1) => {
            Some(Ints {
                dims: vec![parts.iter().map(|p| p.dims[0]).sum()],
                values: parts.iter().flat_map(|p| p.values.clone()).collect(),
                data_type: parts[0].data_type,
            })
        }
        _ => None,
    }
}

/// Replaces every node of `proto` that is integer arithmetic on constants by a `Constant` node of
/// the same name and output; returns how many were replaced.
pub(crate) fn integer_constants(proto: &mut ModelProto) -> usize {
    let Some(graph) = proto.graph.as_mut() else {
        return 0;
    };
    let mut known: HashMap<String, Ints> = graph
        .initializer
        .iter()
        .filter_map(|t| Ints::from_tensor(t).map(|v| (t.name.clone(), v)))
        .collect();
    let mut folded = 0;
    for node in graph.node.iter_mut() {
        if node.op_type == "Constant" {
            if let (Some(v), [out]) = (constant_value(node), node.output.as_slice()) {
                known.insert(out.clone(), v);
            }
            continue;
        }
        let [out] = node.output.as_slice() else {
            continue;
        };
        let Some(value) = evaluate(node, &known) else {
            continue;
        };
        let mut constant = NodeProto::new();
        constant.name = node.name.clone();
        constant.op_type = "Constant".into();
        constant.output = vec![out.clone()];
        let mut a = AttributeProto::new();
        a.name = "value".into();
        a.type_ = AttributeType::TENSOR.into();
        a.t = Some(value.to_tensor(out)).into();
        constant.attribute = vec![a];
        known.insert(out.clone(), value);
        *node = constant;
        folded += 1;
    }
    folded
}

/// Reads every initializer kept in an external file (relative to `folder`; the paths were checked
/// when the file was) into the proto, so that it can be parsed from bytes.
pub(crate) fn inline_external_data(proto: &mut ModelProto, folder: &Path) -> Result<()> {
    let Some(graph) = proto.graph.as_mut() else {
        return Ok(());
    };
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for t in graph.initializer.iter_mut() {
        if t.external_data.is_empty() {
            continue;
        }
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.clone())
        };
        let location = entry("location").unwrap_or_default();
        let offset: usize = entry("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
        if !files.contains_key(&location) {
            let path = folder.join(&location);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            files.insert(location.clone(), bytes);
        }
        let bytes = &files[&location];
        let length: usize = entry("length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(bytes.len().saturating_sub(offset));
        let data = bytes.get(offset..offset + length).ok_or_else(|| {
            Error::Model(format!(
                "initializer `{}`: external data past the end of `{location}`",
                t.name
            ))
        })?;
        t.raw_data = data.to_vec().into();
        t.external_data.clear();
        t.data_location = onnx_ir::TensorProto::new().data_location;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(values: &[i64]) -> Ints {
        Ints {
            dims: vec![values.len() as i64],
            values: values.to_vec(),
            data_type: INT64,
        }
    }

    fn node(op: &str, inputs: &[&str]) -> NodeProto {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec!["out".into()];
        n
    }

    #[test]
    fn mod_follows_the_divisor_unless_fmod_follows_the_dividend() {
        let known: HashMap<String, Ints> = [
            ("a".to_string(), ints(&[-7, 7, -7, 7])),
            ("b".to_string(), ints(&[3, -3, -3, 3])),
        ]
        .into();
        let floor = evaluate(&node("Mod", &["a", "b"]), &known).unwrap();
        assert_eq!(floor.values, [2, -2, -1, 1]);
        let mut c = node("Mod", &["a", "b"]);
        let mut fmod = AttributeProto::new();
        fmod.name = "fmod".into();
        fmod.i = 1;
        c.attribute.push(fmod);
        assert_eq!(evaluate(&c, &known).unwrap().values, [-1, 1, -1, 1]);
    }

    #[test]
    fn reshape_concat_and_arithmetic_fold_and_anything_else_is_left_alone() {
        let known: HashMap<String, Ints> = [
            ("s".to_string(), ints(&[-1])),
            ("v".to_string(), ints(&[5])),
            ("one".to_string(), ints(&[1])),
        ]
        .into();
        let r = evaluate(&node("Reshape", &["v", "s"]), &known).unwrap();
        assert_eq!((r.dims, r.values), (vec![1], vec![5]));
        let c = evaluate(&node("Concat", &["v", "one", "v"]), &known).unwrap();
        assert_eq!(c.values, [5, 1, 5]);
        assert_eq!(
            evaluate(&node("Add", &["v", "one"]), &known)
                .unwrap()
                .values,
            [6]
        );
        assert!(evaluate(&node("Add", &["v", "x"]), &known).is_none());
        assert!(evaluate(&node("Shape", &["v"]), &known).is_none());
    }
}
