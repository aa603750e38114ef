//! RGB images: PNG out (photos in: [`RgbImage::read`]), resizing, conversion to model input, and
//! heatmap overlays.

use std::path::Path;

use firelight_core::npy::write_atomic;
use firelight_core::{Device, DynTensor, Error, Result};

use crate::colormap::Colormap;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height * width * 3` bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A `width` x `height` image of one colour.
    pub fn filled(width: usize, height: usize, color: [u8; 3]) -> Self {
        Self {
            width,
            height,
            data: color.repeat(width * height),
        }
    }

    /// Copies `other` into this image with its top-left corner at `(x, y)`, clipped to the edges.
    pub fn paste(&mut self, other: &RgbImage, x: usize, y: usize) {
        let cols = other.width.min(self.width.saturating_sub(x));
        for row in 0..other.height.min(self.height.saturating_sub(y)) {
            let src = row * other.width * 3;
            let dst = ((y + row) * self.width + x) * 3;
            self.data[dst..dst + cols * 3].copy_from_slice(&other.data[src..src + cols * 3]);
        }
    }

    /// Writes the image as PNG, atomically (a failure leaves no file behind).
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        write_atomic(path, &self.encode_png(path)?)
    }

    /// The image as PNG bytes (errors name `path`, where they are going).
    pub fn encode_png(&self, path: impl AsRef<Path>) -> Result<Vec<u8>> {
        use ::image::ImageEncoder;
        let path = path.as_ref();
        let bad = |reason: String| Error::Image {
            path: path.to_path_buf(),
            reason,
        };
        // The encoder asserts on a wrong buffer length; say so instead.
        if self.data.len() != self.width * self.height * 3 {
            return Err(bad(format!(
                "{} bytes do not make a {}x{} RGB image",
                self.data.len(),
                self.width,
                self.height
            )));
        }
        let (width, height) = (
            u32::try_from(self.width).map_err(|_| bad("too wide for PNG".into()))?,
            u32::try_from(self.height).map_err(|_| bad("too tall for PNG".into()))?,
        );
        let mut bytes = Vec::new();
        ::image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(&self.data, width, height, ::image::ExtendedColorType::Rgb8)
            .map_err(|e| bad(e.to_string()))?;
        Ok(bytes)
    }

    /// The pixel at `(x, y)`.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Each pixel drawn as a `factor` x `factor` block (small pictures shown without blur).
    pub fn upscale(&self, factor: usize) -> Self {
        let factor = factor.max(1);
        let (width, height) = (self.width * factor, self.height * factor);
        let mut out = Self::filled(width, height, [0, 0, 0]);
        for y in 0..height {
            for x in 0..width {
                let from = ((y / factor) * self.width + x / factor) * 3;
                out.data[(y * width + x) * 3..][..3].copy_from_slice(&self.data[from..from + 3]);
            }
        }
        out
    }

    /// Bilinear resize to `width x height` (pixel centres aligned, as OpenCV and PIL do).
    pub fn resize(&self, width: usize, height: usize) -> Self {
        let mut data = Vec::with_capacity(width * height * 3);
        let sx = self.width as f32 / width as f32;
        let sy = self.height as f32 / height as f32;
        for y in 0..height {
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (self.height - 1) as f32);
            let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
            let y1 = (y0 + 1).min(self.height - 1);
            for x in 0..width {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (self.width - 1) as f32);
                let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
                let x1 = (x0 + 1).min(self.width - 1);
                let (a, b, c, d) = (
                    self.pixel(x0, y0),
                    self.pixel(x1, y0),
                    self.pixel(x0, y1),
                    self.pixel(x1, y1),
                );
                for ch in 0..3 {
                    let top = a[ch] as f32 * (1.0 - tx) + b[ch] as f32 * tx;
                    let bottom = c[ch] as f32 * (1.0 - tx) + d[ch] as f32 * tx;
                    data.push((top * (1.0 - ty) + bottom * ty).round() as u8);
                }
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// Resizes the shorter side to `resize` and crops the centre `crop x crop` square
    /// (torchvision's `Resize(resize)` + `CenterCrop(crop)`).
    pub fn resize_and_center_crop(&self, resize: usize, crop: usize) -> Self {
        let (w, h) = if self.width <= self.height {
            (
                resize,
                (resize * self.height).div_ceil(self.width).max(resize),
            )
        } else {
            (
                (resize * self.width).div_ceil(self.height).max(resize),
                resize,
            )
        };
        let resized = self.resize(w, h);
        let (left, top) = ((w.saturating_sub(crop)) / 2, (h.saturating_sub(crop)) / 2);
        let mut data = Vec::with_capacity(crop * crop * 3);
        for y in top..top + crop.min(h) {
            let start = (y * w + left) * 3;
            data.extend_from_slice(&resized.data[start..start + crop.min(w) * 3]);
        }
        Self {
            width: crop.min(w),
            height: crop.min(h),
            data,
        }
    }

    /// The image as a model input `[1, 3, height, width]`: `(pixel / 255 - mean) / std` per channel.
    pub fn to_tensor(&self, mean: [f32; 3], std: [f32; 3], device: &Device) -> Result<DynTensor> {
        let plane = self.width * self.height;
        let mut values = vec![0f32; 3 * plane];
        for (i, px) in self.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                values[c * plane + i] = (px[c] as f32 / 255.0 - mean[c]) / std[c];
            }
        }
        DynTensor::from_vec(values, vec![1, 3, self.height, self.width], device)
    }
}

/// One value per pixel from an attribution `[1, channels, height, width]`: the sum over channels
/// of absolute values, divided by its 98th percentile and clipped to 1, so that a few extreme
/// pixels do not leave the rest of the picture dark.
///
/// This is a plain percentile, not Captum's cumulative-sum threshold; for Captum's numbers use
/// [`crate::visualize::normalize_attr`]. It is kept as it is because the faithfulness metrics rank
/// pixels by it.
pub fn pixel_map(attribution: &DynTensor) -> Result<(Vec<f32>, usize, usize)> {
    let shape = attribution.shape();
    if shape.len() != 4 || shape[0] != 1 {
        return Err(Error::RankMismatch {
            what: "attribution to draw (one image, [1, channels, height, width])".into(),
            expected: 4,
            got: shape.to_vec(),
        });
    }
    let (channels, height, width) = (shape[1], shape[2], shape[3]);
    let values = attribution.to_vec()?;
    let plane = height * width;
    let mut map: Vec<f32> = (0..plane)
        .map(|i| (0..channels).map(|c| values[c * plane + i].abs()).sum())
        .collect();
    let mut sorted: Vec<f32> = map.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let scale = sorted
        .get(((sorted.len() as f64 * 0.98) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .filter(|&v| v > 0.0)
        .or_else(|| sorted.last().copied().filter(|&v| v > 0.0));
    if let Some(scale) = scale {
        map.iter_mut().for_each(|v| *v = (*v / scale).min(1.0));
    }
    Ok((map, width, height))
}

/// One signed value per pixel from an attribution `[1, channels, height, width]`: the sum over
/// channels, divided by the 98th percentile of its absolute values and clipped to `[-1, 1]`, for a
/// diverging colormap (like Captum's `sign="all"`, but with a plain percentile; see [`pixel_map`]).
pub fn signed_pixel_map(attribution: &DynTensor) -> Result<(Vec<f32>, usize, usize)> {
    let (_, width, height) = pixel_map(attribution)?;
    let values = attribution.to_vec()?;
    let plane = width * height;
    let channels = values.len() / plane.max(1);
    let mut map: Vec<f32> = (0..plane)
        .map(|i| (0..channels).map(|c| values[c * plane + i]).sum())
        .collect();
    let mut magnitudes: Vec<f32> = map
        .iter()
        .map(|v| v.abs())
        .filter(|v| v.is_finite())
        .collect();
    magnitudes.sort_by(f32::total_cmp);
    let at = ((magnitudes.len() as f64 * 0.98) as usize).min(magnitudes.len().saturating_sub(1));
    if let Some(&scale) = magnitudes.get(at).filter(|v| **v > 0.0) {
        map.iter_mut()
            .for_each(|v| *v = (*v / scale).clamp(-1.0, 1.0));
    }
    Ok((map, width, height))
}

/// An attribution `[1, channels, height, width]` drawn over `photo` with `colormap`: signed
/// ([`signed_pixel_map`]) for the signed maps ([`Colormap::is_signed`]), magnitudes
/// ([`pixel_map`]) otherwise.
pub fn attribution_overlay_with(
    photo: &RgbImage,
    attribution: &DynTensor,
    colormap: Colormap,
) -> Result<RgbImage> {
    let (map, _, _) = if colormap.is_signed() {
        signed_pixel_map(attribution)?
    } else {
        pixel_map(attribution)?
    };
    overlay(photo, &map, colormap, 0.5)
}

/// An image attribution `[1, channels, height, width]` as a heatmap over `photo` (same size):
/// [`pixel_map`] drawn in jet, half photo and half heat, as pytorch-grad-cam shows its maps.
pub fn attribution_overlay(photo: &RgbImage, attribution: &DynTensor) -> Result<RgbImage> {
    let (map, _, _) = pixel_map(attribution)?;
    overlay(photo, &map, Colormap::Jet, 0.5)
}

/// The map drawn with `colormap` over `image` (both the same size); `image_weight` is the share
/// of the photo in the blend (pytorch-grad-cam's `show_cam_on_image` uses 0.5).
pub fn overlay(
    image: &RgbImage,
    map: &[f32],
    colormap: Colormap,
    image_weight: f32,
) -> Result<RgbImage> {
    if map.len() != image.width * image.height {
        return Err(Error::ShapeMismatch {
            what: "heatmap vs image pixels".into(),
            expected: vec![image.height, image.width],
            got: vec![map.len()],
        });
    }
    let w = image_weight.clamp(0.0, 1.0);
    let data = image
        .data
        .chunks_exact(3)
        .zip(map)
        .flat_map(|(px, &v)| {
            let heat = colormap.rgb(v);
            (0..3).map(move |c| (heat[c] as f32 * (1.0 - w) + px[c] as f32 * w).round() as u8)
        })
        .collect();
    Ok(RgbImage {
        width: image.width,
        height: image.height,
        data,
    })
}
