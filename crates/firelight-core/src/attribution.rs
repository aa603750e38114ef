//! [`Attribution`]: the trait every method of every family implements, and [`Attributions`],
//! what it returns: one tensor per attributed input (Captum's tuple inputs), or one for the layer
//! of a layer method.

use crate::error::{Error, Result};
use crate::inputs::Inputs;
use crate::target::Target;
use crate::tensor::DynTensor;

/// The result of an attribution: named tensors, one per attributed input (input methods, shaped
/// like the input) or one for the layer (layer methods, shaped like the layer).
#[derive(Clone, Debug, Default)]
pub struct Attributions {
    items: Vec<(String, DynTensor)>,
}

impl Attributions {
    /// Attributions from `(name, tensor)` pairs, in order.
    pub fn new(items: Vec<(String, DynTensor)>) -> Self {
        Self { items }
    }

    /// One attribution per attributed input of `inputs`, in order.
    pub fn for_inputs(inputs: &Inputs, tensors: Vec<DynTensor>) -> Result<Self> {
        let names = inputs.attributed_names();
        if names.len() != tensors.len() {
            return Err(Error::Model(format!(
                "{} attributions for {} attributed inputs",
                tensors.len(),
                names.len()
            )));
        }
        Ok(Self::new(
            names.into_iter().map(String::from).zip(tensors).collect(),
        ))
    }

    /// A single attribution (a layer method's), named `name`.
    pub fn single(name: impl Into<String>, tensor: DynTensor) -> Self {
        Self::new(vec![(name.into(), tensor)])
    }

    /// The attribution named `name`.
    pub fn get(&self, name: &str) -> Option<&DynTensor> {
        self.items.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.items.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> Vec<&DynTensor> {
        self.items.iter().map(|(_, t)| t).collect()
    }

    /// How many tensors there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The tensors by value, in order.
    pub fn into_tensors(self) -> Vec<DynTensor> {
        self.items.into_iter().map(|(_, t)| t).collect()
    }

    /// The pairs by value, in order.
    pub fn into_vec(self) -> Vec<(String, DynTensor)> {
        self.items
    }

    /// The only tensor; fails when there are several (call [`Attributions::get`] then).
    pub fn into_single(self) -> Result<DynTensor> {
        let count = self.items.len();
        let names = self.names().join(", ");
        let mut items = self.items;
        match (items.pop(), count) {
            (Some((_, t)), 1) => Ok(t),
            _ => Err(Error::Model(format!(
                "{count} attributions ({names}) where one was expected: use attribute_inputs and \
                 pick one by name"
            ))),
        }
    }

    /// Applies `f` to every tensor.
    pub fn map(self, mut f: impl FnMut(DynTensor) -> Result<DynTensor>) -> Result<Self> {
        Ok(Self {
            items: self
                .items
                .into_iter()
                .map(|(n, t)| Ok((n, f(t)?)))
                .collect::<Result<_>>()?,
        })
    }
}

/// An attribution method: explains `target` on a batch of inputs.
///
/// Methods implement [`Attribution::attribute_rows`]; users call [`Attribution::attribute`] (one
/// float tensor in, one out) or [`Attribution::attribute_inputs`] (named inputs, some carried).
pub trait Attribution {
    /// Attributions for `inputs`; `samples[i]` is the sample (for per-sample targets) of row `i`.
    ///
    /// Methods that expand a batch call this on the expanded rows; users call
    /// [`Attribution::attribute_inputs`].
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions>;

    /// Attributions of `target` to the attributed `inputs` (batch first): one tensor per
    /// attributed input shaped like it, or one shaped like the layer for layer methods.
    fn attribute_inputs(&self, inputs: &Inputs, target: &Target) -> Result<Attributions> {
        let batch = inputs.batch()?;
        target.check_batch(batch)?;
        let samples: Vec<usize> = (0..batch).collect();
        self.attribute_rows(inputs, target, &samples)
    }

    /// Attributions of `target` to one float input (batch first), shaped like the input (or the
    /// layer, for layer methods).
    fn attribute(&self, inputs: &DynTensor, target: &Target) -> Result<DynTensor> {
        self.attribute_inputs(&Inputs::from(inputs), target)?
            .into_single()
    }
}

impl<A: Attribution + ?Sized> Attribution for &A {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        (**self).attribute_rows(inputs, target, samples)
    }
}

impl<A: Attribution + ?Sized> Attribution for Box<A> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        (**self).attribute_rows(inputs, target, samples)
    }
}
