//! [`Inputs`]: the named values a model takes, some attributed, the others carried along.
//!
//! A model takes named values (float, int or bool, batch first). The *attributed* ones are what a
//! method explains (Captum's `inputs`, a tuple when there are several); the *carried* ones go along
//! unchanged (an attention mask, segment ids, a metadata vector: Captum's
//! `additional_forward_args`). Every batch expansion (IG steps, noise samples, perturbations)
//! builds its new rows from rows of the original batch, and repeats the carried values with the
//! same row map ([`Inputs::with_attributed`]), so each expanded row sees its own sample's mask.

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::tensor::DynTensor;
use crate::value::{Kind, Value};

/// What one input holds: a float tensor of any rank, or a value of any kind.
#[derive(Clone, Debug)]
enum Data {
    Float(DynTensor),
    Other(Value),
}

impl Data {
    fn batch(&self) -> usize {
        match self {
            Data::Float(t) => t.batch(),
            Data::Other(v) => v.batch(),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Data::Float(_) => Kind::Float,
            Data::Other(v) => v.kind(),
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            Data::Float(t) => t.shape(),
            Data::Other(v) => v.shape(),
        }
    }

    fn select_rows(&self, rows: &[usize]) -> Result<Data> {
        Ok(match self {
            Data::Float(t) => Data::Float(t.select_rows(rows)?),
            Data::Other(v) => Data::Other(v.select_rows(rows)?),
        })
    }

    fn rows(&self, start: usize, end: usize) -> Result<Data> {
        Ok(match self {
            Data::Float(t) => Data::Float(t.rows(start, end)),
            Data::Other(v) => Data::Other(v.rows(start, end)?),
        })
    }
}

impl From<Value> for Data {
    fn from(value: Value) -> Self {
        // A float value is kept as a DynTensor, the form every gradient method works on.
        match value.to_dyn("input") {
            Ok(t) if value.kind() == Kind::Float => Data::Float(t),
            _ => Data::Other(value),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    data: Data,
    attributed: bool,
}

/// The named values a model takes (batch first): attributed ones, explained by a method, and
/// carried ones, passed along row for row.
///
/// A single float tensor converts into `Inputs` (one attributed input named
/// [`Inputs::DEFAULT_NAME`]), so single-input models and their callers stay simple:
///
/// ```
/// use firelight_core::{Device, DynTensor, Inputs, Tensor};
/// let device = Device::flex();
/// let pixels = DynTensor::new(Tensor::<4>::zeros([2, 3, 8, 8], &device));
/// let single: Inputs = pixels.clone().into();
/// let mask = Tensor::<2, burn::tensor::Int>::ones([2, 5], &device);
/// let two = Inputs::new().attributed("image", pixels).carried("mask", mask);
/// assert_eq!(two.batch().unwrap(), 2);
/// assert_eq!(single.attributed_names(), vec!["input"]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    entries: Vec<Entry>,
}

impl Inputs {
    /// The name a lone tensor gets when it converts into `Inputs`; a model with one input accepts
    /// it whatever its own input is called.
    pub const DEFAULT_NAME: &'static str = "input";

    /// No inputs yet; add them with [`Inputs::attributed`] and [`Inputs::carried`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a float input that methods explain.
    pub fn attributed(self, name: impl Into<String>, tensor: impl Into<DynTensor>) -> Self {
        self.push(name.into(), Data::Float(tensor.into()), true)
    }

    /// Adds an input of any kind that methods explain (an integer input can be explained by
    /// perturbation; gradient methods refuse it with [`Error::NotDifferentiable`]).
    pub fn attributed_value(self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.push(name.into(), Data::from(value.into()), true)
    }

    /// Adds an input that is passed along unchanged (repeated row for row in every expansion).
    pub fn carried(self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.push(name.into(), Data::from(value.into()), false)
    }

    /// Adds a float input that is passed along unchanged.
    pub fn carried_float(self, name: impl Into<String>, tensor: impl Into<DynTensor>) -> Self {
        self.push(name.into(), Data::Float(tensor.into()), false)
    }

    fn push(mut self, name: String, data: Data, attributed: bool) -> Self {
        // A repeated name replaces the earlier input, so a builder chain can override one.
        self.entries.retain(|e| e.name != name);
        self.entries.push(Entry {
            name,
            data,
            attributed,
        });
        self
    }

    /// How many inputs there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no inputs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every input's name, in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// The attributed inputs' names, in order.
    pub fn attributed_names(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.attributed)
            .map(|e| e.name.as_str())
            .collect()
    }

