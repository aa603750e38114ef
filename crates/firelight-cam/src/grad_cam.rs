//! Grad-CAM (Selvaraju et al. 2017): channels weighted by their spatially averaged gradient.

use burn::tensor::Tensor;

use crate::base::{CamWeighting, weighted_channels};

/// Grad-CAM: `weights[c] = mean_{h,w} gradients[c, h, w]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradCam;

impl CamWeighting for GradCam {
    fn name(&self) -> &'static str {
        "GradCAM"
    }

    fn cam(&self, activations: Tensor<4>, gradients: Tensor<4>) -> Tensor<3> {
        let [n, c, _, _] = gradients.dims();
        let weights = gradients.mean_dim(3).mean_dim(2).reshape([n, c]);
        weighted_channels(weights, activations)
    }
}
