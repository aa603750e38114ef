//! [`OnnxModel`]: an ONNX graph parsed by onnx-ir, run node by node on Burn tensors.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use burn::tensor::{DType, Device, Tensor, TensorData};
use firelight_core::{DynTensor, Error, LayerInfo, Model, Result, TapHook, Taps};
use onnx_ir::{ArgType, Argument, ModelProto, Node, OnnxGraph, OnnxGraphBuilder, ValueSource};

use crate::ops::{self, Context, onnx_op_type};
use crate::value::{Kind, Value};

/// A graph input or output: its name, element type and shape (`None` where dynamic).
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    /// The name in the ONNX file.
    pub name: String,
    /// The element type, as onnx-ir infers it (`None` for shape values).
    pub dtype: Option<DType>,
    /// The shape, `None` per dimension known only at run time; empty for scalars.
    pub shape: Vec<Option<usize>>,
}

impl ValueInfo {
    fn from_argument(arg: &Argument) -> Self {
        let (dtype, shape) = match &arg.ty {
            ArgType::Tensor(t) => (
                Some(t.dtype),
                t.static_shape.clone().unwrap_or_else(|| vec![None; t.rank]),
            ),
            ArgType::ScalarTensor(d) | ArgType::ScalarNative(d) => (Some(*d), Vec::new()),
            ArgType::Shape(n) => (None, vec![Some(*n)]),
        };
        Self {
            name: arg.name.clone(),
            dtype,
            shape,
        }
    }
}

/// Any ONNX model, loaded at run time and run on any Burn device, autodiff included.
///
/// Every node output is a tap point under its ONNX name, so layer methods reach any tensor in the
/// graph; ReLU nodes follow the pass's [`firelight_core::ReluPolicy`]. Weights are moved to the
/// device once, at load.
pub struct OnnxModel {
    source_name: String,
    nodes: Vec<Node>,
    constants: HashMap<String, Value>,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    /// For each node, the values no later node reads, freed once it has run.
    dead_after: Vec<Vec<String>>,
    layers: Vec<LayerInfo>,
    /// The file's name of each node (onnx-ir's where none matched), for messages.
    node_names: Vec<String>,
    /// Per node, the file's names of its outputs: the names taps report.
    tap_names: Vec<Vec<String>>,
    /// onnx-ir's names of the graph inputs and outputs, which the values are stored under.
    input_keys: Vec<String>,
    output_keys: Vec<String>,
    device: Device,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("source", &self.source_name)
            .field("nodes", &self.nodes.len())
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

/// Runs `f`, turning a panic inside a dependency into an error naming `what`.
pub(crate) fn guarded<T>(
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::Model(format!("{}: {message}", what())))
        }
    }
}

fn is_float(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::F64 | DType::F32 | DType::F16 | DType::BF16 | DType::Flex32
    )
}

