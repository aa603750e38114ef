//! XGradCAM (Fu et al. 2020): gradients weighted by the activations' share of their channel.

use burn::tensor::Tensor;

use firelight_core::Result;

use crate::base::{CamWeighting, LayerValues, spatial_sum, weighted_channels};

/// XGradCAM: `weights[c] = sum_{h,w} gradients * activations / (sum_{h,w} activations + 1e-7)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct XGradCam;

impl CamWeighting for XGradCam {
    fn name(&self) -> &'static str {
        "XGradCAM"
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        let (activations, gradients) = (layer.activations.clone(), layer.gradients()?);
        let [n, c, _, _] = activations.dims();
        let share = activations.clone() / (spatial_sum(activations.clone()) + 1e-7);
        let weights = spatial_sum(gradients * share).reshape([n, c]);
        Ok(weighted_channels(weights, activations))
    }
}
