//! Operator patterns the interpreter runs as one kernel when nothing looks inside them.
//!
//! PyTorch's exporters write the exact GELU (before ONNX's `Gelu` operator, opset 20) as five
//! element-wise nodes, `x * 0.5 * (1 + erf(x / sqrt 2))`, and SiLU (swish, before opset 24) as
//! two, `x * sigmoid(x)`: on ConvNeXt, a BERT or an EfficientNet those are several passes over
//! the largest tensors of the network forward, and more backward (a product of two tensors
//! takes two products and a sum), where [`firelight_core::activation::gelu`] and
//! [`firelight_core::activation::silu`] make one each way. [`chains`] finds them at load; the
//! model runs a chain as that one kernel when no tap watches its intermediate values and the
//! pass gives nonlinear nodes no rule of their own (DeepLift and LRP see the nodes, as the file
//! has them). The results differ from the nodes' by float rounding only.

use std::collections::{HashMap, HashSet};

use onnx_ir::{Node, ValueSource};

/// The function a chain of nodes computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Function {
    /// The exact GELU, five nodes.
    Gelu,
    /// SiLU, `Sigmoid` and `Mul`.
    Silu,
}

/// Nodes computing one function of one value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chain {
    /// What the chain computes.
    pub function: Function,
    /// onnx-ir's name of the value the function is taken of.
    pub input: String,
    /// The chain's node indices, the first one (where the fused kernel runs) first.
    pub members: Vec<usize>,
    /// The node whose output is the GELU.
    pub output_node: usize,
    /// The largest rank of the chain's constants: a value of lower rank would be widened by
    /// them, which the fused kernel does not do.
    pub constant_rank: usize,
}

/// The one-element float constant at input `i` of `node`, with its rank.
fn scalar(node: &Node, i: usize) -> Option<(f64, usize)> {
    let arg = node.inputs().get(i)?;
    let data = arg.value()?;
    if data.shape().iter().product::<usize>() != 1 || !data.dtype().is_float() {
        return None;
    }
    let rank = data.shape().len();
    let value = *data.convert::<f64>().try_to_vec::<f64>().ok()?.first()?;
    Some((value, rank))
}

/// Whether `value` is `expected` to float32 rounding.
fn close(value: f64, expected: f64) -> bool {
    (value - expected).abs() <= 1e-6 * expected.abs()
}

/// For a binary node of `value` and a constant close to `constant`, in either order where
/// `commutative`: the other input's name and the constant's rank.
fn with_constant(node: &Node, constant: f64, commutative: bool) -> Option<(&str, usize)> {
    let inputs = node.inputs();
    if inputs.len() != 2 {
        return None;
    }
    let dynamic = |i: usize| {
        let arg = &inputs[i];
        (arg.value_source == ValueSource::Dynamic).then_some(arg.name.as_str())
    };
    if let Some((c, rank)) = scalar(node, 1)
        && close(c, constant)
    {
        return dynamic(0).map(|name| (name, rank));
    }
    if commutative
        && let Some((c, rank)) = scalar(node, 0)
        && close(c, constant)
    {
        return dynamic(1).map(|name| (name, rank));
    }
    None
}

/// The two dynamic inputs of a `Mul` node.
fn product_of(node: &Node) -> Option<[&str; 2]> {
    let Node::Mul(_) = node else { return None };
    match node.inputs() {
        [a, b]
            if a.value_source == ValueSource::Dynamic && b.value_source == ValueSource::Dynamic =>
        {
            Some([a.name.as_str(), b.name.as_str()])
        }
        _ => None,
    }
}

