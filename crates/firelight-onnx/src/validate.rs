//! Checks on an untrusted ONNX file before the parser sees it: sizes that would allocate without
//! bound, payloads that do not match their declared shape, external data that leaves the model's
//! folder or the data file, and values that nothing produces.

use std::collections::HashSet;
use std::path::{Component, Path};

use firelight_core::{Error, Result};
use onnx_ir::{GraphProto, Message, ModelProto, TensorProto};

/// The most elements one tensor may declare (64 GiB of float32).
const MAX_ELEMENTS: u128 = 1 << 34;

fn fail(source_name: &str, reason: impl Into<String>) -> Error {
    Error::Onnx {
        source_name: source_name.to_string(),
        reason: reason.into(),
    }
}

/// Reads and checks the file at `path`, external data included.
pub(crate) fn check_file(path: &Path, source_name: &str) -> Result<ModelProto> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let model = decode(&bytes, source_name)?;
    check_model(&model, path.parent(), source_name)?;
    Ok(model)
}

/// Checks a model given as bytes; external data is refused (there is no folder to read it from).
pub(crate) fn check_bytes(bytes: &[u8], source_name: &str) -> Result<ModelProto> {
    let model = decode(bytes, source_name)?;
    check_model(&model, None, source_name)?;
    Ok(model)
}

fn decode(bytes: &[u8], source_name: &str) -> Result<ModelProto> {
    if bytes.is_empty() {
        return Err(fail(source_name, "the file is empty"));
    }
    ModelProto::parse_from_bytes(bytes).map_err(|e| {
        fail(
            source_name,
            format!("cannot parse it as an ONNX protobuf (truncated or corrupt?): {e}"),
        )
    })
}

fn check_model(model: &ModelProto, folder: Option<&Path>, source_name: &str) -> Result<()> {
    let Some(graph) = model.graph.as_ref() else {
        return Err(fail(source_name, "the file holds no graph"));
    };
    if graph.output.is_empty() {
        return Err(fail(source_name, "the graph has no outputs"));
    }
    if graph.node.is_empty() {
        return Err(fail(source_name, "the graph has no nodes"));
    }
    let default_domain = model
        .opset_import
        .iter()
        .any(|o| o.domain.is_empty() || o.domain == "ai.onnx");
    if !default_domain {
        return Err(fail(
            source_name,
            "the model does not import the default ONNX opset (opset_import has no entry for domain \"\")",
        ));
    }
    for input in &graph.input {
        if let Some(shape) = input
            .type_
            .as_ref()
            .and_then(|t| t.tensor_type().shape.as_ref())
        {
            let dims: Vec<i64> = shape
                .dim
                .iter()
                .filter(|d| d.has_dim_value())
                .map(|d| d.dim_value())
                .collect();
            check_dims(&dims, &format!("graph input `{}`", input.name), source_name)?;
        }
    }
    let mut total: u128 = 0;
    for tensor in &graph.initializer {
        check_tensor(tensor, folder, source_name)?;
        let count = check_dims(&tensor.dims, "initializer", source_name)?;
        total += count * element_size(tensor.data_type).unwrap_or(1);
    }
    let bytes = u64::try_from(total).unwrap_or(u64::MAX);
    firelight_core::budget::check(|| "the model's initialisers".to_string(), bytes, 1)?;
    check_static_allocations(graph)?;
    check_wiring(graph, source_name)
}

/// Refuses nodes whose output size is fixed in the file (a shape given as an initialiser or a
/// `Constant`) and beyond the memory budget: the parser folds such nodes into constants at load,
/// so they must be refused before it runs.
fn check_static_allocations(graph: &GraphProto) -> Result<()> {
    let constant = |name: &str| -> Option<Vec<i64>> {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .or_else(|| {
                graph
                    .node
                    .iter()
                    .find(|n| n.op_type == "Constant" && n.output.iter().any(|o| o == name))
                    .and_then(|n| n.attribute.iter().find(|a| a.name == "value"))
                    .and_then(|a| a.t.as_ref())
            })
            .and_then(int_values)
    };
    for node in &graph.node {
        let shape_input = match node.op_type.as_str() {
            "ConstantOfShape" => 0,
            "Expand" | "Tile" => 1,
            _ => continue,
        };
        let Some(dims) = node.input.get(shape_input).and_then(|name| constant(name)) else {
            continue;
        };
        let count = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d.max(0) as u64))
            .unwrap_or(u64::MAX);
        firelight_core::budget::check(
            || {
                format!(
                    "ONNX node `{}` ({}): a tensor of shape {dims:?}",
                    node.name, node.op_type
                )
            },
            count,
            4,
        )?;
    }
    Ok(())
}

/// The integers of a small int64 or int32 tensor (a shape), when it holds them inline.
fn int_values(t: &TensorProto) -> Option<Vec<i64>> {
    match t.data_type {
        7 if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        7 => Some(t.int64_data.clone()),
        6 if !t.raw_data.is_empty() => Some(
            t.raw_data
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
        ),
        6 => Some(t.int32_data.iter().map(|&v| i64::from(v)).collect()),
        _ => None,
    }
}

fn check_dims(dims: &[i64], what: &str, source_name: &str) -> Result<u128> {
    let mut count: u128 = 1;
    for &d in dims {
        if d < 0 {
            return Err(fail(
                source_name,
                format!("{what} has a negative dimension in shape {dims:?}"),
            ));
        }
        count = count.saturating_mul(d as u128);
    }
    if count > MAX_ELEMENTS {
        return Err(fail(
            source_name,
            format!(
                "{what} declares shape {dims:?}: {count} elements is more than the {MAX_ELEMENTS} allowed"
            ),
        ));
    }
    Ok(count)
}

