//! The plumbing every gradient method shares: validation, gradients at the input or at a named
//! layer for a batch of rows, and the [`Attribution`] trait that [`NoiseTunnel`](crate::NoiseTunnel)
//! wraps. A method file only says which rows to evaluate and how to combine their gradients.

use burn::tensor::Tensor;
use firelight_core::{
    Baseline, DynTensor, Error, Model, Recorder, ReluPolicy, Result, TapHook, Taps, Target,
};

/// An attribution method: explains `target` on a batch of inputs.
pub trait Attribution {
    /// Attributions for `inputs`; `samples[i]` is the sample (for per-sample targets) of row `i`.
    ///
    /// Methods that expand a batch call this on the expanded rows; users call [`Attribution::attribute`].
    fn attribute_samples(
        &self,
        inputs: &DynTensor,
        target: &Target,
        samples: &[usize],
    ) -> Result<DynTensor>;

    /// Attributions of `target` to `inputs` (batch first). The result has the shape of the
    /// inputs, or of the layer for layer methods.
    fn attribute(&self, inputs: &DynTensor, target: &Target) -> Result<DynTensor> {
        target.check_batch(inputs.batch())?;
        let samples: Vec<usize> = (0..inputs.batch()).collect();
        self.attribute_samples(inputs, target, &samples)
    }
}

/// Checks that apply to every method: a non-empty batch the model accepts, finite values, and
/// one sample index per row.
pub(crate) fn validate(model: &dyn Model, inputs: &DynTensor, samples: &[usize]) -> Result<()> {
    if inputs.batch() == 0 {
        return Err(Error::ShapeMismatch {
            what: "inputs (an empty batch)".into(),
            expected: vec![1],
            got: inputs.shape().to_vec(),
        });
    }
    if samples.len() != inputs.batch() {
        return Err(Error::InvalidTarget(format!(
            "{} sample indices for a batch of {}",
            samples.len(),
            inputs.batch()
        )));
    }
    model.check_input(inputs)?;
    inputs.check_finite("inputs")
}

/// Fails unless `n_steps` is usable by a path method.
pub(crate) fn check_steps(n_steps: usize) -> Result<()> {
    if n_steps == 0 {
        return Err(Error::parameter("n_steps", 0, "must be at least 1"));
    }
    Ok(())
}

/// `samples` repeated `times`, block after block (the order of step-major expansions).
pub(crate) fn tile_samples(samples: &[usize], times: usize) -> Vec<usize> {
    (0..times).flat_map(|_| samples.iter().copied()).collect()
}

/// Each sample repeated `times` in place (the order of sample-major expansions).
pub(crate) fn repeat_samples(samples: &[usize], times: usize) -> Vec<usize> {
    samples
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, times))
        .collect()
}

/// The flat rows as a fresh autodiff leaf whose gradient is kept.
fn leaf(flat: &Tensor<2>) -> Tensor<2> {
    flat.clone().detach().inner().autodiff().require_grad()
}

/// One score per row of `inputs` under `target`, no gradients.
pub(crate) fn target_scores(
    model: &dyn Model,
    inputs: &DynTensor,
    target: &Target,
    samples: &[usize],
) -> Result<Tensor<1>> {
    let outputs = model.predict(inputs.detached())?;
    target.scores(outputs, samples)
}

/// d(target)/d(input) for every row, with ReLUs under `relu`.
pub(crate) fn input_gradients(
    model: &dyn Model,
    inputs: &DynTensor,
    target: &Target,
    samples: &[usize],
    relu: ReluPolicy,
) -> Result<DynTensor> {
    let x = leaf(inputs.flat());
    let outputs = model.forward(
        inputs.with_flat(x.clone()),
        &mut Taps::none().relu_policy(relu),
    )?;
    let scores = target.scores(outputs, samples)?;
    Ok(gradient_of(scores, &x, inputs))
}

