//! Input X Gradient: the gradient scaled by the input value.

use firelight_core::{DynTensor, Model, ReluPolicy, Result, Target};

use crate::base::{Attribution, input_gradients, validate};

/// Captum's `InputXGradient`: `input * d target / d input`.
pub struct InputXGradient<'m> {
    model: &'m dyn Model,
}

impl<'m> InputXGradient<'m> {
    /// Input X Gradient of `model`.
    pub fn new(model: &'m dyn Model) -> Self {
        Self { model }
    }
}

impl Attribution for InputXGradient<'_> {
    fn attribute_samples(
        &self,
        inputs: &DynTensor,
        target: &Target,
        samples: &[usize],
    ) -> Result<DynTensor> {
        validate(self.model, inputs, samples)?;
        let grads = input_gradients(self.model, inputs, target, samples, ReluPolicy::Standard)?;
        let x = inputs.detached().into_flat();
        Ok(grads.map(|g| g * x))
    }
}
