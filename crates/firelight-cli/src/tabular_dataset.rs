//! `firelight explain --model TABULAR --inputs rows.csv`: a table's rows explained chunk by chunk,
//! resumable, sharded and on a pool of workers, like a photo data set.

use std::path::Path;

use firelight::dataset::{
    Chunk, ChunkResult, OnError, OutputFile, Record, file_stem_for, sample_seed,
};
use firelight::methods::{MethodConfig, RunContext};
use firelight::prelude::*;
use firelight::tabular::{Table, TabularModel};

use crate::args::DeviceSpec;
use crate::dataset::{blame_device, run_job};
use crate::explain::ExplainArgs;
use crate::tabular::{configs, open_model};

/// Runs the tabular data-set job `args` describes over the rows of `inputs`.
pub(crate) fn explain(args: &ExplainArgs, inputs: &Path, methods: &[String]) -> Result<()> {
    if args.dataset.pictures {
        return Err(Error::parameter(
            "pictures",
            "given",
            "--pictures draws photos' maps; a table's rows get their attributions as JSON",
        ));
    }
    let configs = configs(&args.options, methods)?;
    if let Some(m) = configs
        .iter()
        .find(|m| matches!(m, MethodConfig::FeaturePermutation(_)))
    {
        return Err(Error::parameter(
            "method",
            m.info().name,
            "it shuffles features across the rows of a batch, so its numbers would depend on \
             the chunks; explain the rows together with --rows instead",
        ));
    }
    // The features are the model's: the samples are checked against them before anything runs.
    let features = open_model(&args.input.model.model, &Device::flex())?
        .spec
        .features;
    let samples = Table::read_samples(inputs, &features)?;
    // Everything that changes the numbers or the files: a restart with other settings is refused.
    let settings = serde_json::json!({
        "command": "explain (tabular)",
        "methods": configs.iter().map(|m| m.info().name).collect::<Vec<_>>(),
        "model": args.input.model.model,
        "device": args.input.device.kind(),
        "options": format!("{:?}", args.options),
    });
    run_job(
        &args.dataset,
        &args.input.device,
        &args.out,
        inputs,
        samples,
        settings,
        |k| {
            let worker = RowWorker::new(args, &configs, k)?;
            Ok(move |chunk: &Chunk<'_>| worker.explain(chunk))
        },
    )
}

/// One worker's tabular model and what it needs to explain a chunk of rows.
struct RowWorker<'a> {
    args: &'a ExplainArgs,
    methods: &'a [MethodConfig],
    spec: DeviceSpec,
    device: Device,
    tabular: TabularModel,
    on_error: OnError,
}

impl<'a> RowWorker<'a> {
    fn new(args: &'a ExplainArgs, methods: &'a [MethodConfig], k: usize) -> Result<Self> {
        let spec = args.input.device.for_worker(k).clone();
        let device = spec.open(args.input.device.token.as_deref())?;
        let tabular = open_model(&args.input.model.model, &device)?;
        Ok(Self {
            args,
            methods,
            spec,
            device,
            tabular,
            on_error: args.dataset.on_error.into(),
        })
    }

    fn explain(&self, chunk: &Chunk<'_>) -> Result<ChunkResult> {
        self.explain_chunk(chunk)
            .map_err(|e| blame_device(&self.spec, chunk.index, e))
    }

    fn explain_chunk(&self, chunk: &Chunk<'_>) -> Result<ChunkResult> {
        let features = &self.tabular.spec.features;
        let mut result = ChunkResult::default();
        let mut rows = Vec::new();
        let mut kept = Vec::new();
        for (position, sample) in chunk.positioned() {
            match Table::from_sample(sample, features) {
                Ok(row) => {
                    rows.push(row);
                    kept.push((position, sample));
                }
                Err(e) => {
                    result
                        .records
                        .push(self.on_error.failure(position, sample, &e)?);
                    eprintln!("skipped {}: {e}", sample.id);
                }
            }
        }
        if rows.is_empty() {
            return Ok(result);
        }
        let table = Table::concat(rows);
        let predictions = self.tabular.predict(&table, &self.device)?;
        let inputs = self.tabular.inputs(&table, &self.device)?;
        let target = Target::class(0);
        for method in self.methods {
            let name = method.info().name;
            let stochastic = method.is_stochastic();
            let context = RunContext {
                feature_mask: self
                    .args
                    .options
                    .feature_mask(std::slice::from_ref(method), None)?,
                ..RunContext::default()
            };
            // A method that draws random numbers runs row by row, seeded by the row's id, so
            // chunks, shards and retries give the same numbers.
            let values: Vec<Vec<f32>> = if stochastic {
                let mut values = Vec::with_capacity(kept.len());
                for (row, (_, sample)) in kept.iter().enumerate() {
                    let own = method.seeded(sample_seed(self.args.options.seed, &sample.id));
                    let alone = Table {
                        labels: vec![table.labels[row].clone()],
                        rows: vec![table.rows[row].clone()],
                    };
                    let inputs = self.tabular.inputs(&alone, &self.device)?;
                    let attribution = own
                        .attribute(self.tabular.model(), &inputs, &target, &context)?
                        .into_single()?;
                    values.push(attribution.to_vec()?);
                }
                values
            } else {
                let all = method
                    .attribute(self.tabular.model(), &inputs, &target, &context)?
                    .into_single()?
                    .to_vec()?;
                all.chunks(features.len()).map(<[f32]>::to_vec).collect()
            };
            for (row, ((position, sample), attributions)) in kept.iter().zip(values).enumerate() {
                let output = format!("attributions/{}.{name}.json", file_stem_for(&sample.id));
                let json = serde_json::json!({
                    "id": sample.id,
                    "prediction": predictions[row],
                    "features": features,
                    "values": table.rows[row],
                    "attributions": attributions,
                });
                result.files.push(OutputFile {
                    name: output.clone(),
                    bytes: serde_json::to_vec(&json).map_err(|e| Error::Model(e.to_string()))?,
                });
                result.records.push(Record {
                    method: Some(name.to_string()),
                    target: Some(0),
                    target_label: self.tabular.spec.output.clone(),
                    score: Some(predictions[row]),
                    output: Some(output),
                    ..Record::new(*position, sample)
                });
            }
        }
        Ok(result)
    }
}
