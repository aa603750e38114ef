//! Straight-line paths between start and end points (one per attributed input): the
//! interpolation and the weighted sum of gradients along it, chunked so that at most
//! `internal_batch_size` rows run at once.

use std::ops::Range;

use burn::tensor::{Tensor, TensorData};
use firelight_core::batch::{self, tile_samples};
use firelight_core::{DynTensor, Error, Result};

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

/// `sum_k weights[k] * gradients(start + alphas[k] * (end - start))` for each attributed input,
/// shaped like its `start`.
///
/// `gradients` receives the interpolated rows of every input for a chunk of steps, the row map
/// (which original row each interpolated row came from, for the carried inputs), the sample of
/// each row, and how many steps the chunk holds; it returns one gradient per input, one row per
/// interpolated row.
pub(crate) fn path_integral(
    starts: &[DynTensor],
    ends: &[DynTensor],
    alphas: &[f64],
    weights: &[f64],
    samples: &[usize],
    internal_batch_size: Option<usize>,
    mut gradients: impl FnMut(Vec<DynTensor>, &[usize], &[usize], usize) -> Result<Vec<DynTensor>>,
) -> Result<Vec<DynTensor>> {
    let batch = samples.len();
    let rows: Vec<usize> = (0..batch).collect();
    // Each gradient's weighted sum over the steps, shaped like the gradient (the input's shape
    // for input gradients, the layer's for layer gradients).
    let mut totals: Vec<Option<(Tensor<2>, Vec<usize>)>> = vec![None; starts.len()];
    for steps in step_chunks(alphas.len(), batch, internal_batch_size)? {
        let k = steps.len();
        let scaled = starts
            .iter()
            .zip(ends)
            .map(|(s, e)| interpolate(s, e, &alphas[steps.clone()]))
            .collect();
        let grads = gradients(
            scaled,
            &tile_samples(&rows, k),
            &tile_samples(samples, k),
            k,
        )?;
        let device = starts[0].device();
        let w: Vec<f32> = weights[steps].iter().map(|&w| w as f32).collect();
        let w = Tensor::<3>::from_data(TensorData::new(w, [k, 1, 1]), &device);
        for (total, grad) in totals.iter_mut().zip(grads) {
            let features = grad.features();
            let mut shape = grad.shape().to_vec();
            shape[0] = batch;
            let weighted = grad.into_flat().reshape([k, batch, features]) * w.clone();
            let part = weighted.sum_dim(0).reshape([batch, features]);
            *total = Some(match total.take() {
                Some((t, shape)) => (t + part, shape),
                None => (part, shape),
            });
        }
    }
    // `gradients` may return fewer tensors than there are inputs (one layer's, for layer
    // methods); the totals are those it returned.
    let totals: Vec<(Tensor<2>, Vec<usize>)> = totals.into_iter().flatten().collect();
    if totals.is_empty() {
        return Err(Error::Model("a path integral with no gradients".into()));
    }
    totals
        .into_iter()
        .map(|(t, shape)| DynTensor::from_flat(t, shape))
        .collect()
}
