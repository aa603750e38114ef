//! One score per token (or word) from attributions at the embedding.

use firelight_core::{DynTensor, Error, Result};

use crate::Encoded;

/// How a token's embedding-sized attribution becomes one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The signed sum over the embedding axis (Captum's tutorials: `attributions.sum(dim=-1)`).
    #[default]
    Sum,
    /// The L2 norm over the embedding axis (unsigned).
    L2,
}

/// The scores of one sentence: one per token, or per word after [`TokenScores::words`].
#[derive(Clone, Debug, PartialEq)]
pub struct TokenScores {
    /// The tokens (or words) as shown.
    pub labels: Vec<String>,
    /// Their scores.
    pub scores: Vec<f32>,
    /// Each label's byte range in the sentence (`None` for special tokens).
    pub spans: Vec<Option<(usize, usize)>>,
}

impl TokenScores {
    /// Per sentence of `encoded`, the attribution `[rows, length, hidden]` at an embedding
    /// reduced over its last axis; padding positions are dropped.
    pub fn from_embedding(
        encoded: &Encoded,
        attributions: &DynTensor,
        reduction: Reduction,
    ) -> Result<Vec<TokenScores>> {
        let shape = attributions.shape();
        let (rows, length) = (encoded.len(), encoded.length);
        if shape.len() != 3 || shape[0] != rows || shape[1] != length {
            return Err(Error::ShapeMismatch {
                what: "attributions at a token embedding ([sentences, tokens, hidden])".into(),
                expected: vec![rows, length, 0],
                got: shape.to_vec(),
            });
        }
        let hidden = shape[2];
        let values: Vec<f32> = attributions
            .flat()
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Model(format!("attributions: {e:?}")))?;
        Ok(encoded
            .sentences
            .iter()
            .enumerate()
            .map(|(row, s)| {
                let scores = (0..s.ids.len())
                    .map(|t| {
                        let start = (row * length + t) * hidden;
                        let v = &values[start..start + hidden];
                        match reduction {
                            Reduction::Sum => v.iter().sum(),
                            Reduction::L2 => v.iter().map(|x| x * x).sum::<f32>().sqrt(),
                        }
                    })
                    .collect();
                TokenScores {
                    labels: s.tokens.clone(),
                    scores,
                    spans: s
                        .words
                        .iter()
                        .zip(&s.offsets)
                        .map(|(w, &o)| w.map(|_| o))
                        .collect(),
                }
            })
            .collect())
    }

    /// Sub-word tokens merged into the words they belong to (scores summed, the word's own text
    /// as its label); special tokens stay as they are. `words` and `text` are the sentence's.
    pub fn words(&self, sentence: &crate::Sentence) -> TokenScores {
        let mut out = TokenScores {
            labels: Vec::new(),
            scores: Vec::new(),
            spans: Vec::new(),
        };
        let mut last_word = None;
        for (t, score) in self.scores.iter().enumerate() {
            let word = sentence.words.get(t).copied().flatten();
            match (word, last_word) {
                (Some(w), Some(l)) if w == l => {
                    let i = out.scores.len() - 1;
                    out.scores[i] += score;
                    if let (Some((start, _)), Some((_, end))) = (out.spans[i], self.spans[t]) {
                        out.spans[i] = Some((start, end));
                        out.labels[i] = sentence.text[start..end].to_string();
                    }
                }
                _ => {
                    out.labels.push(match self.spans[t] {
                        Some((a, b)) if b > a => sentence.text[a..b].to_string(),
                        _ => self.labels[t].clone(),
                    });
                    out.scores.push(*score);
                    out.spans.push(self.spans[t]);
                }
            }
            last_word = word;
        }
        out
    }
}
