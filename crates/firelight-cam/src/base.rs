//! The plumbing every CAM method shares, as pytorch-grad-cam's `BaseCAM` does it.

use burn::tensor::{Tensor, TensorData};
use firelight_core::gradients::layer_activation_and_gradient;
use firelight_core::{DynTensor, Error, Inputs, Model, Recorder, Result, Taps, Target};

use crate::eigen_cam::first_component;

/// One target layer's values for a batch, as a method sees them.
pub struct LayerValues<'a> {
    /// The model being explained (methods such as Score-CAM run it again).
    pub model: &'a dyn Model,
    /// The batch being explained.
    pub inputs: &'a DynTensor,
    /// What is being explained.
    pub target: &'a Target,
    /// The layer's name.
    pub layer: &'a str,
    /// The layer's activations, `[batch, channels, height, width]` (token layers already reshaped).
    pub activations: Tensor<4>,
    /// The target's gradients there, same shape; `None` for methods that use no gradients.
    pub gradients: Option<Tensor<4>>,
    /// How a token layer was reshaped, for methods that must change the layer's raw value.
    pub tokens: Option<TokenReshape>,
}

impl LayerValues<'_> {
    /// The gradients; an error for a method that declared it uses none.
    pub fn gradients(&self) -> Result<Tensor<4>> {
        self.gradients.clone().ok_or_else(|| {
            Error::Model(format!(
                "gradients at `{}` were not computed (the method said it uses none)",
                self.layer
            ))
        })
    }
}

/// What makes one CAM method: from a layer's values, its activations weighted per channel or
/// per element, `[batch, channels, height, width]`. The base sums them over channels (or takes
/// their first principal component, with `eigen_smooth`), applies the ReLU, scales and resizes.
pub trait CamWeighting {
    /// The method's name, as pytorch-grad-cam calls it.
    fn name(&self) -> &'static str;

    /// Whether the method needs the target's gradients (Score-CAM and Ablation-CAM do not).
    fn uses_gradients(&self) -> bool {
        true
    }

    /// The weighted activations, pytorch-grad-cam's `weights[:, :, None, None] * activations`.
    fn weighted_activations(&self, layer: &LayerValues) -> Result<Tensor<4>>;

    /// The map before the ReLU, `[batch, height, width]`: the weighted activations summed over
    /// channels, or their first principal component with `eigen_smooth`.
    fn cam_image(&self, layer: &LayerValues, eigen_smooth: bool) -> Result<Tensor<3>> {
        let weighted = self.weighted_activations(layer)?;
        if eigen_smooth {
            return Ok(first_component(weighted));
        }
        let [n, _, h, w] = weighted.dims();
        Ok(weighted.sum_dim(1).reshape([n, h, w]))
    }
}

/// `weights[n, c] * activations[n, c, h, w]`: the weighted activations of methods that weight
/// whole channels.
pub(crate) fn weighted_channels(weights: Tensor<2>, activations: Tensor<4>) -> Tensor<4> {
    let [n, c, _, _] = activations.dims();
    activations * weights.reshape([n, c, 1, 1])
}

/// Spatial sum per channel, keeping `[batch, channels, 1, 1]`.
pub(crate) fn spatial_sum(t: Tensor<4>) -> Tensor<4> {
    t.sum_dim(3).sum_dim(2)
}

/// How to read a token layer `[batch, tokens, channels]` (a ViT block) as an image
/// `[batch, channels, height, width]`: drop the first `skip` tokens (the class token), lay the
/// rest out row by row, as pytorch-grad-cam's `reshape_transform` examples do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenReshape {
    /// Tokens before the patch grid (1 for a ViT's class token).
    pub skip: usize,
    /// Grid height and width; `None` for a square grid inferred from the token count.
    pub grid: Option<(usize, usize)>,
}

impl Default for TokenReshape {
    fn default() -> Self {
        Self {
            skip: 1,
            grid: None,
        }
    }
}

impl TokenReshape {
    /// The grid `(height, width)` for `tokens` tokens.
    fn grid_for(&self, layer: &str, tokens: usize) -> Result<(usize, usize)> {
        let patches = tokens.saturating_sub(self.skip);
        let (h, w) = match self.grid {
            Some(grid) => grid,
            None => {
                let side = (patches as f64).sqrt().round() as usize;
                (side, side)
            }
        };
        if h * w != patches || patches == 0 {
            return Err(Error::ShapeMismatch {
                what: format!(
                    "token layer `{layer}`: {tokens} tokens less {} skipped do not fill a {h}x{w} grid",
                    self.skip
                ),
                expected: vec![self.skip + h * w],
                got: vec![tokens],
            });
        }
        Ok((h, w))
    }

