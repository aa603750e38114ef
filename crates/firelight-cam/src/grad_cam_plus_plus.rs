//! Grad-CAM++ (Chattopadhyay et al. 2018): channel weights from second- and third-order terms of
//! the gradient, as pytorch-grad-cam approximates them with powers of the first-order gradient.

use burn::tensor::Tensor;

use firelight_core::Result;

use crate::base::{CamWeighting, LayerValues, spatial_sum, weighted_channels};

/// Grad-CAM++: `alpha = g^2 / (2 g^2 + sum_{h,w}(a) g^3 + 1e-6)` where `g != 0` (else 0),
/// `weights[c] = sum_{h,w} relu(g) * alpha`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradCamPlusPlus;

impl CamWeighting for GradCamPlusPlus {
    fn name(&self) -> &'static str {
        "GradCAMPlusPlus"
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        let (activations, gradients) = (layer.activations.clone(), layer.gradients()?);
        let [n, c, _, _] = activations.dims();
        let g2 = gradients.clone().powi_scalar(2);
        let g3 = gradients.clone().powi_scalar(3);
        let sum_activations = spatial_sum(activations.clone());
        let alpha = g2.clone() / (g2 * 2.0 + sum_activations * g3 + 1e-6);
        let alpha = alpha.mask_fill(gradients.clone().equal_elem(0.0), 0.0);
        let weights = spatial_sum(gradients.clamp_min(0.0) * alpha).reshape([n, c]);
        Ok(weighted_channels(weights, activations))
    }
}
