//! [`FeatureMask`]: which elements of an input form one feature, the unit a perturbation method
//! switches on and off.
//!
//! Captum's `feature_mask`: an integer tensor broadcastable to the input, equal ids forming one
//! feature. Without one, every element of a sample is its own feature. A feature id that appears
//! in several inputs' masks is one feature across those inputs (switched together), as in Captum.

use std::path::Path;

use firelight_core::npy::{NpyData, parse_npy_data};
use firelight_core::{Error, Result, Value};

/// An explicit integer feature mask: one non-negative id per element, in a shape that broadcasts
/// to the input (axes of size 1 repeat, missing leading axes count as 1, NumPy's rule), so
/// `[1, ...sample]` is shared by every sample and `[batch, ...sample]` gives one mask per sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskIds {
    shape: Vec<usize>,
    ids: Vec<usize>,
}

impl MaskIds {
    /// A mask of `shape` holding `ids` in row-major order; fails for a negative id or a length
    /// that does not match the shape.
    pub fn new(ids: Vec<i64>, shape: Vec<usize>) -> Result<Self> {
        let count: usize = shape.iter().product();
        if ids.len() != count {
            return Err(Error::ShapeMismatch {
                what: "feature mask ids vs mask shape".into(),
                expected: shape,
                got: vec![ids.len()],
            });
        }
        if let Some(bad) = ids.iter().find(|&&id| id < 0) {
            return Err(Error::parameter(
                "feature_mask",
                format!("id {bad}"),
                "feature ids must be non-negative integers",
            ));
        }
        Ok(Self {
            shape,
            ids: ids.into_iter().map(|id| id as usize).collect(),
        })
    }

    /// A mask from a value: integer, bool, or float holding whole numbers.
    pub fn from_value(value: &Value) -> Result<Self> {
        let shape = value.shape().to_vec();
        let ids = value.to_f64s();
        Self::new(whole_numbers(&ids, "feature mask")?, shape)
    }

    /// A mask read from a `.npy` file of integers (`<i8`, `<i4`, `<i2`, `|i1`, unsigned or bool)
    /// or of floats holding whole numbers (`<f4`, `<f8`).
    pub fn from_npy(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (shape, ids) = parse_int_npy(&bytes).map_err(|reason| Error::Npy {
            path: path.to_path_buf(),
            reason,
        })?;
        Self::new(ids, shape)
    }

    /// The mask's shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The ids, row-major.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }
}

fn whole_numbers(values: &[f64], what: &str) -> Result<Vec<i64>> {
    values
        .iter()
        .map(|&v| {
            if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(Error::parameter(
                    "feature_mask",
                    format!("{v}"),
                    format!("a {what} holds integer feature ids"),
                ))
            }
        })
        .collect()
}

/// Which elements of each attributed input form one feature (Captum's `feature_mask`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FeatureMask {
    /// Every element of a sample is its own feature (Captum's default); with several inputs the
    /// ids continue from one input to the next.
    #[default]
    Elements,
    /// Square cells of `cell` x `cell` elements over the last two axes (pixels of an image),
    /// shared by the other axes (the channels); ids row-major over the cells. A sample with one
    /// axis is cut into runs of `cell` elements. With several inputs the ids continue from one
    /// input to the next.
    Grid(usize),
    /// An explicit integer mask (one attributed input).
    Ids(MaskIds),
    /// One mask per attributed input, in order (Captum's tuple of masks). Ids repeated across
    /// inputs' explicit masks are one feature; a generated part ([`FeatureMask::Elements`],
    /// [`FeatureMask::Grid`]) starts after the largest id of the parts before it.
    PerInput(Vec<FeatureMask>),
}

impl FeatureMask {
    /// An explicit mask of `shape` holding `ids` (row-major).
    pub fn ids(ids: Vec<i64>, shape: Vec<usize>) -> Result<Self> {
        Ok(FeatureMask::Ids(MaskIds::new(ids, shape)?))
    }

    /// An explicit mask read from a `.npy` file (see [`MaskIds::from_npy`]).
    pub fn from_npy(path: impl AsRef<Path>) -> Result<Self> {
        Ok(FeatureMask::Ids(MaskIds::from_npy(path)?))
    }

