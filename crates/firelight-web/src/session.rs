//! What the page asks of a model, in plain Rust: load it from bytes, predict, list layers and
//! methods, explain a photo. The wasm-bindgen layer (the `bindings` module, built for wasm32) only
//! converts to and from JavaScript values, so everything here is also tested natively.

use firelight::bundled::{ImageClassifier, Prediction, Preprocess, parse_labels};
use firelight::core::budget;
use firelight::core::npy::encode_npy;
use firelight::methods::{Family, MethodConfig, Overrides, ProgressCallback, RunContext};
use firelight::prelude::*;
use firelight::viz::{RgbImage, default_explanation_map};
use serde::{Deserialize, Serialize};

/// The memory budget of a page: a wasm32 module addresses 4 GiB at most, and a browser tab
/// gives less; every allocation an ONNX graph asks for is checked against this before it is made,
/// so a model too large fails with a message instead of killing the page's worker.
pub const WEB_MAX_BYTES: u64 = 1536 << 20;

/// Rows per forward/backward of the path and sampling methods when the page does not say:
/// Captum's default (all `n_steps` rows at once) holds the activations and gradients of 50 copies
/// of the photo at once, more than a tab may have; 8 rows at a time give the same numbers.
pub const WEB_INTERNAL_BATCH_SIZE: usize = 8;

/// Options of one explanation, as the page sends them (Captum's names; every field optional).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExplainOptions {
    /// The class explained: its index or its label (the top class when absent).
    pub target: Option<TargetSpec>,
    /// The layer of layer methods and CAMs ([`WebSession::suggested_layer`] when absent).
    pub layer: Option<String>,
    /// `n_steps` of the path methods.
    pub n_steps: Option<usize>,
    /// Rows per forward/backward ([`WEB_INTERNAL_BATCH_SIZE`] when absent).
    pub internal_batch_size: Option<usize>,
    /// `nt_samples` / `n_samples` of the stochastic methods.
    pub n_samples: Option<usize>,
    /// Noise standard deviation.
    pub stdevs: Option<f32>,
    /// Seed of the stochastic methods.
    pub seed: Option<u64>,
    /// Perturbed copies per forward pass of the perturbation methods.
    pub perturbations_per_eval: Option<usize>,
    /// Occlusion's window side.
    pub window: Option<usize>,
    /// Occlusion's stride.
    pub stride: Option<usize>,
    /// Signed attributions (Saliency without `abs`).
    #[serde(default)]
    pub signed: bool,
}

/// A class by index or by label, as `target` arrives from the page.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TargetSpec {
    /// An output index.
    Index(usize),
    /// A class name (case does not matter).
    Label(String),
}

impl ExplainOptions {
    /// Parses the page's JSON (`{}` or empty for the defaults); unknown keys are refused by name.
    pub fn from_json(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(text).map_err(|e| Error::parameter("options", text, e.to_string()))
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            n_steps: self.n_steps,
            n_samples: self.n_samples,
            stdevs: self.stdevs,
            seed: self.seed,
            internal_batch_size: Some(self.internal_batch_size.unwrap_or(WEB_INTERNAL_BATCH_SIZE)),
            signed: self.signed,
            perturbations_per_eval: self.perturbations_per_eval,
            window: self.window,
            stride: self.stride,
            ..Overrides::default()
        }
    }
}

/// One class of a prediction, for the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Class {
    /// Output index.
    pub class: usize,
    /// Class name.
    pub label: String,
    /// Softmax probability.
    pub probability: f32,
}

impl From<&Prediction> for Class {
    fn from(p: &Prediction) -> Self {
        Self {
            class: p.class,
            label: p.label.clone(),
            probability: p.probability,
        }
    }
}

/// A method the page can offer, from the registry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MethodEntry {
    /// Its name (what [`WebSession::explain`] takes).
    pub name: &'static str,
    /// Its family (`gradient`, `layer`, `CAM`, `perturbation`).
    pub family: &'static str,
    /// Whether it needs a layer.
    pub needs_layer: bool,
    /// What it computes, in one line.
    pub about: &'static str,
    /// The reference it matches.
    pub reference: &'static str,
    /// Its options with their defaults, as the README's table shows them.
    pub options: Vec<(&'static str, String)>,
}

/// A layer of the model, for the page's layer list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerEntry {
    /// The name layer methods take.
    pub name: String,
    /// The operator that produces it.
    pub kind: String,
    /// Its shape where known (`null` for a dimension fixed at run time).
    pub shape: Option<Vec<Option<usize>>>,
}

