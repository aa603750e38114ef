//! Guided Grad-CAM (Selvaraju et al., 2017): Guided Backpropagation times the Grad-CAM map
//! brought to the input's size, pixel by pixel.

use firelight_core::{Attribution, Attributions, Error, Inputs, Model, Result, Target};

use crate::guided_backprop::GuidedBackprop;
use crate::layer_grad_cam::{LayerGradCam, interpolate_nearest};

/// Captum's `GuidedGradCam`: Guided Backprop's attributions times `LayerGradCam` (with
/// `relu_attributions`) at `layer`, interpolated to each input's spatial size with nearest
/// neighbours (Captum's default `interpolate_mode`). Inputs `[batch, channels, h, w]`.
pub struct GuidedGradCam<'m> {
    model: &'m dyn Model,
    layer: String,
}

impl<'m> GuidedGradCam<'m> {
    /// Guided Grad-CAM of `model` with the map taken at `layer`.
    pub fn new(model: &'m dyn Model, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self { model, layer })
    }
}

impl Attribution for GuidedGradCam<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        let cam = LayerGradCam::new(self.model, self.layer.clone())?
            .relu_attributions(true)
            .attribute_rows(inputs, target, samples)?
            .into_single()?;
        GuidedBackprop::new(self.model)
            .attribute_rows(inputs, target, samples)?
            .map(|guided| {
                let [_, _, h, w]: [usize; 4] = guided.shape().try_into().map_err(|_| {
                    Error::Model(format!(
                        "Guided Grad-CAM takes image inputs [batch, channels, h, w], got {:?}",
                        guided.shape()
                    ))
                })?;
                let map = interpolate_nearest(&cam, h, w)?;
                let channels = guided.shape()[1];
                let pixels = h * w;
                let batch = guided.batch();
                let map = map
                    .into_flat()
                    .reshape([batch, 1, pixels])
                    .expand([batch, channels, pixels])
                    .reshape([batch, channels * pixels]);
                Ok(guided.map(|g| g * map))
            })
    }
}
