//! [`OnnxModel`]: an ONNX graph parsed by onnx-ir, run node by node on Burn tensors.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use burn::tensor::{DType, Device, Tensor, TensorData};
use firelight_core::{
    DynTensor, Error, InputSpec, Inputs, LayerInfo, Model, ReluPolicy, Result, TapHook, Taps,
    budget,
};
use onnx_ir::{
    ArgType, Argument, Message, ModelProto, Node, OnnxGraph, OnnxGraphBuilder, ValueSource,
};

use crate::ops::{self, Context, onnx_op_type};
use crate::value::{Kind, MAX_RANK, Value, padded};

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
    /// For each `Attention` node (one in the file, or one onnx-ir fused from MatMul, Softmax,
    /// MatMul), the tap name of its attention probabilities: the file's Softmax output where
    /// the node was fused from one, `<output>/probabilities` otherwise.
    attention_taps: HashMap<usize, String>,
    /// The exact-GELU and SiLU chains of element-wise nodes, by the index of their first node:
    /// run as one kernel where nothing looks inside them ([`crate::fuse`]).
    pub(crate) chains: HashMap<usize, crate::fuse::Chain>,
    /// onnx-ir's names of the graph inputs and outputs, which the values are stored under.
    input_keys: Vec<String>,
    output_keys: Vec<String>,
    device: Device,
    /// The memory budget of this model's runs; `None` for the process-wide one.
    max_bytes: Option<u64>,
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

/// A `Gather` that looks an integer graph input up in a constant table: an embedding layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingLookup {
    /// The layer name of the looked-up vectors.
    pub layer: String,
    /// The table's row count: token ids must be below it.
    pub vocabulary: usize,
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