impl OnnxModel {
    /// Loads the ONNX file at `path` onto `device`.
    ///
    /// Fails with a clear error for a file that cannot be read or parsed, external data outside
    /// the model's folder, and any operator the interpreter does not run (all of them, by node).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let source_name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::Onnx {
                source_name,
                reason: "not a file".into(),
            });
        }
        let proto = crate::validate::check_file(path, &source_name)?;
        let graph = parse(&source_name, || OnnxGraphBuilder::new().parse_file(path))?;
        Self::from_graph(graph, &proto, source_name, device)
    }

    /// Loads a model from the bytes of an ONNX file (external data is not available this way).
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        let source_name = "<bytes>".to_string();
        let proto = crate::validate::check_bytes(bytes, &source_name)?;
        let graph = parse(&source_name, || OnnxGraphBuilder::new().parse_bytes(bytes))?;
        Self::from_graph(graph, &proto, source_name, device)
    }

    fn from_graph(
        graph: OnnxGraph,
        proto: &ModelProto,
        source_name: String,
        device: &Device,
    ) -> Result<Self> {
        let graph_inputs: Vec<String> = graph.inputs.iter().map(|a| a.name.clone()).collect();
        let names = proto
            .graph
            .as_ref()
            .map(|g| crate::names::recover(g, &graph.nodes, &graph_inputs))
            .unwrap_or_default();
        let node_names: Vec<String> = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                names
                    .nodes
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| n.name().to_string())
            })
            .collect();
        let unsupported: Vec<String> = graph
            .nodes
            .iter()
            .zip(&node_names)
            .filter(|(n, _)| !ops::is_supported(n))
            .map(|(n, name)| format!("{} (node `{name}`)", onnx_op_type(n)))
            .collect();
        if !unsupported.is_empty() {
            return Err(Error::UnsupportedOnnx {
                source_name,
                nodes: unsupported,
            });
        }
        if graph.outputs.is_empty() {
            return Err(Error::Onnx {
                source_name,
                reason: "the graph has no outputs".into(),
            });
        }

        let mut constants = HashMap::new();
        for node in &graph.nodes {
            for arg in node.inputs() {
                if arg.is_optional() || constants.contains_key(&constant_key(arg)) {
                    continue;
                }
                if let Some(data) = arg.value() {
                    let value = guarded(
                        || format!("constant `{}`", arg.name),
                        || Value::from_data(data, device),
                    )
                    .map_err(|e| Error::Onnx {
                        source_name: source_name.clone(),
                        reason: e.to_string(),
                    })?;
                    constants.insert(constant_key(arg), value);
                }
            }
        }

        let original = |name: &str| {
            names
                .values
                .get(name)
                .cloned()
                .unwrap_or_else(|| name.to_string())
        };
        let renamed = |arg: &Argument| ValueInfo {
            name: original(&arg.name),
            ..ValueInfo::from_argument(arg)
        };
        let inputs: Vec<ValueInfo> = graph.inputs.iter().map(renamed).collect();
        let mut outputs: Vec<ValueInfo> = graph.outputs.iter().map(renamed).collect();
        // onnx-ir's simplifications can fuse away a value the file lists as a graph output (the
        // MatMul half of MatMul+Add, say); returning fewer outputs would shift their indices.
        if let Some(file_graph) = proto.graph.as_ref() {
            if file_graph.output.len() != outputs.len() {
                let kept: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
                let lost: Vec<&str> = file_graph
                    .output
                    .iter()
                    .map(|o| o.name.as_str())
                    .filter(|n| !kept.contains(n))
                    .collect();
                return Err(Error::Onnx {
                    source_name,
                    reason: format!(
                        "the parser's graph simplification removed graph output(s) {}; firelight cannot return them",
                        lost.join(", ")
                    ),
                });
            }
            // Outputs keep the file's names even when the producing node was removed.
            for (info, file_output) in outputs.iter_mut().zip(&file_graph.output) {
                info.name = file_output.name.clone();
            }
        }
        let input_keys = graph_inputs;
        let output_keys: Vec<String> = graph.outputs.iter().map(|a| a.name.clone()).collect();
        let tap_names: Vec<Vec<String>> = graph
            .nodes
            .iter()
            .map(|n| n.outputs().iter().map(|a| original(&a.name)).collect())
            .collect();

        let mut last_use: HashMap<&str, usize> = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            for arg in node
                .inputs()
                .iter()
                .filter(|a| a.value_source == ValueSource::Dynamic)
            {
                last_use.insert(arg.name.as_str(), i);
            }
        }
        let kept: Vec<&str> = graph.outputs.iter().map(|a| a.name.as_str()).collect();
        let mut dead_after = vec![Vec::new(); graph.nodes.len()];
        for (name, i) in &last_use {
            if !kept.contains(name) {
                dead_after[*i].push(name.to_string());
            }
        }

        let layers = graph
            .nodes
            .iter()
            .zip(&tap_names)
            .flat_map(|(node, taps)| {
                let kind = onnx_op_type(node);
                node.outputs()
                    .iter()
                    .zip(taps)
                    .filter_map(move |(out, tap)| {
                        let info = ValueInfo::from_argument(out);
                        match info.dtype {
                            Some(d) if is_float(d) && !out.name.is_empty() => Some(
                                LayerInfo::new(tap.clone(), kind.clone()).with_shape(info.shape),
                            ),
                            _ => None,
                        }
                    })
            })
            .collect();

        let mut model = Self {
            source_name,
            nodes: graph.nodes,
            constants,
            inputs,
            outputs,
            dead_after,
            layers,
            node_names,
            tap_names,
            input_keys,
            output_keys,
            device: device.clone(),
        };
        model.probe_shapes()?;
        Ok(model)
    }

    /// Runs one zero sample when the input shape is fixed (batch aside): a model that cannot run
    /// fails here, at load, and every layer gets its true shape (onnx-ir's inference is partial).
    fn probe_shapes(&mut self) -> Result<()> {
        let [input] = self.inputs.as_slice() else {
            return Ok(());
        };
        let floating = input.dtype.is_some_and(is_float);
        let Some(dims) = input
            .shape
            .iter()
            .skip(1)
            .copied()
            .collect::<Option<Vec<usize>>>()
        else {
            return Ok(());
        };
        if !floating || input.shape.is_empty() || dims.contains(&0) || input.shape[0] == Some(0) {
            return Ok(());
        }
        let batch_is_dynamic = input.shape[0].is_none();
        let mut shape = vec![input.shape[0].unwrap_or(1)];
        shape.extend(dims);
        let count: usize = shape.iter().product();
        if count > 1 << 24 {
            return Ok(());
        }
        let zeros = Value::from_data(TensorData::new(vec![0f32; count], shape), &self.device)?;
        let mut shapes = ShapeRecorder::default();
        self.run_with_taps(vec![zeros], &mut Taps::with_hook(&mut shapes))
            .map_err(|e| Error::Onnx {
                source_name: self.source_name.clone(),
                reason: format!("the model fails on a zero input of its declared shape: {e}"),
            })?;
        for layer in &mut self.layers {
            if let Some(shape) = shapes.0.get(&layer.name) {
                let mut dims: Vec<Option<usize>> = shape.iter().copied().map(Some).collect();
                if let Some(batch) = dims.first_mut().filter(|_| batch_is_dynamic) {
                    *batch = None;
                }
                layer.shape = Some(dims);
            }
        }
        Ok(())
    }

    /// The graph's inputs, in order.
    pub fn inputs(&self) -> &[ValueInfo] {
        &self.inputs
    }

    /// The graph's outputs, in order.
    pub fn outputs(&self) -> &[ValueInfo] {
        &self.outputs
    }

    /// How many nodes the graph runs.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the graph on `inputs` (in graph input order); returns the graph outputs in order.
    pub fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>> {
        self.run_with_taps(inputs, &mut Taps::none())
    }

    /// [`OnnxModel::run`], passing every float node output through `taps`.
    pub fn run_with_taps(&self, inputs: Vec<Value>, taps: &mut Taps<'_>) -> Result<Vec<Value>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Model(format!(
                "the model takes {} input(s) ({}), got {}",
                self.inputs.len(),
                self.inputs
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                inputs.len()
            )));
        }
        let mut values: HashMap<String, Value> = HashMap::new();
        for ((info, key), value) in self.inputs.iter().zip(&self.input_keys).zip(inputs) {
            check_declared_shape(info, value.shape())?;
            values.insert(key.clone(), value);
        }
        let ctx = Context {
            relu: taps.current_relu_policy(),
        };
        for (index, (node, dead)) in self.nodes.iter().zip(&self.dead_after).enumerate() {
            let name = &self.node_names[index];
            let args = node
                .inputs()
                .iter()
                .map(|arg| {
                    if arg.is_optional() {
                        return Ok(None);
                    }
                    values
                        .get(&arg.name)
                        .or_else(|| self.constants.get(&constant_key(arg)))
                        .cloned()
                        .map(Some)
                        .ok_or_else(|| {
                            node_error(node, name, format!("input `{}` has no value", arg.name))
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            let outputs = guarded(
                || format!("ONNX node `{name}` ({})", onnx_op_type(node)),
                || ops::eval(node, &args, &ctx),
            )
            .map_err(|e| match e {
                Error::Model(m) if !m.starts_with("ONNX node") => node_error(node, name, m),
                other => other,
            })?;
            drop(args);
            let tap_names = &self.tap_names[index];
            for ((arg, value), tap_name) in node.outputs().iter().zip(outputs).zip(tap_names) {
                if arg.name.is_empty() {
                    continue;
                }
                // Empty values have nothing to attribute; Burn cannot reshape some of them.
                let value = if taps.is_watching()
                    && value.kind() == Kind::Float
                    && value.num_elements() > 0
                {
                    tap(taps, tap_name, value)?
                } else {
                    value
                };
                values.insert(arg.name.clone(), value);
            }
            for name in dead {
                values.remove(name);
            }
        }
        self.outputs
            .iter()
            .zip(&self.output_keys)
            .map(|(o, key)| {
                values.get(key).cloned().ok_or_else(|| {
                    Error::Model(format!("graph output `{}` was never computed", o.name))
                })
            })
            .collect()
    }
}

/// Records the shape each tap point produces.
#[derive(Default)]
struct ShapeRecorder(HashMap<String, Vec<usize>>);

impl TapHook for ShapeRecorder {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        self.0.insert(layer.to_string(), value.shape().to_vec());
        Ok(value)
    }
}

fn node_error(node: &Node, name: &str, message: String) -> Error {
    Error::Model(format!(
        "ONNX node `{name}` ({}): {message}",
        onnx_op_type(node)
    ))
}

/// Where a constant input's value is cached: onnx-ir leaves static inputs unnamed, so they are
/// told apart by their data id.
fn constant_key(arg: &Argument) -> String {
    match arg.value_source {
        ValueSource::Static(id) => format!("\0static:{id}"),
        _ => arg.name.clone(),
    }
}

fn check_declared_shape(info: &ValueInfo, shape: &[usize]) -> Result<()> {
    let fits = info.shape.len() == shape.len()
        && info
            .shape
            .iter()
            .zip(shape)
            .all(|(want, got)| want.is_none_or(|w| w == *got));
    if info.shape.is_empty() && shape.is_empty() || fits {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        what: format!("ONNX input `{}` (dynamic dims shown as 0)", info.name),
        expected: info.shape.iter().map(|d| d.unwrap_or(0)).collect(),
        got: shape.to_vec(),
    })
}

