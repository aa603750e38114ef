//! Explaining text classifiers: a model with its tokenizer, sentences in, per-token attributions
//! out (Captum's "Interpreting text models": `LayerIntegratedGradients` at the word embeddings,
//! baseline `[CLS] [PAD] ... [PAD] [SEP]`, the attention mask carried along every step).

use std::path::{Path, PathBuf};

use firelight_core::{
    Baseline, Device, DynTensor, Error, Inputs, LayerAsInput, Model, Result, Target,
};
use firelight_onnx::OnnxModel;
use firelight_perturb::FeatureMask;

use crate::bundled::{models_dir, read_labels};
use crate::methods::{Family, MethodConfig, ProgressCallback, RunContext};

pub mod concepts;
pub mod native;

pub use native::native_bert;

pub use firelight_text::{
    Encoded, Reduction, Sentence, TextTokenizer, TokenScores, Truncation, html,
};

pub use crate::attention::Readout;
use crate::attention::{self, AttentionMaps, Square};

/// The bundled sentiment model: all-MiniLM-L6-v2 with a negative / neutral / positive head.
pub fn default_text_model() -> PathBuf {
    models_dir().join("minilm_sentiment").join("model.onnx")
}

/// A text classifier (an ONNX graph taking token ids and an attention mask) with its tokenizer,
/// its class names and the embedding layer text methods attribute at.
pub struct TextClassifier {
    /// The graph.
    pub model: OnnxModel,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
    /// Class names (indices where the model has no `labels.json`).
    pub labels: Vec<String>,
    /// The word-embedding output (the `Gather` that looks the token ids up).
    pub embedding: String,
    /// The token-id input's name.
    pub ids_input: String,
    /// The attention-mask input's name.
    pub mask_input: String,
    /// The token-type input's name, when the graph takes one.
    pub type_input: Option<String>,
    /// The most tokens the model has positions for, when known (`max_positions` in a
    /// `manifest.json` next to the model).
    pub max_positions: Option<usize>,
    /// The attention probabilities of every layer, first layer first
    /// ([`OnnxModel::attention_layers`]).
    pub attention_layers: Vec<String>,
}

/// How a registry method runs on text ([`text_route`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextRoute {
    /// A layer method at a token layer (the word embeddings unless told otherwise), the ids
    /// explained through it (Captum's `LayerIntegratedGradients` on BERT's embeddings).
    Layer,
    /// An input method on the word embeddings fed as the input ([`LayerAsInput`], Captum's
    /// interpretable embedding): Saliency, InputXGradient, IG, SmoothGrad, GradientSHAP, ...;
    /// and the layer methods that move their input along a path (conductance, internal
    /// influence, layer GradientSHAP, layer DeepLift), at their layer.
    Embedding,
    /// A perturbation method with tokens (or words) as features, each replaced by a
    /// [`TokenReplacement`], one sentence at a time (no padding among its features).
    Tokens,
}

/// Why `method` cannot run on text, if it cannot.
fn refusal(method: &MethodConfig) -> Option<&'static str> {
    match method {
        MethodConfig::Cam(_) | MethodConfig::LayerGradCam(_) | MethodConfig::GuidedGradCam => {
            Some("class activation maps need a spatial (convolutional) layer")
        }
        MethodConfig::NeuronConductance(_) => {
            Some("neuron conductance goes through one unit of an image layer")
        }
        MethodConfig::FeaturePermutation(_) => {
            Some("feature permutation shuffles features across sentences, which do not align")
        }
        MethodConfig::LayerFeatureAblation(_) => Some(
            "layer feature ablation would switch off every embedding unit; feature_ablation \
             removes tokens or words",
        ),
        MethodConfig::Lrp(_) => Some("LRP has no rules for attention and layer norms"),
        _ => None,
    }
}

/// How `method` runs on text, or why it cannot.
pub fn text_route(method: &MethodConfig) -> Result<TextRoute> {
    let info = method.info();
    if let Some(why) = refusal(method) {
        let takers: Vec<&str> = text_methods().iter().map(|m| m.info().name).collect();
        return Err(Error::parameter(
            "method",
            info.name,
            format!("{why}; text takes: {}", takers.join(", ")),
        ));
    }
    Ok(match method {
        // These move the input along a path (or add noise to it): token ids cannot move, so the
        // fed embeddings are their input, as in Captum's BERT tutorials.
        MethodConfig::LayerConductance(_)
        | MethodConfig::InternalInfluence(_)
        | MethodConfig::LayerGradientShap(_)
        | MethodConfig::LayerDeepLift(_) => TextRoute::Embedding,
        _ => match info.family {
            Family::Layer => TextRoute::Layer,
            Family::Gradient => TextRoute::Embedding,
            _ => TextRoute::Tokens,
        },
    })
}

