//! Chunking of expanded batches by `internal_batch_size`, so memory stays bounded; the row maps
//! of expansions; and the batched perturb-and-score loop that Score-CAM, Ablation-CAM and every
//! perturbation method share.

use std::ops::Range;

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::inputs::Inputs;
use crate::model::{Model, TapHook, Taps};
use crate::target::Target;

/// Splits `0..rows` into consecutive ranges of at most `internal_batch_size` rows (all rows at once
/// when it is `None`).
pub fn chunks(rows: usize, internal_batch_size: Option<usize>) -> Result<Vec<Range<usize>>> {
    let size = match internal_batch_size {
        Some(0) => {
            return Err(Error::parameter(
                "internal_batch_size",
                0,
                "must be at least 1 (or unset to run everything in one batch)",
            ));
        }
        Some(n) => n,
        None => rows.max(1),
    };
    Ok((0..rows)
        .step_by(size)
        .map(|start| start..(start + size).min(rows))
        .collect())
}

/// `samples` repeated `times`, block after block (the order of step-major expansions).
pub fn tile_samples(samples: &[usize], times: usize) -> Vec<usize> {
    (0..times).flat_map(|_| samples.iter().copied()).collect()
}

/// Each sample repeated `times` in place (the order of sample-major expansions).
pub fn repeat_samples(samples: &[usize], times: usize) -> Vec<usize> {
    samples
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, times))
        .collect()
}

/// One batch of perturbed copies to score: the inputs, the sample each row belongs to (for
/// per-sample targets), and optionally a hook that changes a layer (Ablation-CAM).
pub struct Perturbed<'h> {
    /// The copies, batch first.
    pub inputs: Inputs,
    /// `samples[i]`: the sample row `i` belongs to.
    pub samples: Vec<usize>,
    /// A hook the forward pass runs under (a layer ablation), if any.
    pub hook: Option<Box<dyn TapHook + 'h>>,
}

impl Perturbed<'_> {
    /// Copies to score with a plain forward pass.
    pub fn new(inputs: Inputs, samples: Vec<usize>) -> Self {
        Self {
            inputs,
            samples,
            hook: None,
        }
    }
}

/// The target's scores for `count` perturbations, `per_eval` of them per forward pass:
/// `make(range)` builds the rows of perturbations `range` (every method's batched
/// perturb-and-score loop); `progress(n)` hears of each finished chunk. Returns the score of every
/// row of every chunk, in order; the chunking never changes them.
pub fn perturbed_scores<'h>(
    model: &dyn Model,
    target: &Target,
    count: usize,
    per_eval: usize,
    mut make: impl FnMut(Range<usize>) -> Result<Perturbed<'h>>,
    mut progress: impl FnMut(usize),
) -> Result<Tensor<1>> {
    if per_eval == 0 {
        return Err(Error::parameter(
            "perturbations_per_eval",
            0,
            "must be at least 1",
        ));
    }
    let mut parts = Vec::new();
    for range in chunks(count, Some(per_eval))? {
        let n = range.len();
        let batch = make(range)?;
        if batch.samples.len() != batch.inputs.batch()? {
            return Err(Error::Model(format!(
                "{} sample indices for {} perturbed rows",
                batch.samples.len(),
                batch.inputs.batch()?
            )));
        }
        let outputs = match batch.hook {
            Some(mut hook) => model.forward(&batch.inputs, &mut Taps::with_hook(hook.as_mut()))?,
            None => model.forward(&batch.inputs, &mut Taps::none())?,
        };
        parts.push(target.scores(outputs, &batch.samples)?.detach());
        progress(n);
    }
    if parts.is_empty() {
        return Err(Error::Model("nothing to score".into()));
    }
    Ok(Tensor::cat(parts, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_all_rows_in_order() {
        assert_eq!(chunks(5, Some(2)).unwrap(), vec![0..2, 2..4, 4..5]);
        assert_eq!(chunks(5, None).unwrap(), vec![0..5]);
        assert_eq!(chunks(0, None).unwrap(), Vec::<Range<usize>>::new());
        assert!(chunks(3, Some(0)).is_err());
    }
}
