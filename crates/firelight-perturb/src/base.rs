//! What every perturbation method shares: the explained batch on the host, perturbed copies of
//! it (features switched to their baseline, or to another sample's values), the batched scoring
//! loop ([`firelight_core::batch::perturbed_scores`]), parameter checks and progress reports.
//!
//! A method file says which copies to score and how to turn their scores into attributions.
//! Copies are built on the host, so integer and bool inputs are perturbed like float ones, and a
//! copy's carried inputs are its source row's ([`Inputs::with_attributed_values`]).

use std::cell::RefCell;
use std::ops::Range;

use crate::mask::Masks;
use burn::tensor::{Tensor, TensorData};
use firelight_core::batch::{Perturbed, perturbed_scores};
use firelight_core::{
    Attributions, Baseline, Device, DynTensor, Error, Inputs, Kind, Model, Result, Target, Value,
};

/// A progress callback: `(done, total)` perturbations, called after each forward pass. One
/// perturbation is one perturbed copy of the batch (ablation, occlusion, Shapley methods) or one
/// interpretable sample of one example (KernelSHAP, LIME).
pub type ProgressFn<'a> = Box<dyn FnMut(usize, usize) + 'a>;

/// An optional [`ProgressFn`], called through a shared reference.
#[derive(Default)]
pub(crate) struct Progress<'a>(Option<RefCell<ProgressFn<'a>>>);

impl<'a> Progress<'a> {
    pub(crate) fn new(f: impl FnMut(usize, usize) + 'a) -> Self {
        Self(Some(RefCell::new(Box::new(f))))
    }

    fn report(&self, done: usize, total: usize) {
        if let Some(f) = &self.0 {
            (f.borrow_mut())(done, total);
        }
    }
}

/// Fails unless `perturbations_per_eval` is at least 1.
pub(crate) fn check_per_eval(per_eval: usize) -> Result<()> {
    if per_eval == 0 {
        return Err(Error::parameter(
            "perturbations_per_eval",
            0,
            "must be at least 1",
        ));
    }
    Ok(())
}

/// Fails unless `n_samples` is at least 1.
pub(crate) fn check_n_samples(n_samples: usize) -> Result<()> {
    if n_samples == 0 {
        return Err(Error::parameter("n_samples", 0, "must be at least 1"));
    }
    Ok(())
}

/// Values of one kind on the host, row-major.
#[derive(Clone, Debug)]
pub(crate) enum HostData {
    Float(Vec<f32>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

impl HostData {
    fn from_value(value: &Value) -> Result<Self> {
        let data = value.clone().into_data()?;
        let read = |e: String| Error::Model(format!("reading input values: {e}"));
        Ok(match value.kind() {
            Kind::Float => HostData::Float(
                data.convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| read(format!("{e:?}")))?,
            ),
            Kind::Int => HostData::Int(
                data.convert::<i64>()
                    .try_into_vec::<i64>()
                    .map_err(|e| read(format!("{e:?}")))?,
            ),
            Kind::Bool => HostData::Bool(data.iter::<bool>().collect()),
        })
    }

    /// `values` (floats) in this kind: integers round, bools are non-zero.
    fn like(&self, values: Vec<f32>) -> HostData {
        match self {
            HostData::Float(_) => HostData::Float(values),
            HostData::Int(_) => HostData::Int(values.iter().map(|v| v.round() as i64).collect()),
            HostData::Bool(_) => HostData::Bool(values.iter().map(|&v| v != 0.0).collect()),
        }
    }

    /// Value `i` as a float.
    pub(crate) fn get(&self, i: usize) -> f64 {
        match self {
            HostData::Float(v) => v[i] as f64,
            HostData::Int(v) => v[i] as f64,
            HostData::Bool(v) => f64::from(u8::from(v[i])),
        }
    }

    fn into_value(self, shape: Vec<usize>, device: &Device) -> Result<Value> {
        let data = match self {
            HostData::Float(v) => TensorData::new(v, shape),
            HostData::Int(v) => TensorData::new(v, shape),
            HostData::Bool(v) => TensorData::new(v, shape),
        };
        Value::from_data(data, device)
    }
}

/// Where a copy's replaced elements come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    /// The baseline of the copy's row.
    Baseline,
    /// The same elements of another row of the batch (FeaturePermutation).
    Row(usize),
}