    /// The masks of inputs with full shapes `shapes` (batch first), each sample's row of mask `i`
    /// chosen by `samples` (row `r` belongs to sample `samples[r]`).
    pub(crate) fn resolve(&self, shapes: &[Vec<usize>], samples: &[usize]) -> Result<Masks> {
        let sample_count = samples.iter().max().map_or(0, |m| m + 1);
        let parts: Vec<&FeatureMask> = match self {
            FeatureMask::PerInput(parts) => {
                if parts.len() != shapes.len() {
                    return Err(Error::parameter(
                        "feature_mask",
                        format!("{} masks", parts.len()),
                        format!("give one mask per attributed input ({})", shapes.len()),
                    ));
                }
                if let Some(nested) = parts.iter().find(|p| matches!(p, FeatureMask::PerInput(_))) {
                    return Err(Error::parameter(
                        "feature_mask",
                        format!("{nested:?}"),
                        "masks per input cannot nest",
                    ));
                }
                parts.iter().collect()
            }
            FeatureMask::Ids(_) if shapes.len() > 1 => {
                return Err(Error::parameter(
                    "feature_mask",
                    "one explicit mask",
                    format!(
                        "there are {} attributed inputs: give one mask per input with \
                         FeatureMask::PerInput",
                        shapes.len()
                    ),
                ));
            }
            other => vec![other; shapes.len()],
        };
        let mut next = 0usize;
        let mut inputs = Vec::with_capacity(shapes.len());
        for (i, (part, shape)) in parts.into_iter().zip(shapes).enumerate() {
            let features: usize = shape[1..].iter().product();
            let mask = match part {
                FeatureMask::Elements => InputMask {
                    features,
                    per_sample: false,
                    ids: (next..next + features).collect(),
                },
                FeatureMask::Grid(cell) => grid(*cell, &shape[1..], next)?,
                FeatureMask::Ids(ids) => broadcast(ids, shape, sample_count, i)?,
                FeatureMask::PerInput(_) => unreachable!("rejected above"),
            };
            if let Some(max) = mask.ids.iter().max() {
                next = next.max(max + 1);
            }
            inputs.push(mask);
        }
        let mut features: Vec<usize> = Vec::new();
        for mask in &inputs {
            let mut ids = mask.ids.clone();
            ids.sort_unstable();
            ids.dedup();
            features.extend(ids);
        }
        features.sort_unstable();
        features.dedup();
        Ok(Masks { inputs, features })
    }
}

fn grid(cell: usize, sample: &[usize], start: usize) -> Result<InputMask> {
    if cell == 0 {
        return Err(Error::parameter(
            "feature_mask",
            "Grid(0)",
            "grid cells must be at least 1 element wide",
        ));
    }
    let features: usize = sample.iter().product();
    let ids = match sample {
        [] => vec![start; features],
        [_] => (0..features).map(|e| start + e / cell).collect(),
        [.., h, w] => {
            let (h, w) = (*h, *w);
            let across = w.div_ceil(cell);
            (0..features)
                .map(|e| {
                    let (row, col) = ((e / w) % h, e % w);
                    start + (row / cell) * across + col / cell
                })
                .collect()
        }
    };
    Ok(InputMask {
        features,
        per_sample: false,
        ids,
    })
}

/// An explicit mask broadcast to an input of `shape` (batch first).
fn broadcast(mask: &MaskIds, shape: &[usize], samples: usize, input: usize) -> Result<InputMask> {
    let rank = shape.len();
    let mismatch = || Error::ShapeMismatch {
        what: format!(
            "feature mask of attributed input {input} vs the input (the mask must broadcast: \
             each axis 1 or the input's, the batch axis 1 or one row per sample)"
        ),
        expected: shape.to_vec(),
        got: mask.shape.clone(),
    };
    if mask.shape.len() > rank {
        return Err(mismatch());
    }
    let mut padded = vec![1usize; rank - mask.shape.len()];
    padded.extend_from_slice(&mask.shape);
    for (axis, (&m, &s)) in padded.iter().zip(shape).enumerate() {
        let ok = m == 1 || if axis == 0 { m == samples } else { m == s };
        if !ok {
            return Err(mismatch());
        }
    }
    let per_sample = padded[0] != 1;
    let mask_rows = padded[0];
    let features: usize = shape[1..].iter().product();
    // Row-major strides of the mask, zero along broadcast axes.
    let mut strides = vec![0usize; rank];
    let mut step = 1;
    for axis in (0..rank).rev() {
        if padded[axis] != 1 {
            strides[axis] = step;
        }
        step *= padded[axis];
    }
    let mut ids = Vec::with_capacity(mask_rows * features);
    for row in 0..mask_rows {
        for e in 0..features {
            let mut rest = e;
            let mut at = row * strides[0];
            for axis in (1..rank).rev() {
                at += (rest % shape[axis]) * strides[axis];
                rest /= shape[axis];
            }
            ids.push(mask.ids[at]);
        }
    }
    Ok(InputMask {
        features,
        per_sample,
        ids,
    })
}

/// The resolved mask of one attributed input: one id per element, one row shared by all samples
/// or one row per sample.
#[derive(Clone, Debug)]
pub(crate) struct InputMask {
    features: usize,
    per_sample: bool,
    ids: Vec<usize>,
}

impl InputMask {
    /// The ids of sample `sample`'s elements.
    pub(crate) fn row(&self, sample: usize) -> &[usize] {
        let row = if self.per_sample { sample } else { 0 };
        &self.ids[row * self.features..(row + 1) * self.features]
    }
}

/// The resolved masks of every attributed input and the feature ids they hold.
#[derive(Clone, Debug)]
pub(crate) struct Masks {
    inputs: Vec<InputMask>,
    /// Every id present, ascending (Captum's `torch.unique` order).
    features: Vec<usize>,
}

