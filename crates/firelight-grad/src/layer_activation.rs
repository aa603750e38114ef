//! Layer Activation: the value a layer produces.

use firelight_core::gradients::{layer_activations, validate};
use firelight_core::{Attribution, Attributions, Inputs, Model, Result, Target};

/// Captum's `LayerActivation`: the output of the named layer (the target is not used).
pub struct LayerActivation<'m> {
    model: &'m dyn Model,
    layer: String,
}

impl<'m> LayerActivation<'m> {
    /// Activations of `layer` in `model`.
    pub fn new(model: &'m dyn Model, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self { model, layer })
    }
}

impl Attribution for LayerActivation<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        _target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let activation = layer_activations(self.model, inputs, &self.layer)?;
        Ok(Attributions::single(&self.layer, activation))
    }
}
