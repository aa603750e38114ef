//! HiResCAM (Draelos & Carin 2020): gradients times activations, element by element.

use burn::tensor::Tensor;

use crate::base::CamWeighting;

/// HiResCAM: `sum_c gradients * activations`.
#[derive(Clone, Copy, Debug, Default)]
pub struct HiResCam;

impl CamWeighting for HiResCam {
    fn name(&self) -> &'static str {
        "HiResCAM"
    }

    fn cam(&self, activations: Tensor<4>, gradients: Tensor<4>) -> Tensor<3> {
        let [n, _, h, w] = activations.dims();
        (gradients * activations).sum_dim(1).reshape([n, h, w])
    }
}
