//! [`Preprocess`]: how a photo becomes a model input.

use std::path::Path;

use firelight_core::{Device, DynTensor, Error, Result};

use crate::image::RgbImage;

/// How a photo becomes a model input: resize the short side, centre-crop, normalise per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// The short side after resizing, in pixels.
    pub resize: usize,
    /// The side of the centre square cropped from the resized photo.
    pub crop: usize,
    /// Per-channel mean subtracted from pixel values scaled to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation the centred values are divided by.
    pub std: [f32; 3],
}

impl Default for Preprocess {
    /// torchvision's ImageNet convention: resize 256, crop 224, ImageNet mean and std.
    fn default() -> Self {
        Self {
            resize: 256,
            crop: 224,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
}

impl Preprocess {
    /// Reads a preprocessing JSON (`resize`, `crop`, `mean`, `std`), as bundled models carry.
    pub fn from_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Parses a preprocessing JSON held in memory (see [`Preprocess::from_json`]); errors name
    /// it `source`.
    pub fn from_json_str(text: &str, source: &str) -> Result<Self> {
        let pre: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Model(format!("{source}: {e}")))?;
        let bad = |key: &str, what: &str| Error::Model(format!("{source}: `{key}` {what}"));
        let triple = |key: &str| -> Result<[f32; 3]> {
            let v: Vec<f32> = serde_json::from_value(pre[key].clone())
                .map_err(|_| bad(key, "must be a list of 3 numbers"))?;
            v.try_into()
                .map_err(|_| bad(key, "must be a list of 3 numbers"))
        };
        let size = |key: &str| -> Result<usize> {
            pre[key]
                .as_u64()
                .filter(|v| *v > 0)
                .map(|v| v as usize)
                .ok_or_else(|| bad(key, "must be a positive integer"))
        };
        let std = triple("std")?;
        if std.iter().any(|s| *s <= 0.0) {
            return Err(bad("std", "must be positive"));
        }
        Ok(Self {
            resize: size("resize")?,
            crop: size("crop")?,
            mean: triple("mean")?,
            std,
        })
    }

    /// Reads one photo (any format [`RgbImage::read`] reads) as a `[1, 3, crop, crop]` input.
    pub fn load(&self, path: &Path, device: &Device) -> Result<DynTensor> {
        let image = RgbImage::read(path)?;
        image
            .resize_and_center_crop(self.resize, self.crop)
            .to_tensor(self.mean, self.std, device)
    }
}
