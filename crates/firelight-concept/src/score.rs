//! TCAV scores: how often, and how strongly, moving a layer's value along a CAV raises the target.
//!
//! The gradients of the target with respect to a layer do not depend on the concept, so they are
//! computed once per (layer, inputs) and every row of every CAV is scored by one matrix product
//! `gradients [inputs, features] x CAVs^T [features, rows]`. As in Captum's `TCAV.interpret`
//! (Captum 0.9): `sign_count` is the share of inputs whose directional derivative is positive and
//! `magnitude` is the mean directional derivative.

use burn::tensor::{Tensor, TensorData};
use firelight_core::{Classes, DynTensor, Error, Model, Result, Target};
use serde::{Deserialize, Serialize};

use crate::cav::{Cav, host};

/// The two TCAV scores of one concept (one row of a CAV).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcavScore {
    /// Share of inputs whose directional derivative along the CAV is positive, in [0, 1].
    pub sign_count: f32,
    /// Mean directional derivative along the CAV.
    pub magnitude: f32,
}

/// Which score the significance test compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// [`TcavScore::sign_count`].
    #[default]
    SignCount,
    /// [`TcavScore::magnitude`].
    Magnitude,
}

impl ScoreKind {
    /// The chosen score of `s`.
    pub fn of(self, s: &TcavScore) -> f32 {
        match self {
            Self::SignCount => s.sign_count,
            Self::Magnitude => s.magnitude,
        }
    }
}

/// The gradient of `target` with respect to `layer` for every input, flat `[inputs, features]`,
/// computed in batches of `batch_size`.
pub fn layer_gradients(
    model: &dyn Model,
    inputs: &DynTensor,
    layer: &str,
    target: &Target,
    batch_size: usize,
) -> Result<DynTensor> {
    if batch_size == 0 {
        return Err(Error::parameter("batch_size", 0, "must be at least 1"));
    }
    target.check_batch(inputs.batch())?;
    model.check_layer(layer)?;
    let mut parts = Vec::new();
    let mut start = 0;
    while start < inputs.batch() {
        let end = (start + batch_size).min(inputs.batch());
        let rows = inputs.rows(start, end);
        // A per-sample target must follow its rows into the batch.
        let sub_target = batch_target(target, start, end);
        let (_, grad) =
            firelight_grad::base::layer_activation_and_gradient(model, &rows, layer, &sub_target)?;
        parts.push(grad.detached());
        start = end;
    }
    DynTensor::cat(parts)
}

/// At each watched layer, continues with `value + zeros` where `zeros` is a fresh leaf: the
/// graph stays connected, so one backward pass yields the gradient at every layer (the leaf's
/// gradient is the layer's), where replacing the value by a leaf would cut the layers below off.
struct ZeroLeaves {
    layers: Vec<String>,
    leaves: Vec<(String, Tensor<2>, DynTensor)>,
}

