//! LayerCAM (Jiang et al. 2021): activations weighted element by element by the positive gradient.

use burn::tensor::Tensor;

use crate::base::CamWeighting;

/// LayerCAM: `sum_c relu(gradients) * activations`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerCam;

impl CamWeighting for LayerCam {
    fn name(&self) -> &'static str {
        "LayerCAM"
    }

    fn cam(&self, activations: Tensor<4>, gradients: Tensor<4>) -> Tensor<3> {
        let [n, _, h, w] = activations.dims();
        (gradients.clamp_min(0.0) * activations)
            .sum_dim(1)
            .reshape([n, h, w])
    }
}
