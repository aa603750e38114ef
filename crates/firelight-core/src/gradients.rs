//! Gradient plumbing every family shares: gradients of a target at the attributed inputs or at
//! named layers for a batch of rows (one backward pass for several layers), layer activations,
//! target scores. Gradient methods, CAMs and TCAV are built on these (as Captum keeps them in
//! `captum/_utils/gradient.py`).

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::inputs::Inputs;
use crate::model::{Model, Recorder, ReluPolicy, TapHook, Taps};
use crate::target::Target;
use crate::tensor::DynTensor;

/// Checks that apply to every method: a non-empty batch the model accepts, finite values, and
/// one sample index per row.
pub fn validate(model: &dyn Model, inputs: &Inputs, samples: &[usize]) -> Result<()> {
    let batch = inputs.batch()?;
    if batch == 0 {
        return Err(Error::ShapeMismatch {
            what: "inputs (an empty batch)".into(),
            expected: vec![1],
            got: vec![0],
        });
    }
    if samples.len() != batch {
        return Err(Error::InvalidTarget(format!(
            "{} sample indices for a batch of {batch}",
            samples.len(),
        )));
    }
    model.check_inputs(inputs)?;
    inputs.check_finite()
}

/// The flat rows as a fresh autodiff leaf whose gradient is kept.
fn leaf(flat: &Tensor<2>) -> Tensor<2> {
    flat.clone().detach().inner().autodiff().require_grad()
}

/// One score per row of `inputs` under `target`, no gradients.
pub fn target_scores(
    model: &dyn Model,
    inputs: &Inputs,
    target: &Target,
    samples: &[usize],
) -> Result<Tensor<1>> {
    let outputs = model.predict(&inputs.detached())?;
    target.scores(outputs, samples)
}

/// d(target)/d(input) for every row of every attributed input (in order), with ReLUs under
/// `relu`. An integer attributed input fails with [`Error::NotDifferentiable`].
pub fn input_gradients(
    model: &dyn Model,
    inputs: &Inputs,
    target: &Target,
    samples: &[usize],
    relu: ReluPolicy,
) -> Result<Vec<DynTensor>> {
    let attributed = inputs.attributed_floats()?;
    let leaves: Vec<Tensor<2>> = attributed.iter().map(|t| leaf(t.flat())).collect();
    let rows: Vec<usize> = (0..inputs.batch()?).collect();
    let tracked = inputs.detached().with_attributed(
        attributed
            .iter()
            .zip(&leaves)
            .map(|(t, l)| t.with_flat(l.clone()))
            .collect(),
        &rows,
    )?;
    let outputs = model.forward(&tracked, &mut Taps::none().relu_policy(relu))?;
    let scores = target.scores(outputs, samples)?;
    let grads = backward(scores);
    Ok(attributed
        .iter()
        .zip(&leaves)
        .map(|(like, leaf)| gradient_at(grads.as_ref(), leaf, like))
        .collect())
}

/// The gradients of the summed `scores`, or `None` when they do not depend on any leaf.
fn backward(scores: Tensor<1>) -> Option<burn::tensor::Gradients> {
    scores.is_tracked().then(|| scores.sum().backward())
}

/// d(scores)/d(`leaf`), shaped like `like`: zero where the scores do not depend on the leaf at
/// all (a constant target, or a layer the output bypasses).
fn gradient_at(
    grads: Option<&burn::tensor::Gradients>,
    leaf: &Tensor<2>,
    like: &DynTensor,
) -> DynTensor {
    let grad = grads.and_then(|g| leaf.grad(g));
    like.with_flat(grad.unwrap_or_else(|| like.flat().clone().detach().inner().zeros_like()))
}

/// At `layer`, remembers the value the model produced and continues with a leaf: the same value,
/// or `replacement` when given (layer-space interpolation).
struct LayerLeaf {
    layer: String,
    replacement: Option<DynTensor>,
    seen: Option<(DynTensor, Tensor<2>)>,
}

impl TapHook for LayerLeaf {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        if layer != self.layer {
            return Ok(value);
        }
        let source = match self.replacement.take() {
            Some(r) => {
                value.check_same_sample_shape(&r, &format!("replacement at layer `{layer}`"))?;
                if r.batch() != value.batch() {
                    return Err(Error::ShapeMismatch {
                        what: format!("replacement at layer `{layer}`"),
                        expected: value.shape().to_vec(),
                        got: r.shape().to_vec(),
                    });
                }
                r
            }
            None => value,
        };
        let leaf = leaf(source.flat());
        let out = source.with_flat(leaf.clone());
        self.seen = Some((source.detached(), leaf));
        Ok(out)
    }
}

