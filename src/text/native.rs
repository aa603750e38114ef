//! The native route for transformers: an exported BERT classifier's own weights in a Burn
//! [`BertClassifier`], whose attention probabilities are taps like the ONNX graph's.

use firelight_core::{Error, Model, Recorder, Result, Taps};
use firelight_models::{BertClassifier, BertConfig, WeightSource};
use firelight_onnx::Initializers;

use super::{TextClassifier, Truncation};

/// `classifier`'s weights (a BERT encoder exported by `torch.onnx` with Hugging Face's parameter
/// names, mean pooling and a linear `head`) in a native Burn [`BertClassifier`]. The sizes come
/// from the weights, the number of heads from the graph's first attention map.
pub fn native_bert(classifier: &TextClassifier) -> Result<BertClassifier> {
    let file = Initializers::read(&classifier.path)?;
    let prefix = if file.contains("bert.embeddings.word_embeddings.weight") {
        "bert."
    } else {
        ""
    };
    let shape = |name: &str| {
        file.shape(&format!("{prefix}{name}")).ok_or_else(|| {
            Error::Model(format!(
                "{}: no `{prefix}{name}`: not a BERT exported with Hugging Face's names",
                classifier.path.display()
            ))
        })
    };
    let words = shape("embeddings.word_embeddings.weight")?;
    let layers = (0..)
        .take_while(|i| {
            file.contains(&format!(
                "{prefix}encoder.layer.{i}.attention.self.query.bias"
            ))
        })
        .count();
    let classes = file
        .shape("head.bias")
        .and_then(|s| s.first().copied())
        .ok_or_else(|| Error::Model(format!("{}: no linear `head`", classifier.path.display())))?;
    let config = BertConfig {
        vocabulary: words[0],
        hidden: words[1],
        layers,
        heads: heads(classifier)?,
        intermediate: shape("encoder.layer.0.intermediate.dense.bias")?[0],
        max_positions: shape("embeddings.position_embeddings.weight")?[0],
        token_types: shape("embeddings.token_type_embeddings.weight")?[0],
        classes,
    };
    BertClassifier::new(
        config,
        prefix,
        &mut ExportedBert { file: &file },
        classifier.model.device(),
    )
}

/// The heads of `classifier`'s first attention block, read off its probabilities.
fn heads(classifier: &TextClassifier) -> Result<usize> {
    let layer = classifier.attention_layers.first().ok_or_else(|| {
        Error::Model("the model has no attention layers to count the heads of".into())
    })?;
    let encoded = classifier.encode(&["a"], Truncation::Error)?;
    let mut recorder = Recorder::new([layer.as_str()]);
    classifier.model.forward(
        &classifier.inputs(&encoded)?,
        &mut Taps::with_hook(&mut recorder),
    )?;
    recorder
        .get(layer)
        .and_then(|p| p.shape().get(1).copied())
        .ok_or_else(|| Error::Model(format!("attention layer `{layer}` did not run")))
}

/// Hugging Face names served from an ONNX export. `torch.onnx` keeps most parameters under their
/// names but folds a linear layer's weight, transposed, into an `onnx::MatMul_<n>` initializer;
/// that one is found through the layer's `MatMul` node (`/bert/encoder/layer.0/attention/self/
/// query/MatMul`) and transposed back.
struct ExportedBert<'a> {
    file: &'a Initializers,
}

impl WeightSource for ExportedBert<'_> {
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        if self.file.contains(name) {
            let (found, values) = self.file.get(name)?;
            if found != shape {
                return Err(Error::ShapeMismatch {
                    what: format!("weight `{name}`"),
                    expected: shape.to_vec(),
                    got: found,
                });
            }
            return Ok(values);
        }
        let missing = || Error::Model(format!("the ONNX file has no weight for `{name}`"));
        let (Some(layer), &[rows, cols]) = (name.strip_suffix(".weight"), shape) else {
            return Err(missing());
        };
        let node = format!("/{}/MatMul", torch_scope(layer));
        let folded = self
            .file
            .node_inputs(&node)
            .into_iter()
            .flatten()
            .find(|input| self.file.shape(input) == Some(vec![cols, rows]))
            .ok_or_else(missing)?;
        let (_, values) = self.file.get(folded)?;
        // [in, out] back to torch's [out, in].
        Ok((0..rows * cols)
            .map(|i| values[(i % cols) * rows + i / cols])
            .collect())
    }
}

/// A parameter path as `torch.onnx` scopes its nodes: `bert.encoder.layer.0.attention` is
/// `bert/encoder/layer.0/attention` (a list index stays joined to its list).
fn torch_scope(path: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split('.') {
        match parts.last_mut() {
            Some(last) if part.chars().all(|c| c.is_ascii_digit()) => {
                last.push('.');
                last.push_str(part);
            }
            _ => parts.push(part.to_string()),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::torch_scope;

    #[test]
    fn list_indices_stay_joined_to_their_list_in_torch_scopes() {
        assert_eq!(
            torch_scope("bert.encoder.layer.10.attention.self.query"),
            "bert/encoder/layer.10/attention/self/query"
        );
    }
}
