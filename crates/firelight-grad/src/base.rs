//! What the gradient methods share beyond firelight-core's [`gradients`](firelight_core::gradients)
//! plumbing: parameter checks, baselines resolved per attributed input, and the convergence delta
//! of path methods. A method file only says which rows to evaluate and how to combine their
//! gradients.

use burn::tensor::Tensor;
use firelight_core::gradients::{sum_per_sample, target_scores};
use firelight_core::value::{Kind, Value, padded};
use firelight_core::{Attributions, Baseline, DynTensor, Error, Inputs, Model, Result, Target};

pub use firelight_core::Attribution;
pub use firelight_core::gradients::layer_activation_and_gradient;

/// Fails unless `n_steps` is usable by a path method.
pub(crate) fn check_steps(n_steps: usize) -> Result<()> {
    if n_steps == 0 {
        return Err(Error::parameter("n_steps", 0, "must be at least 1"));
    }
    Ok(())
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

/// One baseline per row of each attributed input (`samples[i]` is row `i`'s sample).
pub(crate) fn resolve_baselines(
    baselines: &Baseline,
    attributed: &[DynTensor],
    samples: &[usize],
) -> Result<Vec<DynTensor>> {
    attributed
        .iter()
        .enumerate()
        .map(|(i, x)| {
            baselines
                .for_input(i, attributed.len())?
                .resolve_rows(x, samples)
        })
        .collect()
}

/// The baseline distribution `[k, ...sample]` of each attributed input (GradientSHAP,
/// DeepLiftShap), and their common `k`.
pub(crate) fn baseline_distributions(
    baselines: &Baseline,
    attributed: &[DynTensor],
) -> Result<(Vec<DynTensor>, usize)> {
    let distributions = attributed
        .iter()
        .enumerate()
        .map(|(i, x)| baselines.for_input(i, attributed.len())?.distribution(x))
        .collect::<Result<Vec<_>>>()?;
    let k = distributions.first().map_or(0, DynTensor::batch);
    if let Some(other) = distributions.iter().find(|d| d.batch() != k) {
        return Err(Error::ShapeMismatch {
            what: "baseline distributions of the attributed inputs (one count for all)".into(),
            expected: vec![k],
            got: vec![other.batch()],
        });
    }
    Ok((distributions, k))
}

/// DeepLift's batch: each attributed input followed by its references (`references`, one
/// tensor per attributed input, a row per input row), carried inputs repeated for both halves,
/// and the sample of each of its rows.
pub(crate) fn paired_with_references(
    inputs: &Inputs,
    references: &[DynTensor],
    samples: &[usize],
) -> Result<(Inputs, Vec<usize>)> {
    let n = inputs.batch()?;
    let paired = inputs
        .attributed_floats()?
        .iter()
        .zip(references)
        .map(|(x, r)| DynTensor::cat(vec![x.detached(), r.detached()]))
        .collect::<Result<Vec<_>>>()?;
    let rows: Vec<usize> = (0..n).chain(0..n).collect();
    let paired = inputs.with_attributed(paired, &rows)?;
    Ok((paired, samples.iter().chain(samples).copied().collect()))
}

/// The same inputs with the attributed ones replaced by `baselines` (same rows). A baseline of
/// an integer input (token ids, given as a float tensor of ids) becomes integers again.
pub(crate) fn at_baselines(inputs: &Inputs, baselines: Vec<DynTensor>) -> Result<Inputs> {
    let rows: Vec<usize> = (0..inputs.batch()?).collect();
    let values = inputs
        .attributed_values()?
        .into_iter()
        .zip(baselines)
        .map(|(value, baseline)| {
            let shape = baseline.shape().to_vec();
            let flat = baseline.into_flat();
            Ok(match value.kind() {
                Kind::Float => Value::float6(flat.reshape(padded(&shape)), shape),
                _ => Value::int6(flat.round().int().reshape(padded(&shape)), shape),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    inputs.with_attributed_values(values, &rows)
}

/// The attributed inputs as float tensors, integer ones (token ids) converted: what a layer
/// method's baselines are resolved against. Layer methods never differentiate at the inputs,
/// so they explain integer inputs through the layer (an embedding's output).
pub(crate) fn attributed_as_floats(inputs: &Inputs) -> Result<Vec<DynTensor>> {
    inputs
        .attributed_values()?
        .into_iter()
        .map(|value| {
            let shape = value.shape().to_vec();
            let batch = shape.first().copied().unwrap_or(1).max(1);
            let flat = value
                .as_float()
                .reshape([batch, value.num_elements() / batch]);
            DynTensor::from_flat(flat, shape)
        })
        .collect()
}

/// Runs a path method from `baselines` to `inputs` (`path_method` receives the resolved baselines
/// of each attributed input and each row's sample index) and measures how far it is from
/// completeness: returns the attributions and
/// `sum(attributions) - (f(inputs) - f(baselines))` per sample (Captum's
/// `return_convergence_delta`; the sum runs over every attributed input).
pub(crate) fn attribute_with_delta(
    model: &dyn Model,
    baselines: &Baseline,
    inputs: &Inputs,
    target: &Target,
    path_method: impl FnOnce(&[DynTensor], &[usize]) -> Result<Attributions>,
) -> Result<(Attributions, Tensor<1>)> {
    let batch = inputs.batch()?;
    target.check_batch(batch)?;
    let samples: Vec<usize> = (0..batch).collect();
    let resolved = resolve_baselines(baselines, &attributed_as_floats(inputs)?, &samples)?;
    let attributions = path_method(&resolved, &samples)?;
    let change = score_change(model, inputs, resolved, target, &samples)?;
    let delta = attribution_sums(&attributions)? - change;
    Ok((attributions, delta))
}

/// `f(inputs) - f(baselines)` per sample: what complete attributions sum to.
pub(crate) fn score_change(
    model: &dyn Model,
    inputs: &Inputs,
    baselines: Vec<DynTensor>,
    target: &Target,
    samples: &[usize],
) -> Result<Tensor<1>> {
    let f_end = target_scores(model, inputs, target, samples)?;
    let f_start = target_scores(model, &at_baselines(inputs, baselines)?, target, samples)?;
    Ok(f_end - f_start)
}

/// The attributions summed per sample, over every attributed input.
pub(crate) fn attribution_sums(attributions: &Attributions) -> Result<Tensor<1>> {
    attributions
        .tensors()
        .into_iter()
        .map(sum_per_sample)
        .reduce(|a, b| a + b)
        .ok_or_else(|| Error::Model("a path method returned no attributions".into()))
}
