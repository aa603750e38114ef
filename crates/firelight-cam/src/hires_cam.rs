//! HiResCAM (Draelos & Carin 2020): gradients times activations, element by element.

use burn::tensor::Tensor;

use firelight_core::Result;

use crate::base::{CamWeighting, LayerValues};

/// HiResCAM: `sum_c gradients * activations`.
#[derive(Clone, Copy, Debug, Default)]
pub struct HiResCam;

impl CamWeighting for HiResCam {
    fn name(&self) -> &'static str {
        "HiResCAM"
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        let (activations, gradients) = (layer.activations.clone(), layer.gradients()?);
        Ok(gradients * activations)
    }
}
