//! [`Target`]: which scalar per sample is being explained.

use std::fmt;
use std::sync::Arc;

use burn::tensor::{Tensor, TensorData, activation::softmax};

use crate::error::{Error, Result};

/// A user-defined target: maps outputs `[rows, outputs]` and, for each row, the index of the
/// sample it came from, to one score per row `[rows]`.
pub type TargetFn = dyn Fn(Tensor<2>, &[usize]) -> Result<Tensor<1>> + Send + Sync;

/// Class indices: one for every sample, or one per sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classes {
    /// The same class for every sample.
    All(usize),
    /// One class per sample, in batch order.
    PerSample(Vec<usize>),
}

/// Turns a model's output `[batch, outputs]` into one scalar per sample: the quantity explained.
///
/// Methods that expand a batch (IG steps, SmoothGrad samples) evaluate the target on rows that
/// each remember the sample they came from, so per-sample targets stay attached to their sample.
#[derive(Clone)]
pub enum Target {
    /// The raw output (logit) of a class, as Captum's integer `target`.
    Class(Classes),
    /// The softmax probability of a class.
    Probability(Classes),
    /// Cosine similarity between the output (an embedding) and a reference embedding `[outputs]`.
    CosineSimilarity(Tensor<1>),
    /// One minus the cosine similarity to a reference embedding `[outputs]`.
    CosineDifference(Tensor<1>),
    /// A closure of the outputs; see [`TargetFn`].
    Custom(Arc<TargetFn>),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Class(c) => f.debug_tuple("Class").field(c).finish(),
            Target::Probability(c) => f.debug_tuple("Probability").field(c).finish(),
            Target::CosineSimilarity(r) => write!(f, "CosineSimilarity({:?})", r.dims()),
            Target::CosineDifference(r) => write!(f, "CosineDifference({:?})", r.dims()),
            Target::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl From<usize> for Target {
    fn from(class: usize) -> Self {
        Target::class(class)
    }
}

impl From<Vec<usize>> for Target {
    fn from(classes: Vec<usize>) -> Self {
        Target::classes(classes)
    }
}

impl Target {
    /// The logit of `class`, for every sample.
    pub fn class(class: usize) -> Self {
        Target::Class(Classes::All(class))
    }

    /// The logit of one class per sample.
    pub fn classes(classes: Vec<usize>) -> Self {
        Target::Class(Classes::PerSample(classes))
    }

    /// The softmax probability of `class`, for every sample.
    pub fn probability(class: usize) -> Self {
        Target::Probability(Classes::All(class))
    }

    /// A target from a closure; see [`TargetFn`].
    pub fn custom(
        f: impl Fn(Tensor<2>, &[usize]) -> Result<Tensor<1>> + Send + Sync + 'static,
    ) -> Self {
        Target::Custom(Arc::new(f))
    }

