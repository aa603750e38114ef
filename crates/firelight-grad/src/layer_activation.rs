//! Layer Activation: the value a layer produces.

use firelight_core::{DynTensor, Model, Result, Target};

use crate::base::{Attribution, layer_activations, validate};

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
    fn attribute_samples(
        &self,
        inputs: &DynTensor,
        _target: &Target,
        samples: &[usize],
    ) -> Result<DynTensor> {
        validate(self.model, inputs, samples)?;
        layer_activations(self.model, inputs, &self.layer)
    }
}