/// One explanation of one photo.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The method's name.
    pub method: String,
    /// The class explained.
    pub target: Class,
    /// The layer used, for layer methods and CAMs.
    pub layer: Option<String>,
    /// The attribution's shape (`[1, 3, crop, crop]` for input methods, `[1, 1, crop, crop]` for
    /// CAMs, the layer's shape for layer methods).
    pub shape: Vec<usize>,
    /// The attribution, row-major.
    pub values: Vec<f32>,
    /// One value per pixel of the cropped photo (the channel sum of an input attribution, the
    /// CAM itself), `crop * crop`; empty for layer methods, which are not maps over the photo.
    pub map: Vec<f32>,
    /// Side of the cropped photo (the map's width and height).
    pub side: usize,
    /// The default picture (the map over the cropped photo) as PNG; empty for layer methods.
    pub picture_png: Vec<u8>,
}

impl Explanation {
    /// The attribution as a `.npy` file (float32, its shape), as `firelight explain` writes it.
    pub fn npy(&self) -> Vec<u8> {
        encode_npy(&self.shape, &self.values)
    }
}

/// A photo as the model sees it, once decoded and cropped.
struct Photo {
    cropped: RgbImage,
    input: DynTensor,
}

/// An ONNX image classifier loaded in the page, on the flex backend.
pub struct WebSession {
    classifier: ImageClassifier,
    device: Device,
}

impl WebSession {
    /// Loads an ONNX image classifier from the bytes of its file. `labels_json` is a JSON list of
    /// class names and `preprocess_json` its preprocessing (`resize`, `crop`, `mean`, `std`),
    /// both optional; `name` is what messages call the model.
    ///
    /// Sets the process-wide memory budget ([`budget::set_max_bytes`]) to [`WEB_MAX_BYTES`]: in a
    /// page the process is the worker, which holds this one model.
    ///
    /// Errors: bytes that are not an ONNX model, an operator the interpreter does not run (named
    /// with its node), a model whose weights exceed [`WEB_MAX_BYTES`].
    pub fn load(
        name: &str,
        model: &[u8],
        labels_json: Option<&str>,
        preprocess_json: Option<&str>,
    ) -> Result<Self> {
        budget::set_max_bytes(WEB_MAX_BYTES);
        let labels = match labels_json {
            Some(text) => parse_labels(text, "labels.json")?,
            None => Vec::new(),
        };
        let preprocess = preprocess_json
            .map(|text| Preprocess::from_json_str(text, "preprocess.json"))
            .transpose()?;
        if model.len() as u64 > WEB_MAX_BYTES {
            return Err(Error::MemoryBudget {
                what: format!("{name}: a {} MB model file", model.len() >> 20),
                bytes: model.len() as u64,
                budget: WEB_MAX_BYTES,
            });
        }
        let device = Device::flex();
        let classifier = ImageClassifier::onnx_bytes(name, model, labels, preprocess, &device)?;
        Ok(Self { classifier, device })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.classifier.name
    }

    /// The side of the square the photo is cropped to.
    pub fn crop(&self) -> usize {
        self.classifier.preprocess.crop
    }

    /// The class names (empty when the model came without them).
    pub fn labels(&self) -> &[String] {
        &self.classifier.labels
    }

    fn photo(&self, photo: &[u8], name: &str) -> Result<Photo> {
        let image = RgbImage::decode(name, photo)?;
        let cropped = self.classifier.crop(&image);
        let input = self.classifier.input(&cropped, &self.device)?;
        Ok(Photo { cropped, input })
    }

    /// The photo (the bytes of a file named `name`, which errors name) as the network sees it,
    /// resized and centre-cropped, as PNG.
    pub fn cropped_png(&self, photo: &[u8], name: &str) -> Result<Vec<u8>> {
        self.photo(photo, name)?.cropped.encode_png(name)
    }

    /// The `k` most probable classes of a photo (the bytes of a file named `name`, in any format
    /// [`RgbImage::decode`] reads).
    pub fn predict(&self, photo: &[u8], name: &str, k: usize) -> Result<Vec<Class>> {
        let photo = self.photo(photo, name)?;
        self.top_k(&photo, k)
    }

    fn top_k(&self, photo: &Photo, k: usize) -> Result<Vec<Class>> {
        let logits = self
            .classifier
            .model()
            .predict(&photo.input.clone().into())?;
        let tops = self.classifier.top_k(logits, k.max(1))?;
        Ok(tops[0].iter().map(Class::from).collect())
    }

