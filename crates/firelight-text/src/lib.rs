//! # firelight-text
//!
//! Text as a first-class input: a model's `tokenizer.json` read with the pure-Rust `tokenizers`
//! crate ([`TextTokenizer`], padding and truncation off unless asked), sentences of different
//! lengths encoded into one batch of token ids with their attention masks ([`Encoded`],
//! [`Encoded::inputs`]), Captum's reference sentence `[CLS] [PAD] ... [PAD] [SEP]`
//! ([`Encoded::pad_baseline`]), attributions at the embedding summed into one score per token
//! and merged into words ([`TokenScores`]), a self-contained HTML view ([`html`]), and
//! attention rollout ([`attention::rollout`]).
//!
//! The attribution itself is any layer method at the embedding output (Captum's
//! `LayerIntegratedGradients` on `word_embeddings`), with the mask carried along every step.

#![warn(missing_docs)]

pub mod attention;
mod encode;
pub mod html;
mod scores;

pub use encode::{Encoded, Sentence, TextTokenizer, Truncation};
pub use scores::{Reduction, TokenScores};