    /// `[batch, tokens, channels]` as `[batch, channels, height, width]`.
    pub fn apply(&self, layer: &str, value: &DynTensor) -> Result<Tensor<4>> {
        let shape = value.shape();
        if shape.len() != 3 {
            return Err(Error::RankMismatch {
                what: format!("token layer `{layer}` ([batch, tokens, channels])"),
                expected: 3,
                got: shape.to_vec(),
            });
        }
        let (n, tokens, c) = (shape[0], shape[1], shape[2]);
        let (h, w) = self.grid_for(layer, tokens)?;
        Ok(value
            .clone()
            .into_rank::<3>()?
            .slice([0..n, self.skip..tokens, 0..c])
            .reshape([n, h, w, c])
            .permute([0, 3, 1, 2]))
    }
}

/// A class activation map method on `layers` of a model.
pub struct Cam<'m, W> {
    model: &'m dyn Model,
    layers: Vec<String>,
    weighting: W,
    eigen_smooth: bool,
    aug_smooth: bool,
    tokens: Option<TokenReshape>,
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
        model.check_layers(&layers)?;
        Ok(Self {
            model,
            layers,
            weighting,
            eigen_smooth: false,
            aug_smooth: false,
            tokens: None,
        })
    }

    /// pytorch-grad-cam's `eigen_smooth`: the first principal component of the weighted
    /// activations instead of their sum (less noise).
    pub fn eigen_smooth(mut self, on: bool) -> Self {
        self.eigen_smooth = on;
        self
    }

    /// pytorch-grad-cam's `aug_smooth`: the mean of the maps of six test-time augmentations
    /// (horizontal flip x brightness 0.9, 1, 1.1), each mapped back before averaging.
    pub fn aug_smooth(mut self, on: bool) -> Self {
        self.aug_smooth = on;
        self
    }

    /// Reads the layers as tokens `[batch, tokens, channels]` (ViT-like models), pytorch-grad-cam's
    /// `reshape_transform`.
    pub fn reshape_tokens(mut self, tokens: TokenReshape) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The method's weighting.
    pub fn weighting(&self) -> &W {
        &self.weighting
    }

    fn spatial(&self, layer: &str, value: &DynTensor) -> Result<Tensor<4>> {
        if let Some(tokens) = &self.tokens {
            return tokens.apply(layer, value);
        }
        if value.shape().len() != 4 {
            return Err(Error::RankMismatch {
                what: format!(
                    "layer `{layer}` for {} (a spatial CAM needs [batch, channels, height, width]; \
                     token layers need a token reshape)",
                    self.weighting.name()
                ),
                expected: 4,
                got: value.shape().to_vec(),
            });
        }
        value.clone().into_rank::<4>()
    }

    /// Maps of each layer, ReLU'd (not yet scaled), at the layer's resolution `[batch, h, w]`.
    pub fn layer_maps(&self, inputs: &DynTensor, target: &Target) -> Result<Vec<DynTensor>> {
        target.check_batch(inputs.batch())?;
        let recorded = if self.weighting.uses_gradients() {
            None
        } else {
            let mut recorder = Recorder::new(self.layers.iter().cloned());
            self.model
                .forward(&Inputs::from(inputs), &mut Taps::with_hook(&mut recorder))?;
            Some(recorder)
        };
        self.layers
            .iter()
            .map(|layer| {
                let (activations, gradients) = match &recorded {
                    Some(recorder) => {
                        let value = recorder.get(layer).ok_or_else(|| {
                            Error::Model(format!("layer `{layer}` did not run in the forward pass"))
                        })?;
                        (self.spatial(layer, value)?, None)
                    }
                    None => {
                        let (a, g) = layer_activation_and_gradient(
                            self.model,
                            &Inputs::from(inputs),
                            layer,
                            target,
                        )?;
                        (self.spatial(layer, &a)?, Some(self.spatial(layer, &g)?))
                    }
                };
                let values = LayerValues {
                    model: self.model,
                    inputs,
                    target,
                    layer,
                    activations,
                    gradients,
                    tokens: self.tokens,
                };
                let map = self
                    .weighting
                    .cam_image(&values, self.eigen_smooth)?
                    .clamp_min(0.0);
                Ok(DynTensor::new(map))
            })
            .collect()
    }

    /// The map of each input `[batch, height, width]` at the input's resolution, in [0, 1].
    ///
    /// Per layer: the method's map, ReLU, per-image min-max scaling, bilinear upsampling to the
    /// input's last two dimensions; then the layers' mean, scaled again. With `aug_smooth`, the
    /// mean of that over the augmentations.
    pub fn attribute(&self, inputs: &DynTensor, target: &Target) -> Result<DynTensor> {
        let shape = inputs.shape().to_vec();
        if shape.len() < 3 {
            return Err(Error::RankMismatch {
                what: "inputs of a CAM (the map is drawn over the last two dimensions)".into(),
                expected: 4,
                got: shape,
            });
        }
        let (batch, height, width) = (
            inputs.batch(),
            shape[shape.len() - 2],
            shape[shape.len() - 1],
        );
        let maps = if self.aug_smooth {
            if shape.len() != 4 {
                return Err(Error::RankMismatch {
                    what: "inputs of aug_smooth (images [batch, channels, height, width])".into(),
                    expected: 4,
                    got: shape,
                });
            }
            let mut sum = vec![0f32; batch * height * width];
            let mut count = 0f32;
            for flip in [false, true] {
                for factor in [1.0f32, 0.9, 1.1] {
                    let image = inputs.clone().into_rank::<4>()?;
                    let image = if flip { image.flip([3]) } else { image };
                    let augmented = DynTensor::new(image.mul_scalar(factor));
                    let map = self.map(&augmented, target, batch, height, width)?;
                    let map = if flip { flip_rows(&map, width) } else { map };
                    sum.iter_mut().zip(map).for_each(|(s, v)| *s += v);
                    count += 1.0;
                }
            }
            sum.into_iter().map(|v| v / count).collect()
        } else {
            self.map(inputs, target, batch, height, width)?
        };
        DynTensor::from_vec(maps, vec![batch, height, width], &inputs.device())
    }

    fn map(
        &self,
        inputs: &DynTensor,
        target: &Target,
        batch: usize,
        height: usize,
        width: usize,
    ) -> Result<Vec<f32>> {
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
        Ok(scale_per_image(&mean, batch))
    }
}

