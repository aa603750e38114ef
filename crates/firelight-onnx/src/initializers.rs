//! [`Initializers`]: the float weights stored in an ONNX file, by name, and what each node takes,
//! so a native model can load the weights of an exported one.

use std::collections::HashMap;
use std::path::Path;

use firelight_core::{Error, Result};
use onnx_ir::TensorProto;

use crate::validate::check_file;

/// ONNX's element type number for float32.
const FLOAT: i32 = 1;

/// The float32 initializers of an ONNX file and every node's inputs.
///
/// ```no_run
/// use firelight_onnx::Initializers;
///
/// let weights = Initializers::read("model.onnx")?;
/// let (shape, values) = weights.get("bert.embeddings.word_embeddings.weight")?;
/// assert_eq!(values.len(), shape.iter().product::<usize>());
/// # Ok::<(), firelight_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Initializers {
    source: String,
    tensors: HashMap<String, TensorProto>,
    nodes: HashMap<String, Vec<String>>,
}

impl Initializers {
    /// Reads the file at `path` (checked as [`crate::OnnxModel::load`] checks it).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let model = check_file(path, &source)?;
        let graph = model.graph.into_option().unwrap_or_default();
        let nodes = graph
            .node
            .iter()
            .map(|n| (n.name.clone(), n.input.clone()))
            .collect();
        let tensors = graph
            .initializer
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        Ok(Self {
            source,
            tensors,
            nodes,
        })
    }

    /// Whether there is an initializer named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The names of every initializer, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of initializer `name`.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors
            .get(name)
            .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).collect())
    }

    /// The inputs of the node named `node`, in order.
    pub fn node_inputs(&self, node: &str) -> Option<&[String]> {
        self.nodes.get(node).map(Vec::as_slice)
    }

    /// Initializer `name`: its shape and its float32 values, row-major.
    pub fn get(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.tensors.get(name).ok_or_else(|| Error::Onnx {
            source_name: self.source.clone(),
            reason: format!("no initializer named `{name}`"),
        })?;
        let fail = |reason: String| Error::Onnx {
            source_name: self.source.clone(),
            reason: format!("initializer `{name}`: {reason}"),
        };
        if t.data_type != FLOAT {
            return Err(fail(format!(
                "holds ONNX element type {}, not float32",
                t.data_type
            )));
        }
        let shape = self.shape(name).unwrap_or_default();
        let values: Vec<f32> = if !t.raw_data.is_empty() {
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        } else if !t.float_data.is_empty() {
            t.float_data.clone()
        } else if !t.external_data.is_empty() {
            return Err(fail(
                "its values are in an external file, not read here".into(),
            ));
        } else {
            Vec::new()
        };
        if values.len() != shape.iter().product::<usize>() {
            return Err(fail(format!("{} values for shape {shape:?}", values.len())));
        }
        Ok((shape, values))
    }
}