impl firelight_core::TapHook for ZeroLeaves {
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

/// The gradient of `target` at each of `layers` for every input, flat `[inputs, features]` per
/// layer, from one forward and one backward pass per batch of `batch_size` inputs (Captum takes
/// one pass per layer).
pub fn multi_layer_gradients(
    model: &dyn Model,
    inputs: &DynTensor,
    layers: &[String],
    target: &Target,
    batch_size: usize,
) -> Result<Vec<DynTensor>> {
    if batch_size == 0 {
        return Err(Error::parameter("batch_size", 0, "must be at least 1"));
    }
    target.check_batch(inputs.batch())?;
    for layer in layers {
        model.check_layer(layer)?;
    }
    model.check_input(inputs)?;
    let mut parts: Vec<Vec<DynTensor>> = vec![Vec::new(); layers.len()];
    let mut start = 0;
    while start < inputs.batch() {
        let end = (start + batch_size).min(inputs.batch());
        let rows = inputs.rows(start, end);
        let sub_target = batch_target(target, start, end);
        let mut hook = ZeroLeaves {
            layers: layers.to_vec(),
            leaves: Vec::new(),
        };
        let outputs = model.forward(
            rows.detached(),
            &mut firelight_core::Taps::with_hook(&mut hook),
        )?;
        let samples: Vec<usize> = (0..end - start).collect();
        let scores = sub_target.scores(outputs, &samples)?;
        let grads = scores.is_tracked().then(|| scores.sum().backward());
        for (layer, part) in layers.iter().zip(parts.iter_mut()) {
            let (_, leaf, value) = hook
                .leaves
                .iter()
                .rev()
                .find(|(l, _, _)| l == layer)
                .ok_or_else(|| {
                    Error::Model(format!(
                        "the model lists layer `{layer}` but its forward pass never reached it"
                    ))
                })?;
            let grad = grads
                .as_ref()
                .and_then(|g| leaf.grad(g))
                .unwrap_or_else(|| value.flat().clone().zeros_like());
            let [n, f] = grad.dims();
            part.push(DynTensor::from_flat(grad, vec![n, f])?);
        }
        start = end;
    }
    parts.into_iter().map(DynTensor::cat).collect()
}

/// `target` for rows `start..end` of a batch: per-sample classes follow their rows.
fn batch_target(target: &Target, start: usize, end: usize) -> Target {
    match target {
        Target::Class(Classes::PerSample(v)) => Target::classes(v[start..end].to_vec()),
        Target::Probability(Classes::PerSample(v)) => {
            Target::Probability(Classes::PerSample(v[start..end].to_vec()))
        }
        _ => target.clone(),
    }
}

/// Every row of every CAV as one `[features, rows]` matrix on `device`.
fn cav_matrix(cavs: &[&Cav], features: usize, device: &burn::tensor::Device) -> Result<Tensor<2>> {
    let mut values = Vec::new();
    let mut rows = 0;
    for cav in cavs {
        if cav.features() != features {
            return Err(Error::ShapeMismatch {
                what: format!(
                    "CAV of {:?} at layer `{}` vs the layer's gradients",
                    cav.concepts, cav.layer
                ),
                expected: vec![features],
                got: vec![cav.features()],
            });
        }
        for row in &cav.weights {
            values.extend_from_slice(row);
            rows += 1;
        }
    }
    Ok(Tensor::<2>::from_data(TensorData::new(values, [rows, features]), device).transpose())
}

/// Per-input concept sensitivities: the directional derivative of the target along each row of
/// each CAV, `[inputs, total rows]` (rows in the order of `cavs`, then of each CAV's concepts).
/// `gradients` come from [`layer_gradients`]; the CAVs may have been loaded from disk.
pub fn sensitivities(gradients: &DynTensor, cavs: &[&Cav]) -> Result<Tensor<2>> {
    let matrix = cav_matrix(cavs, gradients.features(), &gradients.device())?;
    Ok(gradients.flat().clone().matmul(matrix))
}

/// The TCAV scores of every concept of every CAV: `[cav][concept]`.
pub fn scores(gradients: &DynTensor, cavs: &[&Cav]) -> Result<Vec<Vec<TcavScore>>> {
    let s = sensitivities(gradients, cavs)?;
    let [n, total] = s.dims();
    if n == 0 {
        return Err(Error::ShapeMismatch {
            what: "inputs to score (an empty batch)".into(),
            expected: vec![1],
            got: vec![0],
        });
    }
    let positive = host(s.clone().greater_elem(0.0).float().mean_dim(0))?;
    let mean = host(s.mean_dim(0))?;
    debug_assert_eq!(positive.len(), total);
    let mut out = Vec::new();
    let mut col = 0;
    for cav in cavs {
        out.push(
            (0..cav.weights.len())
                .map(|r| TcavScore {
                    sign_count: positive[col + r],
                    magnitude: mean[col + r],
                })
                .collect(),
        );
        col += cav.weights.len();
    }
    Ok(out)
}
