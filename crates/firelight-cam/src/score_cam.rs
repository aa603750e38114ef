//! Score-CAM (Wang et al. 2020): each channel weighted by the target's score on the input masked
//! with that channel's upsampled, min-max-scaled activation; softmax over channels.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use firelight_core::batch::{Perturbed, perturbed_scores};
use firelight_core::{Error, Inputs, Result};

use crate::base::{CamWeighting, LayerValues, upsample_align_corners, weighted_channels};

/// Score-CAM. Needs no gradients: one forward pass per channel, `batch_size` masked inputs at a
/// time (pytorch-grad-cam's `batch_size`, 16 by default).
#[derive(Clone, Copy, Debug)]
pub struct ScoreCam {
    /// Masked inputs per forward pass.
    pub batch_size: usize,
}

impl Default for ScoreCam {
    fn default() -> Self {
        Self { batch_size: 16 }
    }
}

impl ScoreCam {
    /// Score-CAM with `batch_size` masked inputs per forward pass.
    pub fn with_batch_size(batch_size: usize) -> Self {
        Self { batch_size }
    }
}

impl CamWeighting for ScoreCam {
    fn name(&self) -> &'static str {
        "ScoreCAM"
    }

    fn uses_gradients(&self) -> bool {
        false
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        if self.batch_size == 0 {
            return Err(Error::parameter("batch_size", 0, "must be at least 1"));
        }
        let inputs = layer.inputs.clone().into_rank::<4>()?;
        let [n, channels_in, height, width] = inputs.dims();
        let activations = layer.activations.clone();
        let [_, c, _, _] = activations.dims();
        let upsampled = upsample_align_corners(activations.clone(), [height, width]);
        let flat = upsampled.clone().reshape([n, c, height * width]);
        let maxs = flat.clone().max_dim(2).reshape([n, c, 1, 1]);
        let mins = flat.min_dim(2).reshape([n, c, 1, 1]);
        let masks = (upsampled - mins.clone()) / (maxs - mins + 1e-8);
        let mut scores = Vec::with_capacity(n);
        for image in 0..n {
            let photo = inputs.clone().narrow(0, image, 1);
            let image_masks = masks
                .clone()
                .narrow(0, image, 1)
                .reshape([c, 1, height, width]);
            // One perturbation per channel: the photo masked by the channel's activation.
            scores.push(perturbed_scores(
                layer.model,
                layer.target,
                c,
                self.batch_size,
                |channels| {
                    let masked = photo
                        .clone()
                        .expand([channels.len(), channels_in, height, width])
                        * image_masks
                            .clone()
                            .narrow(0, channels.start, channels.len());
                    Ok(Perturbed::new(
                        Inputs::from(masked),
                        vec![image; channels.len()],
                    ))
                },
                |_| {},
            )?);
        }
        let weights = softmax(Tensor::cat(scores, 0).reshape([n, c]), 1);
        Ok(weighted_channels(weights, activations))
    }
}