/// The activation at `layer` and d(target)/d(activation) for every row.
///
/// With `replacement`, the layer's value is replaced by it (same shape) and the gradient is taken
/// there; the returned activation is then the replacement.
pub fn layer_gradients(
    model: &dyn Model,
    inputs: &Inputs,
    layer: &str,
    target: &Target,
    samples: &[usize],
    replacement: Option<DynTensor>,
) -> Result<(DynTensor, DynTensor)> {
    layer_gradients_with_policy(
        model,
        inputs,
        layer,
        target,
        samples,
        replacement,
        ReluPolicy::Standard,
    )
}

/// [`layer_gradients`] with the nonlinearities' backward pass under `policy` (LayerDeepLift's
/// multipliers at a layer under [`ReluPolicy::DeepLift`]).
pub fn layer_gradients_with_policy(
    model: &dyn Model,
    inputs: &Inputs,
    layer: &str,
    target: &Target,
    samples: &[usize],
    replacement: Option<DynTensor>,
    policy: ReluPolicy,
) -> Result<(DynTensor, DynTensor)> {
    let mut hook = LayerLeaf {
        layer: layer.to_string(),
        replacement,
        seen: None,
    };
    let outputs = model.forward(
        &inputs.detached(),
        &mut Taps::with_hook(&mut hook).relu_policy(policy),
    )?;
    let (activation, leaf) = hook.seen.ok_or_else(|| not_reached(layer))?;
    let scores = target.scores(outputs, samples)?;
    let grads = backward(scores);
    let grad = gradient_at(grads.as_ref(), &leaf, &activation);
    Ok((activation, grad))
}

/// At each watched layer, continues with `value + zeros` where `zeros` is a fresh leaf: the
/// graph stays connected, so one backward pass yields the gradient at every layer (the leaf's
/// gradient is the layer's), where replacing the value by a leaf would cut the layers below off.
struct ZeroLeaves<'a> {
    layers: &'a [String],
    leaves: Vec<(String, Tensor<2>, DynTensor)>,
}

impl TapHook for ZeroLeaves<'_> {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        if !self.layers.iter().any(|l| l == layer) {
            return Ok(value);
        }
        let zeros = value
            .flat()
            .clone()
            .detach()
            .inner()
            .zeros_like()
            .autodiff()
            .require_grad();
        self.leaves
            .push((layer.to_string(), zeros.clone(), value.detached()));
        Ok(value.map(|v| v + zeros))
    }
}

/// The activation and the gradient of `target` at each of `layers` (in that order) for every row,
/// from one forward and one backward pass (Captum takes one pass per layer).
pub fn multi_layer_gradients(
    model: &dyn Model,
    inputs: &Inputs,
    layers: &[String],
    target: &Target,
    samples: &[usize],
) -> Result<Vec<(DynTensor, DynTensor)>> {
    let mut hook = ZeroLeaves {
        layers,
        leaves: Vec::new(),
    };
    let outputs = model.forward(&inputs.detached(), &mut Taps::with_hook(&mut hook))?;
    let scores = target.scores(outputs, samples)?;
    let grads = backward(scores);
    layers
        .iter()
        .map(|layer| {
            // The last visit of a layer that runs twice, as a Recorder keeps it.
            let (_, leaf, activation) = hook
                .leaves
                .iter()
                .rev()
                .find(|(n, _, _)| n == layer)
                .ok_or_else(|| not_reached(layer))?;
            let grad = gradient_at(grads.as_ref(), leaf, activation);
            Ok((activation.clone(), grad))
        })
        .collect()
}

/// The value at `layer` for `inputs`, no gradients.
pub fn layer_activations(model: &dyn Model, inputs: &Inputs, layer: &str) -> Result<DynTensor> {
    let mut recorder = Recorder::new([layer]);
    model.forward(&inputs.detached(), &mut Taps::with_hook(&mut recorder))?;
    recorder.take(layer).ok_or_else(|| not_reached(layer))
}

/// The activation at `layer` and the gradient of `target` with respect to it, for every input:
/// what CAM methods weight. Checks the inputs, the target and that the layer exists.
pub fn layer_activation_and_gradient(
    model: &dyn Model,
    inputs: &Inputs,
    layer: &str,
    target: &Target,
) -> Result<(DynTensor, DynTensor)> {
    model.check_layer(layer)?;
    let batch = inputs.batch()?;
    target.check_batch(batch)?;
    let samples: Vec<usize> = (0..batch).collect();
    validate(model, inputs, &samples)?;
    layer_gradients(model, inputs, layer, target, &samples, None)
}

/// The error for a layer the model lists but did not reach.
pub fn not_reached(layer: &str) -> Error {
    Error::Model(format!(
        "the model lists layer `{layer}` but its forward pass never reached it"
    ))
}

/// Sum of every value of each sample: `[batch, ...]` to `[batch]`.
pub fn sum_per_sample(t: &DynTensor) -> Tensor<1> {
    let batch = t.batch();
    t.flat().clone().sum_dim(1).reshape([batch])
}
