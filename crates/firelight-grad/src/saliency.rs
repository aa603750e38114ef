//! Saliency (Simonyan et al., 2013): the gradient of the target with respect to the input.

use firelight_core::gradients::{input_gradients, validate};
use firelight_core::{Attribution, Attributions, Inputs, Model, ReluPolicy, Result, Target};

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
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let grads = input_gradients(self.model, inputs, target, samples, ReluPolicy::Standard)?;
        Attributions::for_inputs(inputs, grads)?
            .map(|g| Ok(if self.abs { g.map(|g| g.abs()) } else { g }))
    }
}
