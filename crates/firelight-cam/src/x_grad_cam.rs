//! XGradCAM (Fu et al. 2020): gradients weighted by the activations' share of their channel.

use burn::tensor::Tensor;

use crate::base::{CamWeighting, spatial_sum, weighted_channels};

/// XGradCAM: `weights[c] = sum_{h,w} gradients * activations / (sum_{h,w} activations + 1e-7)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct XGradCam;

impl CamWeighting for XGradCam {
    fn name(&self) -> &'static str {
        "XGradCAM"
    }

    fn cam(&self, activations: Tensor<4>, gradients: Tensor<4>) -> Tensor<3> {
        let [n, c, _, _] = activations.dims();
        let share = activations.clone() / (spatial_sum(activations.clone()) + 1e-7);
        let weights = spatial_sum(gradients * share).reshape([n, c]);
        weighted_channels(weights, activations)
    }
}
