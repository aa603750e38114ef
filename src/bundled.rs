//! The models and photos that ship in the repository's `models/` folder.

use std::path::{Path, PathBuf};

use firelight_core::{Device, DynTensor, Error, Model, Result, Tensor};
use firelight_models::{MobileNetV2, Rebuildable, SafetensorsWeights};
use firelight_onnx::OnnxModel;
pub use firelight_viz::Preprocess;
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

/// Reads a JSON list of class names.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_labels(&text, &path.display().to_string())
}

/// Parses a JSON list of class names held in memory; errors name it `source`.
pub fn parse_labels(text: &str, source: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| Error::Model(format!("{source}: not a list of class names ({e})")))
}

/// An image classifier with its labels and preprocessing: a bundled one or any ONNX file.
pub struct ImageClassifier {
    model: Network,
    /// A short name for messages (`EfficientNet-Lite0`, the ONNX file's name, ...).
    pub name: String,
    /// Class names, by output index (empty when the model came without them).
    pub labels: Vec<String>,
    /// How photos are turned into inputs.
    pub preprocess: Preprocess,
}

/// The network of an [`ImageClassifier`]: an ONNX graph or a native Burn model, both of whose
/// weights a sanity check can redraw.
enum Network {
    Onnx(Box<OnnxModel>),
    Native(Box<Rebuildable>),
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
    /// How many classes the model has.
    pub outputs: usize,
}

impl ImageClassifier {
    /// The default model: the bundled EfficientNet-Lite0 (ImageNet), run from its ONNX file.
    pub fn bundled(device: &Device) -> Result<Self> {
        Self::efficientnet_lite0(device)
    }

    /// The bundled EfficientNet-Lite0 (ImageNet weights, Apache-2.0), run from its ONNX file.
    pub fn efficientnet_lite0(device: &Device) -> Result<Self> {
        let mut classifier =
            Self::onnx(models_dir().join("efficientnet_lite0/model.onnx"), device)?;
        classifier.name = "EfficientNet-Lite0 (ImageNet, ONNX)".into();
        Ok(classifier)
    }

    /// The bundled MobileNetV2 (torchvision's ImageNet weights) as a native Burn network.
    pub fn mobilenet_v2(device: &Device) -> Result<Self> {
        let dir = models_dir().join("mobilenet_v2");
        let labels = read_labels(dir.join("labels.json"))?;
        let mut weights = SafetensorsWeights::open(dir.join("weights.safetensors"))?;
        let (classes, on) = (labels.len(), device.clone());
        let network = Rebuildable::new(&mut weights, move |source| {
            Ok(Box::new(MobileNetV2::new(source, classes, &on)?) as Box<dyn Model>)
        })?;
        Ok(Self {
            model: Network::Native(Box::new(network)),
            name: "MobileNetV2 (ImageNet, native)".into(),
            labels,
            preprocess: Preprocess::from_json(dir.join("preprocess.json"))?,
        })
    }

    /// Any ONNX image classifier. `preprocess.json` and `labels.json` next to the file are used
    /// when present; otherwise torchvision's ImageNet preprocessing and numbered classes.
    pub fn onnx(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let model = OnnxModel::load(path, device)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let preprocess = match dir.join("preprocess.json") {
            p if p.is_file() => Preprocess::from_json(p)?,
            _ => Preprocess::default(),
        };
        let labels = match dir.join("labels.json") {
            p if p.is_file() => read_labels(p)?,
            _ => Vec::new(),
        };
        Ok(Self {
            model: Network::Onnx(Box::new(model)),
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            labels,
            preprocess,
        })
    }

    /// An ONNX image classifier held in memory (a file a browser page was given), with its class
    /// names and preprocessing when known (numbered classes and torchvision's ImageNet
    /// preprocessing otherwise); `name` is what messages call it.
    pub fn onnx_bytes(
        name: impl Into<String>,
        bytes: &[u8],
        labels: Vec<String>,
        preprocess: Option<Preprocess>,
        device: &Device,
    ) -> Result<Self> {
        let name = name.into();
        Ok(Self {
            model: Network::Onnx(Box::new(OnnxModel::from_named_bytes(&name, bytes, device)?)),
            name,
            labels,
            preprocess: preprocess.unwrap_or_default(),
        })
    }

    /// The network.
    pub fn model(&self) -> &dyn Model {
        match &self.model {
            Network::Onnx(m) => m.as_ref(),
            Network::Native(m) => m.as_ref(),
        }
    }

    /// The network as a model whose weights can be redrawn (an ONNX graph's initialisers, a
    /// native network's weights), for sanity checks.
    pub fn randomizable(&self) -> &dyn firelight_core::Randomizable {
        match &self.model {
            Network::Onnx(m) => m.as_ref(),
            Network::Native(m) => m.as_ref(),
        }
    }

    /// The name of class `class` (its index when the model has no labels).
    pub fn label(&self, class: usize) -> String {
        self.labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| format!("class {class}"))
    }

    /// The photo as the network sees it: resized and centre-cropped.
    pub fn crop(&self, image: &RgbImage) -> RgbImage {
        image.resize_and_center_crop(self.preprocess.resize, self.preprocess.crop)
    }

    /// A cropped photo (see [`ImageClassifier::crop`]) as a normalised input `[1, 3, crop, crop]`.
    pub fn input(&self, cropped: &RgbImage, device: &Device) -> Result<DynTensor> {
        cropped.to_tensor(self.preprocess.mean, self.preprocess.std, device)
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
                        label: self.label(class),
                        probability: row[class],
                        outputs: classes,
                    })
                    .collect()
            })
            .collect())
    }
}
