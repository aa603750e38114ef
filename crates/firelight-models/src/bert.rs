//! A BERT encoder with a classification head (Hugging Face's `BertModel`, mean-pooled as
//! sentence-transformers pools, then a linear head), with a tap at every block and at every
//! block's attention probabilities.
//!
//! Burn's `TransformerEncoder` does not hand its attention weights out, so the attention here is
//! written out: `softmax(q k^T / sqrt(d) + mask)`, tapped as `encoder.layer.{i}.attention.probs`
//! (`[batch, heads, tokens, tokens]`, kind `Softmax`, which is what attention maps, rollout and
//! Chefer et al.'s relevance look for).

use burn::nn::Linear;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use firelight_core::{Error, Inputs, LayerInfo, Model, Result, Taps};

use crate::weights::{WeightSource, linear, tensor};

/// The sizes of a BERT encoder (all-MiniLM-L6-v2's by [`BertConfig::minilm_l6`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocabulary: usize,
    /// Width of every token's vector.
    pub hidden: usize,
    /// Encoder blocks.
    pub layers: usize,
    /// Attention heads per block.
    pub heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate: usize,
    /// Positions the model has embeddings for.
    pub max_positions: usize,
    /// Segment (token type) embeddings.
    pub token_types: usize,
    /// Classes of the head.
    pub classes: usize,
}

impl BertConfig {
    /// all-MiniLM-L6-v2: 30522 word pieces, 384 wide, 6 blocks of 12 heads, 1536 feed-forward,
    /// 512 positions, with a head of `classes`.
    pub fn minilm_l6(classes: usize) -> Self {
        Self {
            vocabulary: 30522,
            hidden: 384,
            layers: 6,
            heads: 12,
            intermediate: 1536,
            max_positions: 512,
            token_types: 2,
            classes,
        }
    }
}

/// Layer norm's epsilon in BERT.
const LAYER_NORM_EPS: f64 = 1e-12;

/// A layer norm over the last axis.
#[derive(Debug)]
struct Norm {
    gamma: Tensor<1>,
    beta: Tensor<1>,
}

impl Norm {
    fn new(src: &mut dyn WeightSource, name: &str, width: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            gamma: tensor(src, &format!("{name}.weight"), [width], device)?,
            beta: tensor(src, &format!("{name}.bias"), [width], device)?,
        })
    }

    /// One kernel each way on flex ([`firelight_core::norm`]), Burn's ops elsewhere.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        firelight_core::norm::layer_norm(x, self.gamma.clone(), self.beta.clone(), LAYER_NORM_EPS)
    }
}

/// One encoder block.
#[derive(Debug)]
struct Block {
    name: String,
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

impl Block {
    fn new(
        src: &mut dyn WeightSource,
        name: String,
        c: &BertConfig,
        device: &Device,
    ) -> Result<Self> {
        let h = c.hidden;
        let attention = format!("{name}.attention");
        Ok(Self {
            query: linear(src, &format!("{attention}.self.query"), [h, h], device)?,
            key: linear(src, &format!("{attention}.self.key"), [h, h], device)?,
            value: linear(src, &format!("{attention}.self.value"), [h, h], device)?,
            attention_out: linear(src, &format!("{attention}.output.dense"), [h, h], device)?,
            attention_norm: Norm::new(src, &format!("{attention}.output.LayerNorm"), h, device)?,
            intermediate: linear(
                src,
                &format!("{name}.intermediate.dense"),
                [h, c.intermediate],
                device,
            )?,
            output: linear(
                src,
                &format!("{name}.output.dense"),
                [c.intermediate, h],
                device,
            )?,
            output_norm: Norm::new(src, &format!("{name}.output.LayerNorm"), h, device)?,
            name,
        })
    }