/// The exact-GELU and SiLU chains of `nodes`, by the index of their first node.
/// `graph_outputs` are onnx-ir's names of the graph outputs: a chain's intermediate values must
/// be read by the chain alone.
pub(crate) fn chains(nodes: &[Node], graph_outputs: &[String]) -> HashMap<usize, Chain> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for arg in node.outputs() {
            producer.insert(arg.name.as_str(), i);
        }
        for arg in node.inputs() {
            if arg.value_source == ValueSource::Dynamic {
                readers.entry(arg.name.as_str()).or_default().push(i);
            }
        }
    }
    let output_of = |i: usize| nodes[i].outputs().first().map(|a| a.name.as_str());
    // The one node reading node `i`'s only output, when that output is nothing else's.
    let sole_reader = |i: usize| -> Option<usize> {
        let [out] = nodes[i].outputs() else {
            return None;
        };
        if graph_outputs.contains(&out.name) {
            return None;
        }
        match readers.get(out.name.as_str())?.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    };
    let half = 0.5;
    let mut chains = HashMap::new();
    let mut taken: HashSet<usize> = HashSet::new();
    // x * sigmoid(x), in either order.
    for (sigmoid, node) in nodes.iter().enumerate() {
        let Node::Sigmoid(_) = node else { continue };
        let Some(x) = node
            .inputs()
            .first()
            .filter(|a| a.value_source == ValueSource::Dynamic)
            .map(|a| a.name.as_str())
        else {
            continue;
        };
        let Some(product) = sole_reader(sigmoid) else {
            continue;
        };
        let Some(factors) = product_of(&nodes[product]) else {
            continue;
        };
        let gate = output_of(sigmoid);
        let fits = (Some(factors[0]) == gate && factors[1] == x)
            || (Some(factors[1]) == gate && factors[0] == x);
        if fits {
            taken.extend([sigmoid, product]);
            chains.insert(
                sigmoid.min(product),
                Chain {
                    function: Function::Silu,
                    input: x.to_string(),
                    members: vec![sigmoid.min(product), sigmoid.max(product)],
                    output_node: product,
                    constant_rank: 0,
                },
            );
        }
    }
    for (erf, node) in nodes.iter().enumerate() {
        let Node::Erf(_) = node else { continue };
        let Some(scaled) = node.inputs().first().map(|a| a.name.as_str()) else {
            continue;
        };
        let Some(&scale) = producer.get(scaled) else {
            continue;
        };
        // x / sqrt 2, or x * (1 / sqrt 2).
        let divided = match &nodes[scale] {
            Node::Div(_) => with_constant(&nodes[scale], std::f64::consts::SQRT_2, false),
            Node::Mul(_) => with_constant(&nodes[scale], std::f64::consts::FRAC_1_SQRT_2, true),
            _ => None,
        };
        let Some((x, scale_rank)) = divided else {
            continue;
        };
        // erf(...) + 1.
        let Some(plus_one) = sole_reader(scale)
            .filter(|&r| r == erf)
            .and_then(|_| sole_reader(erf))
            .filter(|&a| matches!(nodes[a], Node::Add(_)))
        else {
            continue;
        };
        let Some((_, one_rank)) = with_constant(&nodes[plus_one], 1.0, true) else {
            continue;
        };
        let Some(product) = sole_reader(plus_one) else {
            continue;
        };
        let Some(factors) = product_of(&nodes[product]) else {
            continue;
        };
        let sum = output_of(plus_one);
        let other = if Some(factors[0]) == sum {
            factors[1]
        } else {
            factors[0]
        };
        let chain = if other == x {
            // (x * (1 + erf)) * 0.5.
            sole_reader(product)
                .filter(|&h| matches!(nodes[h], Node::Mul(_)))
                .and_then(|h| {
                    let (input, rank) = with_constant(&nodes[h], half, true)?;
                    (Some(input) == output_of(product)).then_some((
                        vec![scale, erf, plus_one, product, h],
                        h,
                        rank,
                    ))
                })
        } else {
            // (x * 0.5) * (1 + erf).
            producer.get(other).copied().and_then(|h| {
                let (input, rank) = with_constant(&nodes[h], half, true)?;
                let half_x = matches!(nodes[h], Node::Mul(_))
                    && input == x
                    && sole_reader(h) == Some(product);
                half_x.then_some((vec![scale, h, erf, plus_one, product], product, rank))
            })
        };
        let Some((mut members, output_node, last_rank)) = chain else {
            continue;
        };
        if members.iter().any(|m| taken.contains(m)) {
            continue;
        }
        members.sort_unstable();
        taken.extend(members.iter().copied());
        chains.insert(
            members[0],
            Chain {
                function: Function::Gelu,
                input: x.to_string(),
                members,
                output_node,
                constant_rank: scale_rank.max(one_rank).max(last_rank),
            },
        );
    }
    chains
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use burn::tensor::{Device, Tensor, TensorData};
    use firelight_core::gradients::{input_gradients, layer_activations};
    use firelight_core::{Inputs, Model, ReluPolicy, Target};

    use super::Function;
    use crate::OnnxModel;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/onnx_fusion")
            .join(format!("{name}.onnx"))
    }

    /// `tools/onnx/make_fusion.py`'s `W`.
    fn weight(i: usize, j: usize) -> f64 {
        (((i * 7 + j * 3) % 11) as f64 - 5.0) / 5.0
    }

    /// The standard normal CDF, from `libm`'s double-precision erf.
    fn phi(x: f64) -> f64 {
        0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
    }

    /// Inputs from the far left tail (where `1 + erf` cancels) to the right, two rows.
    fn inputs(device: &Device) -> (Vec<f64>, Inputs) {
        let x: Vec<f64> = (0..32).map(|k| -9.0 + 0.55 * k as f64).collect();
        let values: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let t = Tensor::<2>::from_data(TensorData::new(values, [2, 16]), device);
        (x, Inputs::from(t))
    }

    /// GELU or SiLU and its derivative, in double precision.
    fn function(function: Function, v: f64) -> (f64, f64) {
        match function {
            Function::Gelu => {
                let density = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (v * phi(v), phi(v) + v * density)
            }
            Function::Silu => {
                let s = 1.0 / (1.0 + (-v).exp());
                (v * s, s * (1.0 + v * (1.0 - s)))
            }
        }
    }

    /// The model's output and input gradient (class 1) equal f(x) @ W and W[:, 1] f'(x) in
    /// double precision, to float32 rounding; the output equals the node-by-node run's.
    fn check_numbers(model: &OnnxModel, name: &str, f: Function) {
        let device = Device::flex();
        let (x, inputs) = inputs(&device);
        let y: Vec<f32> = model
            .predict(&inputs)
            .unwrap()
            .to_data()
            .try_to_vec()
            .unwrap();
        for row in 0..2 {
            for j in 0..4 {
                let expected: f64 = (0..16)
                    .map(|i| {
                        let v = x[row * 16 + i];
                        function(f, v).0 * weight(i, j)
                    })
                    .sum();
                let got = f64::from(y[row * 4 + j]);
                assert!(
                    (got - expected).abs() <= 1e-5 * (1.0 + expected.abs()),
                    "{name}: y[{row}, {j}] = {got}, expected {expected}"
                );
            }
        }
        // A hook watching a value makes the model run every node of the file.
        let node_by_node: Vec<f32> = layer_activations(model, &inputs, "y")
            .unwrap()
            .to_vec()
            .unwrap();
        for (a, b) in y.iter().zip(&node_by_node) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{name}: {a} vs {b}"
            );
        }
        let gradient = input_gradients(
            model,
            &inputs,
            &Target::class(1),
            &[0, 1],
            ReluPolicy::Standard,
        )
        .unwrap()
        .remove(0)
        .to_vec()
        .unwrap();
        for (k, (&v, &g)) in x.iter().zip(&gradient).enumerate() {
            let expected = weight(k % 16, 1) * function(f, v).1;
            assert!(
                (f64::from(g) - expected).abs() <= 1e-5 * (1.0 + expected.abs()),
                "{name}: gradient at x = {v}: {g}, expected {expected}"
            );
        }
    }

    #[test]
    fn exporters_gelu_runs_as_one_kernel_with_the_same_numbers() {
        for name in ["gelu_torch_nn", "gelu_hf", "gelu_commuted"] {
            let model = OnnxModel::load(fixture(name), &Device::flex()).unwrap();
            let chains: Vec<_> = model.chains.values().collect();
            assert_eq!(chains.len(), 1, "{name}: {chains:?}");
            assert_eq!(chains[0].function, Function::Gelu, "{name}");
            assert_eq!(chains[0].members.len(), 5, "{name}");
            check_numbers(&model, name, Function::Gelu);
        }
    }

    #[test]
    fn exporters_silu_runs_as_one_kernel_with_the_same_numbers() {
        for name in ["silu_torch_nn", "silu_commuted"] {
            let model = OnnxModel::load(fixture(name), &Device::flex()).unwrap();
            let chains: Vec<_> = model.chains.values().collect();
            assert_eq!(chains.len(), 1, "{name}: {chains:?}");
            assert_eq!(chains[0].function, Function::Silu, "{name}");
            assert_eq!(chains[0].members.len(), 2, "{name}");
            check_numbers(&model, name, Function::Silu);
        }
    }

    #[test]
    fn chains_whose_values_others_read_run_node_by_node() {
        for name in [
            "gelu_intermediate_output",
            "gelu_erf_read_twice",
            "sigmoid_gate",
        ] {
            let model = OnnxModel::load(fixture(name), &Device::flex()).unwrap();
            assert!(model.chains.is_empty(), "{name}: {:?}", model.chains);
        }
        // Still right: the extra output is erf(x / sqrt 2).
        let device = Device::flex();
        let model = OnnxModel::load(fixture("gelu_intermediate_output"), &device).unwrap();
        let (x, inputs) = inputs(&device);
        let x_value = inputs.attributed_floats().unwrap().remove(0);
        let outputs = model
            .run(vec![
                crate::Value::from_float(x_value.into_rank::<2>().unwrap()).unwrap(),
            ])
            .unwrap();
        let erf: Vec<f32> = outputs[1]
            .clone()
            .into_data()
            .unwrap()
            .convert::<f32>()
            .try_to_vec()
            .unwrap();
        for (&v, &e) in x.iter().zip(&erf) {
            let expected = libm::erf(v / std::f64::consts::SQRT_2);
            assert!((f64::from(e) - expected).abs() <= 1e-6, "erf({v}) = {e}");
        }
    }
}