/// Hands a float value to the taps at its logical rank and takes back what they return.
fn tap(taps: &mut Taps<'_>, name: &str, value: Value) -> Result<Value> {
    macro_rules! at_rank {
        ($($d:literal)*) => {
            match value.rank() {
                $($d => Value::from_float(taps.tap(name, value.float_at::<$d>()?)?),)*
                _ => Ok(value),
            }
        };
    }
    at_rank!(1 2 3 4 5 6)
}

fn parse(
    source_name: &str,
    f: impl FnOnce() -> std::result::Result<OnnxGraph, onnx_ir::Error>,
) -> Result<OnnxGraph> {
    let parsed =
        guarded(|| "the ONNX parser failed".to_string(), || Ok(f())).map_err(|e| Error::Onnx {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
    parsed.map_err(|e| Error::Onnx {
        source_name: source_name.to_string(),
        reason: e.to_string(),
    })
}

impl Model for OnnxModel {
    fn forward(&self, input: DynTensor, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let [first] = self.inputs.as_slice() else {
            return Err(Error::Model(format!(
                "{} takes {} inputs; as a Model it must take exactly one (use OnnxModel::run)",
                self.source_name,
                self.inputs.len()
            )));
        };
        let shape = input.shape().to_vec();
        let value = Value::from_float(input.into_flat())?.reshaped(shape)?;
        check_declared_shape(first, value.shape())?;
        let out = self.run_with_taps(vec![value], taps)?.swap_remove(0);
        let batch = out.shape().first().copied().unwrap_or(1);
        let features = out.num_elements() / batch.max(1);
        out.reshaped(vec![batch, features])?.float_at::<2>()
    }

    fn layers(&self) -> Vec<LayerInfo> {
        self.layers.clone()
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        let first = self.inputs.first()?;
        first.shape.iter().skip(1).copied().collect()
    }
}
