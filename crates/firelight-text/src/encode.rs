//! Tokenisation and token-id inputs.

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use firelight_core::value::{Value, padded};
use firelight_core::{Device, DynTensor, Error, Inputs, Result};

/// What to do with a sentence longer than the model's positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Keep the first tokens (and the closing special token) and report how many were dropped.
    #[default]
    Warn,
    /// Fail with an error naming the sentence and its length.
    Error,
}

/// A model's tokenizer (`tokenizer.json`) and the special tokens text methods need.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    /// `[PAD]`'s id: the baseline's filler and the padding of shorter sentences.
    pub pad_id: u32,
    /// `[CLS]`'s id (the first token), where the tokenizer has one.
    pub cls_id: Option<u32>,
    /// `[SEP]`'s id (the last token), where the tokenizer has one.
    pub sep_id: Option<u32>,
    /// `[MASK]`'s id, where the tokenizer has one.
    pub mask_id: Option<u32>,
    /// `[UNK]`'s id, where the tokenizer has one.
    pub unk_id: Option<u32>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocabulary", &self.vocabulary_size())
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

/// One encoded sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    /// The text as given.
    pub text: String,
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// The tokens as strings (`##` word pieces as the tokenizer writes them).
    pub tokens: Vec<String>,
    /// Per token, the index of the word it belongs to (`None` for special tokens).
    pub words: Vec<Option<u32>>,
    /// Per token, its byte range in `text` (`(0, 0)` for special tokens).
    pub offsets: Vec<(usize, usize)>,
    /// Tokens dropped by truncation (0 when the sentence fitted).
    pub dropped: usize,
}

/// Sentences encoded together: ids padded to the longest with `[PAD]`, and their masks.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The sentences, in order.
    pub sentences: Vec<Sentence>,
    /// Tokens per row (the longest sentence's length).
    pub length: usize,
    pad_id: u32,
    cls_id: Option<u32>,
    sep_id: Option<u32>,
}

fn tokenizer_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Model(format!("cannot read tokenizer {}: {e}", path.display()))
}

impl TextTokenizer {
    /// Reads a Hugging Face `tokenizer.json`. Its own padding and truncation are switched off
    /// (all-MiniLM-L6-v2's file pads everything to 128): sentences keep their lengths.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no tokenizer file here"),
            ));
        }
        let mut inner =
            tokenizers::Tokenizer::from_file(path).map_err(|e| tokenizer_error(path, e))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| tokenizer_error(path, e))?;
        let id = |token: &str| inner.token_to_id(token);
        let pad_id = id("[PAD]").or_else(|| id("<pad>")).ok_or_else(|| {
            tokenizer_error(
                path,
                "it has no [PAD] (or <pad>) token to build baselines from",
            )
        })?;
        Ok(Self {
            pad_id,
            cls_id: id("[CLS]").or_else(|| id("<s>")),
            sep_id: id("[SEP]").or_else(|| id("</s>")),
            mask_id: id("[MASK]").or_else(|| id("<mask>")),
            unk_id: id("[UNK]").or_else(|| id("<unk>")),
            inner,
        })
    }

    /// The number of token ids the tokenizer can produce (special tokens included).
    pub fn vocabulary_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Fails unless every id fits an embedding table of `rows` rows.
    pub fn check_vocabulary(&self, rows: usize) -> Result<()> {
        let size = self.vocabulary_size();
        if size > rows {
            return Err(Error::Model(format!(
                "the tokenizer has {size} tokens but the model's embedding table has {rows} \
                 rows: this tokenizer does not belong to this model"
            )));
        }
        Ok(())
    }

    /// Encodes `texts` (with the tokenizer's special tokens) into one batch. Sentences longer
    /// than `max_tokens` are cut to it (keeping the last special token) or refused, by
    /// `truncation`.
    pub fn encode(
        &self,
        texts: &[impl AsRef<str>],
        max_tokens: Option<usize>,
        truncation: Truncation,
    ) -> Result<Encoded> {
        if texts.is_empty() {
            return Err(Error::parameter(
                "text",
                "none",
                "give at least one sentence",
            ));
        }
        let mut sentences = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let text = text.as_ref();
            if text.trim().is_empty() {
                return Err(Error::parameter(
                    "text",
                    format!("sentence {} (empty)", i + 1),
                    "is empty: there is nothing to explain",
                ));
            }
            let encoding = self
                .inner
                .encode(text, true)
                .map_err(|e| Error::Model(format!("cannot tokenise sentence {}: {e}", i + 1)))?;
            let mut sentence = Sentence {
                text: text.to_string(),
                ids: encoding.get_ids().to_vec(),
                tokens: encoding.get_tokens().to_vec(),
                words: encoding.get_word_ids().to_vec(),
                offsets: encoding.get_offsets().to_vec(),
                dropped: 0,
            };
            if let Some(max) = max_tokens
                && sentence.ids.len() > max
            {
                if truncation == Truncation::Error {
                    return Err(Error::parameter(
                        "text",
                        format!("sentence {} ({} tokens)", i + 1, sentence.ids.len()),
                        format!("is longer than the model's {max} positions"),
                    ));
                }
                truncate(&mut sentence, max, self.sep_id);
            }
            sentences.push(sentence);
        }
        let length = sentences.iter().map(|s| s.ids.len()).max().unwrap_or(0);
        Ok(Encoded {
            sentences,
            length,
            pad_id: self.pad_id,
            cls_id: self.cls_id,
            sep_id: self.sep_id,
        })
    }
}