/// One perturbed copy of a row of the batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Copy {
    /// The row it is a copy of (its carried inputs and target sample are this row's).
    pub row: usize,
    /// Where replaced elements come from.
    pub fill: Fill,
}

/// One attributed value (an input, or a layer's value for layer methods) of the explained batch
/// on the host, with its baseline.
#[derive(Clone, Debug)]
pub(crate) struct HostValue {
    /// Full shape, batch first.
    pub shape: Vec<usize>,
    /// Elements per row.
    pub features: usize,
    pub data: HostData,
    /// One baseline row per row of the batch (same kind as `data`).
    pub baseline: Option<HostData>,
    pub device: Device,
}

impl HostValue {
    fn new(value: &Value) -> Result<Self> {
        let shape = value.shape().to_vec();
        if shape.is_empty() {
            return Err(Error::RankMismatch {
                what: "attributed input (a scalar has no batch axis)".into(),
                expected: 1,
                got: shape,
            });
        }
        Ok(Self {
            features: shape[1..].iter().product(),
            data: HostData::from_value(value)?,
            shape,
            baseline: None,
            device: value.device(),
        })
    }

    /// A float value (a layer's).
    pub(crate) fn from_dyn(tensor: &DynTensor) -> Result<Self> {
        Self::new(&Value::from_dyn(tensor)?)
    }

    fn rows(&self) -> usize {
        self.shape[0]
    }

    /// Resolves `baseline` against this value: one baseline row per row, `samples[r]` row `r`'s
    /// sample (a per-sample baseline tensor follows its sample).
    pub(crate) fn set_baseline(&mut self, baseline: &Baseline, samples: &[usize]) -> Result<()> {
        let as_float: Vec<f32> = (0..self.data_len())
            .map(|i| self.data.get(i) as f32)
            .collect();
        let tensor = DynTensor::from_vec(as_float, self.shape.clone(), &self.device)?;
        let resolved = baseline.resolve_rows(&tensor, samples)?.to_vec()?;
        self.baseline = Some(self.data.like(resolved));
        Ok(())
    }

    fn data_len(&self) -> usize {
        self.rows() * self.features
    }

    /// Element `e` of row `row`, as a float.
    pub(crate) fn value(&self, row: usize, e: usize) -> f64 {
        self.data.get(row * self.features + e)
    }

    /// Element `e` of row `row`'s baseline, as a float.
    pub(crate) fn baseline_value(&self, row: usize, e: usize) -> f64 {
        self.baseline
            .as_ref()
            .expect("baseline resolved")
            .get(row * self.features + e)
    }

    /// `copies` of rows of this value, element `e` of copy `c` replaced where `replace(c, e)`.
    pub(crate) fn perturb(
        &self,
        copies: &[Copy],
        replace: impl Fn(usize, usize) -> bool,
    ) -> HostData {
        fn build<T: std::marker::Copy>(
            data: &[T],
            baseline: Option<&[T]>,
            features: usize,
            copies: &[Copy],
            replace: &impl Fn(usize, usize) -> bool,
        ) -> Vec<T> {
            let mut out = Vec::with_capacity(copies.len() * features);
            for (c, copy) in copies.iter().enumerate() {
                let row = &data[copy.row * features..(copy.row + 1) * features];
                let fill = match copy.fill {
                    Fill::Baseline => {
                        let b = baseline.expect("baseline resolved for a baseline fill");
                        &b[copy.row * features..(copy.row + 1) * features]
                    }
                    Fill::Row(k) => &data[k * features..(k + 1) * features],
                };
                out.extend((0..features).map(|e| if replace(c, e) { fill[e] } else { row[e] }));
            }
            out
        }
        let f = self.features;
        match (&self.data, &self.baseline) {
            (HostData::Float(d), b) => HostData::Float(build(
                d,
                b.as_ref().map(|b| match b {
                    HostData::Float(b) => b.as_slice(),
                    _ => unreachable!("baseline has the data's kind"),
                }),
                f,
                copies,
                &replace,
            )),
            (HostData::Int(d), b) => HostData::Int(build(
                d,
                b.as_ref().map(|b| match b {
                    HostData::Int(b) => b.as_slice(),
                    _ => unreachable!("baseline has the data's kind"),
                }),
                f,
                copies,
                &replace,
            )),
            (HostData::Bool(d), b) => HostData::Bool(build(
                d,
                b.as_ref().map(|b| match b {
                    HostData::Bool(b) => b.as_slice(),
                    _ => unreachable!("baseline has the data's kind"),
                }),
                f,
                copies,
                &replace,
            )),
        }
    }

