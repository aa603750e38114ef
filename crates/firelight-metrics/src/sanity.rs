//! Sanity checks for saliency maps (Adebayo et al. 2018): an explanation that depends on the model
//! changes when the model's weights are randomised. Cascading randomisation redraws the layers
//! from the top down, a few more at each step; independent randomisation redraws one group at a
//! time. Each explanation is compared with the original one by Spearman's rank correlation (of
//! the signed and of the absolute maps), by SSIM and by the correlation of their HOG features.

use firelight_core::{DynTensor, Error, Model, Randomizable, Result, Target};

use crate::base::per_position;
use crate::similarity::{hog_similarity, spearman, ssim};

/// An explanation of `inputs` for `target` on a model (the original or a randomised copy).
pub type ModelExplainFn<'e> = dyn Fn(&dyn Model, &DynTensor, &Target) -> Result<DynTensor> + 'e;

/// Which layers each step randomises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Randomization {
    /// From the top layer down, each step adding the next group to those already redrawn.
    Cascading,
    /// One group at a time, the rest of the model as trained.
    Independent,
}

/// One step: the layers redrawn and how alike its explanation is to the original, per sample.
#[derive(Clone, Debug)]
pub struct SanityStep {
    /// The layers redrawn at this step (all of them so far for a cascade).
    pub randomized: Vec<String>,
    /// The explanation on the randomised model.
    pub explanation: DynTensor,
    /// Spearman's rank correlation with the original, signed maps.
    pub spearman: Vec<f32>,
    /// The same of the absolute maps.
    pub spearman_abs: Vec<f32>,
    /// SSIM of the absolute maps, each scaled to [0, 1].
    pub ssim: Vec<f32>,
    /// The correlation of the absolute maps' histograms of oriented gradients.
    pub hog: Vec<f32>,
}

/// The check's outcome for one explanation.
#[derive(Clone, Debug)]
pub struct SanityReport {
    /// The explanation on the trained model.
    pub original: DynTensor,
    /// One entry per step.
    pub steps: Vec<SanityStep>,
}

impl SanityReport {
    /// Whether the explanation passes: once the whole cascade is redrawn, the mean absolute-map
    /// rank correlation with the original is below `threshold` (it changed with the model).
    pub fn passes(&self, threshold: f32) -> bool {
        self.steps.last().is_some_and(|last| {
            let v = &last.spearman_abs;
            let mean = v.iter().sum::<f32>() / v.len().max(1) as f32;
            mean < threshold
        })
    }
}

/// Adebayo et al.'s model randomisation test.
pub struct SanityCheck<'m> {
    model: &'m dyn Randomizable,
    randomization: Randomization,
    groups: usize,
    seed: u64,
}

impl<'m> SanityCheck<'m> {
    /// A cascading randomisation of every layer with weights, in 5 groups, seed 0.
    pub fn new(model: &'m dyn Randomizable) -> Self {
        Self {
            model,
            randomization: Randomization::Cascading,
            groups: 5,
            seed: 0,
        }
    }

    /// Cascading or independent.
    pub fn randomization(mut self, randomization: Randomization) -> Self {
        self.randomization = randomization;
        self
    }

    /// Into how many groups (steps) the layers are cut, top first; as many as there are layers
    /// at most.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// The seed of the redrawn weights.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The layers of each step, top group first.
    pub fn step_layers(&self) -> Result<Vec<Vec<String>>> {
        let mut layers = self.model.parameter_layers();
        if layers.is_empty() {
            return Err(Error::Model(
                "the model has no layers with weights to randomise".into(),
            ));
        }
        if self.groups == 0 {
            return Err(Error::parameter("groups", 0, "must be at least 1"));
        }
        layers.reverse();
        let groups = self.groups.min(layers.len());
        let per = layers.len().div_ceil(groups);
        let chunks: Vec<Vec<String>> = layers.chunks(per).map(<[String]>::to_vec).collect();
        Ok(match self.randomization {
            Randomization::Independent => chunks,
            Randomization::Cascading => chunks
                .iter()
                .scan(Vec::new(), |so_far: &mut Vec<String>, chunk| {
                    so_far.extend(chunk.iter().cloned());
                    Some(so_far.clone())
                })
                .collect(),
        })
    }

    /// Runs `explain` on the trained model and after each step, and compares.
    pub fn run(
        &self,
        explain: &ModelExplainFn<'_>,
        inputs: &DynTensor,
        target: &Target,
    ) -> Result<SanityReport> {
        let original = explain(self.model, inputs, target)?;
        let (positions, reference) = per_position(inputs, &original)?;
        let reference_abs = abs_map(inputs, &original)?;
        let side = spatial(inputs);
        let batch = inputs.batch();
        let mut steps = Vec::new();
        for layers in self.step_layers()? {
            let model = self.model.randomized(&layers, self.seed)?;
            let explanation = explain(model.as_ref(), inputs, target)?;
            let (_, signed) = per_position(inputs, &explanation)?;
            let absolute = abs_map(inputs, &explanation)?;
            let mut step = SanityStep {
                randomized: layers,
                explanation,
                spearman: Vec::new(),
                spearman_abs: Vec::new(),
                ssim: Vec::new(),
                hog: Vec::new(),
            };
            for b in 0..batch {
                let row = |v: &[f32]| v[b * positions..(b + 1) * positions].to_vec();
                step.spearman
                    .push(spearman(&row(&reference), &row(&signed)) as f32);
                let (ra, ea) = (row(&reference_abs), row(&absolute));
                step.spearman_abs.push(spearman(&ra, &ea) as f32);
                let (ssim_value, hog_value) = match side {
                    Some([h, w]) => (
                        ssim(&unit(&ra), &unit(&ea), h, w, 1.0) as f32,
                        hog_similarity(&ra, &ea, h, w) as f32,
                    ),
                    None => (f32::NAN, f32::NAN),
                };
                step.ssim.push(ssim_value);
                step.hog.push(hog_value);
            }
            steps.push(step);
        }
        Ok(SanityReport { original, steps })
    }
}

/// The map of absolute values over the input's positions (channels summed).
fn abs_map(inputs: &DynTensor, explanation: &DynTensor) -> Result<Vec<f32>> {
    let absolute = DynTensor::from_vec(
        explanation.to_vec()?.iter().map(|v| v.abs()).collect(),
        explanation.shape().to_vec(),
        &explanation.device(),
    )?;
    Ok(per_position(inputs, &absolute)?.1)
}

/// The height and width of an image input.
fn spatial(inputs: &DynTensor) -> Option<[usize; 2]> {
    match inputs.shape() {
        [_, _, h, w] => Some([*h, *w]),
        _ => None,
    }
}

/// `v` scaled from its least to its largest value onto [0, 1].
fn unit(v: &[f32]) -> Vec<f32> {
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), x| {
            (l.min(*x), h.max(*x))
        });
    let span = (hi - lo).max(1e-12);
    v.iter().map(|x| (x - lo) / span).collect()
}
