//! `firelight explain-text --inputs`: a text data set (a file of lines, or a table's text column)
//! explained chunk by chunk, resumable, sharded and on a pool of workers, like a photo data set.

use std::path::Path;

use firelight::dataset::{
    Chunk, ChunkResult, OnError, OutputFile, Record, Sample, TextColumns, file_stem_for,
    read_text_samples, sample_seed,
};
use firelight::methods::MethodConfig;
use firelight::prelude::*;
use firelight::text::{Encoded, Reduction, TextClassifier, TextOptions, TokenScores, Truncation};

use crate::args::DeviceSpec;
use crate::dataset::{blame_device, run_job};
use crate::explain_text::ExplainTextArgs;

/// Which columns of a text table hold the texts, the ids and the targets.
#[derive(clap::Args, Debug)]
pub(crate) struct TextColumnArgs {
    /// The column of a .csv or .tsv data set that holds the texts.
    #[arg(long, default_value = "text", requires = "data_set")]
    text_column: String,
    /// The column that holds each row's id [default: `id`, or an unnamed first column (pandas'
    /// index), or the row number].
    #[arg(long, requires = "data_set")]
    id_column: Option<String>,
    /// The column that holds the class to explain per row, by label or index (e.g. the true
    /// label) [default: `target`, if there is one; else --target, else the prediction].
    #[arg(long, requires = "data_set")]
    target_column: Option<String>,
}

/// Runs the text data-set job `args` describes over `inputs` with `method`.
pub(crate) fn explain(args: &ExplainTextArgs, inputs: &Path, method: MethodConfig) -> Result<()> {
    for (given, flag) in [
        (
            !args.input.texts.is_empty(),
            "sentences on the command line",
        ),
        (args.input.text_file.is_some(), "--text-file"),
        (args.dataset.pictures, "--pictures"),
    ] {
        if given {
            return Err(Error::parameter(
                "inputs",
                inputs.display(),
                format!(
                    "{flag} cannot go with a data-set job, which reads its texts from --inputs"
                ),
            ));
        }
    }
    let columns = TextColumns {
        text: args.columns.text_column.clone(),
        id: args.columns.id_column.clone(),
        target: args.columns.target_column.clone(),
    };
    let samples = read_text_samples(inputs, &columns)?;
    // Everything that changes the numbers or the files: a restart with other settings is refused.
    let settings = serde_json::json!({
        "command": "explain-text",
        "method": method.info().name,
        "method_options": method.options(),
        "model": args.input.model.as_ref().map(|p| p.display().to_string()),
        "tokenizer": args.input.tokenizer.as_ref().map(|p| p.display().to_string()),
        "no_truncate": args.input.no_truncate,
        "layer": args.options.layer,
        "target": args.target,
        "replacement": format!("{:?}", args.replacement),
        "words": args.words,
        "l2": args.l2,
        "seed": args.options.seed,
        "device": args.device.kind(),
    });
    run_job(
        &args.dataset,
        &args.device,
        &args.out,
        inputs,
        samples,
        settings,
        |k| {
            let worker = TextWorker::new(args, &method, k)?;
            Ok(move |chunk: &Chunk<'_>| worker.explain(chunk))
        },
    )
}

/// One worker's text model and what it needs to explain a chunk.
struct TextWorker<'a> {
    args: &'a ExplainTextArgs,
    method: &'a MethodConfig,
    spec: DeviceSpec,
    classifier: TextClassifier,
    layer: String,
    on_error: OnError,
    /// Whether the method draws random numbers: then each text runs alone, with a seed of its
    /// own (from its id), so chunking, shards and retries give the same numbers.
    stochastic: bool,
}

/// One text's explanation.
struct Explained {
    /// Per token (or word with --words).
    scores: TokenScores,
    /// The convergence delta, for the methods that have one.
    delta: Option<f32>,
    /// Tokens cut off the end to fit the model's positions.
    dropped: usize,
}

/// A text of the chunk, with what was predicted for it.
struct Item<'s> {
    position: usize,
    sample: &'s Sample,
    text: &'s str,
    record: Record,
}

impl<'a> TextWorker<'a> {
    fn new(args: &'a ExplainTextArgs, method: &'a MethodConfig, k: usize) -> Result<Self> {
        let spec = args.device.for_worker(k).clone();
        let device = spec.open(args.device.token.as_deref())?;
        let model = args
            .input
            .model
            .clone()
            .unwrap_or_else(firelight::text::default_text_model);
        let classifier = TextClassifier::load(&model, args.input.tokenizer.as_deref(), &device)?;
        let layer = args
            .options
            .layer
            .clone()
            .unwrap_or_else(|| classifier.embedding.clone());
        let stochastic = method.is_stochastic();
        Ok(Self {
            args,
            method,
            spec,
            classifier,
            layer,
            on_error: args.dataset.on_error.into(),
            stochastic,
        })
    }

    /// Texts longer than the model's positions are cut (their output says how many tokens were
    /// dropped), or refused with --no-truncate.
    fn truncation(&self) -> Truncation {
        if self.args.input.no_truncate {
            Truncation::Error
        } else {
            Truncation::Warn
        }
    }

    fn fail(&self, result: &mut ChunkResult, item: &Item<'_>, e: &Error) -> Result<()> {
        let record = self.on_error.failure(item.position, item.sample, e)?;
        eprintln!("skipped {}: {e}", item.sample.id);
        result.records.push(record);
        Ok(())
    }

    fn explain(&self, chunk: &Chunk<'_>) -> Result<ChunkResult> {
        self.explain_chunk(chunk)
            .map_err(|e| blame_device(&self.spec, chunk.index, e))
    }

