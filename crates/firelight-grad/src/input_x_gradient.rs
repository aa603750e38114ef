//! Input X Gradient: the gradient scaled by the input value.

use firelight_core::gradients::{input_gradients, validate};
use firelight_core::{Attribution, Attributions, Inputs, Model, ReluPolicy, Result, Target};

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
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let grads = input_gradients(self.model, inputs, target, samples, ReluPolicy::Standard)?;
        let products = grads
            .into_iter()
            .zip(inputs.attributed_floats()?)
            .map(|(g, x)| g.map(|g| g * x.detached().into_flat()))
            .collect();
        Attributions::for_inputs(inputs, products)
    }
}