    /// `data` (one row per copy) as a value shaped like this one.
    pub(crate) fn to_value(&self, data: HostData, rows: usize) -> Result<Value> {
        let mut shape = self.shape.clone();
        shape[0] = rows;
        data.into_value(shape, &self.device)
    }

    /// Host attributions (one row per row of the batch) as a float tensor shaped like this value.
    pub(crate) fn attribution(&self, values: &[f64]) -> Result<DynTensor> {
        DynTensor::from_vec(
            values.iter().map(|&v| v as f32).collect(),
            self.shape.clone(),
            &self.device,
        )
    }
}

/// The batch a method explains: its inputs, each row's sample, and the attributed values on the
/// host.
pub(crate) struct Explained<'a> {
    pub inputs: &'a Inputs,
    pub samples: &'a [usize],
    pub rows: usize,
    pub values: Vec<HostValue>,
}

impl<'a> Explained<'a> {
    /// Checks `inputs` (one batch for every input, finite values, a shape the model takes) and
    /// reads the attributed ones.
    pub(crate) fn new(model: &dyn Model, inputs: &'a Inputs, samples: &'a [usize]) -> Result<Self> {
        let rows = inputs.batch()?;
        if rows == 0 {
            return Err(Error::Model(
                "the batch is empty: give at least one sample".into(),
            ));
        }
        if samples.len() != rows {
            return Err(Error::InvalidTarget(format!(
                "{} sample indices for {rows} rows",
                samples.len()
            )));
        }
        model.check_inputs(inputs)?;
        inputs.check_finite()?;
        let attributed = inputs.attributed_values()?;
        if attributed.is_empty() {
            return Err(Error::Model(format!(
                "none of the inputs ({}) is attributed: mark the ones to explain with \
                 Inputs::attributed",
                inputs.names().join(", ")
            )));
        }
        let values = attributed
            .iter()
            .map(HostValue::new)
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            inputs,
            samples,
            rows,
            values,
        })
    }

    /// The same batch with every attributed input's baseline resolved (Captum's `baselines`).
    pub(crate) fn with_baselines(mut self, baselines: &Baseline) -> Result<Self> {
        let count = self.values.len();
        for (i, value) in self.values.iter_mut().enumerate() {
            value.set_baseline(baselines.for_input(i, count)?, self.samples)?;
        }
        Ok(self)
    }

    /// The full shapes of the attributed inputs.
    pub(crate) fn shapes(&self) -> Vec<Vec<usize>> {
        self.values.iter().map(|v| v.shape.clone()).collect()
    }

    /// The target's score of every row of the unperturbed batch.
    pub(crate) fn scores(&self, model: &dyn Model, target: &Target) -> Result<Vec<f64>> {
        let outputs = model.predict(self.inputs)?;
        host_scores(target.scores(outputs, self.samples)?)
    }

    /// `copies` of rows of the batch, element `e` of attributed input `i` of copy `c` replaced
    /// where `replace(c, i, e)`, ready to score.
    pub(crate) fn perturbed(
        &self,
        copies: &[Copy],
        replace: impl Fn(usize, usize, usize) -> bool,
    ) -> Result<Perturbed<'static>> {
        let values = self
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| v.to_value(v.perturb(copies, |c, e| replace(c, i, e)), copies.len()))
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<usize> = copies.iter().map(|c| c.row).collect();
        let samples = rows.iter().map(|&r| self.samples[r]).collect();
        Ok(Perturbed::new(
            self.inputs.with_attributed_values(values, &rows)?,
            samples,
        ))
    }

    /// Host attributions, one `rows x features` vector per attributed input, as [`Attributions`].
    pub(crate) fn attributions(&self, values: Vec<Vec<f64>>) -> Result<Attributions> {
        let tensors = self
            .values
            .iter()
            .zip(&values)
            .map(|(v, a)| v.attribution(a))
            .collect::<Result<Vec<_>>>()?;
        Attributions::for_inputs(self.inputs, tensors)
    }
}

