//! TCAV scores: how often, and how strongly, moving a layer's value along a CAV raises the target.
//!
//! The gradients of the target with respect to a layer do not depend on the concept, so they are
//! computed once per (layer, inputs) and every row of every CAV is scored by one matrix product
//! `gradients [inputs, features] x CAVs^T [features, rows]`. As in Captum's `TCAV.interpret`
//! (Captum 0.9): `sign_count` is the share of inputs whose directional derivative is positive and
//! `magnitude` is the mean directional derivative.

use burn::tensor::{Tensor, TensorData};
use firelight_core::{DynTensor, Error, Inputs, Model, Result, Target, batch, gradients};
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
    let all = Inputs::from(inputs);
    let mut parts = Vec::new();
    for range in batch::chunks(inputs.batch(), Some(batch_size))? {
        let rows = all.rows(range.start, range.end)?;
        // Per-sample targets follow their rows: each row keeps its index in the whole batch.
        let samples: Vec<usize> = range.collect();
        gradients::validate(model, &rows, &samples)?;
        let (_, grad) = gradients::layer_gradients(model, &rows, layer, target, &samples, None)?;
        parts.push(grad.detached());
    }
    DynTensor::cat(parts)
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
    let all = Inputs::from(inputs);
    model.check_inputs(&all)?;
    let mut parts: Vec<Vec<DynTensor>> = vec![Vec::new(); layers.len()];
    for range in batch::chunks(inputs.batch(), Some(batch_size))? {
        let rows = all.rows(range.start, range.end)?;
        // Per-sample targets follow their rows: each row keeps its index in the whole batch.
        let samples: Vec<usize> = range.collect();
        let values = gradients::multi_layer_gradients(model, &rows, layers, target, &samples)?;
        for ((_, grad), part) in values.into_iter().zip(parts.iter_mut()) {
            let [n, f] = grad.flat().dims();
            part.push(DynTensor::from_flat(grad.into_flat(), vec![n, f])?);
        }
    }
    parts.into_iter().map(DynTensor::cat).collect()
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
