//! The plumbing every CAM method shares, as pytorch-grad-cam's `BaseCAM` does it.

use burn::tensor::Tensor;
use firelight_core::{DynTensor, Error, Model, Result, Target};
use firelight_grad::base::layer_activation_and_gradient;

/// What makes one CAM method: from a layer's activations and the target's gradients there
/// (`[batch, channels, height, width]` each), the map before its ReLU, `[batch, height, width]`.
pub trait CamWeighting {
    /// The method's name, as pytorch-grad-cam calls it.
    fn name(&self) -> &'static str;

    /// The map before the ReLU.
    fn cam(&self, activations: Tensor<4>, gradients: Tensor<4>) -> Tensor<3>;
}

/// `sum_c weights[n, c] * activations[n, c]`: the map of methods that weight whole channels.
pub(crate) fn weighted_channels(weights: Tensor<2>, activations: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = activations.dims();
    (activations * weights.reshape([n, c, 1, 1]))
        .sum_dim(1)
        .reshape([n, h, w])
}

/// Spatial sum per channel, keeping `[batch, channels, 1, 1]`.
pub(crate) fn spatial_sum(t: Tensor<4>) -> Tensor<4> {
    t.sum_dim(3).sum_dim(2)
}

/// A class activation map method on `layers` of a model.
pub struct Cam<'m, W> {
    model: &'m dyn Model,
    layers: Vec<String>,
    weighting: W,
}

impl<'m, W: CamWeighting> Cam<'m, W> {
    /// `weighting` on `layers` (their maps are averaged, as pytorch-grad-cam's `target_layers`).
    ///
    /// Fails for an empty list or a layer the model does not have (listing the ones it has).
    pub fn new<S: Into<String>>(
        model: &'m dyn Model,
        layers: impl IntoIterator<Item = S>,
        weighting: W,
    ) -> Result<Self> {
        let layers: Vec<String> = layers.into_iter().map(Into::into).collect();
        if layers.is_empty() {
            return Err(Error::parameter("layers", "[]", "give at least one layer"));
        }
        for layer in &layers {
            model.check_layer(layer)?;
        }
        Ok(Self {
            model,
            layers,
            weighting,
        })
    }

    /// Maps of each layer, ReLU'd and scaled to [0, 1] per image, at the layer's resolution.
    pub fn layer_maps(&self, inputs: &DynTensor, target: &Target) -> Result<Vec<DynTensor>> {
        self.layers
            .iter()
            .map(|layer| {
                let (activations, gradients) =
                    layer_activation_and_gradient(self.model, inputs, layer, target)?;
                let spatial = |t: &DynTensor| -> Result<Tensor<4>> {
                    if t.shape().len() != 4 {
                        return Err(Error::RankMismatch {
                            what: format!(
                                "layer `{layer}` for {} (a spatial CAM needs [batch, channels, height, width])",
                                self.weighting.name()
                            ),
                            expected: 4,
                            got: t.shape().to_vec(),
                        });
                    }
                    t.clone().into_rank::<4>()
                };
                let map = self
                    .weighting
                    .cam(spatial(&activations)?, spatial(&gradients)?)
                    .clamp_min(0.0);
                Ok(DynTensor::new(map))
            })
            .collect()
    }

    /// The map of each input `[batch, height, width]` at the input's resolution, in [0, 1].
    ///
    /// Per layer: the method's map, ReLU, per-image min-max scaling, bilinear upsampling to the
    /// input's last two dimensions; then the layers' mean, scaled again.
    pub fn attribute(&self, inputs: &DynTensor, target: &Target) -> Result<DynTensor> {
        let shape = inputs.shape();
        if shape.len() < 3 {
            return Err(Error::RankMismatch {
                what: "inputs of a CAM (the map is drawn over the last two dimensions)".into(),
                expected: 4,
                got: shape.to_vec(),
            });
        }
        let (height, width) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let batch = inputs.batch();
        let mut sum = vec![0f32; batch * height * width];
        for map in self.layer_maps(inputs, target)? {
            let [_, h, w] = map.shape().try_into().expect("maps are [batch, h, w]");
            let scaled = scale_per_image(&map.to_vec()?, batch);
            let resized = resize_bilinear(&scaled, batch, [h, w], [height, width]);
            for (s, v) in sum.iter_mut().zip(resized) {
                *s += v.max(0.0);
            }
        }
        let layers = self.layers.len() as f32;
        let mean: Vec<f32> = sum.into_iter().map(|v| v / layers).collect();
        // pytorch-grad-cam scales the mean again even for one layer (not quite a no-op).
        let scaled = scale_per_image(&mean, batch);
        DynTensor::from_vec(scaled, vec![batch, height, width], &inputs.device())
    }
}

/// pytorch-grad-cam's `scale_cam_image` without the resize: per image, `(x - min) / (1e-7 + max)`
/// with `max` taken after subtracting `min`. An all-zero map stays zero (no division by zero).
pub fn scale_per_image(values: &[f32], batch: usize) -> Vec<f32> {
    let per = values.len() / batch.max(1);
    values
        .chunks(per.max(1))
        .flat_map(|image| {
            let min = image.iter().copied().fold(f32::INFINITY, f32::min);
            let shifted: Vec<f32> = image.iter().map(|v| v - min).collect();
            let max = shifted.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            shifted.into_iter().map(move |v| v / (1e-7 + max))
        })
        .collect()
}

/// OpenCV's `cv2.resize(..., INTER_LINEAR)` for float images (half-pixel centres, edges clamped),
/// on `batch` images of `from` = [h, w], to `to` = [h, w].
pub fn resize_bilinear(values: &[f32], batch: usize, from: [usize; 2], to: [usize; 2]) -> Vec<f32> {
    let axis = |src: usize, dst: usize| -> Vec<(usize, usize, f32)> {
        let scale = src as f32 / dst as f32;
        (0..dst)
            .map(|d| {
                let s = (d as f32 + 0.5) * scale - 0.5;
                let mut i = s.floor() as isize;
                let mut f = s - i as f32;
                if i < 0 {
                    i = 0;
                    f = 0.0;
                }
                if i as usize >= src - 1 {
                    i = src as isize - 1;
                    f = 0.0;
                }
                let i = i as usize;
                (i, (i + 1).min(src - 1), f)
            })
            .collect()
    };
    let (rows, cols) = (axis(from[0], to[0]), axis(from[1], to[1]));
    let mut out = Vec::with_capacity(batch * to[0] * to[1]);
    for image in values.chunks(from[0] * from[1]).take(batch) {
        for &(y0, y1, fy) in &rows {
            for &(x0, x1, fx) in &cols {
                let at = |y: usize, x: usize| image[y * from[1] + x];
                let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    out
}