/// d(sum of `scores`)/d(`leaf`), shaped like `like`: zero where the scores do not depend on the
/// leaf at all (a constant target, or a layer the output bypasses).
fn gradient_of(scores: Tensor<1>, leaf: &Tensor<2>, like: &DynTensor) -> DynTensor {
    let grad = if scores.is_tracked() {
        leaf.grad(&scores.sum().backward())
    } else {
        None
    };
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
pub(crate) fn layer_gradients(
    model: &dyn Model,
    inputs: &DynTensor,
    layer: &str,
    target: &Target,
    samples: &[usize],
    replacement: Option<DynTensor>,
) -> Result<(DynTensor, DynTensor)> {
    let mut hook = LayerLeaf {
        layer: layer.to_string(),
        replacement,
        seen: None,
    };
    let outputs = model.forward(inputs.detached(), &mut Taps::with_hook(&mut hook))?;
    let (activation, leaf) = hook.seen.ok_or_else(|| not_reached(layer))?;
    let scores = target.scores(outputs, samples)?;
    let grad = gradient_of(scores, &leaf, &activation);
    Ok((activation, grad))
}

/// The value at `layer` for `inputs`, no gradients.
pub(crate) fn layer_activations(
    model: &dyn Model,
    inputs: &DynTensor,
    layer: &str,
) -> Result<DynTensor> {
    let mut recorder = Recorder::new([layer]);
    model.forward(inputs.detached(), &mut Taps::with_hook(&mut recorder))?;
    recorder.take(layer).ok_or_else(|| not_reached(layer))
}

fn not_reached(layer: &str) -> Error {
    Error::Model(format!(
        "the model lists layer `{layer}` but its forward pass never reached it"
    ))
}

/// Sum of every value of each sample: `[batch, ...]` to `[batch]`.
pub(crate) fn sum_per_sample(t: &DynTensor) -> Tensor<1> {
    let batch = t.batch();
    t.flat().clone().sum_dim(1).reshape([batch])
}

/// Runs a path method from `baselines` to `inputs` (`path_method` receives the resolved baselines
/// and each input's sample index) and measures how far it is from completeness: returns the
/// attributions and `sum(attributions) - (f(inputs) - f(baselines))` per sample (Captum's
/// `return_convergence_delta`).
pub(crate) fn attribute_with_delta(
    model: &dyn Model,
    baselines: &Baseline,
    inputs: &DynTensor,
    target: &Target,
    path_method: impl FnOnce(&DynTensor, &[usize]) -> Result<DynTensor>,
) -> Result<(DynTensor, Tensor<1>)> {
    target.check_batch(inputs.batch())?;
    let samples: Vec<usize> = (0..inputs.batch()).collect();
    let baselines = baselines.resolve(inputs)?;
    let attributions = path_method(&baselines, &samples)?;
    let f_end = target_scores(model, inputs, target, &samples)?;
    let f_start = target_scores(model, &baselines, target, &samples)?;
    let delta = sum_per_sample(&attributions) - (f_end - f_start);
    Ok((attributions, delta))
}

/// Fails unless `stdevs` is a usable standard deviation of noise.
pub(crate) fn check_stdevs(stdevs: f32) -> Result<()> {
    if !(stdevs.is_finite() && stdevs >= 0.0) {
        return Err(Error::parameter(
            "stdevs",
            stdevs,
            "must be finite and non-negative",
        ));
    }
    Ok(())
}

/// The activation at `layer` and the gradient of `target` with respect to it, for every input:
/// what CAM methods weight. Checks the inputs, the target and that the layer exists.
pub fn layer_activation_and_gradient(
    model: &dyn Model,
    inputs: &DynTensor,
    layer: &str,
    target: &Target,
) -> Result<(DynTensor, DynTensor)> {
    model.check_layer(layer)?;
    target.check_batch(inputs.batch())?;
    let samples: Vec<usize> = (0..inputs.batch()).collect();
    validate(model, inputs, &samples)?;
    layer_gradients(model, inputs, layer, target, &samples, None)
}