    fn explain_chunk(&self, chunk: &Chunk<'_>) -> Result<ChunkResult> {
        let mut result = ChunkResult::default();
        let items: Vec<Item<'_>> = chunk
            .positioned()
            .map(|(position, sample)| Item {
                position,
                sample,
                text: sample.content.as_deref().unwrap_or_default(),
                record: Record::new(position, sample),
            })
            .collect();
        let texts: Vec<&str> = items.iter().map(|i| i.text).collect();
        let (kept, encoded) = match self.classifier.encode(&texts, self.truncation()) {
            Ok(encoded) => (items, encoded),
            Err(_) => {
                // A text the model refuses (too long with --no-truncate) fails alone, not its
                // chunk: the texts one by one find which.
                let mut kept = Vec::with_capacity(items.len());
                for item in items {
                    match self.classifier.encode(&[item.text], self.truncation()) {
                        Ok(_) => kept.push(item),
                        Err(e) => self.fail(&mut result, &item, &e)?,
                    }
                }
                if kept.is_empty() {
                    return Ok(result);
                }
                let texts: Vec<&str> = kept.iter().map(|i| i.text).collect();
                let encoded = self.classifier.encode(&texts, self.truncation())?;
                (kept, encoded)
            }
        };
        let probabilities = self.classifier.probabilities(&encoded)?;
        let encoded_rows = kept.len();
        let mut targets = Vec::with_capacity(kept.len());
        let mut explained = Vec::with_capacity(kept.len());
        for (mut item, p) in kept.into_iter().zip(&probabilities) {
            match self.predict(&mut item, p) {
                Ok(class) => {
                    targets.push(class);
                    explained.push(item);
                }
                Err(e) => self.fail(&mut result, &item, &e)?,
            }
        }
        if explained.is_empty() {
            return Ok(result);
        }
        let scores = if self.stochastic {
            let mut scores = Vec::with_capacity(explained.len());
            for (item, &class) in explained.iter().zip(&targets) {
                let own = self
                    .method
                    .seeded(sample_seed(self.args.options.seed, &item.sample.id));
                let alone = self.classifier.encode(&[item.text], self.truncation())?;
                scores.extend(self.attribute(&own, &alone, vec![class])?);
            }
            scores
        } else if explained.len() == encoded_rows {
            self.attribute(self.method, &encoded, targets.clone())?
        } else {
            // Some targets were not classes: the others, encoded again without them.
            let texts: Vec<&str> = explained.iter().map(|i| i.text).collect();
            let encoded = self.classifier.encode(&texts, self.truncation())?;
            self.attribute(self.method, &encoded, targets.clone())?
        };
        let name = self.method.info().name;
        for ((item, class), explanation) in explained.into_iter().zip(targets).zip(scores) {
            let output = format!(
                "attributions/{}.{name}.json",
                file_stem_for(&item.sample.id)
            );
            let json = serde_json::json!({
                "id": item.sample.id,
                "text": item.text,
                "target": class,
                "target_label": self.label(class),
                "delta": explanation.delta,
                "dropped_tokens": explanation.dropped,
                "tokens": explanation.scores.labels,
                "scores": explanation.scores.scores,
            });
            result.files.push(OutputFile {
                name: output.clone(),
                bytes: serde_json::to_vec(&json).map_err(|e| Error::Model(e.to_string()))?,
            });
            result.records.push(Record {
                method: Some(name.to_string()),
                output: Some(output),
                ..item.record
            });
        }
        Ok(result)
    }

    fn label(&self, class: usize) -> String {
        self.classifier
            .labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string())
    }

    /// Records the item's prediction, and returns the class to explain (its target column's,
    /// else --target, else the prediction); fails when its target is not a class.
    fn predict(&self, item: &mut Item<'_>, probabilities: &[f32]) -> Result<usize> {
        let top = (0..probabilities.len())
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap_or(0);
        item.record.prediction = Some(top);
        item.record.prediction_label = Some(self.label(top));
        item.record.probability = probabilities.get(top).copied();
        let spec = item
            .sample
            .target
            .as_deref()
            .or(self.args.target.as_deref());
        let class = spec
            .map(|s| self.classifier.class(s))
            .transpose()?
            .unwrap_or(top);
        item.record.target = Some(class);
        item.record.target_label = Some(self.label(class));
        item.record.score = probabilities.get(class).copied();
        Ok(class)
    }

    /// `method` over `encoded` for `classes`: per text, its token (or word) scores and its
    /// convergence delta where the method has one.
    fn attribute(
        &self,
        method: &MethodConfig,
        encoded: &Encoded,
        classes: Vec<usize>,
    ) -> Result<Vec<Explained>> {
        let result = self.classifier.attribute(
            encoded,
            &Target::classes(classes),
            method,
            &TextOptions {
                layer: Some(self.layer.clone()),
                replacement: self.args.replacement.into(),
                words: self.args.words,
                progress: None,
            },
        )?;
        let reduction = if self.args.l2 {
            Reduction::L2
        } else {
            Reduction::Sum
        };
        let scores = TokenScores::from_embedding(encoded, &result.attributions, reduction)?;
        Ok(scores
            .into_iter()
            .zip(&encoded.sentences)
            .enumerate()
            .map(|(i, (s, sentence))| {
                let shown = if self.args.words {
                    s.words(sentence)
                } else {
                    s
                };
                Explained {
                    scores: shown,
                    delta: result.delta.as_ref().map(|d| d[i]),
                    dropped: sentence.dropped,
                }
            })
            .collect())
    }
}