impl Masks {
    /// Input `input`'s mask.
    pub(crate) fn input(&self, input: usize) -> &InputMask {
        &self.inputs[input]
    }

    /// Every feature id present, ascending.
    pub(crate) fn features(&self) -> &[usize] {
        &self.features
    }

    /// The position of feature `id` in [`Masks::features`].
    pub(crate) fn index_of(&self, id: usize) -> usize {
        self.features
            .binary_search(&id)
            .expect("ids come from the masks")
    }

    /// The number of features, for methods that need ids `0..n` with none missing (Shapley
    /// values, KernelSHAP): fails, naming the missing ids, otherwise.
    pub(crate) fn contiguous(&self, method: &str) -> Result<usize> {
        let n = self.features.last().map_or(0, |m| m + 1);
        if self.features.len() != n {
            let missing: Vec<String> = (0..n)
                .filter(|id| self.features.binary_search(id).is_err())
                .take(8)
                .map(|id| id.to_string())
                .collect();
            return Err(Error::parameter(
                "feature_mask",
                format!("{} ids, largest {}", self.features.len(), n - 1),
                format!(
                    "{method} needs feature ids 0..n with none missing (missing: {}{}); \
                     renumber the mask",
                    missing.join(", "),
                    if n - self.features.len() > missing.len() {
                        ", ..."
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(n)
    }
}

/// The shape and values of an integer (or whole-number float) `.npy` file, read by
/// firelight-core's parser.
fn parse_int_npy(bytes: &[u8]) -> std::result::Result<(Vec<usize>, Vec<i64>), String> {
    let (shape, data) = parse_npy_data(bytes)?;
    let ids = match data {
        NpyData::Int(ids) => ids,
        NpyData::Bool(flags) => flags.into_iter().map(i64::from).collect(),
        NpyData::Float(values) => {
            let values: Vec<f64> = values.into_iter().map(f64::from).collect();
            whole_numbers(&values, "float mask").map_err(|e| e.to_string())?
        }
    };
    Ok((shape, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn int64_and_float_masks_parse() {
        let payload: Vec<u8> = [0i64, 0, 1, 2]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let (shape, ids) = parse_int_npy(&npy("<i8", "(1, 4)", &payload)).unwrap();
        assert_eq!((shape, ids), (vec![1, 4], vec![0, 0, 1, 2]));
        let payload: Vec<u8> = [3f32, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            parse_int_npy(&npy("<f4", "(2,)", &payload)).unwrap().1,
            vec![3, 1]
        );
        let payload: Vec<u8> = [0.5f32].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(parse_int_npy(&npy("<f4", "(1,)", &payload)).is_err());
        assert!(parse_int_npy(&npy(">i8", "(1,)", &[0; 8])).is_err());
        assert!(parse_int_npy(&npy("<i8", "(2,)", &[0; 8])).is_err());
    }

    #[test]
    fn masks_broadcast_over_axes_of_size_one() {
        // A [1, 1, 2, 2] mask over a [2, 3, 2, 2] input: shared by the channels and samples.
        let mask = FeatureMask::ids(vec![0, 1, 2, 3], vec![1, 1, 2, 2]).unwrap();
        let m = mask.resolve(&[vec![2, 3, 2, 2]], &[0, 1]).unwrap();
        assert_eq!(m.input(0).row(1), &[0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
        // One mask per sample, without the channel axis.
        let mask = FeatureMask::ids(vec![0, 0, 1, 1, 5, 5, 5, 5], vec![2, 1, 4]).unwrap();
        let m = mask.resolve(&[vec![2, 2, 4]], &[0, 1]).unwrap();
        assert_eq!(m.input(0).row(0), &[0, 0, 1, 1, 0, 0, 1, 1]);
        assert_eq!(m.input(0).row(1), &[5; 8]);
        assert_eq!(m.features(), &[0, 1, 5]);
        assert!(m.contiguous("ShapleyValues").is_err());
        // A mask of fewer axes aligns from the right.
        let mask = FeatureMask::ids(vec![0, 1], vec![2]).unwrap();
        let m = mask.resolve(&[vec![3, 2]], &[0, 1, 2]).unwrap();
        assert_eq!(m.input(0).row(2), &[0, 1]);
        // A shape that does not broadcast.
        let mask = FeatureMask::ids(vec![0, 1, 2], vec![1, 3]).unwrap();
        assert!(mask.resolve(&[vec![3, 2]], &[0, 1, 2]).is_err());
    }

    #[test]
    fn generated_masks_number_on_across_inputs() {
        let m = FeatureMask::Elements
            .resolve(&[vec![1, 3], vec![1, 2]], &[0])
            .unwrap();
        assert_eq!(m.input(1).row(0), &[3, 4]);
        let m = FeatureMask::Grid(2)
            .resolve(&[vec![1, 2, 3, 3]], &[0])
            .unwrap();
        assert_eq!(
            m.input(0).row(0)[..9],
            [0, 0, 1, 0, 0, 1, 2, 2, 3],
            "2x2 cells over a 3x3 image"
        );
        assert_eq!(m.contiguous("test").unwrap(), 4);
    }
}