    /// `x` `[batch, tokens, hidden]`, `mask_bias` `[batch, 1, 1, tokens]` (0 or a large negative).
    fn forward(
        &self,
        x: Tensor<3>,
        mask_bias: Tensor<4>,
        heads: usize,
        taps: &mut Taps<'_>,
    ) -> Result<Tensor<3>> {
        let n = &self.name;
        let [batch, tokens, hidden] = x.dims();
        let width = hidden / heads;
        let split = |t: Tensor<3>| t.reshape([batch, tokens, heads, width]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)) / (width as f64).sqrt() + mask_bias;
        let probs = taps.tap(&format!("{n}.attention.probs"), softmax(scores, 3))?;
        let context = probs
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, tokens, hidden]);
        let context = taps.tap(&format!("{n}.attention.context"), context)?;
        let attended = self
            .attention_norm
            .forward(self.attention_out.forward(context) + x);
        let attended = taps.tap(&format!("{n}.attention.output"), attended)?;
        let inner = gelu(self.intermediate.forward(attended.clone()));
        let inner = taps.tap(&format!("{n}.intermediate"), inner)?;
        let out = self
            .output_norm
            .forward(self.output.forward(inner) + attended);
        taps.tap(n, out)
    }

    fn layers(&self, out: &mut Vec<LayerInfo>) {
        let n = &self.name;
        out.push(
            LayerInfo::new(format!("{n}.attention.probs"), "Softmax")
                .with_shape(vec![None, None, None, None]),
        );
        for (suffix, kind) in [
            ("attention.context", "MatMul"),
            ("attention.output", "LayerNormalization"),
            ("intermediate", "Gelu"),
        ] {
            out.push(LayerInfo::new(format!("{n}.{suffix}"), kind));
        }
        out.push(LayerInfo::new(n.clone(), "BertLayer"));
    }
}

/// BERT's exact GELU, `x Φ(x)` (the ONNX export's `Erf` form), in one vectorised pass on flex.
fn gelu(x: Tensor<3>) -> Tensor<3> {
    firelight_core::activation::gelu(x)
}

/// A BERT sentence classifier: embeddings, encoder blocks, the mean of the unmasked tokens, a
/// linear head. Inputs `input_ids` and `attention_mask` (`[batch, tokens]`, integers), and
/// optionally `token_type_ids`; output the head's logits `[batch, classes]`.
///
/// Tap points: `embeddings.word_embeddings` (the looked-up word vectors, where Captum's text
/// tutorial attributes), `embeddings` (after positions, segments and the norm), per block
/// `encoder.layer.{i}.attention.probs`, `.attention.context`, `.attention.output`,
/// `.intermediate` and the block's output `encoder.layer.{i}`, then `pooled` and `logits`.
/// Weight names are Hugging Face's (`bert.` + `state_dict` keys of `BertModel`; the head is
/// `head.weight` `[classes, hidden]` and `head.bias`).
#[derive(Debug)]
pub struct BertClassifier {
    config: BertConfig,
    word: Tensor<2>,
    position: Tensor<2>,
    token_type: Tensor<2>,
    embedding_norm: Norm,
    blocks: Vec<Block>,
    head: Linear,
}

/// The tap point of the looked-up word vectors.
pub const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings";

impl BertClassifier {
    /// A classifier of `config`'s sizes, weights from `src` under `prefix` (`"bert."` for a
    /// `BertForSequenceClassification`-style dictionary, `""` for a bare `BertModel`).
    pub fn new(
        config: BertConfig,
        prefix: &str,
        src: &mut dyn WeightSource,
        device: &Device,
    ) -> Result<Self> {
        if config.heads == 0 || !config.hidden.is_multiple_of(config.heads) {
            return Err(Error::parameter(
                "heads",
                config.heads,
                format!("must divide the hidden width {}", config.hidden),
            ));
        }
        let h = config.hidden;
        let e = format!("{prefix}embeddings");
        Ok(Self {
            word: tensor(
                src,
                &format!("{e}.word_embeddings.weight"),
                [config.vocabulary, h],
                device,
            )?,
            position: tensor(
                src,
                &format!("{e}.position_embeddings.weight"),
                [config.max_positions, h],
                device,
            )?,
            token_type: tensor(
                src,
                &format!("{e}.token_type_embeddings.weight"),
                [config.token_types, h],
                device,
            )?,
            embedding_norm: Norm::new(src, &format!("{e}.LayerNorm"), h, device)?,
            blocks: (0..config.layers)
                .map(|i| {
                    Block::new(src, format!("{prefix}encoder.layer.{i}"), &config, device).map(
                        |mut b| {
                            b.name = format!("encoder.layer.{i}");
                            b
                        },
                    )
                })
                .collect::<Result<_>>()?,
            head: linear(src, "head", [h, config.classes], device)?,
            config,
        })
    }