/// Every registry method that runs on text, with its defaults.
pub fn text_methods() -> Vec<MethodConfig> {
    MethodConfig::all()
        .into_iter()
        .filter(|m| refusal(m).is_none())
        .collect()
}

/// `--help` for text methods: the ones [`text_methods`] lists, by how they run.
pub fn text_method_help() -> String {
    let mut help = String::from("One method of the registry that runs on text.");
    for (route, heading) in [
        (
            TextRoute::Layer,
            "At the word embeddings (or --layer), the token ids explained through them",
        ),
        (
            TextRoute::Embedding,
            "On the word embeddings fed as the input (Captum's interpretable embedding; the \
             layer methods attribute at --layer)",
        ),
        (
            TextRoute::Tokens,
            "Over tokens as features (--words: words), each replaced by --replacement",
        ),
    ] {
        let names: Vec<&str> = text_methods()
            .iter()
            .filter(|m| text_route(m).ok() == Some(route))
            .map(|m| m.info().name)
            .collect();
        help.push_str(&format!("\n{heading}: {}.", names.join(", ")));
    }
    help
}

/// The token a perturbation method puts in place of a removed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TokenReplacement {
    /// `[PAD]`.
    #[default]
    Pad,
    /// `[MASK]`.
    Mask,
    /// `[UNK]`.
    Unk,
}

/// What a text run needs besides the method.
#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    /// The layer layer methods attribute at, and input methods feed (default: the word
    /// embeddings); it must be token-shaped, `[sentences, tokens, hidden]`.
    pub layer: Option<String>,
    /// What perturbation methods put in place of a token.
    pub replacement: TokenReplacement,
    /// Perturbation methods: words (their pieces together) are the features instead of tokens;
    /// a word's score is spread evenly over its pieces, so merging them gives it back.
    pub words: bool,
    /// Told `(done, total)` perturbations (an estimate over all sentences).
    pub progress: Option<ProgressCallback>,
}

/// Attributions at the embedding, `[sentences, tokens, hidden]`, and the convergence delta of
/// path methods per sentence.
pub struct TextAttribution {
    /// The attributions.
    pub attributions: DynTensor,
    /// `sum(attributions) - (f(x) - f(baseline))` per sentence (path methods).
    pub delta: Option<Vec<f32>>,
}

impl TextClassifier {
    /// The bundled sentiment model.
    pub fn bundled(device: &Device) -> Result<Self> {
        Self::load(default_text_model(), None, device)
    }

