//! Region perturbation (Samek et al. 2017, as Quantus 0.6's `RegionPerturbation` computes it):
//! the input's positions are cut into a grid of square regions, ordered by the attributions'
//! sum over each (most relevant first, least relevant first, or at random), and removed one
//! after another (every channel set to the baseline); the curve is the drop of the target's score
//! after each removal, and its area over the perturbation curve (AOPC) sums it up.

use firelight_core::{DynTensor, Error, Model, Result, Target};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::base::{check_chunk, per_position, scores};
use crate::faithfulness::FeatureBaseline;

/// The order regions are removed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionOrder {
    /// Most relevant first (Quantus's `"morf"`, the default).
    MostRelevantFirst,
    /// Least relevant first (`"lerf"`).
    LeastRelevantFirst,
    /// A seeded random order (`"random"`).
    Random(u64),
}

/// One sample's curve.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionCurve {
    /// The target's score at the input minus its score after the first `k + 1` regions are
    /// removed, for each `k`.
    pub drops: Vec<f32>,
}

impl RegionCurve {
    /// Samek et al.'s AOPC: the mean drop over the `L + 1` steps from none removed (a drop of
    /// 0) to `L` removed.
    pub fn aopc(&self) -> f32 {
        self.drops.iter().sum::<f32>() / (self.drops.len() + 1) as f32
    }
}

/// Quantus's `RegionPerturbation` with its defaults: 8 x 8 regions, 100 of them, most relevant
/// first, removed positions set to the sample's smallest value (`"black"`).
///
/// As Quantus does, a side that is not a multiple of `patch_size` is padded (half before, half
/// after) so that the grid covers it; padded cells carry no attribution and are never seen by
/// the model. Regions whose sums tie are taken in grid order (NumPy's unstable sort may differ).
pub struct RegionPerturbation<'m> {
    model: &'m dyn Model,
    patch_size: usize,
    regions_evaluation: usize,
    order: RegionOrder,
    baseline: FeatureBaseline,
    max_examples_per_batch: Option<usize>,
}

impl<'m> RegionPerturbation<'m> {
    /// Quantus's defaults.
    pub fn new(model: &'m dyn Model) -> Self {
        Self {
            model,
            patch_size: 8,
            regions_evaluation: 100,
            order: RegionOrder::MostRelevantFirst,
            baseline: FeatureBaseline::Black,
            max_examples_per_batch: Some(64),
        }
    }

    /// The side of a region, in positions.
    pub fn patch_size(mut self, n: usize) -> Self {
        self.patch_size = n;
        self
    }

    /// How many regions are removed (fewer when the grid has fewer).
    pub fn regions_evaluation(mut self, n: usize) -> Self {
        self.regions_evaluation = n;
        self
    }

    /// The order of removal.
    pub fn order(mut self, order: RegionOrder) -> Self {
        self.order = order;
        self
    }

    /// What removed positions become.
    pub fn baseline(mut self, baseline: FeatureBaseline) -> Self {
        self.baseline = baseline;
        self
    }

    /// At most this many perturbed copies per forward pass; the result does not depend on it.
    pub fn max_examples_per_batch(mut self, n: usize) -> Self {
        self.max_examples_per_batch = Some(n);
        self
    }

    /// The curve of each sample of `inputs` (`[batch, channels, height, width]`), for
    /// attributions that are input-shaped, `[batch, 1, height, width]` or `[batch, height,
    /// width]`.
    pub fn curves(
        &self,
        inputs: &DynTensor,
        attributions: &DynTensor,
        target: &Target,
    ) -> Result<Vec<RegionCurve>> {
        check_chunk(self.max_examples_per_batch)?;
        let &[batch, channels, height, width] = inputs.shape() else {
            return Err(Error::ShapeMismatch {
                what: "input for region perturbation [batch, channels, height, width]".into(),
                expected: vec![inputs.batch(), 3, 224, 224],
                got: inputs.shape().to_vec(),
            });
        };
        if self.patch_size == 0 || self.regions_evaluation == 0 {
            return Err(Error::parameter(
                "patch_size",
                format!(
                    "{} (regions_evaluation {})",
                    self.patch_size, self.regions_evaluation
                ),
                "the patch size and the number of regions must be at least 1",
            ));
        }
        target.check_batch(batch)?;
        let (positions, map) = per_position(inputs, attributions)?;
        let regions = grid(height, width, self.patch_size);
        let x = inputs.to_vec()?;
        let features = channels * positions;
        let own: Vec<usize> = (0..batch).collect();
        let at_input = scores(self.model, inputs, target, &own, None)?;
        let mut out = Vec::with_capacity(batch);
        for b in 0..batch {
            let a = &map[b * positions..(b + 1) * positions];
            let sums: Vec<f64> = regions
                .iter()
                .map(|cells| cells.iter().map(|&p| f64::from(a[p])).sum())
                .collect();
            let mut order: Vec<usize> = (0..regions.len()).collect();
            match self.order {
                RegionOrder::MostRelevantFirst => {
                    order.sort_by(|&i, &j| sums[j].total_cmp(&sums[i]));
                }
                RegionOrder::LeastRelevantFirst => {
                    order.sort_by(|&i, &j| sums[i].total_cmp(&sums[j]));
                }
                RegionOrder::Random(seed) => {
                    order.shuffle(&mut StdRng::seed_from_u64(seed ^ b as u64));
                }
            }
            order.truncate(self.regions_evaluation);
            let row = &x[b * features..(b + 1) * features];
            let fill = self.baseline.value(row);
            let mut current = row.to_vec();
            let mut copies = Vec::with_capacity(order.len() * features);
            for &r in &order {
                for &p in &regions[r] {
                    for c in 0..channels {
                        current[c * positions + p] = fill;
                    }
                }
                copies.extend_from_slice(&current);
            }
            let mut shape = inputs.shape().to_vec();
            shape[0] = order.len();
            let rows = DynTensor::from_vec(copies, shape, &inputs.device())?;
            let after = scores(
                self.model,
                &rows,
                target,
                &vec![b; order.len()],
                self.max_examples_per_batch,
            )?;
            out.push(RegionCurve {
                drops: after.iter().map(|s| at_input[b] - s).collect(),
            });
        }
        Ok(out)
    }
}

/// The regions of an `height` x `width` grid of `patch`-sided squares, row by row, each the
/// positions (row-major) it covers; the grid starts half a remainder before the first row and
/// column, as Quantus pads.
fn grid(height: usize, width: usize, patch: usize) -> Vec<Vec<usize>> {
    let before = |side: usize| match side % patch {
        0 => 0,
        m => (patch - m) / 2,
    };
    let (top, left) = (before(height), before(width));
    let (rows, cols) = (
        (height + top).div_ceil(patch),
        (width + left).div_ceil(patch),
    );
    let mut out = Vec::with_capacity(rows * cols);
    for gy in 0..rows {
        for gx in 0..cols {
            let mut cells = Vec::with_capacity(patch * patch);
            for dy in 0..patch {
                for dx in 0..patch {
                    let (y, x) = (
                        (gy * patch + dy) as i64 - top as i64,
                        (gx * patch + dx) as i64 - left as i64,
                    );
                    if (0..height as i64).contains(&y) && (0..width as i64).contains(&x) {
                        cells.push(y as usize * width + x as usize);
                    }
                }
            }
            out.push(cells);
        }
    }
    out
}
