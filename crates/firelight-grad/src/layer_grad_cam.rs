//! Captum's Layer Grad-CAM, at the layer's own resolution, and `LayerAttribution.interpolate`
//! to bring a layer map to the input's size. (firelight-cam holds pytorch-grad-cam's family,
//! normalised and upsampled; this is Captum's raw map.)

use burn::tensor::activation::relu;
use firelight_core::gradients::{layer_gradients, validate};
use firelight_core::{Attribution, Attributions, DynTensor, Error, Inputs, Model, Result, Target};

/// Captum's `LayerGradCam`: the layer's gradients averaged over its spatial axes weight its
/// channels; summed over the channels (`attr_dim_summation`, true) to `[batch, 1, ...spatial]`,
/// optionally through a ReLU (`relu_attributions`, false). A layer without spatial axes
/// (`[batch, units]`) is weighted by its gradient itself, as in Captum.
pub struct LayerGradCam<'m> {
    model: &'m dyn Model,
    layer: String,
    relu_attributions: bool,
    attr_dim_summation: bool,
}

impl<'m> LayerGradCam<'m> {
    /// Layer Grad-CAM of `model` at `layer`, Captum's defaults.
    pub fn new(model: &'m dyn Model, layer: impl Into<String>) -> Result<Self> {
        let layer = layer.into();
        model.check_layer(&layer)?;
        Ok(Self {
            model,
            layer,
            relu_attributions: false,
            attr_dim_summation: true,
        })
    }

    /// Pass the map through a ReLU (default false).
    pub fn relu_attributions(mut self, relu: bool) -> Self {
        self.relu_attributions = relu;
        self
    }

    /// Sum the weighted channels (default true); `false` keeps one map per channel.
    pub fn attr_dim_summation(mut self, sum: bool) -> Self {
        self.attr_dim_summation = sum;
        self
    }
}

impl Attribution for LayerGradCam<'_> {
    fn attribute_rows(
        &self,
        inputs: &Inputs,
        target: &Target,
        samples: &[usize],
    ) -> Result<Attributions> {
        validate(self.model, inputs, samples)?;
        let (activation, grad) =
            layer_gradients(self.model, inputs, &self.layer, target, samples, None)?;
        let shape = activation.shape().to_vec();
        let (batch, channels) = (shape[0], shape.get(1).copied().unwrap_or(1));
        let spatial: usize = shape.iter().skip(2).product();
        let grad = grad.into_flat().reshape([batch, channels, spatial]);
        let weights = if shape.len() > 2 {
            grad.mean_dim(2)
        } else {
            grad
        };
        let scaled = weights * activation.into_flat().reshape([batch, channels, spatial]);
        let (map, mut out_shape) = if self.attr_dim_summation {
            let mut s = shape.clone();
            if s.len() > 1 {
                s[1] = 1;
            }
            (scaled.sum_dim(1), s)
        } else {
            (scaled, shape.clone())
        };
        if out_shape.len() < 2 {
            out_shape = vec![batch, 1];
        }
        let flat = map.reshape([batch, out_shape[1..].iter().product::<usize>()]);
        let flat = if self.relu_attributions {
            relu(flat)
        } else {
            flat
        };
        Ok(Attributions::single(
            &self.layer,
            DynTensor::from_flat(flat, out_shape)?,
        ))
    }
}

/// Captum's `LayerAttribution.interpolate` with `interpolate_mode="nearest"` (torch's
/// `F.interpolate`): a map `[batch, channels, h, w]` resized to `[batch, channels, height, width]`,
/// output pixel `(y, x)` taking input pixel `(floor(y * h / height), floor(x * w / width))`.
pub fn interpolate_nearest(map: &DynTensor, height: usize, width: usize) -> Result<DynTensor> {
    let [batch, channels, h, w]: [usize; 4] = map.shape().try_into().map_err(|_| {
        Error::Model(format!(
            "interpolating a layer map of shape {:?}: expected [batch, channels, h, w]",
            map.shape()
        ))
    })?;
    let values = map.to_vec()?;
    let mut out = Vec::with_capacity(batch * channels * height * width);
    for plane in values.chunks(h * w) {
        for y in 0..height {
            let sy = ((y as f64 * h as f64 / height as f64).floor() as usize).min(h - 1);
            for x in 0..width {
                let sx = ((x as f64 * w as f64 / width as f64).floor() as usize).min(w - 1);
                out.push(plane[sy * w + sx]);
            }
        }
    }
    DynTensor::from_vec(out, vec![batch, channels, height, width], &map.device())
}