fn flip_rows(values: &[f32], width: usize) -> Vec<f32> {
    values
        .chunks(width)
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}

/// torch's `UpsamplingBilinear2d` (bilinear with `align_corners=True`) of `[n, c, h, w]` to
/// `size`, as two matrix products so it runs on any backend.
pub(crate) fn upsample_align_corners(values: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [n, c, h, w] = values.dims();
    let device = values.device();
    let matrix = |from: usize, to: usize| -> Tensor<2> {
        let mut m = vec![0f32; to * from];
        for d in 0..to {
            let s = if to > 1 {
                d as f32 * (from - 1) as f32 / (to - 1) as f32
            } else {
                0.0
            };
            let i = (s.floor() as usize).min(from - 1);
            let f = s - i as f32;
            m[d * from + i] += 1.0 - f;
            if i + 1 < from {
                m[d * from + i + 1] += f;
            }
        }
        Tensor::from_data(TensorData::new(m, [to, from]), &device)
    };
    let rows = matrix(h, size[0])
        .reshape([1, size[0], h])
        .expand([n * c, size[0], h]);
    let cols = matrix(w, size[1])
        .transpose()
        .reshape([1, w, size[1]])
        .expand([n * c, w, size[1]]);
    let flat = values.reshape([n * c, h, w]);
    rows.matmul(flat)
        .matmul(cols)
        .reshape([n, c, size[0], size[1]])
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

#[cfg(test)]
mod tests {
    use super::*;
    use firelight_core::Device;

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn tokens_become_a_channel_first_grid_without_the_class_token() {
        // [1, 5 tokens, 2 channels]: token t has channel values (10t, 10t + 1).
        let values: Vec<f32> = (0..5)
            .flat_map(|t| [10.0 * t as f32, 10.0 * t as f32 + 1.0])
            .collect();
        let tokens = DynTensor::from_vec(values, vec![1, 5, 2], &Device::flex()).unwrap();
        let grid = TokenReshape::default().apply("vit", &tokens).unwrap();
        assert_eq!(grid.dims(), [1, 2, 2, 2]);
        assert_eq!(
            host(grid),
            vec![10.0, 20.0, 30.0, 40.0, 11.0, 21.0, 31.0, 41.0]
        );
        let err = TokenReshape {
            skip: 0,
            grid: Some((2, 3)),
        }
        .apply("vit", &tokens)
        .unwrap_err()
        .to_string();
        assert!(err.contains("do not fill a 2x3 grid"), "{err}");
    }

    #[test]
    fn align_corners_upsampling_keeps_the_corners() {
        let t =
            Tensor::<1>::from_floats([0.0, 2.0, 4.0, 6.0], &Device::flex()).reshape([1, 1, 2, 2]);
        let up = host(upsample_align_corners(t, [3, 3]));
        assert_eq!(up, vec![0.0, 1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0]);
    }
}