    /// The sizes.
    pub fn config(&self) -> BertConfig {
        self.config
    }

    /// An integer input `[batch, tokens]`, checked against the tables it indexes.
    fn ids(inputs: &Inputs, name: &str, rows: usize) -> Result<Option<Tensor<2, Int>>> {
        let Ok(value) = inputs.value(name) else {
            return Ok(None);
        };
        let [batch, tokens]: [usize; 2] =
            value.shape().try_into().map_err(|_| Error::RankMismatch {
                what: format!("input `{name}` ([batch, tokens])"),
                expected: 2,
                got: value.shape().to_vec(),
            })?;
        let ids = value.as_int().reshape([batch, tokens]);
        let values = ids.clone().into_data().convert::<i64>();
        let values = values.as_slice::<i64>().unwrap_or_default();
        if let Some(bad) = values.iter().find(|&&v| v < 0 || v as usize >= rows) {
            return Err(Error::Model(format!(
                "input `{name}` holds {bad}, but indexes a table of {rows} rows"
            )));
        }
        Ok(Some(ids))
    }

    /// `table[ids]`, `[batch, tokens, hidden]`.
    fn lookup(table: &Tensor<2>, ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, tokens] = ids.dims();
        let [_, hidden] = table.dims();
        table
            .clone()
            .select(0, ids.reshape([batch * tokens]))
            .reshape([batch, tokens, hidden])
    }
}

impl Model for BertClassifier {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let c = &self.config;
        let ids = Self::ids(inputs, "input_ids", c.vocabulary)?
            .ok_or_else(|| Error::Model("the BERT classifier needs `input_ids`".into()))?;
        let [batch, tokens] = ids.dims();
        if tokens == 0 || tokens > c.max_positions {
            return Err(Error::parameter(
                "input_ids",
                format!("{tokens} tokens"),
                format!("the model has positions for 1 to {}", c.max_positions),
            ));
        }
        let device = ids.device();
        let mask = match inputs.value("attention_mask") {
            Ok(m) if m.shape() == [batch, tokens] => m.as_float().reshape([batch, tokens]),
            Ok(m) => {
                return Err(Error::ShapeMismatch {
                    what: "attention_mask".into(),
                    expected: vec![batch, tokens],
                    got: m.shape().to_vec(),
                });
            }
            Err(_) => Tensor::ones([batch, tokens], &device),
        };
        let types = Self::ids(inputs, "token_type_ids", c.token_types)?
            .unwrap_or_else(|| Tensor::zeros([batch, tokens], &device));
        let words = taps.tap(WORD_EMBEDDINGS, Self::lookup(&self.word, ids))?;
        let positions = self
            .position
            .clone()
            .narrow(0, 0, tokens)
            .reshape([1, tokens, c.hidden]);
        let x = words + positions + Self::lookup(&self.token_type, types);
        let mut x = taps.tap("embeddings", self.embedding_norm.forward(x))?;
        // Hugging Face adds the dtype's lowest value at masked keys; any large negative gives the
        // same zeros after the softmax.
        let mask_bias = (mask.clone().neg() + 1.0).reshape([batch, 1, 1, tokens]) * -1.0e9;
        for block in &self.blocks {
            x = block.forward(x, mask_bias.clone(), c.heads, taps)?;
        }
        // sentence-transformers' mean pooling: the mean of the unmasked tokens.
        let weights = mask.reshape([batch, tokens, 1]);
        let count = weights.clone().sum_dim(1).clamp_min(1e-9);
        let pooled = (x * weights).sum_dim(1) / count;
        let pooled = taps.tap("pooled", pooled.reshape([batch, c.hidden]))?;
        taps.tap("logits", self.head.forward(pooled))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut out = vec![
            LayerInfo::new(WORD_EMBEDDINGS, "Gather"),
            LayerInfo::new("embeddings", "LayerNormalization"),
        ];
        for block in &self.blocks {
            block.layers(&mut out);
        }
        out.push(LayerInfo::new("pooled", "MeanPool"));
        out.push(LayerInfo::new("logits", "Linear"));
        out
    }

    fn check_inputs(&self, inputs: &Inputs) -> Result<()> {
        inputs.batch()?;
        inputs.value("input_ids").map(|_| ())
    }
}
