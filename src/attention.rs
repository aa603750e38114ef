//! Attention in transformers, text or vision: the probabilities of every layer and head, attention
//! rollout (Abnar & Zuidema 2020) and the gradient-weighted relevance of Chefer et al. 2021, for
//! any model whose attention blocks are taps ([`OnnxModel::attention_layers`] finds them in an
//! ONNX graph, fused `Attention` nodes included).
//!
//! ```no_run
//! use firelight::attention::{self, HeadFusion, Readout};
//! use firelight::prelude::*;
//! use firelight::onnx::OnnxModel;
//!
//! let device = Device::flex();
//! let vit = OnnxModel::load("vit.onnx", &device)?;
//! let image: Inputs = DynTensor::new(Tensor::<4>::zeros([1, 3, 224, 224], &device)).into();
//! let layers = vit.attention_layers();
//! let maps = attention::attention_maps(&vit, &image, &layers, None)?;
//! let rollout = maps[0].rollout(HeadFusion::Mean, 0.9)?;
//! let relevance = attention::chefer_relevance(&vit, &image, &layers, &Target::class(3), None)?;
//! let class_to_patches = &Readout::ClassToken.read(&relevance[0])[1..];
//! # Ok::<(), firelight::core::Error>(())
//! ```
//!
//! [`OnnxModel::attention_layers`]: firelight_onnx::OnnxModel::attention_layers

use firelight_core::gradients::multi_layer_gradients;
use firelight_core::{DynTensor, Error, Inputs, Model, Recorder, Result, Taps, Target};

pub use firelight_core::model::attention_layers;
pub use firelight_text::attention::{HeadFusion, Readout, Square, fuse_heads, relevance, rollout};

/// One input's attention probabilities at every attention layer, first layer first.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionMaps {
    /// The layers (taps) they were read at.
    pub layers: Vec<String>,
    /// Heads per layer.
    pub heads: usize,
    /// Tokens (queries and keys).
    pub tokens: usize,
    /// Per layer, `[heads, tokens, tokens]` row-major: row `i` of a head is how token `i`
    /// attends to every token.
    pub maps: Vec<Vec<f32>>,
}

impl AttentionMaps {
    /// Head `head` of layer `layer`, `[tokens, tokens]` row-major.
    pub fn head(&self, layer: usize, head: usize) -> &[f32] {
        let per = self.tokens * self.tokens;
        &self.maps[layer][head * per..(head + 1) * per]
    }

    /// The attention rollout through every layer (see [`rollout`]).
    pub fn rollout(&self, fusion: HeadFusion, discard_ratio: f32) -> Result<Square> {
        rollout(&self.maps, self.heads, fusion, discard_ratio)
    }
}

/// The attention probabilities at `layers` for every row of `inputs`, from one forward pass;
/// row `r` cut to its first `tokens[r]` tokens when `tokens` is given (the real tokens of a
/// padded sentence: attention to padding is zero, so the cut maps are exact).
pub fn attention_maps(
    model: &dyn Model,
    inputs: &Inputs,
    layers: &[String],
    tokens: Option<&[usize]>,
) -> Result<Vec<AttentionMaps>> {
    check_layers(model, layers)?;
    let mut recorder = Recorder::new(layers.iter().map(String::as_str));
    model.forward(&inputs.detached(), &mut Taps::with_hook(&mut recorder))?;
    let recorded = layers
        .iter()
        .map(|layer| {
            recorder
                .take(layer)
                .ok_or_else(|| firelight_core::gradients::not_reached(layer))
        })
        .collect::<Result<Vec<_>>>()?;
    let maps = per_row(layers, &recorded, tokens)?;
    check_probabilities(&maps)?;
    Ok(maps)
}