    /// pytorch-grad-cam's `SemanticSegmentationTarget`: class `class`'s scores times a mask,
    /// summed over the pixels (a 0/1 mask sums the class over a region), for a segmentation model
    /// whose output is `[batch, classes, height, width]` (flattened to
    /// `[batch, classes * height * width]`). `masks` holds one mask (`height * width` values,
    /// row-major) for every sample, or one per sample.
    pub fn segmentation(class: usize, classes: usize, masks: Vec<Vec<f32>>) -> Result<Self> {
        let pixels = masks.first().map_or(0, Vec::len);
        if class >= classes || pixels == 0 || masks.iter().any(|m| m.len() != pixels) {
            return Err(Error::InvalidTarget(format!(
                "segmentation target: class {class} of {classes}, masks of {:?} pixels \
                 (need one or more masks of the same, non-zero size)",
                masks.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        Ok(Target::custom(
            move |outputs: Tensor<2>, samples: &[usize]| {
                let [rows, width] = outputs.dims();
                if width != classes * pixels {
                    return Err(Error::InvalidTarget(format!(
                        "segmentation target for {classes} classes x {pixels} pixels, but the model \
                     outputs {width} values per sample"
                    )));
                }
                let mut weights = vec![0f32; rows * width];
                for (row, &sample) in samples.iter().enumerate() {
                    let mask = match masks.len() {
                        1 => &masks[0],
                        _ => masks.get(sample).ok_or_else(|| {
                            Error::InvalidTarget(format!(
                                "no segmentation mask for sample {sample} ({} given)",
                                masks.len()
                            ))
                        })?,
                    };
                    let start = row * width + class * pixels;
                    weights[start..start + pixels].copy_from_slice(mask);
                }
                let weights = Tensor::<2>::from_data(
                    TensorData::new(weights, [rows, width]),
                    &outputs.device(),
                );
                Ok((outputs * weights).sum_dim(1).reshape([rows]))
            },
        ))
    }

    /// This target as sample `sample` of the batch sees it, for running that sample alone: a
    /// per-sample class becomes that sample's class, a closure is told every row is `sample`.
    pub fn for_sample(&self, sample: usize) -> Result<Target> {
        let own = |classes: &Classes| match classes {
            Classes::All(c) => Ok(Classes::All(*c)),
            Classes::PerSample(c) => c.get(sample).map(|&c| Classes::All(c)).ok_or_else(|| {
                Error::InvalidTarget(format!(
                    "no class for sample {sample} ({} class indices given)",
                    c.len()
                ))
            }),
        };
        Ok(match self {
            Target::Class(c) => Target::Class(own(c)?),
            Target::Probability(c) => Target::Probability(own(c)?),
            Target::CosineSimilarity(_) | Target::CosineDifference(_) => self.clone(),
            Target::Custom(f) => {
                let f = Arc::clone(f);
                Target::custom(move |outputs: Tensor<2>, samples: &[usize]| {
                    f(outputs, &vec![sample; samples.len()])
                })
            }
        })
    }

    /// This target for a batch whose row `r` is a copy of sample `samples[r]` (perturbed copies
    /// scored as a batch of their own): per-sample classes follow their rows, a closure is told
    /// each row's sample.
    pub fn for_rows(&self, samples: &[usize]) -> Result<Target> {
        let follow = |classes: &Classes| match classes {
            Classes::All(c) => Ok(Classes::All(*c)),
            Classes::PerSample(c) => samples
                .iter()
                .map(|&s| {
                    c.get(s).copied().ok_or_else(|| {
                        Error::InvalidTarget(format!(
                            "no class for sample {s} ({} class indices given)",
                            c.len()
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Classes::PerSample),
        };
        Ok(match self {
            Target::Class(c) => Target::Class(follow(c)?),
            Target::Probability(c) => Target::Probability(follow(c)?),
            Target::CosineSimilarity(_) | Target::CosineDifference(_) => self.clone(),
            Target::Custom(f) => {
                let f = Arc::clone(f);
                let map = samples.to_vec();
                Target::custom(move |outputs: Tensor<2>, rows: &[usize]| {
                    let original: Vec<usize> = rows
                        .iter()
                        .map(|&r| map.get(r).copied().unwrap_or(r))
                        .collect();
                    f(outputs, &original)
                })
            }
        })
    }

    /// Fails unless the target fits a batch of `batch` samples.
    pub fn check_batch(&self, batch: usize) -> Result<()> {
        match self {
            Target::Class(Classes::PerSample(c)) | Target::Probability(Classes::PerSample(c))
                if c.len() != batch =>
            {
                Err(Error::InvalidTarget(format!(
                    "{} class indices given for a batch of {batch} samples",
                    c.len()
                )))
            }
            _ => Ok(()),
        }
    }

    /// One score per row of `outputs`; `samples[row]` is the sample the row belongs to.
    pub fn scores(&self, outputs: Tensor<2>, samples: &[usize]) -> Result<Tensor<1>> {
        let [rows, width] = outputs.dims();
        if samples.len() != rows {
            return Err(Error::InvalidTarget(format!(
                "{} sample indices for {rows} output rows",
                samples.len()
            )));
        }
        match self {
            Target::Class(classes) => pick(outputs, classes, samples),
            Target::Probability(classes) => pick(softmax(outputs, 1), classes, samples),
            Target::CosineSimilarity(reference) => cosine(outputs, reference, width),
            Target::CosineDifference(reference) => {
                Ok(cosine(outputs, reference, width)?.neg().add_scalar(1.0))
            }
            Target::Custom(f) => {
                let scores = f(outputs, samples)?;
                if scores.dims()[0] != rows {
                    return Err(Error::InvalidTarget(format!(
                        "custom target returned {} scores for {rows} rows",
                        scores.dims()[0]
                    )));
                }
                Ok(scores)
            }
        }
    }
}

fn pick(outputs: Tensor<2>, classes: &Classes, samples: &[usize]) -> Result<Tensor<1>> {
    let [rows, width] = outputs.dims();
    let mut mask = vec![0f32; rows * width];
    for (row, &sample) in samples.iter().enumerate() {
        let class = match classes {
            Classes::All(c) => *c,
            Classes::PerSample(c) => *c.get(sample).ok_or_else(|| {
                Error::InvalidTarget(format!(
                    "no class index for sample {sample} ({} given)",
                    c.len()
                ))
            })?,
        };
        if class >= width {
            return Err(Error::TargetOutOfRange {
                index: class,
                sample,
                outputs: width,
            });
        }
        mask[row * width + class] = 1.0;
    }
    let device = outputs.device();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, width]), &device);
    Ok((outputs * mask).sum_dim(1).reshape([rows]))
}

fn cosine(outputs: Tensor<2>, reference: &Tensor<1>, width: usize) -> Result<Tensor<1>> {
    let [n] = reference.dims();
    if n != width {
        return Err(Error::InvalidTarget(format!(
            "reference embedding has {n} values but the model outputs {width}"
        )));
    }
    let rows = outputs.dims()[0];
    let reference = reference
        .clone()
        .to_device(&outputs.device())
        .reshape([1, width]);
    let dot = (outputs.clone() * reference.clone()).sum_dim(1);
    let norm_out = outputs.powf_scalar(2.0).sum_dim(1).sqrt();
    let norm_ref = reference.powf_scalar(2.0).sum_dim(1).sqrt();
    // Same epsilon as torch.nn.functional.cosine_similarity.
    let denom = (norm_out * norm_ref).clamp_min(1e-8);
    Ok((dot / denom).reshape([rows]))
}
