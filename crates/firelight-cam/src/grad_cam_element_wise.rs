//! Grad-CAM element-wise: like HiResCAM with a ReLU on each product before the channel sum.

use burn::tensor::Tensor;

use firelight_core::Result;

use crate::base::{CamWeighting, LayerValues};

/// Grad-CAM element-wise: `sum_c relu(gradients * activations)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradCamElementWise;

impl CamWeighting for GradCamElementWise {
    fn name(&self) -> &'static str {
        "GradCAMElementWise"
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        let (activations, gradients) = (layer.activations.clone(), layer.gradients()?);
        Ok((gradients * activations).clamp_min(0.0))
    }
}
