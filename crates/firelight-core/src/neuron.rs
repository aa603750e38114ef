//! Neuron attribution (Captum's `Neuron*` methods): explain one unit of a layer, or the sum of a
//! box of units, instead of a model output. [`Neuron`] is the model cut at the layer with the
//! selected units as its one output, so every input-attribution method run on it with
//! `Target::class(0)` is its neuron variant: Saliency gives `NeuronGradient`, Integrated
//! Gradients `NeuronIntegratedGradients`, DeepLift `NeuronDeepLift`, Feature Ablation
//! `NeuronFeatureAblation`, and so on.

use std::ops::Range;

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::inputs::Inputs;
use crate::model::{Embedding, InputSpec, LayerInfo, Model, Taps};

/// Which units of a layer's value (per sample, batch axis excluded) a neuron method explains
/// (Captum's `neuron_selector`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeuronSelector {
    /// One unit by its index on every axis of a sample, e.g. `[channel, row, column]`.
    Index(Vec<usize>),
    /// The sum of the units in a box: a range per axis (Captum's tuple of slices).
    Box(Vec<Range<usize>>),
}

impl NeuronSelector {
    /// Reads `3,5,5` (one unit) or `0:4,2,2` (a box: `a:b` is the range `a..b`, a lone index
    /// its own range), as the command line's `--neuron` takes it.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::parameter("neuron", text, why.to_string());
        let mut ranges = Vec::new();
        let mut any_range = false;
        for part in text.split(',') {
            let part = part.trim();
            let number = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| bad("indices are non-negative integers, e.g. 3,5,5 or 0:4,2,2"))
            };
            match part.split_once(':') {
                Some((a, b)) => {
                    any_range = true;
                    let (a, b) = (number(a)?, number(b)?);
                    if a >= b {
                        return Err(bad("a range a:b needs a < b"));
                    }
                    ranges.push(a..b);
                }
                None => {
                    let i = number(part)?;
                    ranges.push(i..i + 1);
                }
            }
        }
        Ok(if any_range {
            NeuronSelector::Box(ranges)
        } else {
            NeuronSelector::Index(ranges.into_iter().map(|r| r.start).collect())
        })
    }

    fn ranges(&self) -> Vec<Range<usize>> {
        match self {
            NeuronSelector::Index(index) => index.iter().map(|&i| i..i + 1).collect(),
            NeuronSelector::Box(ranges) => ranges.clone(),
        }
    }

    /// The flat (row-major) indices of the selected units in a sample of shape `sample`; fails
    /// when the selector has the wrong number of axes or reaches outside the shape.
    pub fn flat_indices(&self, sample: &[usize], layer: &str) -> Result<Vec<usize>> {
        let ranges = self.ranges();
        let fail = |why: String| Error::parameter("neuron", self.to_string(), why);
        if ranges.len() != sample.len() {
            return Err(fail(format!(
                "layer `{layer}` has {} axes per sample (shape {sample:?}); give one index per axis",
                sample.len()
            )));
        }
        if let Some((axis, r)) = ranges
            .iter()
            .enumerate()
            .find(|(axis, r)| r.end > sample[*axis])
        {
            return Err(fail(format!(
                "index {} on axis {axis} is outside layer `{layer}`'s shape {sample:?}",
                r.end - 1
            )));
        }
        let mut flat = vec![0usize];
        for (r, &size) in ranges.iter().zip(sample) {
            flat = flat
                .iter()
                .flat_map(|&base| r.clone().map(move |i| base * size + i))
                .collect();
        }
        Ok(flat)
    }
}

impl std::fmt::Display for NeuronSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NeuronSelector::Index(index) => {
                let parts: Vec<String> = index.iter().map(usize::to_string).collect();
                write!(f, "unit ({})", parts.join(", "))
            }
            NeuronSelector::Box(ranges) => {
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|r| format!("{}:{}", r.start, r.end))
                    .collect();
                write!(f, "units ({}) summed", parts.join(", "))
            }
        }
    }
}

/// A model whose one output is the selected units of `layer`, summed: `[batch, 1]`. Explain it
/// with `Target::class(0)`.
pub struct Neuron<M> {
    cut: Embedding<M>,
    selector: NeuronSelector,
}

impl<M: Model> Neuron<M> {
    /// The units `selector` picks at `layer` of `model`; fails, naming the closest layers, if
    /// there is no such layer.
    pub fn new(model: M, layer: impl Into<String>, selector: NeuronSelector) -> Result<Self> {
        Ok(Self {
            cut: Embedding::new(model, layer)?,
            selector,
        })
    }
}

impl<M: Model> Model for Neuron<M> {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let value = self.cut.layer_value(inputs, taps)?;
        let indices = self
            .selector
            .flat_indices(value.sample_shape(), self.cut.layer())?;
        let count = indices.len();
        let indices = Tensor::<1, Int>::from_data(
            TensorData::new(
                indices.into_iter().map(|i| i as i64).collect::<Vec<_>>(),
                [count],
            ),
            &value.device(),
        );
        Ok(value.into_flat().select(1, indices).sum_dim(1))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        self.cut.layers()
    }

    fn input_shape(&self) -> Option<Vec<usize>> {
        self.cut.input_shape()
    }

    fn input_specs(&self) -> Vec<InputSpec> {
        self.cut.input_specs()
    }

    fn check_inputs(&self, inputs: &Inputs) -> Result<()> {
        self.cut.check_inputs(inputs)
    }

    fn supports_lrp(&self) -> bool {
        self.cut.supports_lrp()
    }
}
