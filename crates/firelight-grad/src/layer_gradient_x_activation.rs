//! Layer Gradient X Activation: a layer's activation times the target's gradient with respect to it.

use firelight_core::gradients::{layer_gradients, validate};
use firelight_core::{Attribution, Attributions, Inputs, Model, Result, Target};

/// Captum's `LayerGradientXActivation`: `activation * d target / d activation` at the named layer
/// (only the gradient with `multiply_by_inputs(false)`).
pub struct LayerGradientXActivation<'m> {
    model: &'m dyn Model,
    layer: String,
    multiply_by_inputs: bool,
}

impl<'m> LayerGradientXActivation<'m> {
    /// Gradient X Activation at `layer` of `model`.
    pub fn new(model: &'m dyn Model, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self {
            model,
            layer,
            multiply_by_inputs: true,
        })
    }

    /// Whether to multiply the gradient by the activation (default `true`).
    pub fn multiply_by_inputs(mut self, multiply: bool) -> Self {
        self.multiply_by_inputs = multiply;
        self
    }
}

impl Attribution for LayerGradientXActivation<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let (activation, grad) =
            layer_gradients(self.model, inputs, &self.layer, target, samples, None)?;
        let result = if self.multiply_by_inputs {
            grad.map(|g| g * activation.into_flat())
        } else {
            grad
        };
        Ok(Attributions::single(&self.layer, result))
    }
}