/// Every row of every head sums to one over the keys and no weight is negative: the layers
/// really are attention probabilities (a convolution's `[batch, channels, h, w]` output with
/// `h == w` has the shape of one).
fn check_probabilities(maps: &[AttentionMaps]) -> Result<()> {
    for m in maps {
        for (layer, values) in m.layers.iter().zip(&m.maps) {
            let bad = values.chunks(m.tokens).find(|row| {
                let sum: f32 = row.iter().sum();
                (sum - 1.0).abs() > 1e-3 || row.iter().any(|v| *v < 0.0 || !v.is_finite())
            });
            if let Some(row) = bad {
                return Err(Error::Model(format!(
                    "`{layer}` is not an attention map: a row sums to {} (attention \
                     probabilities are non-negative and sum to 1 over the keys)",
                    row.iter().sum::<f32>()
                )));
            }
        }
    }
    Ok(())
}

/// Chefer et al.'s relevance matrix for every row of `inputs` (see [`relevance`]): the
/// attention probabilities at `layers` and the gradients of `target` with respect to them, from
/// one forward and one backward pass; cut to `tokens` as [`attention_maps`] does. Read one score
/// per token with a [`Readout`].
pub fn chefer_relevance(
    model: &dyn Model,
    inputs: &Inputs,
    layers: &[String],
    target: &Target,
    tokens: Option<&[usize]>,
) -> Result<Vec<Square>> {
    check_layers(model, layers)?;
    let batch = inputs.batch()?;
    target.check_batch(batch)?;
    let samples: Vec<usize> = (0..batch).collect();
    firelight_core::gradients::validate(model, inputs, &samples)?;
    let pairs = multi_layer_gradients(model, inputs, layers, target, &samples)?;
    let (attention, gradients): (Vec<DynTensor>, Vec<DynTensor>) = pairs.into_iter().unzip();
    let attention = per_row(layers, &attention, tokens)?;
    check_probabilities(&attention)?;
    let gradients = per_row(layers, &gradients, tokens)?;
    attention
        .iter()
        .zip(&gradients)
        .map(|(a, g)| relevance(&a.maps, &g.maps, a.heads))
        .collect()
}

fn check_layers(model: &dyn Model, layers: &[String]) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::Model(
            "the model has no attention layers (a Softmax shaped [batch, heads, tokens, tokens] \
             or a fused Attention node)"
                .into(),
        ));
    }
    layers.iter().try_for_each(|l| model.check_layer(l))
}

/// `[batch, heads, t, t]` values per layer into per-row maps, each cut to its row's tokens.
fn per_row(
    layers: &[String],
    values: &[DynTensor],
    tokens: Option<&[usize]>,
) -> Result<Vec<AttentionMaps>> {
    let mut shape: Option<[usize; 4]> = None;
    let mut flat = Vec::with_capacity(values.len());
    for (layer, value) in layers.iter().zip(values) {
        let dims: [usize; 4] = match value.shape() {
            &[b, h, q, k] if q == k => [b, h, q, k],
            other => {
                return Err(Error::Model(format!(
                    "`{layer}` is not an attention map [batch, heads, tokens, tokens]: its \
                     shape is {other:?}"
                )));
            }
        };
        if let Some(first) = shape
            && first != dims
        {
            return Err(Error::Model(format!(
                "attention layers disagree in shape: {first:?} and {dims:?} at `{layer}`"
            )));
        }
        shape = Some(dims);
        flat.push(value.to_vec()?);
    }
    let Some([batch, heads, t, _]) = shape else {
        return Ok(Vec::new());
    };
    if let Some(tokens) = tokens
        && (tokens.len() != batch || tokens.iter().any(|&n| n == 0 || n > t))
    {
        return Err(Error::Model(format!(
            "token counts {tokens:?} do not fit {batch} rows of {t} tokens"
        )));
    }
    Ok((0..batch)
        .map(|row| {
            let n = tokens.map_or(t, |tokens| tokens[row]);
            let maps = flat
                .iter()
                .map(|layer| {
                    let mut cut = Vec::with_capacity(heads * n * n);
                    for h in 0..heads {
                        let head = (row * heads + h) * t * t;
                        for i in 0..n {
                            let start = head + i * t;
                            cut.extend_from_slice(&layer[start..start + n]);
                        }
                    }
                    cut
                })
                .collect();
            AttentionMaps {
                layers: layers.to_vec(),
                heads,
                tokens: n,
                maps,
            }
        })
        .collect())
}
