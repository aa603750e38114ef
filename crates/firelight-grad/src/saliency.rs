//! Saliency (Simonyan et al., 2013): the gradient of the target with respect to the input.

use firelight_core::{DynTensor, Model, ReluPolicy, Result, Target};

use crate::base::{Attribution, input_gradients, validate};

/// Captum's `Saliency`: `|d target / d input|` (or the signed gradient with `abs(false)`).
pub struct Saliency<'m> {
    model: &'m dyn Model,
    abs: bool,
}

impl<'m> Saliency<'m> {
    /// Saliency of `model`, taking absolute values (Captum's default `abs=True`).
    pub fn new(model: &'m dyn Model) -> Self {
        Self { model, abs: true }
    }

    /// Whether to return absolute gradients (default `true`).
    pub fn abs(mut self, abs: bool) -> Self {
        self.abs = abs;
        self
    }
}

impl Attribution for Saliency<'_> {
    fn attribute_samples(
        &self,
        inputs: &DynTensor,
        target: &Target,
        samples: &[usize],
    ) -> Result<DynTensor> {
        validate(self.model, inputs, samples)?;
        let grads = input_gradients(self.model, inputs, target, samples, ReluPolicy::Standard)?;
        Ok(if self.abs {
            grads.map(|g| g.abs())
        } else {
            grads
        })
    }
}