    /// Loads an ONNX text classifier; its tokenizer is `tokenizer` or the `tokenizer.json` next
    /// to it, its class names the `labels.json` next to it if there is one.
    pub fn load(
        model: impl AsRef<Path>,
        tokenizer: Option<&Path>,
        device: &Device,
    ) -> Result<Self> {
        let path = model.as_ref();
        let dir = path.parent().unwrap_or(Path::new("."));
        let tokenizer_path = tokenizer
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("tokenizer.json"));
        let tokenizer = TextTokenizer::from_file(&tokenizer_path).map_err(|e| {
            Error::Model(format!(
                "{e} (a text model needs its tokenizer: --tokenizer path/to/tokenizer.json)"
            ))
        })?;
        let model = OnnxModel::load(path, device)?;
        let names: Vec<String> = model.inputs().iter().map(|i| i.name.clone()).collect();
        let find = |wanted: &[&str]| names.iter().find(|n| wanted.contains(&n.as_str())).cloned();
        let ids_input = find(&["input_ids", "ids", "tokens"]).ok_or_else(|| {
            Error::Model(format!(
                "{} has no token-id input (input_ids); its inputs: {}",
                path.display(),
                names.join(", ")
            ))
        })?;
        let mask_input = find(&["attention_mask", "mask"]).ok_or_else(|| {
            Error::Model(format!(
                "{} has no attention_mask input; its inputs: {}",
                path.display(),
                names.join(", ")
            ))
        })?;
        let type_input = find(&["token_type_ids", "segment_ids"]);
        let lookup = model
            .embedding_lookups(&ids_input)
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Model(format!(
                    "{}: no Gather looks `{ids_input}` up in a constant table, so there is no \
                     embedding to attribute at",
                    path.display()
                ))
            })?;
        tokenizer.check_vocabulary(lookup.vocabulary)?;
        let labels_path = dir.join("labels.json");
        let outputs = model
            .outputs()
            .first()
            .and_then(|o| o.shape.last().copied().flatten());
        let labels = if labels_path.is_file() {
            read_labels(&labels_path)?
        } else {
            (0..outputs.unwrap_or(0)).map(|i| i.to_string()).collect()
        };
        let max_positions = std::fs::read_to_string(dir.join("manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|m| m["max_positions"].as_u64())
            .map(|n| n as usize);
        let attention_layers = model.attention_layers();
        Ok(Self {
            model,
            path: path.to_path_buf(),
            tokenizer,
            labels,
            embedding: lookup.layer,
            ids_input,
            mask_input,
            type_input,
            max_positions,
            attention_layers,
        })
    }

    /// Tokenises `texts` into one batch (cut to the model's positions, or refused, by
    /// `truncation`).
    pub fn encode(&self, texts: &[impl AsRef<str>], truncation: Truncation) -> Result<Encoded> {
        self.tokenizer.encode(texts, self.max_positions, truncation)
    }

    /// The model inputs of `encoded`.
    pub fn inputs(&self, encoded: &Encoded) -> Result<firelight_core::Inputs> {
        encoded.inputs(
            &self.ids_input,
            &self.mask_input,
            self.type_input.as_deref(),
            self.model.device(),
        )
    }

    /// The softmax of the logits, per sentence.
    pub fn probabilities(&self, encoded: &Encoded) -> Result<Vec<Vec<f32>>> {
        let logits = self.model.predict(&self.inputs(encoded)?)?;
        let [n, k] = logits.dims();
        let p: Vec<f32> = burn::tensor::activation::softmax(logits, 1)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Model(format!("probabilities: {e:?}")))?;
        Ok((0..n).map(|i| p[i * k..(i + 1) * k].to_vec()).collect())
    }

    /// Every layer's attention probabilities for each sentence, cut to its own tokens.
    pub fn attention(&self, encoded: &Encoded) -> Result<Vec<AttentionMaps>> {
        attention::attention_maps(
            &self.model,
            &self.inputs(encoded)?,
            &self.attention_layers,
            Some(&self.lengths(encoded)),
        )
    }

    /// Chefer et al.'s relevance matrix for `target`, per sentence, cut to its own tokens; read
    /// one score per token with a [`Readout`] (the bundled model mean-pools its tokens).
    pub fn chefer_relevance(&self, encoded: &Encoded, target: &Target) -> Result<Vec<Square>> {
        attention::chefer_relevance(
            &self.model,
            &self.inputs(encoded)?,
            &self.attention_layers,
            target,
            Some(&self.lengths(encoded)),
        )
    }

    fn lengths(&self, encoded: &Encoded) -> Vec<usize> {
        encoded.sentences.iter().map(|s| s.ids.len()).collect()
    }

    /// The class named `name` (a label or an index).
    pub fn class(&self, name: &str) -> Result<usize> {
        if let Some(i) = self
            .labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name))
        {
            return Ok(i);
        }
        match name.parse::<usize>() {
            Ok(i) if i < self.labels.len() => Ok(i),
            _ => Err(Error::parameter(
                "target",
                name,
                format!(
                    "is not a class of this model; its classes: {}",
                    self.labels.join(", ")
                ),
            )),
        }
    }

    /// The token that [`TokenReplacement`] `replacement` names.
    pub fn replacement_id(&self, replacement: TokenReplacement) -> Result<u32> {
        let (name, id) = match replacement {
            TokenReplacement::Pad => ("[PAD]", Some(self.tokenizer.pad_id)),
            TokenReplacement::Mask => ("[MASK]", self.tokenizer.mask_id),
            TokenReplacement::Unk => ("[UNK]", self.tokenizer.unk_id),
        };
        id.ok_or_else(|| Error::parameter("replacement", name, "this tokenizer has no such token"))
    }

    /// `method`'s attributions for `target` ([`text_route`] says how it runs):
    /// `[sentences, tokens, hidden]` at the layer for layer and input methods (Captum's
    /// `[CLS] [PAD] ... [PAD] [SEP]` baseline, its embeddings for input methods), `[sentences,
    /// tokens, 1]` for perturbation methods (zero at padding). The convergence delta comes with
    /// the methods that are complete (IG, layer IG, layer conductance, DeepLift, layer DeepLift
    /// with `multiply_by_inputs`).
    pub fn attribute(
        &self,
        encoded: &Encoded,
        target: &Target,
        method: &MethodConfig,
        options: &TextOptions,
    ) -> Result<TextAttribution> {
        let route = text_route(method)?;
        let device = self.model.device();
        let inputs = self.inputs(encoded)?;
        let baseline_ids = Encoded::ids_tensor(&encoded.pad_baseline(), device)?;
        let layer = options
            .layer
            .clone()
            .unwrap_or_else(|| self.embedding.clone());
        let context = RunContext {
            progress: options.progress.clone(),
            ..RunContext::default()
        };
        let attributions = match route {
            TextRoute::Layer => {
                let context = RunContext {
                    layer: Some(layer),
                    baselines: Baseline::Tensor(baseline_ids.clone()),
                    ..context
                };
                method
                    .attribute(&self.model, &inputs, target, &context)?
                    .into_single()?
            }
            TextRoute::Embedding => {
                // Input methods take the layer as their input; layer methods are fed the word
                // embeddings and attribute at their layer.
                let is_layer_method = method.info().family == Family::Layer;
                let fed_layer = if is_layer_method {
                    self.embedding.clone()
                } else {
                    layer.clone()
                };
                let fed = LayerAsInput::new(&self.model, fed_layer)?;
                let baseline_inputs = self.inputs_with_ids(encoded, &encoded.pad_baseline())?;
                let context = RunContext {
                    baselines: Baseline::Tensor(fed.layer_value(&baseline_inputs)?),
                    layer: is_layer_method.then_some(layer),
                    ..context
                };
                method
                    .attribute(&fed, &fed.inputs(&inputs)?, target, &context)?
                    .into_single()?
            }
            TextRoute::Tokens => self.perturb_tokens(encoded, target, method, options)?,
        };
        let delta = if is_complete(method) {
            let baseline_inputs = self.inputs_with_ids(encoded, &encoded.pad_baseline())?;
            Some(self.convergence_delta(&attributions, &inputs, &baseline_inputs, target)?)
        } else {
            None
        };
        Ok(TextAttribution {
            attributions,
            delta,
        })
    }

    /// The model inputs of `encoded` with its ids replaced by `ids` (`[rows, length]`).
    fn inputs_with_ids(&self, encoded: &Encoded, ids: &[Vec<u32>]) -> Result<Inputs> {
        let inputs = self.inputs(encoded)?;
        Ok(inputs.attributed_value(
            self.ids_input.clone(),
            Encoded::ids_value(ids, self.model.device())?,
        ))
    }

    /// `sum(attributions) - (f(x) - f(baseline))` per sentence, at `target`.
    fn convergence_delta(
        &self,
        attributions: &DynTensor,
        inputs: &Inputs,
        baseline: &Inputs,
        target: &Target,
    ) -> Result<Vec<f32>> {
        let rows = attributions.batch();
        let samples: Vec<usize> = (0..rows).collect();
        let score = |i: &Inputs| -> Result<Vec<f32>> {
            target
                .scores(self.model.predict(i)?, &samples)?
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| Error::Model(format!("scores: {e:?}")))
        };
        let (at_input, at_baseline) = (score(inputs)?, score(baseline)?);
        let sums: Vec<f32> = attributions
            .flat()
            .clone()
            .sum_dim(1)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Model(format!("attributions: {e:?}")))?;
        Ok((0..rows)
            .map(|r| sums[r] - (at_input[r] - at_baseline[r]))
            .collect())
    }

    /// A perturbation method over each sentence alone, tokens (or words) its features, each
    /// replaced by `options.replacement`; `[sentences, length, 1]`, zero at padding.
    fn perturb_tokens(
        &self,
        encoded: &Encoded,
        target: &Target,
        method: &MethodConfig,
        options: &TextOptions,
    ) -> Result<DynTensor> {
        let replacement = self.replacement_id(options.replacement)? as f32;
        let (rows, length) = (encoded.len(), encoded.length);
        target.check_batch(rows)?;
        let mut values = vec![0f32; rows * length];
        for row in 0..rows {
            let one = encoded.sentence(row).expect("row in range");
            let features = encoded.features(row, options.words);
            let tokens = features.len();
            // Progress over all sentences, assuming each takes as many passes as this one.
            let progress = options.progress.clone().map(|p| {
                ProgressCallback::new(move |done, total| (p.0)(row * total + done, rows * total))
            });
            let context = RunContext {
                baselines: Baseline::Constant(replacement),
                feature_mask: FeatureMask::ids(features.clone(), vec![1, tokens])?,
                progress,
                ..RunContext::default()
            };
            let scores = method
                .attribute(
                    &self.model,
                    &self.inputs(&one)?,
                    &target.for_sample(row)?,
                    &context,
                )?
                .into_single()?
                .to_vec()?;
            // A word's pieces share its score; spread it so that merging them gives it back.
            for (t, &feature) in features.iter().enumerate() {
                let pieces = features.iter().filter(|&&f| f == feature).count();
                values[row * length + t] = scores[t] / pieces as f32;
            }
        }
        DynTensor::from_vec(values, vec![rows, length, 1], self.model.device())
    }
}

/// Whether `method` is complete (its attributions sum to `f(x) - f(baseline)`), so that the
/// convergence delta says how far the run is from it.
fn is_complete(method: &MethodConfig) -> bool {
    match method {
        MethodConfig::IntegratedGradients(c) | MethodConfig::LayerIntegratedGradients(c) => {
            c.multiply_by_inputs
        }
        MethodConfig::DeepLift(c) | MethodConfig::LayerDeepLift(c) => c.multiply_by_inputs,
        MethodConfig::LayerConductance(_) => true,
        _ => false,
    }
}
