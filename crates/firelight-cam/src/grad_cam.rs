//! Grad-CAM (Selvaraju et al. 2017): channels weighted by their spatially averaged gradient.

use burn::tensor::Tensor;

use firelight_core::Result;

use crate::base::{CamWeighting, LayerValues, weighted_channels};

/// Grad-CAM: `weights[c] = mean_{h,w} gradients[c, h, w]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradCam;

impl CamWeighting for GradCam {
    fn name(&self) -> &'static str {
        "GradCAM"
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        let (activations, gradients) = (layer.activations.clone(), layer.gradients()?);
        let [n, c, _, _] = gradients.dims();
        let weights = gradients.mean_dim(3).mean_dim(2).reshape([n, c]);
        Ok(weighted_channels(weights, activations))
    }
}