    /// Whether `name` is an attributed input.
    pub fn is_attributed(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name && e.attributed)
    }

    /// The element kind and full shape (batch first) of input `name`.
    pub fn describe(&self, name: &str) -> Option<(Kind, Vec<usize>)> {
        self.entry(name)
            .map(|e| (e.data.kind(), e.data.shape().to_vec()))
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    fn missing(&self, name: &str) -> Error {
        Error::Model(format!(
            "no input named `{name}`; the inputs are: {}",
            self.names().join(", ")
        ))
    }

    /// The batch size every input shares; fails for no inputs or inputs whose batches differ.
    pub fn batch(&self) -> Result<usize> {
        let first = self
            .entries
            .first()
            .ok_or_else(|| Error::Model("no inputs were given".into()))?;
        let batch = first.data.batch();
        if let Some(other) = self.entries.iter().find(|e| e.data.batch() != batch) {
            return Err(Error::ShapeMismatch {
                what: format!(
                    "batch of input `{}` vs input `{}` (every input needs one row per sample)",
                    other.name, first.name
                ),
                expected: vec![batch],
                got: vec![other.data.batch()],
            });
        }
        Ok(batch)
    }

    /// Input `name` as a value of its own kind.
    pub fn value(&self, name: &str) -> Result<Value> {
        match &self.entry(name).ok_or_else(|| self.missing(name))?.data {
            Data::Float(t) => Value::from_dyn(t),
            Data::Other(v) => Ok(v.clone()),
        }
    }

    /// Float input `name`.
    pub fn float(&self, name: &str) -> Result<DynTensor> {
        match &self.entry(name).ok_or_else(|| self.missing(name))?.data {
            Data::Float(t) => Ok(t.clone()),
            Data::Other(v) => Err(Error::Model(format!(
                "input `{name}` holds {:?} values where the model needs floats",
                v.kind()
            ))),
        }
    }

    /// The only input, as floats: what a single-input model (an image classifier) runs on.
    pub fn single_float(&self) -> Result<DynTensor> {
        match self.entries.as_slice() {
            [only] => self.float(&only.name),
            _ => Err(Error::Model(format!(
                "the model takes one float input, got {} ({})",
                self.len(),
                self.names().join(", ")
            ))),
        }
    }

    /// The attributed inputs as float tensors, in order: what gradients reach. An integer or
    /// bool attributed input fails with [`Error::NotDifferentiable`].
    pub fn attributed_floats(&self) -> Result<Vec<DynTensor>> {
        let tensors: Vec<DynTensor> = self
            .entries
            .iter()
            .filter(|e| e.attributed)
            .map(|e| match &e.data {
                Data::Float(t) => Ok(t.clone()),
                Data::Other(v) => Err(Error::NotDifferentiable {
                    input: e.name.clone(),
                    kind: format!("{:?}", v.kind()),
                }),
            })
            .collect::<Result<_>>()?;
        if tensors.is_empty() {
            return Err(Error::Model(format!(
                "none of the inputs ({}) is attributed: mark the ones to explain with \
                 Inputs::attributed",
                self.names().join(", ")
            )));
        }
        Ok(tensors)
    }

    /// The attributed inputs as values of their own kinds, in order (perturbation methods
    /// replace features of any kind).
    pub fn attributed_values(&self) -> Result<Vec<Value>> {
        self.attributed_names()
            .into_iter()
            .map(|n| self.value(n))
            .collect()
    }

    /// New inputs whose attributed inputs are `tensors` (in order, each with `rows.len()` rows)
    /// and whose carried inputs are the rows `rows` of these: row `i` of the new batch came from
    /// row `rows[i]` of this one.
    pub fn with_attributed(&self, tensors: Vec<DynTensor>, rows: &[usize]) -> Result<Inputs> {
        self.with_attributed_data(tensors.into_iter().map(Data::Float).collect(), rows)
    }

    /// [`Inputs::with_attributed`] for attributed inputs of any kind.
    pub fn with_attributed_values(&self, values: Vec<Value>, rows: &[usize]) -> Result<Inputs> {
        self.with_attributed_data(values.into_iter().map(Data::from).collect(), rows)
    }

    fn with_attributed_data(&self, values: Vec<Data>, rows: &[usize]) -> Result<Inputs> {
        let attributed = self.entries.iter().filter(|e| e.attributed).count();
        if values.len() != attributed {
            return Err(Error::Model(format!(
                "{} replacement(s) for {attributed} attributed input(s)",
                values.len()
            )));
        }
        let mut values = values.into_iter();
        // The common case (gradients at the inputs themselves) needs no gather of the carried.
        let identity = rows.iter().enumerate().all(|(i, &r)| i == r)
            && self
                .entries
                .first()
                .is_some_and(|e| e.data.batch() == rows.len());
        let entries = self
            .entries
            .iter()
            .map(|e| {
                let data = if e.attributed {
                    let data = values.next().expect("counted above");
                    if data.batch() != rows.len() {
                        return Err(Error::ShapeMismatch {
                            what: format!("rows of the new values of input `{}`", e.name),
                            expected: vec![rows.len()],
                            got: vec![data.batch()],
                        });
                    }
                    data
                } else if identity {
                    e.data.clone()
                } else {
                    e.data.select_rows(rows)?
                };
                Ok(Entry {
                    name: e.name.clone(),
                    data,
                    attributed: e.attributed,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Inputs { entries })
    }

    /// Every input's rows `rows`, in that order (rows may repeat).
    pub fn select_rows(&self, rows: &[usize]) -> Result<Inputs> {
        self.map_data(|d| d.select_rows(rows))
    }

    /// Every input's rows `start..end`.
    pub fn rows(&self, start: usize, end: usize) -> Result<Inputs> {
        self.map_data(|d| d.rows(start, end))
    }

    fn map_data(&self, f: impl Fn(&Data) -> Result<Data>) -> Result<Inputs> {
        let entries = self
            .entries
            .iter()
            .map(|e| {
                Ok(Entry {
                    name: e.name.clone(),
                    data: f(&e.data)?,
                    attributed: e.attributed,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Inputs { entries })
    }

    /// Inputs with the same names joined along the batch axis.
    pub fn cat_rows(parts: Vec<Inputs>) -> Result<Inputs> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Model("cannot join an empty list of inputs".into()))?;
        let entries = first
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let column: Vec<&Data> = parts
                    .iter()
                    .map(|p| {
                        p.entries
                            .get(i)
                            .filter(|o| o.name == e.name)
                            .map(|o| &o.data)
                            .ok_or_else(|| Error::Model("joined inputs differ in names".into()))
                    })
                    .collect::<Result<_>>()?;
                let data = match &e.data {
                    Data::Float(_) => Data::Float(DynTensor::cat(
                        column
                            .iter()
                            .map(|d| match d {
                                Data::Float(t) => Ok(t.clone()),
                                Data::Other(_) => {
                                    Err(Error::Model("joined inputs differ in kind".into()))
                                }
                            })
                            .collect::<Result<_>>()?,
                    )?),
                    Data::Other(_) => Data::Other(Value::cat_rows(
                        column
                            .iter()
                            .map(|d| match d {
                                Data::Other(v) => Ok(v.clone()),
                                Data::Float(t) => Value::from_dyn(t),
                            })
                            .collect::<Result<_>>()?,
                    )?),
                };
                Ok(Entry {
                    name: e.name.clone(),
                    data,
                    attributed: e.attributed,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Inputs { entries })
    }

    /// The same inputs with every float value off the autodiff graph.
    pub fn detached(&self) -> Inputs {
        self.map_data(|d| {
            Ok(match d {
                Data::Float(t) => Data::Float(t.detached()),
                other => other.clone(),
            })
        })
        .expect("detaching cannot fail")
    }

    /// Fails with [`Error::NonFinite`] if a float input holds NaN or infinity.
    pub fn check_finite(&self) -> Result<()> {
        for e in &self.entries {
            if let Data::Float(t) = &e.data {
                t.check_finite(&format!("input `{}`", e.name))?;
            }
        }
        Ok(())
    }

    /// Each input as `(name, value, attributed)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Result<Value>, bool)> + '_ {
        self.entries.iter().map(|e| {
            let value = match &e.data {
                Data::Float(t) => Value::from_dyn(t),
                Data::Other(v) => Ok(v.clone()),
            };
            (e.name.as_str(), value, e.attributed)
        })
    }
}

impl From<DynTensor> for Inputs {
    fn from(tensor: DynTensor) -> Self {
        Inputs::new().attributed(Inputs::DEFAULT_NAME, tensor)
    }
}

impl From<&DynTensor> for Inputs {
    fn from(tensor: &DynTensor) -> Self {
        Inputs::from(tensor.clone())
    }
}

impl<const D: usize> From<Tensor<D>> for Inputs {
    fn from(tensor: Tensor<D>) -> Self {
        Inputs::from(DynTensor::new(tensor))
    }
}

impl From<&Inputs> for Inputs {
    fn from(inputs: &Inputs) -> Self {
        inputs.clone()
    }
}