/// A tensor of scores on the host.
pub(crate) fn host_scores(scores: Tensor<1>) -> Result<Vec<f64>> {
    let values = scores
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Model(format!("reading scores: {e:?}")))?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "target scores of perturbed inputs".into(),
            count: values.iter().filter(|v| !v.is_finite()).count(),
            first_index: i,
        });
    }
    Ok(values.into_iter().map(f64::from).collect())
}

/// The scores of `count` perturbations, `per_eval` per forward pass (`make(range)` builds the
/// rows of perturbations `range`), on the host, reporting progress.
pub(crate) fn scores<'h>(
    model: &dyn Model,
    target: &Target,
    count: usize,
    per_eval: usize,
    progress: &Progress<'_>,
    make: impl FnMut(Range<usize>) -> Result<Perturbed<'h>>,
) -> Result<Vec<f64>> {
    check_per_eval(per_eval)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut done = 0;
    let scores = perturbed_scores(model, target, count, per_eval, make, |n| {
        done += n;
        progress.report(done, count);
    })?;
    host_scores(scores)
}

/// Spreads one value per feature and row over the elements of each attributed value: element
/// `e` of row `r` of value `i` gets `per_feature(r, id)`, `id` its feature's id.
pub(crate) fn spread(
    explained: &Explained<'_>,
    masks: &Masks,
    per_feature: impl Fn(usize, usize) -> f64,
) -> Vec<Vec<f64>> {
    (0..explained.values.len())
        .map(|i| {
            let mask = masks.input(i);
            (0..explained.rows)
                .flat_map(|r| {
                    mask.row(explained.samples[r])
                        .iter()
                        .map(|&id| per_feature(r, id))
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .collect()
}

/// Feature ablation's loop, shared by FeatureAblation, FeaturePermutation and
/// LayerFeatureAblation: perturbation `p` replaces feature `masks.features()[p]` in a copy of
/// every row (from `fill(p, row)`); `make(copies, replace)` turns the copies into rows to score.
/// Element attributions are `f0[row]` less the score of the copy that replaced their feature.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ablate<'h>(
    explained: &Explained<'_>,
    masks: &Masks,
    f0: &[f64],
    model: &dyn Model,
    target: &Target,
    per_eval: usize,
    progress: &Progress<'_>,
    fill: impl Fn(usize, usize) -> Fill,
    mut make: impl FnMut(&[Copy], &dyn Fn(usize, usize, usize) -> bool) -> Result<Perturbed<'h>>,
) -> Result<Vec<Vec<f64>>> {
    let features = masks.features();
    let rows = explained.rows;
    let samples = explained.samples;
    let scores = scores(model, target, features.len(), per_eval, progress, |range| {
        let copies: Vec<Copy> = range
            .clone()
            .flat_map(|p| (0..rows).map(move |r| (p, r)))
            .map(|(p, r)| Copy {
                row: r,
                fill: fill(p, r),
            })
            .collect();
        let replace = |c: usize, i: usize, e: usize| {
            let (p, r) = (range.start + c / rows, c % rows);
            masks.input(i).row(samples[r])[e] == features[p]
        };
        make(&copies, &replace)
    })?;
    Ok(spread(explained, masks, |r, id| {
        f0[r] - scores[masks.index_of(id) * rows + r]
    }))
}