    /// Every tensor a layer method can take, in graph order.
    pub fn layers(&self) -> Vec<LayerEntry> {
        self.classifier
            .model()
            .layers()
            .into_iter()
            .map(|l| LayerEntry {
                name: l.name,
                kind: l.kind,
                shape: l.shape,
            })
            .collect()
    }

    /// The layer CAMs default to: the last feature map with a spatial extent (rank 4, height and
    /// width above 1), where pytorch-grad-cam's examples put `target_layers`.
    pub fn suggested_layer(&self) -> Option<String> {
        self.classifier
            .model()
            .layers()
            .into_iter()
            .rev()
            .find(|l| {
                matches!(l.shape.as_deref(), Some([_, _, Some(h), Some(w)]) if *h > 1 && *w > 1)
            })
            .map(|l| l.name)
    }

    /// Every method of the registry with its family, needs and defaults.
    pub fn methods() -> Vec<MethodEntry> {
        MethodConfig::all()
            .iter()
            .map(|m| {
                let info = m.info();
                MethodEntry {
                    name: info.name,
                    family: info.family.name(),
                    needs_layer: info.needs_layer(),
                    about: info.about,
                    reference: info.reference,
                    options: m.options(),
                }
            })
            .collect()
    }

    /// Explains a photo (the bytes of a file named `name`) with the method named `method` (any
    /// registry name or alias) and `options`; `progress` is told `(done, total)` as perturbation
    /// methods run.
    ///
    /// Errors: an unknown method (the closest names), an unknown layer (the closest names), a
    /// target out of range or an unknown label, a photo that is not an image.
    pub fn explain(
        &self,
        photo: &[u8],
        name: &str,
        method: &str,
        options: &ExplainOptions,
        progress: Option<ProgressCallback>,
    ) -> Result<Explanation> {
        let mut config = MethodConfig::from_name(method)?;
        config.apply(&options.overrides());
        let info = config.info();
        let layer = match (&options.layer, info.needs_layer()) {
            (Some(layer), _) => Some(layer.clone()),
            (None, true) => Some(self.suggested_layer().ok_or_else(|| {
                Error::parameter(
                    "layer",
                    "none",
                    format!(
                        "{} needs a layer and the model has no 4-D feature map",
                        info.name
                    ),
                )
            })?),
            (None, false) => None,
        };
        if let Some(layer) = &layer {
            self.classifier.model().check_layer(layer)?;
        }
        let photo = self.photo(photo, name)?;
        // Every class, most probable first: the target's probability on this photo comes with it.
        let ranked = self.top_k(&photo, usize::MAX)?;
        let target = match &options.target {
            None => ranked[0].clone(),
            Some(spec) => self.class(spec, &ranked)?,
        };
        let context = RunContext {
            layer: layer.clone(),
            progress,
            ..RunContext::default()
        };
        let attribution = config.attribute_tensor(
            self.classifier.model(),
            &photo.input,
            &Target::class(target.class),
            &context,
        )?;
        let shape = attribution.shape().to_vec();
        let values = attribution.to_vec()?;
        let side = photo.cropped.width;
        // The map over the photo: the CAM itself, or the channel sum of an input attribution
        // (what the default picture draws); layer attributions are not maps over the photo.
        let map = match info.family {
            Family::Layer => Vec::new(),
            Family::Cam => values.clone(),
            Family::Gradient | Family::Perturbation => {
                firelight::viz::visualize::sum_channels(&attribution)?.0
            }
        };
        let picture_png = match map.is_empty() {
            true => Vec::new(),
            false => default_explanation_map(&photo.cropped, &map, side, side)?
                .encode_png("the explanation picture")?,
        };
        Ok(Explanation {
            method: info.name.to_string(),
            target,
            layer: layer.filter(|_| info.needs_layer()),
            shape,
            values,
            map,
            side,
            picture_png,
        })
    }

    /// The class `spec` names among `ranked` (every class of the photo's prediction).
    fn class(&self, spec: &TargetSpec, ranked: &[Class]) -> Result<Class> {
        let found = match spec {
            TargetSpec::Index(index) => {
                ranked
                    .iter()
                    .find(|c| c.class == *index)
                    .ok_or(Error::TargetOutOfRange {
                        index: *index,
                        sample: 0,
                        outputs: ranked.len(),
                    })?
            }
            TargetSpec::Label(label) => {
                let wanted = label.trim().to_lowercase();
                ranked
                    .iter()
                    .find(|c| c.label.to_lowercase() == wanted)
                    .ok_or_else(|| {
                        Error::parameter(
                            "target",
                            label,
                            "no class has this label (give its index, or a label from the list)",
                        )
                    })?
            }
        };
        Ok(found.clone())
    }
}
