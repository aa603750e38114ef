//! LayerCAM (Jiang et al. 2021): activations weighted element by element by the positive gradient.

use burn::tensor::Tensor;

use firelight_core::Result;

use crate::base::{CamWeighting, LayerValues};

/// LayerCAM: `sum_c relu(gradients) * activations`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerCam;

impl CamWeighting for LayerCam {
    fn name(&self) -> &'static str {
        "LayerCAM"
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        let (activations, gradients) = (layer.activations.clone(), layer.gradients()?);
        Ok(gradients.clamp_min(0.0) * activations)
    }
}
