//! Explaining text classifiers: a model with its tokenizer, sentences in, per-token attributions
//! out (Captum's "Interpreting text models": `LayerIntegratedGradients` at the word embeddings,
//! baseline `[CLS] [PAD] ... [PAD] [SEP]`, the attention mask carried along every step).

use std::path::{Path, PathBuf};

use firelight_core::{Attribution, Baseline, Device, DynTensor, Error, Model, Result, Target};
use firelight_grad::{Approximation, LayerGradientXActivation, LayerIntegratedGradients};
use firelight_onnx::OnnxModel;

use crate::bundled::{models_dir, read_labels};

pub mod concepts;

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

/// How text is attributed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextMethod {
    /// Captum's `LayerIntegratedGradients` at the word embeddings.
    LayerIntegratedGradients,
    /// Captum's `LayerGradientXActivation` at the word embeddings.
    LayerGradientXActivation,
    /// Captum's `FeatureAblation` with each token a feature, replaced by the given token (the
    /// attention mask unchanged): the drop of the target's score when that token is gone.
    FeatureAblation(TokenReplacement),
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

    /// `method`'s attributions for `target`: at the word embeddings `[sentences, tokens,
    /// hidden]`, with Captum's `[PAD]` baseline for path methods (`n_steps`, Gauss-Legendre) and
    /// at most `internal_batch_size` rows per pass; per token `[sentences, tokens, 1]` for
    /// Feature Ablation (`internal_batch_size` copies scored per pass).
    pub fn attribute(
        &self,
        encoded: &Encoded,
        target: &Target,
        method: TextMethod,
        n_steps: usize,
        internal_batch_size: Option<usize>,
    ) -> Result<TextAttribution> {
        let inputs = self.inputs(encoded)?;
        let model: &dyn Model = &self.model;
        match method {
            TextMethod::LayerIntegratedGradients => {
                let baseline = Encoded::ids_tensor(&encoded.pad_baseline(), self.model.device())?;
                let lig = LayerIntegratedGradients::new(model, &self.embedding)?
                    .n_steps(n_steps)
                    .method(Approximation::GaussLegendre)
                    .baselines(Baseline::Tensor(baseline));
                let lig = match internal_batch_size {
                    Some(rows) => lig.internal_batch_size(rows),
                    None => lig,
                };
                let (attributions, delta) =
                    lig.attribute_inputs_with_convergence_delta(&inputs, target)?;
                let delta = delta
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| Error::Model(format!("delta: {e:?}")))?;
                Ok(TextAttribution {
                    attributions: attributions.into_single()?,
                    delta: Some(delta),
                })
            }
            TextMethod::FeatureAblation(replacement) => {
                let (name, id) = match replacement {
                    TokenReplacement::Pad => ("[PAD]", Some(self.tokenizer.pad_id)),
                    TokenReplacement::Mask => ("[MASK]", self.tokenizer.mask_id),
                    TokenReplacement::Unk => ("[UNK]", self.tokenizer.unk_id),
                };
                let id = id.ok_or_else(|| {
                    Error::parameter("replacement", name, "this tokenizer has no such token")
                })?;
                let per_token = firelight_perturb::FeatureAblation::new(model)
                    .baselines(Baseline::Constant(id as f32))
                    .perturbations_per_eval(internal_batch_size.unwrap_or(16).max(1))
                    .attribute_inputs(&inputs, target)?
                    .into_single()?;
                // One "embedding" value per token, so token scores read it like the others.
                let mut shape = per_token.shape().to_vec();
                shape.push(1);
                Ok(TextAttribution {
                    attributions: DynTensor::from_flat(per_token.into_flat(), shape)?,
                    delta: None,
                })
            }
            TextMethod::LayerGradientXActivation => Ok(TextAttribution {
                attributions: LayerGradientXActivation::new(model, &self.embedding)?
                    .attribute_inputs(&inputs, target)?
                    .into_single()?,
                delta: None,
            }),
        }
    }
}