/// The tap name of each `Attention` node's probabilities (see `OnnxModel::attention_taps`).
fn attention_taps(
    proto: &ModelProto,
    nodes: &[Node],
    tap_names: &[Vec<String>],
) -> HashMap<usize, String> {
    let file_nodes = proto
        .graph
        .as_ref()
        .map(|g| g.node.as_slice())
        .unwrap_or(&[]);
    let producer = |value: &str| {
        file_nodes
            .iter()
            .find(|n| n.output.iter().any(|o| o == value))
    };
    let kept: std::collections::HashSet<&str> =
        tap_names.iter().flatten().map(String::as_str).collect();
    // The file's Softmax outputs that a MatMul reads as its first input (probabilities times
    // values) and that onnx-ir fused away, in file order: one per fused node, in graph order.
    let mut fused = file_nodes
        .iter()
        .filter(|n| n.op_type == "Softmax")
        .filter_map(|n| n.output.first())
        .filter(|o| !kept.contains(o.as_str()))
        .filter(|o| {
            file_nodes
                .iter()
                .any(|m| m.op_type == "MatMul" && m.input.first() == Some(*o))
        })
        .cloned()
        .collect::<Vec<_>>()
        .into_iter();
    nodes
        .iter()
        .zip(tap_names)
        .enumerate()
        .filter(|(_, (node, _))| matches!(node, Node::Attention(_)))
        .filter_map(|(index, (_, taps))| {
            let output = taps.first()?;
            let name = match producer(output) {
                // An Attention node of the file has no Softmax of its own.
                Some(n) if n.op_type == "Attention" => format!("{output}/probabilities"),
                // Fused, its output still under the file's name: the final MatMul reads the
                // Softmax's probabilities.
                Some(matmul) => matmul
                    .input
                    .first()
                    .filter(|p| producer(p).is_some_and(|n| n.op_type == "Softmax"))
                    .cloned()
                    .unwrap_or_else(|| format!("{output}/probabilities")),
                // Fused under a name of the parser's.
                None => fused
                    .next()
                    .unwrap_or_else(|| format!("{output}/probabilities")),
            };
            Some((index, name))
        })
        .collect()
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
        let mut proto = crate::validate::check_file(path, &source_name)?;
        let graph = match parse(&source_name, || OnnxGraphBuilder::new().parse_file(path)) {
            Ok(graph) => graph,
            Err(refused) => {
                let folder = path.parent().unwrap_or(Path::new("."));
                reparse_folded(&mut proto, Some(folder), &source_name, refused)?
            }
        };
        Self::from_graph(graph, &proto, source_name, device)
    }

    /// [`OnnxModel::load`] holding the model to a memory budget of `max_bytes`, at load (its
    /// initialisers, the constants the parser folds) and in every later run: an allocation the
    /// graph asks for beyond it fails with [`Error::MemoryBudget`], naming the node.
    pub fn load_with_budget(
        path: impl AsRef<Path>,
        device: &Device,
        max_bytes: u64,
    ) -> Result<Self> {
        budget::with_limit(Some(max_bytes), || Self::load(path, device))
            .map(|model| model.with_max_bytes(max_bytes))
    }

    /// Loads a model from the bytes of an ONNX file (external data is not available this way).
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        Self::from_named_bytes("<bytes>", bytes, device)
    }

    /// [`OnnxModel::from_bytes`] for bytes that came from somewhere with a name (a file picked in
    /// a browser): errors name it `source_name`.
    pub fn from_named_bytes(source_name: &str, bytes: &[u8], device: &Device) -> Result<Self> {
        let source_name = source_name.to_string();
        let mut proto = crate::validate::check_bytes(bytes, &source_name)?;
        let graph = match parse(&source_name, || OnnxGraphBuilder::new().parse_bytes(bytes)) {
            Ok(graph) => graph,
            Err(refused) => reparse_folded(&mut proto, None, &source_name, refused)?,
        };
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

        let attention_taps = attention_taps(proto, &graph.nodes, &tap_names);

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
            .enumerate()
            .flat_map(|(index, (node, taps))| {
                let kind = onnx_op_type(node);
                // A fused attention's probabilities come before its output, as in the file.
                let probabilities = attention_taps
                    .get(&index)
                    .map(|name| LayerInfo::new(name.clone(), "Softmax").with_shape(vec![None; 4]));
                probabilities
                    .into_iter()
                    .chain(
                        node.outputs()
                            .iter()
                            .zip(taps)
                            .filter_map(move |(out, tap)| {
                                let info = ValueInfo::from_argument(out);
                                match info.dtype {
                                    Some(d) if is_float(d) && !out.name.is_empty() => Some(
                                        LayerInfo::new(tap.clone(), kind.clone())
                                            .with_shape(info.shape),
                                    ),
                                    _ => None,
                                }
                            }),
                    )
            })
            .collect();

        let chains = crate::fuse::chains(&graph.nodes, &output_keys);
        let mut model = Self {
            source_name,
            chains,
            nodes: graph.nodes,
            constants,
            inputs,
            outputs,
            dead_after,
            layers,
            node_names,
            tap_names,
            attention_taps,
            input_keys,
            output_keys,
            device: device.clone(),
            max_bytes: None,
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
            .map_err(|e| match e {
                // The budget error names the node already, and callers match on its kind.
                Error::MemoryBudget { .. } => e,
                other => Error::Onnx {
                    source_name: self.source_name.clone(),
                    reason: format!(
                        "the model fails on a zero input of its declared shape: {other}"
                    ),
                },
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

    /// The embedding lookups of the integer graph input `input` (token ids): for each `Gather`
    /// that reads it as its indices from a constant table, the layer name of its output (where
    /// text methods attribute) and the table's row count (the vocabulary size). Empty when no
    /// node looks the input up.
    pub fn embedding_lookups(&self, input: &str) -> Vec<EmbeddingLookup> {
        let Some(key) = self
            .inputs
            .iter()
            .position(|i| i.name == input)
            .map(|i| &self.input_keys[i])
        else {
            return Vec::new();
        };
        self.nodes
            .iter()
            .zip(&self.tap_names)
            .filter_map(|(node, taps)| {
                let Node::Gather(_) = node else { return None };
                let [table, indices, ..] = node.inputs() else {
                    return None;
                };
                if &indices.name != key {
                    return None;
                }
                let rows = self
                    .constants
                    .get(&constant_key(table))?
                    .shape()
                    .first()
                    .copied()?;
                Some(EmbeddingLookup {
                    layer: taps.first()?.clone(),
                    vocabulary: rows,
                })
            })
            .collect()
    }

    /// The layers that hold learned weights (convolutions, dense layers, matrix products with a
    /// constant, batch and layer norms), first first, by their output's name: what a sanity
    /// check randomises.
    pub fn parameter_layers(&self) -> Vec<String> {
        self.nodes
            .iter()
            .zip(&self.tap_names)
            .filter(|(node, _)| !learned_inputs(node).is_empty())
            .filter_map(|(node, taps)| {
                let has_weights = learned_inputs(node).iter().any(|&i| {
                    node.inputs()
                        .get(i)
                        .and_then(|arg| self.constants.get(&constant_key(arg)))
                        .is_some_and(|v| v.kind() == Kind::Float && v.num_elements() > 1)
                });
                has_weights.then(|| taps.first().cloned()).flatten()
            })
            .collect()
    }

    /// A copy of this model with the learned weights of `layers` (names from
    /// [`OnnxModel::parameter_layers`]) redrawn from a normal distribution of each tensor's own
    /// mean and standard deviation, seeded by `seed` and the layer: Adebayo et al.'s
    /// randomisation, which keeps every layer's scale. Batch and layer norms redraw their scale
    /// and bias, not their running statistics. Fails, naming the closest layers, for a name that
    /// holds no weights.
    pub fn randomized(&self, layers: &[String], seed: u64) -> Result<OnnxModel> {
        let known = self.parameter_layers();
        for layer in layers {
            if !known.contains(layer) {
                return Err(Error::UnknownLayer {
                    name: layer.clone(),
                    available: known,
                });
            }
        }
        let mut constants = self.constants.clone();
        for (node, taps) in self.nodes.iter().zip(&self.tap_names) {
            let Some(name) = taps.first().filter(|t| layers.contains(t)) else {
                continue;
            };
            for (k, i) in learned_inputs(node).into_iter().enumerate() {
                let Some(arg) = node.inputs().get(i) else {
                    continue;
                };
                let key = constant_key(arg);
                let Some(value) = self.constants.get(&key) else {
                    continue;
                };
                if value.kind() != Kind::Float || value.num_elements() < 2 {
                    continue;
                }
                let redrawn = redraw(value, firelight_core::randomize::tensor_seed(seed, name, k))?;
                constants.insert(key, redrawn);
            }
        }
        Ok(OnnxModel {
            constants,
            nodes: self.nodes.clone(),
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            dead_after: self.dead_after.clone(),
            layers: self.layers.clone(),
            node_names: self.node_names.clone(),
            tap_names: self.tap_names.clone(),
            attention_taps: self.attention_taps.clone(),
            chains: self.chains.clone(),
            input_keys: self.input_keys.clone(),
            output_keys: self.output_keys.clone(),
            source_name: format!("{} (randomised: {})", self.source_name, layers.len()),
            device: self.device.clone(),
            max_bytes: self.max_bytes,
        })
    }

    /// The attention probabilities of every self-attention block, first block first: each
    /// Softmax output shaped `[batch, heads, tokens, tokens]`, those of fused `Attention` nodes
    /// included (onnx-ir fuses MatMul, Softmax, MatMul; the probabilities keep the file's Softmax
    /// name). What attention maps, rollout and Chefer's relevance read; empty for a model
    /// without self-attention.
    pub fn attention_layers(&self) -> Vec<String> {
        firelight_core::model::attention_layers(self)
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
    ///
    /// A graph whose file fixes the batch (most exported files say batch 1) runs a batch of any
    /// size: the rows go through in chunks of the fixed batch, node by node in lockstep, and taps
    /// see each value with every row at once, so layer methods work unchanged.
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
        let batch = inputs.first().map_or(1, Value::batch);
        // Chunks of a fixed batch only when the file fixes one and every input has this batch;
        // otherwise (scalars, empty values, a graph that takes any batch) one lane of all rows.
        let chunk = match self.fixed_batch() {
            Some(fixed)
                if fixed != batch
                    && batch > 0
                    && inputs.iter().all(|v| v.rank() >= 1 && v.batch() == batch) =>
            {
                fixed
            }
            _ => batch,
        };
        let lanes = split_rows(&inputs, batch, chunk)?;
        for lane in &lanes {
            for (info, value) in self.inputs.iter().zip(&lane.values) {
                check_declared_shape(info, value.shape())?;
            }
        }
        budget::with_limit(self.max_bytes, || self.run_lanes(lanes, batch, taps))
    }

    /// Runs the graph on each lane (a chunk of rows) in lockstep; returns the outputs with the
    /// lanes' real rows joined.
    fn run_lanes(&self, lanes: Vec<Lane>, batch: usize, taps: &mut Taps<'_>) -> Result<Vec<Value>> {
        let mut values: Vec<HashMap<String, Value>> = lanes
            .iter()
            .map(|lane| {
                self.input_keys
                    .iter()
                    .cloned()
                    .zip(lane.values.iter().cloned())
                    .collect()
            })
            .collect();
        let policy = taps.current_relu_policy();
        // Under LRP, a Conv whose only consumer is a BatchNormalization with constant parameters
        // runs as one merged affine layer (zennit's canonizers merge them the same way).
        let merges = if matches!(policy, ReluPolicy::Lrp(_)) {
            self.conv_bn_pairs()
        } else {
            HashMap::new()
        };
        let merged_bns: std::collections::HashSet<usize> = merges.values().copied().collect();
        // LRP composites give the first affine node (the one reading the input) its own rule;
        // other passes need not look for it.
        let first_affine = match policy {
            ReluPolicy::Lrp(_) => self
                .nodes
                .iter()
                .position(|n| matches!(onnx_op_type(n).as_str(), "Conv" | "Gemm")),
            _ => None,
        };
        // Chains of nodes run as one kernel, where no hook looks at their intermediate values
        // and the pass has no rule of its own for nonlinear nodes.
        let fuse =
            !taps.is_watching() && !matches!(policy, ReluPolicy::DeepLift | ReluPolicy::Lrp(_));
        let mut fused_away = std::collections::HashSet::new();
        for (index, (node, dead)) in self.nodes.iter().zip(&self.dead_after).enumerate() {
            if fused_away.contains(&index) {
                drop_dead(&mut values, dead);
                continue;
            }
            if fuse
                && let Some(chain) = self.chains.get(&index)
                && let Some(outputs) = self.fused(chain, &values)?
            {
                let output = &self.nodes[chain.output_node].outputs()[0].name;
                for (lane_values, value) in values.iter_mut().zip(outputs) {
                    lane_values.insert(output.clone(), value);
                }
                fused_away.extend(chain.members[1..].iter().copied());
                drop_dead(&mut values, dead);
                continue;
            }
            let name = &self.node_names[index];
            let ctx = Context {
                relu: policy,
                first_affine: first_affine == Some(index),
            };
            // Each lane's arguments.
            let lane_args = values
                .iter()
                .map(|lane_values| {
                    node.inputs()
                        .iter()
                        .map(|arg| {
                            if arg.is_optional() {
                                return Ok(None);
                            }
                            lane_values
                                .get(&arg.name)
                                .or_else(|| self.constants.get(&constant_key(arg)))
                                .cloned()
                                .map(Some)
                                .ok_or_else(|| {
                                    node_error(
                                        node,
                                        name,
                                        format!("input `{}` has no value", arg.name),
                                    )
                                })
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            let merged_bn = merges.get(&index).map(|&j| &self.nodes[j]);
            let locate = |e: Error| match e {
                Error::Model(m) if !m.starts_with("ONNX node") => node_error(node, name, m),
                Error::MemoryBudget {
                    what,
                    bytes,
                    budget,
                } => Error::MemoryBudget {
                    what: format!("ONNX node `{name}` ({}): {what}", onnx_op_type(node)),
                    bytes,
                    budget,
                },
                other => other,
            };
            let context = || format!("ONNX node `{name}` ({})", onnx_op_type(node));
            let eval = |args: &[Option<Value>]| {
                guarded(context, || match merged_bn {
                    Some(bn) => {
                        let params: Vec<&Value> = bn.inputs()[1..5]
                            .iter()
                            .filter_map(|arg| self.constants.get(&constant_key(arg)))
                            .collect();
                        let params: [&Value; 4] = params.try_into().map_err(|_| {
                            Error::Model("batch norm parameters are not constants".into())
                        })?;
                        ops::nn::conv_bn_lrp(node, args, bn, params, &ctx)
                    }
                    // Applied already by the convolution merged with it.
                    None if merged_bns.contains(&index) => {
                        Ok(vec![args.first().cloned().flatten().ok_or_else(|| {
                            Error::Model("BatchNormalization without an input".into())
                        })?])
                    }
                    None => ops::eval(node, args, &ctx),
                })
                .map_err(locate)
            };
            let attention = match (node, self.attention_taps.get(&index)) {
                (Node::Attention(n), Some(tap_name)) if taps.is_watching() => {
                    Some((&n.config, tap_name))
                }
                _ => None,
            };
            let mut lane_outputs = if let Some((config, tap_name)) = attention {
                // The probabilities pass through the taps between the node's two halves.
                let parts = lane_args
                    .iter()
                    .map(|args| {
                        guarded(context, || ops::nn::attention_probabilities(config, args))
                            .map_err(locate)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let probabilities = parts.iter().map(|p| p.probabilities.clone()).collect();
                let probabilities = self.tap_lanes(taps, tap_name, probabilities, &lanes, batch)?;
                parts
                    .into_iter()
                    .zip(&probabilities)
                    .map(|(parts, p)| {
                        guarded(context, || ops::nn::attention_output(p, parts))
                            .map(|y| vec![y])
                            .map_err(locate)
                    })
                    .collect::<Result<Vec<_>>>()?
            } else if ctx.relu == ReluPolicy::DeepLift
                && (lanes.len() > 1 || lanes.iter().any(|l| l.padding > 0))
                && ops::deeplift::RULE_OPS.contains(&onnx_op_type(node).as_str())
            {
                // DeepLift's rules pair row i with row i + n/2 of the whole batch, which lanes
                // (and their padding rows) part: a rule node runs once on the lanes' real rows
                // joined (element-wise nodes and pooling take any batch), and its outputs are
                // cut back into the lanes.
                self.join_for_rule(&lane_args, &lanes, batch, eval)?
            } else {
                lane_args
                    .iter()
                    .map(|args| eval(args))
                    .collect::<Result<Vec<_>>>()?
            };
            let tap_names = &self.tap_names[index];
            for (position, (arg, tap_name)) in node.outputs().iter().zip(tap_names).enumerate() {
                if arg.name.is_empty() {
                    continue;
                }
                let per_lane: Vec<Value> = lane_outputs
                    .iter_mut()
                    .map(|outputs| {
                        outputs
                            .get_mut(position)
                            .map(|v| std::mem::replace(v, empty_value()))
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| node_error(node, name, "produced too few outputs".into()))?;
                let per_lane = self.tap_lanes(taps, tap_name, per_lane, &lanes, batch)?;
                for (lane_values, value) in values.iter_mut().zip(per_lane) {
                    lane_values.insert(arg.name.clone(), value);
                }
            }
            drop_dead(&mut values, dead);
        }
        self.outputs
            .iter()
            .zip(&self.output_keys)
            .map(|(o, key)| {
                let per_lane = values
                    .iter()
                    .map(|v| v.get(key).cloned())
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        Error::Model(format!("graph output `{}` was never computed", o.name))
                    })?;
                join_rows(per_lane, &lanes, batch)
            })
            .collect()
    }

    /// `chain`'s function of its input in each lane, through one kernel; `None` where the
    /// chain must run node by node (an input that is not a float value, or of lower rank than
    /// the chain's constants, which would widen it).
    fn fused(
        &self,
        chain: &crate::fuse::Chain,
        values: &[HashMap<String, Value>],
    ) -> Result<Option<Vec<Value>>> {
        let inputs: Option<Vec<&Value>> = values
            .iter()
            .map(|lane| {
                lane.get(&chain.input)
                    .filter(|v| v.kind() == Kind::Float && v.rank() >= chain.constant_rank)
            })
            .collect();
        let Some(inputs) = inputs else {
            return Ok(None);
        };
        let name = &self.node_names[chain.output_node];
        let context = || {
            format!(
                "ONNX node `{name}` ({:?} of its nodes, fused)",
                chain.function
            )
        };
        inputs
            .into_iter()
            .map(|v| {
                guarded(context, || {
                    let x = v.as_float();
                    let y = match chain.function {
                        crate::fuse::Function::Gelu => firelight_core::activation::gelu(x),
                        crate::fuse::Function::Silu => firelight_core::activation::silu(x),
                    };
                    Ok(Value::float6(y, v.shape().to_vec()))
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Each 2-D Conv node whose output only a BatchNormalization node reads (its scale, bias,
    /// mean and variance constants, the Conv's output not a graph output), by node index.
    fn conv_bn_pairs(&self) -> HashMap<usize, usize> {
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (j, node) in self.nodes.iter().enumerate() {
            for arg in node.inputs() {
                readers.entry(arg.name.as_str()).or_default().push(j);
            }
        }
        let mut pairs = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let Node::Conv2d(conv) = node else { continue };
            let Some(out) = conv.outputs.first() else {
                continue;
            };
            if self.output_keys.iter().any(|k| k == &out.name) {
                continue;
            }
            if let Some([j]) = readers.get(out.name.as_str()).map(Vec::as_slice)
                && let Node::BatchNormalization(bn) = &self.nodes[*j]
                && bn.inputs.first().is_some_and(|a| a.name == out.name)
                && bn.inputs.len() >= 5
                && bn.inputs[1..5]
                    .iter()
                    .all(|a| self.constants.contains_key(&constant_key(a)))
            {
                pairs.insert(i, *j);
            }
        }
        pairs
    }

    /// Runs a DeepLift rule node once on its lanes' real rows joined (arguments without the
    /// lanes' batch, such as Clip's bounds, are taken from the first lane), and cuts each output
    /// back into the lanes, padding rows repeated from the lane's first row.
    fn join_for_rule(
        &self,
        lane_args: &[Vec<Option<Value>>],
        lanes: &[Lane],
        batch: usize,
        eval: impl Fn(&[Option<Value>]) -> Result<Vec<Value>>,
    ) -> Result<Vec<Vec<Value>>> {
        let joined = (0..lane_args[0].len())
            .map(|position| {
                let per_lane: Vec<Option<&Value>> = lane_args
                    .iter()
                    .map(|args| args[position].as_ref())
                    .collect();
                let batched = per_lane.iter().zip(lanes).all(|(v, lane)| {
                    v.is_some_and(|v| v.rank() >= 1 && v.batch() == lane.rows + lane.padding)
                });
                if batched {
                    let values = per_lane.into_iter().flatten().cloned().collect();
                    join_rows(values, lanes, batch).map(Some)
                } else {
                    Ok(lane_args[0][position].clone())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let outputs = eval(&joined)?;
        let mut per_lane: Vec<Vec<Value>> = vec![Vec::with_capacity(outputs.len()); lanes.len()];
        for output in outputs {
            let mut start = 0;
            for (lane, out) in lanes.iter().zip(per_lane.iter_mut()) {
                let own = output.rows(start, start + lane.rows)?;
                start += lane.rows;
                out.push(if lane.padding == 0 {
                    own
                } else {
                    let pad = own.select_rows(&vec![0; lane.padding])?;
                    Value::cat_rows(vec![own, pad])?
                });
            }
        }
        Ok(per_lane)
    }

    /// Hands one node output to the taps: with one lane as it is; with several, their real rows
    /// joined into one batch, and what the taps return split back into the lanes.
    fn tap_lanes(
        &self,
        taps: &mut Taps<'_>,
        name: &str,
        per_lane: Vec<Value>,
        lanes: &[Lane],
        batch: usize,
    ) -> Result<Vec<Value>> {
        // Empty values have nothing to attribute; Burn cannot reshape some of them.
        let tappable = |v: &Value| v.kind() == Kind::Float && v.num_elements() > 0;
        if !taps.is_watching() || !per_lane.iter().all(tappable) {
            return Ok(per_lane);
        }
        if let ([lane], [single]) = (lanes, per_lane.as_slice())
            && lane.padding == 0
        {
            return Ok(vec![tap(taps, name, single.clone())?]);
        }
        // Only values with a batch axis can be joined; others (a computed constant) pass as
        // they are.
        if !per_lane
            .iter()
            .zip(lanes)
            .all(|(v, lane)| v.rank() >= 1 && v.batch() == lane.rows + lane.padding)
        {
            return Ok(per_lane);
        }
        let joined = join_rows(per_lane.clone(), lanes, batch)?;
        let tapped = tap(taps, name, joined)?;
        let mut start = 0;
        per_lane
            .iter()
            .zip(lanes)
            .map(|(original, lane)| {
                let own = tapped.rows(start, start + lane.rows)?;
                start += lane.rows;
                if lane.padding == 0 {
                    Ok(own)
                } else {
                    Value::cat_rows(vec![
                        own,
                        original.rows(lane.rows, lane.rows + lane.padding)?,
                    ])
                }
            })
            .collect()
    }

    /// The batch the file fixes for every input, when it does.
    pub fn fixed_batch(&self) -> Option<usize> {
        let first = self.inputs.first()?.shape.first().copied().flatten()?;
        self.inputs
            .iter()
            .all(|i| i.shape.first().copied().flatten() == Some(first))
            .then_some(first)
            .filter(|&b| b > 0)
    }

    /// The graph inputs, in graph order, from named inputs: by name, or the one input whatever
    /// its name for a one-input graph.
    fn bind(&self, inputs: &Inputs) -> Result<Vec<Value>> {
        let given = inputs.names();
        if let ([info], [only]) = (self.inputs.as_slice(), given.as_slice()) {
            let value = inputs.value(only)?;
            check_kind(info, only, &value)?;
            return Ok(vec![value]);
        }
        let expected: Vec<String> = self.inputs.iter().map(|i| i.name.clone()).collect();
        if let Some(unknown) = given.iter().find(|n| !expected.iter().any(|e| e == *n)) {
            return Err(Error::Model(format!(
                "{} has no input named `{unknown}`; did you mean {}? Its inputs: {}",
                self.source_name,
                firelight_core::error::closest_names(unknown, &expected, 1)
                    .first()
                    .map_or_else(|| "none".to_string(), |c| format!("`{c}`")),
                self.describe_inputs()
            )));
        }
        self.inputs
            .iter()
            .map(|info| {
                if !given.contains(&info.name.as_str()) {
                    return Err(Error::Model(format!(
                        "{} needs input `{}`, which was not given; its inputs: {}",
                        self.source_name,
                        info.name,
                        self.describe_inputs()
                    )));
                }
                let value = inputs.value(&info.name)?;
                check_kind(info, &info.name, &value)?;
                Ok(value)
            })
            .collect()
    }

    fn describe_inputs(&self) -> String {
        self.inputs
            .iter()
            .map(|i| {
                let dims: Vec<String> = i
                    .shape
                    .iter()
                    .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                    .collect();
                format!(
                    "`{}` ({} [{}])",
                    i.name,
                    dtype_name(i.dtype),
                    dims.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The memory budget this model's runs are held to (default: [`budget::max_bytes`]).
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes.max(1));
        self
    }
}

/// One chunk of rows run in lockstep with the others: its input values, how many of its rows
/// are real, and how many repeat its last real row to fill a fixed batch.
struct Lane {
    values: Vec<Value>,
    rows: usize,
    padding: usize,
}

/// `inputs` cut into lanes of `chunk` rows (the last padded to `chunk`); one lane when the batch
/// fits.
fn split_rows(inputs: &[Value], batch: usize, chunk: usize) -> Result<Vec<Lane>> {
    if chunk == batch || inputs.is_empty() {
        return Ok(vec![Lane {
            values: inputs.to_vec(),
            rows: batch,
            padding: 0,
        }]);
    }
    (0..batch)
        .step_by(chunk)
        .map(|start| {
            let rows = chunk.min(batch - start);
            let padding = chunk - rows;
            let mut pick: Vec<usize> = (start..start + rows).collect();
            pick.extend(std::iter::repeat_n(start + rows - 1, padding));
            let values = inputs
                .iter()
                .map(|v| v.select_rows(&pick))
                .collect::<Result<_>>()?;
            Ok(Lane {
                values,
                rows,
                padding,
            })
        })
        .collect()
}

/// The real rows of each lane's value joined into one batch.
fn join_rows(per_lane: Vec<Value>, lanes: &[Lane], batch: usize) -> Result<Value> {
    if let ([lane], [value]) = (lanes, per_lane.as_slice())
        && lane.padding == 0
    {
        return Ok(value.clone());
    }
    let parts = per_lane
        .iter()
        .zip(lanes)
        .map(|(v, lane)| {
            if v.rank() == 0 || v.batch() != lane.rows + lane.padding {
                return Err(Error::Model(format!(
                    "a value of shape {:?} has no batch axis of {} rows, so a batch of {batch} \
                     cannot run through this fixed-batch graph in chunks",
                    v.shape(),
                    lane.rows + lane.padding
                )));
            }
            v.rows(0, lane.rows)
        })
        .collect::<Result<Vec<_>>>()?;
    Value::cat_rows(parts)
}

/// A placeholder left where a value was moved out.
/// Frees, in every lane, the values no node after this one reads.
fn drop_dead(values: &mut [HashMap<String, Value>], dead: &[String]) {
    for lane_values in values {
        for name in dead {
            lane_values.remove(name);
        }
    }
}

fn empty_value() -> Value {
    Value::float6(
        Tensor::<MAX_RANK>::empty(padded(&[0]), &Device::default()),
        vec![0],
    )
}

fn dtype_name(dtype: Option<DType>) -> String {
    match dtype {
        Some(d) if is_float(d) => "float".into(),
        Some(DType::Bool(_)) => "bool".into(),
        Some(d) => format!("{d:?}").to_lowercase(),
        None => "shape".into(),
    }
}

/// Fails unless `value`'s kind fits the graph input (integers for integer inputs, and so on).
fn check_kind(info: &ValueInfo, name: &str, value: &Value) -> Result<()> {
    let wanted = match info.dtype {
        Some(d) if is_float(d) => Kind::Float,
        Some(DType::Bool(_)) => Kind::Bool,
        Some(_) => Kind::Int,
        None => return Ok(()),
    };
    if value.kind() != wanted {
        return Err(Error::Model(format!(
            "input `{name}` holds {:?} values, but the graph input `{}` takes {wanted:?} ({})",
            value.kind(),
            info.name,
            dtype_name(info.dtype)
        )));
    }
    Ok(())
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
/// The inputs of `node` that hold its learned weights: a convolution's or dense layer's weight and
/// bias, a norm's scale and bias (not its running statistics).
fn learned_inputs(node: &Node) -> Vec<usize> {
    match node {
        Node::Conv1d(_)
        | Node::Conv2d(_)
        | Node::Conv3d(_)
        | Node::ConvTranspose1d(_)
        | Node::ConvTranspose2d(_)
        | Node::ConvTranspose3d(_)
        | Node::Linear(_) => vec![1, 2],
        Node::Gemm(_) => vec![1, 2],
        Node::MatMul(_) => vec![0, 1],
        Node::BatchNormalization(_) | Node::LayerNormalization(_) => vec![1, 2],
        _ => Vec::new(),
    }
}

/// `value` redrawn from a normal distribution of its own mean and standard deviation.
fn redraw(value: &Value, seed: u64) -> Result<Value> {
    let drawn = firelight_core::randomize::redraw_normal(&value.to_f64s(), seed)?;
    Value::from_data(
        TensorData::new(drawn, value.shape().to_vec()),
        &value.device(),
    )
}

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

/// A second parse of a graph onnx-ir `refused`, after folding integer arithmetic on constants
/// ([`crate::fold`]); `refused` stands when there was nothing to fold or the second parse fails
/// too.
fn reparse_folded(
    proto: &mut ModelProto,
    folder: Option<&Path>,
    source_name: &str,
    refused: Error,
) -> Result<OnnxGraph> {
    if crate::fold::integer_constants(proto) == 0 {
        return Err(refused);
    }
    if let Some(folder) = folder {
        crate::fold::inline_external_data(proto, folder)?;
    }
    let bytes = proto.write_to_bytes().map_err(|e| Error::Onnx {
        source_name: source_name.to_string(),
        reason: format!("re-encoding the folded graph: {e}"),
    })?;
    parse(source_name, || OnnxGraphBuilder::new().parse_bytes(&bytes)).map_err(|_| refused)
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

impl firelight_core::Randomizable for OnnxModel {
    fn parameter_layers(&self) -> Vec<String> {
        OnnxModel::parameter_layers(self)
    }

    fn randomized(&self, layers: &[String], seed: u64) -> Result<Box<dyn Model>> {
        Ok(Box::new(OnnxModel::randomized(self, layers, seed)?))
    }
}

impl Model for OnnxModel {
    /// Conv and Gemm nodes take the composite's rules; other operators are checked per node.
    fn supports_lrp(&self) -> bool {
        true
    }

    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let values = self.bind(inputs)?;
        let out = self.run_with_taps(values, taps)?.swap_remove(0);
        let batch = out.shape().first().copied().unwrap_or(1);
        let features = out.num_elements() / batch.max(1);
        out.reshaped(vec![batch, features])?.float_at::<2>()
    }

    fn layers(&self) -> Vec<LayerInfo> {
        self.layers.clone()
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        let [only] = self.inputs.as_slice() else {
            return None;
        };
        only.shape.iter().skip(1).copied().collect()
    }

    fn input_specs(&self) -> Vec<InputSpec> {
        self.inputs
            .iter()
            .map(|i| InputSpec {
                name: i.name.clone(),
                kind: match i.dtype {
                    Some(d) if is_float(d) => Kind::Float,
                    Some(DType::Bool(_)) => Kind::Bool,
                    _ => Kind::Int,
                },
                shape: i.shape.clone(),
            })
            .collect()
    }

    fn check_inputs(&self, inputs: &Inputs) -> Result<()> {
        let batch = inputs.batch()?;
        for (info, value) in self.inputs.iter().zip(self.bind(inputs)?) {
            let mut shape = value.shape().to_vec();
            // A fixed batch is no constraint: rows run through in chunks of it.
            if let (Some(first), Some(fixed)) = (shape.first_mut(), self.fixed_batch())
                && *first == batch
            {
                *first = fixed;
            }
            check_declared_shape(info, &shape)?;
        }
        Ok(())
    }
}