/// Bytes per element of an ONNX `TensorProto.DataType`, `None` for strings and unknown types.
fn element_size(data_type: i32) -> Option<u128> {
    Some(match data_type {
        1 | 6 | 12 => 4,
        2 | 3 | 9 => 1,
        4 | 5 | 10 | 16 => 2,
        7 | 11 | 13 => 8,
        _ => return None,
    })
}

fn check_tensor(tensor: &TensorProto, folder: Option<&Path>, source_name: &str) -> Result<()> {
    let what = format!("initializer `{}`", tensor.name);
    let count = check_dims(&tensor.dims, &what, source_name)?;
    let Some(size) = element_size(tensor.data_type) else {
        return Err(fail(
            source_name,
            format!("{what} has unsupported element type {}", tensor.data_type),
        ));
    };
    if !tensor.external_data.is_empty() {
        return check_external(tensor, &what, count * size, folder, source_name);
    }
    let payload = if !tensor.raw_data.is_empty() {
        Some(
            tensor.raw_data.len() as u128 / size.max(1) * size.max(1)
                == tensor.raw_data.len() as u128
                && tensor.raw_data.len() as u128 == count * size,
        )
    } else {
        let typed = match tensor.data_type {
            1 => tensor.float_data.len(),
            7 => tensor.int64_data.len(),
            11 => tensor.double_data.len(),
            12 | 13 => tensor.uint64_data.len(),
            _ => tensor.int32_data.len(),
        } as u128;
        let other = (tensor.float_data.len()
            + tensor.int64_data.len()
            + tensor.double_data.len()
            + tensor.uint64_data.len()
            + tensor.int32_data.len()) as u128;
        (other > 0 || count > 0).then_some(typed == count && other == typed)
    };
    if payload == Some(false) {
        return Err(fail(
            source_name,
            format!(
                "{what} declares shape {:?} of element type {} but its data does not match (wrong type or size)",
                tensor.dims, tensor.data_type
            ),
        ));
    }
    Ok(())
}

fn check_external(
    tensor: &TensorProto,
    what: &str,
    bytes: u128,
    folder: Option<&Path>,
    source_name: &str,
) -> Result<()> {
    let entry = |key: &str| {
        tensor
            .external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
    };
    let location = entry("location").ok_or_else(|| {
        fail(
            source_name,
            format!("{what} has external data without a location"),
        )
    })?;
    let Some(folder) = folder else {
        return Err(fail(
            source_name,
            format!(
                "{what} keeps its data in `{location}`, but a model given as bytes has no folder to read it from"
            ),
        ));
    };
    let relative = Path::new(&location);
    let escapes = relative.is_absolute()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes || location.contains('\0') {
        return Err(fail(
            source_name,
            format!("{what} points at external data `{location}`, outside the model's folder"),
        ));
    }
    let path = folder.join(relative);
    if let (Ok(base), Ok(resolved)) = (folder.canonicalize(), path.canonicalize())
        && !resolved.starts_with(&base)
    {
        return Err(fail(
            source_name,
            format!("{what} points at external data `{location}`, outside the model's folder"),
        ));
    }
    let number = |key: &str| -> Result<u128> {
        match entry(key) {
            None => Ok(0),
            Some(v) => v.parse::<u128>().map_err(|_| {
                fail(
                    source_name,
                    format!("{what} has an invalid external data {key} `{v}`"),
                )
            }),
        }
    };
    let offset = number("offset")?;
    let length = match entry("length") {
        Some(_) => number("length")?,
        None => bytes,
    };
    let file_len = std::fs::metadata(&path)
        .map_err(|e| {
            fail(
                source_name,
                format!("{what}: cannot read external data `{location}`: {e}"),
            )
        })?
        .len() as u128;
    if length != bytes {
        return Err(fail(
            source_name,
            format!(
                "{what} declares an external data length of {length} bytes but its shape needs {bytes}"
            ),
        ));
    }
    if offset.saturating_add(length) > file_len {
        return Err(fail(
            source_name,
            format!(
                "{what} reads {length} bytes (its length) at offset {offset} of `{location}`, past the end of that {file_len}-byte file"
            ),
        ));
    }
    Ok(())
}

/// Every node input must come from a graph input, an initializer or an earlier node; nodes out of
/// order (or in a cycle) are reported by name.
fn check_wiring(graph: &GraphProto, source_name: &str) -> Result<()> {
    let mut available: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    available.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    let produced_later: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    for node in &graph.node {
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if available.contains(input.as_str()) {
                continue;
            }
            let reason = if produced_later.contains(input.as_str()) {
                format!(
                    "node `{}` ({}) reads `{input}` before any node produces it: the graph is not in order or has a cycle",
                    node.name, node.op_type
                )
            } else {
                format!(
                    "node `{}` ({}) reads `{input}`, which no node, graph input or initializer provides (missing initializer?)",
                    node.name, node.op_type
                )
            };
            return Err(fail(source_name, reason));
        }
        for output in node.output.iter().filter(|o| !o.is_empty()) {
            if !available.insert(output.as_str()) {
                return Err(fail(
                    source_name,
                    format!(
                        "duplicate value `{output}`: produced twice (again by node `{}`), so the graph is not in SSA form",
                        node.name
                    ),
                ));
            }
        }
    }
    for output in &graph.output {
        if !available.contains(output.name.as_str()) {
            return Err(fail(
                source_name,
                format!("graph output `{}` is never produced", output.name),
            ));
        }
    }
    Ok(())
}