/// Cuts `s` to `max` tokens, keeping its closing special token.
fn truncate(s: &mut Sentence, max: usize, sep: Option<u32>) {
    let n = s.ids.len();
    let ends_with_sep = sep.is_some() && s.ids.last().copied() == sep;
    let keep_tail = usize::from(ends_with_sep && max >= 2);
    let (from, to) = (max - keep_tail, n - keep_tail);
    s.dropped = n - max;
    s.ids.drain(from..to);
    s.tokens.drain(from..to);
    s.words.drain(from..to);
    s.offsets.drain(from..to);
}

impl Encoded {
    /// Rows (sentences).
    pub fn len(&self) -> usize {
        self.sentences.len()
    }

    /// Whether there are no sentences.
    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }

    /// Sentence `row` alone, as long as its own tokens (no padding).
    pub fn sentence(&self, row: usize) -> Option<Encoded> {
        let sentence = self.sentences.get(row)?.clone();
        Some(Encoded {
            length: sentence.ids.len(),
            sentences: vec![sentence],
            pad_id: self.pad_id,
            cls_id: self.cls_id,
            sep_id: self.sep_id,
        })
    }

    /// Feature ids over sentence `row`'s tokens: one per token, or with `words` one per word
    /// (its pieces share it; a special token is a feature of its own), numbered from 0 in
    /// order.
    pub fn features(&self, row: usize, words: bool) -> Vec<i64> {
        let Some(s) = self.sentences.get(row) else {
            return Vec::new();
        };
        let mut ids = Vec::with_capacity(s.ids.len());
        let mut next = 0i64;
        let mut last: Option<u32> = None;
        for t in 0..s.ids.len() {
            let word = s.words.get(t).copied().flatten();
            match (words, word, last) {
                (true, Some(w), Some(l)) if w == l => ids.push(next - 1),
                _ => {
                    ids.push(next);
                    next += 1;
                }
            }
            last = word;
        }
        ids
    }

    /// The `[rows, length]` ids, each row padded with `[PAD]`.
    pub fn ids(&self) -> Vec<Vec<u32>> {
        self.sentences
            .iter()
            .map(|s| {
                let mut row = s.ids.clone();
                row.resize(self.length, self.pad_id);
                row
            })
            .collect()
    }

    /// The `[rows, length]` attention mask: 1 for a sentence's tokens, 0 for padding.
    pub fn mask(&self) -> Vec<Vec<u32>> {
        self.sentences
            .iter()
            .map(|s| {
                (0..self.length)
                    .map(|t| u32::from(t < s.ids.len()))
                    .collect()
            })
            .collect()
    }

    /// Captum's reference sentences: each row as long as its sentence, `[CLS]` and `[SEP]` kept
    /// where the sentence has them and every other token `[PAD]` (padding beyond stays `[PAD]`).
    pub fn pad_baseline(&self) -> Vec<Vec<u32>> {
        self.sentences
            .iter()
            .map(|s| {
                let n = s.ids.len();
                (0..self.length)
                    .map(|t| {
                        let id = s.ids.get(t).copied();
                        let special = (t == 0 && id == self.cls_id && id.is_some())
                            || (t + 1 == n && id == self.sep_id && id.is_some());
                        if special {
                            id.unwrap_or(self.pad_id)
                        } else {
                            self.pad_id
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The ids of `rows` as an int64 value `[rows, length]`.
    pub fn ids_value(rows: &[Vec<u32>], device: &Device) -> Result<Value> {
        let n = rows.len();
        let length = rows.first().map_or(0, Vec::len);
        let flat: Vec<i64> = rows.iter().flatten().map(|&v| i64::from(v)).collect();
        let t = Tensor::<2, Int>::from_data(TensorData::new(flat, [n, length]), device);
        Ok(Value::int6(
            t.reshape(padded(&[n, length])),
            vec![n, length],
        ))
    }

    /// The ids of `rows` as a float tensor `[rows, length]`: the form a baseline takes.
    pub fn ids_tensor(rows: &[Vec<u32>], device: &Device) -> Result<DynTensor> {
        let n = rows.len();
        let length = rows.first().map_or(0, Vec::len);
        let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
        DynTensor::from_vec(flat, vec![n, length], device)
    }

    /// The model inputs: `ids_name` (attributed: the layer methods explain it through the
    /// embedding), `mask_name` (carried, so every step of a path method keeps it) and, when
    /// given, `type_name` (carried, all zeros: one segment).
    pub fn inputs(
        &self,
        ids_name: &str,
        mask_name: &str,
        type_name: Option<&str>,
        device: &Device,
    ) -> Result<Inputs> {
        let mut inputs = Inputs::new()
            .attributed_value(ids_name, Self::ids_value(&self.ids(), device)?)
            .carried(mask_name, Self::ids_value(&self.mask(), device)?);
        if let Some(name) = type_name {
            let zeros = vec![vec![0u32; self.length]; self.len()];
            inputs = inputs.carried(name, Self::ids_value(&zeros, device)?);
        }
        Ok(inputs)
    }
}
