//! Straight-line paths between a start and an end point: the interpolation and the weighted sum of
//! gradients along it, chunked so that at most `internal_batch_size` rows run at once.

use std::ops::Range;

use burn::tensor::{Tensor, TensorData};
use firelight_core::{DynTensor, Result, batch};

use crate::base::tile_samples;

/// Ranges of steps to run together: whole steps (every sample of the batch) at a time, as many as
/// fit in `internal_batch_size` rows, and at least one (Captum's `_batch_attribution`).
pub(crate) fn step_chunks(
    steps: usize,
    batch: usize,
    internal_batch_size: Option<usize>,
) -> Result<Vec<Range<usize>>> {
    let per_chunk = match internal_batch_size {
        Some(0) => return batch::chunks(steps, Some(0)),
        Some(rows) => (rows / batch.max(1)).max(1),
        None => steps.max(1),
    };
    batch::chunks(steps, Some(per_chunk))
}

/// `start + alpha * (end - start)` for each alpha, step-major: `[alphas.len() * batch, ...]`.
pub(crate) fn interpolate(start: &DynTensor, end: &DynTensor, alphas: &[f64]) -> DynTensor {
    let [batch, features] = start.flat().dims();
    let k = alphas.len();
    let device = start.device();
    let alphas: Vec<f32> = alphas.iter().map(|&a| a as f32).collect();
    let alphas = Tensor::<3>::from_data(TensorData::new(alphas, [k, 1, 1]), &device);
    let s = start.flat().clone().reshape([1, batch, features]);
    let d = (end.flat().clone() - start.flat().clone()).reshape([1, batch, features]);
    let scaled = s + alphas * d;
    start.with_flat(scaled.reshape([k * batch, features]))
}

/// `sum_k weights[k] * gradients(start + alphas[k] * (end - start))`, shaped like `start`.
///
/// `gradients` receives the interpolated rows for a chunk of steps, the sample of each row, and
/// how many steps the chunk holds; it returns one gradient row per input row.
pub(crate) fn path_integral(
    start: &DynTensor,
    end: &DynTensor,
    alphas: &[f64],
    weights: &[f64],
    samples: &[usize],
    internal_batch_size: Option<usize>,
    mut gradients: impl FnMut(&DynTensor, &[usize], usize) -> Result<DynTensor>,
) -> Result<DynTensor> {
    let [batch, features] = start.flat().dims();
    let device = start.device();
    let mut total = Tensor::<2>::zeros([batch, features], &device);
    for steps in step_chunks(alphas.len(), batch, internal_batch_size)? {
        let k = steps.len();
        let scaled = interpolate(start, end, &alphas[steps.clone()]);
        let grads = gradients(&scaled, &tile_samples(samples, k), k)?;
        let w: Vec<f32> = weights[steps].iter().map(|&w| w as f32).collect();
        let w = Tensor::<3>::from_data(TensorData::new(w, [k, 1, 1]), &device);
        let weighted = grads.into_flat().reshape([k, batch, features]) * w;
        total = total + weighted.sum_dim(0).reshape([batch, features]);
    }
    Ok(start.with_flat(total))
}

/// The inputs repeated `times`, block after block (to pair with step-major rows).
pub(crate) fn tile_rows(inputs: &DynTensor, times: usize) -> DynTensor {
    let [batch, features] = inputs.flat().dims();
    let flat = inputs
        .flat()
        .clone()
        .reshape([1, batch, features])
        .expand([times, batch, features])
        .reshape([times * batch, features]);
    inputs.with_flat(flat)
}
