//! Grad-CAM element-wise: like HiResCAM with a ReLU on each product before the channel sum.

use burn::tensor::Tensor;

use crate::base::CamWeighting;

/// Grad-CAM element-wise: `sum_c relu(gradients * activations)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradCamElementWise;

impl CamWeighting for GradCamElementWise {
    fn name(&self) -> &'static str {
        "GradCAMElementWise"
    }

    fn cam(&self, activations: Tensor<4>, gradients: Tensor<4>) -> Tensor<3> {
        let [n, _, h, w] = activations.dims();
        (gradients * activations)
            .clamp_min(0.0)
            .sum_dim(1)
            .reshape([n, h, w])
    }
}
