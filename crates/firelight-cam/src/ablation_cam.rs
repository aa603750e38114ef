//! Ablation-CAM (Desai & Ramaswamy 2020): each channel weighted by how much the target's score
//! drops when that channel is ablated at the layer, `(original - ablated) / original`.

use burn::tensor::{Tensor, TensorData};
use firelight_core::batch::{Perturbed, perturbed_scores};
use firelight_core::{DynTensor, Error, Inputs, Result, TapHook, Taps};

use crate::base::{CamWeighting, LayerValues, weighted_channels};

/// Ablation-CAM. Needs no gradients: one forward pass per channel, `batch_size` ablated copies
/// at a time (pytorch-grad-cam's `batch_size`, 32 by default). A channel is ablated as
/// pytorch-grad-cam's `AblationLayer` does it: set to 0 when the layer's minimum is 0, else to the
/// minimum less 1e7 -- where, because that layer rewrites the batch in place and takes the minimum
/// again for each row, row `i` of a batch gets the minimum less `(i + 1) * 1e7`. Kept for parity;
/// it makes the weights at layers with negative values depend on `batch_size`.
#[derive(Clone, Copy, Debug)]
pub struct AblationCam {
    /// Ablated copies per forward pass.
    pub batch_size: usize,
}

impl Default for AblationCam {
    fn default() -> Self {
        Self { batch_size: 32 }
    }
}

impl AblationCam {
    /// Ablation-CAM with `batch_size` ablated copies per forward pass.
    pub fn with_batch_size(batch_size: usize) -> Self {
        Self { batch_size }
    }
}

const ABLATION_VALUE: f32 = 1e7;

/// Replaces the layer's value, row `i` with channel `channels[i]` ablated.
struct Ablate<'a> {
    layer: &'a str,
    channels: std::ops::Range<usize>,
    /// Channels are on the last axis (token layers) rather than axis 1.
    channels_last: bool,
}

impl TapHook for Ablate<'_> {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        if layer != self.layer {
            return Ok(value);
        }
        let shape = value.shape().to_vec();
        let rows = value.batch();
        if rows != self.channels.len() {
            return Err(Error::Model(format!(
                "ablation at `{layer}`: {rows} rows for {} channels",
                self.channels.len()
            )));
        }
        let features = value.features();
        let axis = if self.channels_last {
            shape.len() - 1
        } else {
            1
        };
        let inner: usize = shape[axis + 1..].iter().product();
        let count = shape[axis];
        let flat = value.flat().clone();
        let mut min: f32 = flat.clone().min().into_scalar();
        let mut mask = vec![0f32; rows * features];
        let mut fill = vec![0f32; rows * features];
        for (row, channel) in self.channels.clone().enumerate() {
            if min != 0.0 {
                min -= ABLATION_VALUE;
            }
            let span = row * features..(row + 1) * features;
            for (i, (m, f)) in mask[span.clone()]
                .iter_mut()
                .zip(&mut fill[span])
                .enumerate()
            {
                if (i / inner) % count == channel {
                    *m = 1.0;
                    *f = min;
                }
            }
        }
        let device = flat.device();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, features]), &device);
        let fill = Tensor::<2>::from_data(TensorData::new(fill, [rows, features]), &device);
        let keep = mask.neg().add_scalar(1.0);
        Ok(value.with_flat(flat * keep + fill))
    }
}

impl CamWeighting for AblationCam {
    fn name(&self) -> &'static str {
        "AblationCAM"
    }

    fn uses_gradients(&self) -> bool {
        false
    }

    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>> {
        if self.batch_size == 0 {
            return Err(Error::parameter("batch_size", 0, "must be at least 1"));
        }
        let inputs = layer.inputs;
        let n = inputs.batch();
        let activations = layer.activations.clone();
        let [_, c, _, _] = activations.dims();
        let samples: Vec<usize> = (0..n).collect();
        let outputs = layer
            .model
            .forward(&Inputs::from(inputs), &mut Taps::none())?;
        let original = layer.target.scores(outputs, &samples)?;
        let mut scores = Vec::with_capacity(n);
        for image in 0..n {
            let row = Inputs::from(inputs.rows(image, image + 1));
            // One perturbation per channel: `batch_size` copies of the image, each with its
            // channel ablated at the layer.
            scores.push(perturbed_scores(
                layer.model,
                layer.target,
                c,
                self.batch_size,
                |channels| {
                    let copies = row.select_rows(&vec![0; channels.len()])?;
                    let ablate = Ablate {
                        layer: layer.layer,
                        channels: channels.clone(),
                        channels_last: layer.tokens.is_some(),
                    };
                    Ok(Perturbed {
                        inputs: copies,
                        samples: vec![image; channels.len()],
                        hook: Some(Box::new(ablate)),
                    })
                },
                |_| {},
            )?);
        }
        let ablated = Tensor::cat(scores, 0).reshape([n, c]);
        let original = original.reshape([n, 1]);
        let weights = (original.clone() - ablated) / original;
        Ok(weighted_channels(weights, activations))
    }
}
