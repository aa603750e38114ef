//! Concepts in text: TCAV on a text classifier, with concepts given as sentences (a text file,
//! one example per line) and CAVs learnt at encoder layers pooled per sentence.
//!
//! An encoder layer is `[sentences, tokens, hidden]`; a CAV lives in the space of one vector per
//! sentence. [`PooledText`] wraps a [`TextClassifier`] as a [`Model`] that lists, beside the
//! graph's own layers, pooled ones: `LAYER@cls` (the first token's vector, BERT's `[CLS]`) and
//! `LAYER@mean` (the mean over the sentence's real tokens, as sentence-transformers pool). The
//! pooled value is a real tap: the model continues with `h_t + m_t (p' - p)` where `p` is the
//! pooled value and `p'` what the tap hands back, so a method that moves the pooled vector by `v`
//! moves every real token by `v` (`@mean`) or the first token by `v` (`@cls`), and the gradient
//! TCAV takes at `LAYER@mean` is the sum of the gradients at the real tokens: the directional
//! derivative of moving the sentence's representation along the CAV.
//!
//! The model's input is one float tensor `[sentences, 2, tokens]`, token ids and attention mask
//! ([`PooledText::examples`]), so that TCAV's concepts, random sets and targets are plain
//! tensors; ids are exact in float32 below 2^24.

use std::path::Path;

use burn::tensor::Tensor;
use firelight_core::{DynTensor, Error, Inputs, LayerInfo, Model, Result, TapHook, Taps};

use crate::attention::Readout;
use crate::text::{Encoded, TextClassifier, Truncation};

/// A pooled layer: its name, the layer it pools and how.
#[derive(Clone, Debug, PartialEq)]
struct Pooled {
    name: String,
    layer: String,
    readout: Readout,
}

/// A text classifier seen as a model of one float input `[sentences, 2, tokens]` (ids, mask)
/// with pooled layers (`LAYER@cls`, `LAYER@mean`) for TCAV; see the module docs.
pub struct PooledText<'a> {
    classifier: &'a TextClassifier,
    pooled: Vec<Pooled>,
}

/// The sentences of a concept file: one per line, blank lines and lines starting with `#`
/// skipped.
pub fn read_sentences(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let sentences: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if sentences.is_empty() {
        return Err(Error::parameter(
            "concept",
            path.display(),
            "has no sentences (one example per line)",
        ));
    }
    Ok(sentences)
}

impl<'a> PooledText<'a> {
    /// `classifier` with the pooled layers among `layers` (names ending in `@cls` or `@mean`
    /// over a layer of the graph shaped `[sentences, tokens, hidden]`); other names must be
    /// layers of the graph and are used as they are.
    pub fn new(classifier: &'a TextClassifier, layers: &[String]) -> Result<Self> {
        let mut pooled = Vec::new();
        for name in layers {
            let Some((layer, how)) = name.rsplit_once('@') else {
                classifier.model.check_layer(name)?;
                continue;
            };
            let readout = match how {
                "cls" => Readout::ClassToken,
                "mean" => Readout::MeanPooled,
                other => {
                    return Err(Error::parameter(
                        "layer",
                        name,
                        format!("`@{other}`: pool a text layer with @cls or @mean"),
                    ));
                }
            };
            classifier.model.check_layer(layer)?;
            let rank = classifier
                .model
                .layers()
                .into_iter()
                .find(|l| l.name == layer)
                .and_then(|l| l.shape.map(|s| s.len()));
            if rank.is_some_and(|r| r != 3) {
                return Err(Error::parameter(
                    "layer",
                    name,
                    format!(
                        "`{layer}` has rank {}, not [sentences, tokens, hidden]; pool an encoder \
                         layer",
                        rank.unwrap_or(0)
                    ),
                ));
            }
            pooled.push(Pooled {
                name: name.clone(),
                layer: layer.to_string(),
                readout,
            });
        }
        Ok(Self { classifier, pooled })
    }

    /// `texts` as this model's input `[sentences, 2, length]` (ids padded with `[PAD]`, mask 0
    /// there); `length` at least the longest sentence's tokens (see [`PooledText::length`]), so
    /// that examples of different concepts stack.
    pub fn examples(&self, texts: &[String], length: usize) -> Result<DynTensor> {
        let encoded = self.encode(texts)?;
        if encoded.length > length {
            return Err(Error::parameter(
                "length",
                length,
                format!("a sentence has {} tokens", encoded.length),
            ));
        }
        let pad = self.classifier.tokenizer.pad_id as f32;
        let mut flat = Vec::with_capacity(texts.len() * 2 * length);
        for sentence in &encoded.sentences {
            let n = sentence.ids.len();
            flat.extend(sentence.ids.iter().map(|&id| id as f32));
            flat.extend(std::iter::repeat_n(pad, length - n));
            flat.extend(std::iter::repeat_n(1.0, n));
            flat.extend(std::iter::repeat_n(0.0, length - n));
        }
        DynTensor::from_vec(
            flat,
            vec![texts.len(), 2, length],
            self.classifier.model.device(),
        )
    }

