//! The models and photos that ship in the repository's `models/` folder.

use std::path::{Path, PathBuf};

use firelight_core::{Device, DynTensor, Error, Result, Tensor};
use firelight_models::{MobileNetV2, SafetensorsWeights};
use firelight_viz::RgbImage;

/// The `models/` folder: `$FIRELIGHT_MODELS` if set, else the one in this source tree.
pub fn models_dir() -> PathBuf {
    std::env::var_os("FIRELIGHT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// The default photo: Chelsea the cat (scikit-image, CC0).
pub fn default_image() -> PathBuf {
    models_dir().join("images").join("chelsea.png")
}

/// An ImageNet classifier with its labels and preprocessing.
pub struct ImageClassifier {
    /// The network.
    pub model: MobileNetV2,
    /// Class names, by output index.
    pub labels: Vec<String>,
    resize: usize,
    crop: usize,
    mean: [f32; 3],
    std: [f32; 3],
}

/// One class of a prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Output index.
    pub class: usize,
    /// Class name.
    pub label: String,
    /// Softmax probability.
    pub probability: f32,
}

impl ImageClassifier {
    /// The bundled MobileNetV2 (torchvision's ImageNet weights) on `device`.
    pub fn mobilenet_v2(device: &Device) -> Result<Self> {
        let dir = models_dir().join("mobilenet_v2");
        let read_json = |name: &str| -> Result<serde_json::Value> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            serde_json::from_str(&text)
                .map_err(|e| Error::Model(format!("{}: {e}", path.display())))
        };
        let labels: Vec<String> = serde_json::from_value(read_json("labels.json")?)
            .map_err(|e| Error::Model(format!("labels.json: {e}")))?;
        let pre = read_json("preprocess.json")?;
        let triple = |key: &str| -> Result<[f32; 3]> {
            let v: Vec<f32> = serde_json::from_value(pre[key].clone())
                .map_err(|e| Error::Model(format!("preprocess.json `{key}`: {e}")))?;
            v.try_into()
                .map_err(|_| Error::Model(format!("preprocess.json `{key}` needs 3 values")))
        };
        let size = |key: &str| -> Result<usize> {
            pre[key]
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| Error::Model(format!("preprocess.json has no `{key}`")))
        };
        let mut weights = SafetensorsWeights::open(dir.join("weights.safetensors"))?;
        Ok(Self {
            model: MobileNetV2::new(&mut weights, labels.len(), device)?,
            resize: size("resize")?,
            crop: size("crop")?,
            mean: triple("mean")?,
            std: triple("std")?,
            labels,
        })
    }

    /// The photo as the network sees it: resized and centre-cropped.
    pub fn crop(&self, image: &RgbImage) -> RgbImage {
        image.resize_and_center_crop(self.resize, self.crop)
    }

    /// A cropped photo (see [`ImageClassifier::crop`]) as a normalised input `[1, 3, crop, crop]`.
    pub fn input(&self, cropped: &RgbImage, device: &Device) -> Result<DynTensor> {
        cropped.to_tensor(self.mean, self.std, device)
    }

    /// The `k` most probable classes of each sample of `logits` `[batch, classes]`.
    pub fn top_k(&self, logits: Tensor<2>, k: usize) -> Result<Vec<Vec<Prediction>>> {
        let [batch, classes] = logits.dims();
        let probs = DynTensor::new(burn::tensor::activation::softmax(logits, 1)).to_vec()?;
        Ok((0..batch)
            .map(|b| {
                let row = &probs[b * classes..(b + 1) * classes];
                let mut order: Vec<usize> = (0..classes).collect();
                order.sort_by(|&i, &j| row[j].total_cmp(&row[i]));
                order
                    .into_iter()
                    .take(k)
                    .map(|class| Prediction {
                        class,
                        label: self.labels.get(class).cloned().unwrap_or_default(),
                        probability: row[class],
                    })
                    .collect()
            })
            .collect())
    }
}