    /// The most tokens any of `sets` of sentences takes.
    pub fn length(&self, sets: &[&[String]]) -> Result<usize> {
        sets.iter()
            .map(|texts| self.encode(texts).map(|e| e.length))
            .try_fold(0, |m, l| l.map(|l| m.max(l)))
    }

    fn encode(&self, texts: &[String]) -> Result<Encoded> {
        // A concept example longer than the model's positions is refused, not cut: a cut
        // example would stand for a different sentence.
        self.classifier.encode(texts, Truncation::Error)
    }

    /// The graph's inputs and the real-token mask `[sentences, tokens]` of `inputs`.
    fn graph_inputs(&self, inputs: &Inputs) -> Result<(Inputs, Tensor<2>)> {
        let x = inputs.single_float()?;
        let &[n, 2, length] = x.shape() else {
            return Err(Error::ShapeMismatch {
                what: "text concept input (sentences, ids and mask, tokens)".into(),
                expected: vec![0, 2, 0],
                got: x.shape().to_vec(),
            });
        };
        let values = x.to_vec()?;
        let rows = |which: usize| -> Vec<Vec<u32>> {
            (0..n)
                .map(|i| {
                    let start = (i * 2 + which) * length;
                    values[start..start + length]
                        .iter()
                        .map(|&v| v as u32)
                        .collect()
                })
                .collect()
        };
        let device = self.classifier.model.device();
        let mut graph = Inputs::new()
            .attributed_value(
                &self.classifier.ids_input,
                Encoded::ids_value(&rows(0), device)?,
            )
            .carried(
                &self.classifier.mask_input,
                Encoded::ids_value(&rows(1), device)?,
            );
        if let Some(name) = &self.classifier.type_input {
            graph = graph.carried(name, Encoded::ids_value(&vec![vec![0; length]; n], device)?);
        }
        let mask = x.flat().clone().reshape([n, 2, length]).narrow(1, 1, 1);
        Ok((graph, mask.reshape([n, length]).detach()))
    }
}

/// Passes every value on to the outer taps, and at a pooled layer's source the pooled value
/// too, with what the outer taps hand back spread over the tokens.
struct Pooling<'t, 'h> {
    outer: &'t mut Taps<'h>,
    pooled: &'t [Pooled],
    mask: Tensor<2>,
}

impl TapHook for Pooling<'_, '_> {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        let mut value = self.outer.tap_dyn(layer, value)?;
        for pooled in self.pooled.iter().filter(|p| p.layer == layer) {
            let &[n, t, hidden] = value.shape() else {
                return Err(Error::Model(format!(
                    "`{}` pools `{layer}`, which is {:?}, not [sentences, tokens, hidden]",
                    pooled.name,
                    value.shape()
                )));
            };
            let h: Tensor<3> = value.flat().clone().reshape([n, t, hidden]);
            // Where the pooled vector sits: every real token (mean) or the first (cls).
            let weights: Tensor<3> = match pooled.readout {
                Readout::MeanPooled => self.mask.clone().reshape([n, t, 1]),
                Readout::ClassToken => {
                    let mut first = vec![0.0f32; n * t];
                    (0..n).for_each(|i| first[i * t] = 1.0);
                    Tensor::<1>::from_floats(first.as_slice(), &h.device()).reshape([n, t, 1])
                }
            };
            let counts = weights.clone().sum_dim(1).clamp_min(1.0); // [n, 1, 1]
            let p = (h.clone() * weights.clone()).sum_dim(1) / counts; // [n, 1, hidden]
            let p2 = self
                .outer
                .tap_dyn(&pooled.name, DynTensor::new(p.clone().reshape([n, hidden])))?
                .flat()
                .clone()
                .reshape([n, 1, hidden]);
            let moved = h + weights * (p2 - p);
            value = DynTensor::new(moved);
        }
        Ok(value)
    }
}

impl Model for PooledText<'_> {
    fn forward(&self, inputs: &Inputs, taps: &mut Taps<'_>) -> Result<Tensor<2>> {
        let (graph, mask) = self.graph_inputs(inputs)?;
        let relu = taps.current_relu_policy();
        let mut hook = Pooling {
            outer: taps,
            pooled: &self.pooled,
            mask,
        };
        self.classifier
            .model
            .forward(&graph, &mut Taps::with_hook(&mut hook).relu_policy(relu))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut layers = self.classifier.model.layers();
        for p in &self.pooled {
            let at = layers
                .iter()
                .position(|l| l.name == p.layer)
                .map_or(layers.len(), |i| i + 1);
            layers.insert(at, LayerInfo::new(p.name.clone(), "Pool"));
        }
        layers
    }
}
