//! `firelight explain --inputs`: a whole data set, chunk by chunk, resumable, sharded over a
//! scheduler's tasks and spread over a pool of workers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use firelight::bundled::ImageClassifier;
use firelight::core::npy::encode_npy;
use firelight::dataset::{
    Chunk, ChunkResult, Job, OnError, OutputFile, Record, Sample, Shard, file_stem_for,
    is_store_url, read_samples, sample_seed,
};
use firelight::methods::{Family, MethodConfig, RunContext};
use firelight::perturb::FeatureMask;
use firelight::prelude::*;
use firelight::viz::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{DeviceArgs, DeviceSpec, class_target, classifier, load_input, resolve_target};
use crate::explain::ExplainArgs;
use crate::session::{draw, file_safe};

/// The options of a data-set job (`firelight explain --inputs`, `explain-text --inputs`).
#[derive(clap::Args, Debug)]
pub(crate) struct DatasetArgs {
    /// Explain a whole data set instead of one input. `explain`: a folder of photos and .npy
    /// tensors (searched recursively) or a manifest CSV with a `path` column (and optional `id`
    /// and `target` columns). `explain-text`: a file with one text per line, or a .csv or .tsv
    /// with a text column (--text-column). Results go to --out chunk by chunk, then an index
    /// (index.jsonl: sample, id, input, method, target, prediction, score, output file); the same
    /// command again resumes a job that stopped.
    #[arg(long = "inputs", value_name = "FOLDER|FILE")]
    pub(crate) data_set: Option<PathBuf>,
    /// Samples per chunk: explained as one batch, written and resumed as one.
    #[arg(long, default_value_t = 8, requires = "data_set")]
    pub(crate) chunk_size: usize,
    /// Compute only shard I of N: the chunks c with c mod N = I. Without it the shard comes from
    /// a SLURM job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX, with --shards); with neither, the whole job. `firelight merge`
    /// gathers the shards' chunks into one index (the last shard to finish also writes it).
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "data_set")]
    pub(crate) shard: Option<Shard>,
    /// How many shards the job has, where the scheduler gives only this one's index (a
    /// Kubernetes Indexed Job's `completions`).
    #[arg(
        long,
        value_name = "N",
        requires = "data_set",
        conflicts_with = "shard"
    )]
    pub(crate) shards: Option<usize>,
    /// Chunks explained at once, each by a worker with a model of its own: on this machine, each
    /// with its share of the cores; with several --device, one worker per device (the default),
    /// each on its device in turn. Default: 1, or the number of devices.
    #[arg(long, requires = "data_set")]
    pub(crate) workers: Option<usize>,
    /// A sample that cannot be read or explained: fail the job, naming it, or skip it (its index
    /// line carries the error, and it is reported).
    #[arg(long, value_enum, default_value_t = OnErrorChoice::Fail, requires = "data_set")]
    pub(crate) on_error: OnErrorChoice,
    /// Also draw each photo's map as a PNG beside its .npy (photo data sets).
    #[arg(long, requires = "data_set")]
    pub(crate) pictures: bool,
}

/// `--on-error`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum OnErrorChoice {
    Fail,
    Skip,
}

impl From<OnErrorChoice> for OnError {
    fn from(choice: OnErrorChoice) -> Self {
        match choice {
            OnErrorChoice::Fail => OnError::Fail,
            OnErrorChoice::Skip => OnError::Skip,
        }
    }
}

fn parse_shard(text: &str) -> std::result::Result<Shard, String> {
    Shard::parse(text).map_err(|e| e.to_string())
}

/// Runs the data-set job `args` describes.
pub(crate) fn explain(args: &ExplainArgs, inputs: &Path, methods: &[String]) -> Result<()> {
    let data = &args.dataset;
    for (given, flag) in [
        (args.input.image.is_some(), "--image"),
        (args.target.concept_image.is_some(), "--concept-image"),
        (args.options.neuron.is_some(), "--neuron"),
        (args.baseline != "zeros", "--baseline"),
        (!args.inputs.is_empty(), "--input"),
        (args.rows.is_some() || args.row.is_some(), "--rows/--row"),
    ] {
        if given {
            return Err(Error::parameter(
                "inputs",
                inputs.display(),
                format!(
                    "{flag} is for one input; a data-set job takes --target (or a manifest's target column)"
                ),
            ));
        }
    }
    let samples = read_samples(inputs)?;
    let methods = args.options.configs(methods)?;
    if let (Some(method), None) = (
        methods.iter().find(|m| m.info().needs_layer()),
        &args.options.layer,
    ) {
        return Err(Error::parameter(
            "layer",
            "none",
            format!(
                "{} needs --layer (`firelight layers` lists them)",
                method.info().name
            ),
        ));
    }
    // Everything that changes the numbers or the files: a restart with other settings is refused.
    let settings = serde_json::json!({
        "command": "explain",
        "methods": methods.iter().map(|m| m.info().name).collect::<Vec<_>>(),
        "model": format!("{:?}", args.input.model),
        "device": args.input.device.kind(),
        "target": format!("{:?}", args.target),
        "options": format!("{:?}", args.options),
        "pictures": data.pictures.then(|| format!("{:?}", args.drawing())),
    });
    run_job(
        data,
        &args.input.device,
        &args.out,
        inputs,
        samples,
        settings,
        |k| {
            let worker = Worker::new(args, &methods, k)?;
            Ok(move |chunk: &Chunk<'_>| worker.explain(chunk))
        },
    )
}

/// Runs a data-set job over `samples` into `out` with the shard, chunk size, workers and error
/// policy of `data`: worker `k` comes from `make_worker(k)`, on device `k` of `devices`.
/// Prints the plan, a progress bar and the summary; a job that stops says what is kept.
pub(crate) fn run_job<M, W>(
    data: &DatasetArgs,
    devices: &DeviceArgs,
    out: &Path,
    inputs: &Path,
    samples: Vec<Sample>,
    settings: serde_json::Value,
    make_worker: M,
) -> Result<()>
where
    M: Fn(usize) -> Result<W> + Sync,
    W: FnMut(&Chunk<'_>) -> Result<ChunkResult>,
{
    let from_env = match data.shard {
        Some(_) => None,
        None => Shard::from_env(data.shards)?,
    };
    let shard = match (data.shard, from_env, data.shards) {
        (Some(shard), _, _) | (None, Some(shard), _) => shard,
        (None, None, Some(count)) => {
            return Err(Error::parameter(
                "shards",
                count,
                "--shards takes this shard's index from JOB_COMPLETION_INDEX or \
                 SLURM_ARRAY_TASK_ID, and neither is set; give --shard I/N",
            ));
        }
        (None, None, None) => Shard::WHOLE,
    };
    let device_count = devices.device.len();
    let workers = data.workers.unwrap_or(device_count);
    if workers < device_count {
        return Err(Error::parameter(
            "workers",
            workers,
            format!("{device_count} devices were given; each needs a worker of its own"),
        ));
    }
    let target = Output::open(out)?;
    let job = Job::new(target.folder(), samples)
        .chunk_size(data.chunk_size)
        .shard(shard)
        .workers(workers)
        .on_error(data.on_error.into())
        .settings(settings);
    let job = target.attach(job);
    let pending = job.pending().len();
    println!(
        "{}: {} chunks of {} (shard {shard}: {pending} to do) into {}",
        inputs.display(),
        job.chunk_count(),
        data.chunk_size,
        out.display()
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} samples [{elapsed}, ~{eta} left]")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    let summary = job.run(make_worker, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let summary = summary.inspect_err(|_| {
        let left = job.pending().len();
        eprintln!(
            "finished chunks kept: {} ({left} to do); the same command resumes the job",
            pending - left
        );
    })?;
    println!(
        "explained {} samples in {} chunks ({} were done already){}",
        summary.samples,
        summary.computed,
        summary.already_done,
        match summary.errors {
            0 => String::new(),
            n => format!("; {n} index lines carry an error (--on-error skip)"),
        }
    );
    match target.finish(summary.index)? {
        Some(index) => println!("index: {index}"),
        None if is_store_url(&out.to_string_lossy()) => println!(
            "chunks of other shards are not in the store yet; the last shard to finish merges \
             the index there"
        ),
        None => println!(
            "{} chunks of other shards are not done yet; the last shard writes the index, or run \
             `firelight merge {}` once they are",
            summary.others_pending,
            out.display()
        ),
    }
    Ok(())
}

/// Where a job's results go: a folder, or object storage through a local staging folder.
enum Output<'p> {
    Folder(&'p Path),
    #[cfg(feature = "object-store")]
    Store {
        store: firelight::dataset::ObjectStoreOut,
        staging: PathBuf,
        url: String,
    },
}

impl<'p> Output<'p> {
    /// `out` as a folder, or as object storage when it is a URL (`s3://bucket/prefix`, ...),
    /// whose markers are downloaded first so that the job resumes from what the store holds.
    fn open(out: &'p Path) -> Result<Self> {
        let url = out.to_str().filter(|o| is_store_url(o));
        match url {
            None => Ok(Output::Folder(out)),
            #[cfg(feature = "object-store")]
            Some(url) => {
                let store = firelight::dataset::ObjectStoreOut::open(url)?;
                let staging = store.staging();
                let done = store.download_state(&staging)?;
                println!(
                    "{url}: {done} chunks there already; staging in {}",
                    staging.display()
                );
                Ok(Output::Store {
                    store,
                    staging,
                    url: url.trim_end_matches('/').to_string(),
                })
            }
            #[cfg(not(feature = "object-store"))]
            Some(url) => Err(Error::parameter(
                "out",
                url,
                "object storage (s3://, gs://, az://) needs a build with the default features (or --features object-store)",
            )),
        }
    }

    /// The local folder the job writes.
    fn folder(&self) -> &Path {
        match self {
            Output::Folder(out) => out,
            #[cfg(feature = "object-store")]
            Output::Store { staging, .. } => staging,
        }
    }

    /// `job`, uploading what it writes when the output is a store.
    fn attach(&self, job: Job) -> Job {
        match self {
            Output::Folder(_) => job,
            #[cfg(feature = "object-store")]
            Output::Store { store, staging, .. } => job.on_written(store.uploader(staging)),
        }
    }

    /// Where the index is, once every chunk of every shard is done: the job's own, or (in a
    /// store, where other shards' markers land while this one runs) one merged from the markers
    /// there now.
    fn finish(&self, index: Option<PathBuf>) -> Result<Option<String>> {
        match self {
            Output::Folder(_) => Ok(index.map(|i| i.display().to_string())),
            #[cfg(feature = "object-store")]
            Output::Store {
                store,
                staging,
                url,
            } => {
                if index.is_none() {
                    store.download_state(staging)?;
                    if firelight::dataset::merge(std::slice::from_ref(staging), staging).is_err() {
                        let _ = std::fs::remove_dir_all(staging);
                        return Ok(None);
                    }
                    store.upload(staging, "index.jsonl")?;
                }
                // Everything is in the store; the staged markers are copies.
                let _ = std::fs::remove_dir_all(staging);
                Ok(Some(format!("{url}/index.jsonl")))
            }
        }
    }
}

/// One worker's model and what it needs to explain a chunk.
struct Worker<'a> {
    args: &'a ExplainArgs,
    methods: &'a [MethodConfig],
    on_error: OnError,
    spec: DeviceSpec,
    device: Device,
    classifier: ImageClassifier,
}

/// `e`, the failure of chunk `chunk`, blamed on the device when it is remote and its server no
/// longer answers (the model's own message about a failed read says nothing of a network).
pub(crate) fn blame_device(spec: &DeviceSpec, chunk: usize, e: Error) -> Error {
    match spec {
        DeviceSpec::Remote(url) if !answers(url) => Error::Device {
            device: url.clone(),
            reason: format!("the server went away during chunk {chunk} ({e})"),
        },
        _ => e,
    }
}

/// Whether something still listens at a `ws://host:port` URL.
fn answers(url: &str) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let authority = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    authority.to_socket_addrs().is_ok_and(|mut addresses| {
        addresses.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    })
}

/// A sample read and predicted.
struct Loaded<'s> {
    position: usize,
    sample: &'s Sample,
    photo: Option<RgbImage>,
    record: Record,
}

impl<'a> Worker<'a> {
    /// Worker `k`, on its device.
    fn new(args: &'a ExplainArgs, methods: &'a [MethodConfig], k: usize) -> Result<Self> {
        let spec = args.input.device.for_worker(k).clone();
        let device = spec.open(args.input.device.token.as_deref())?;
        let classifier = classifier(&args.input.model, &device)?;
        if let Some(layer) = &args.options.layer {
            classifier.model().check_layer(layer)?;
        }
        Ok(Self {
            args,
            methods,
            on_error: args.dataset.on_error.into(),
            spec,
            device,
            classifier,
        })
    }

    /// Chunk `chunk`'s files and index lines. A failure on a remote device whose server no
    /// longer answers is blamed on the server, not on the model.
    fn explain(&self, chunk: &Chunk<'_>) -> Result<ChunkResult> {
        self.explain_chunk(chunk)
            .map_err(|e| blame_device(&self.spec, chunk.index, e))
    }

    fn explain_chunk(&self, chunk: &Chunk<'_>) -> Result<ChunkResult> {
        let mut result = ChunkResult::default();
        let mut loaded = Vec::new();
        let mut tensors: Vec<DynTensor> = Vec::new();
        for (position, sample) in chunk.positioned() {
            let read = load_input(&self.classifier, &sample.path, &self.device).and_then(
                |(photo, tensor)| match tensors.first() {
                    Some(first) if first.sample_shape() != tensor.sample_shape() => {
                        Err(Error::ShapeMismatch {
                            what: format!("sample `{}` vs the chunk's first sample", sample.id),
                            expected: first.shape().to_vec(),
                            got: tensor.shape().to_vec(),
                        })
                    }
                    _ => Ok((photo, tensor)),
                },
            );
            match read {
                Ok((photo, tensor)) => {
                    tensors.push(tensor);
                    loaded.push(Loaded {
                        position,
                        sample,
                        photo,
                        record: Record::new(position, sample),
                    });
                }
                Err(e) => self.fail(&mut result, position, sample, &e)?,
            }
        }
        if loaded.is_empty() {
            return Ok(result);
        }
        let batch = DynTensor::cat(tensors)?;
        let rows = self.predict(&batch, &mut loaded);
        // A sample whose target cannot be resolved is dropped before anything is attributed.
        let mut kept = Vec::new();
        let mut kept_rows = Vec::new();
        for (row, (item, resolved)) in loaded.into_iter().zip(rows?).enumerate() {
            match resolved {
                Ok(()) => {
                    kept.push(item);
                    kept_rows.push(row);
                }
                Err(e) => self.fail(&mut result, item.position, item.sample, &e)?,
            }
        }
        let loaded = kept;
        if loaded.is_empty() {
            return Ok(result);
        }
        let batch = if kept_rows.len() == batch.batch() {
            batch
        } else {
            batch.select_rows(&kept_rows)?
        };
        for method in self.methods {
            self.attribute(method, &batch, &loaded, &mut result)?;
        }
        Ok(result)
    }

    /// Records the failure (`--on-error skip`) or stops the job (`fail`).
    fn fail(
        &self,
        result: &mut ChunkResult,
        position: usize,
        sample: &Sample,
        e: &Error,
    ) -> Result<()> {
        let record = self.on_error.failure(position, sample, e)?;
        eprintln!("skipped {}: {e}", sample.path.display());
        result.records.push(record);
        Ok(())
    }

    /// Each sample's prediction, the class to explain (the manifest's, else `--target`; `top` is
    /// the prediction) and its explained output (logit or probability); per sample, whether its
    /// target could be resolved.
    fn predict(&self, batch: &DynTensor, loaded: &mut [Loaded<'_>]) -> Result<Vec<Result<()>>> {
        let logits = self.classifier.model().predict(&batch.clone().into())?;
        let outputs = logits.dims()[1];
        let values = DynTensor::new(logits.clone()).to_vec()?;
        let tops = self.classifier.top_k(logits, 1)?;
        let mut resolved = Vec::with_capacity(loaded.len());
        for (row, (item, top)) in loaded.iter_mut().zip(tops).enumerate() {
            let top = &top[0];
            item.record.prediction = Some(top.class);
            item.record.prediction_label = Some(top.label.clone());
            item.record.probability = Some(top.probability);
            let spec = item
                .sample
                .target
                .as_deref()
                .unwrap_or(&self.args.target.target);
            resolved.push(resolve_target(&self.classifier, top, spec).map(|class| {
                let logits = &values[row * outputs..(row + 1) * outputs];
                item.record.target = Some(class);
                item.record.target_label = Some(self.classifier.label(class));
                item.record.score = Some(if self.args.target.probability {
                    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = logits.iter().map(|v| (v - max).exp()).sum();
                    (logits[class] - max).exp() / sum
                } else {
                    logits[class]
                });
            }));
        }
        Ok(resolved)
    }

    fn target(&self, classes: Vec<usize>) -> Target {
        class_target(self.args.target.probability, classes)
    }

    /// One method over the chunk: one batch, or sample by sample where the method draws random
    /// numbers (each sample's seed comes from its id) or cuts the photo into features.
    fn attribute(
        &self,
        method: &MethodConfig,
        batch: &DynTensor,
        loaded: &[Loaded<'_>],
        result: &mut ChunkResult,
    ) -> Result<()> {
        let info = method.info();
        let model = self.classifier.model();
        let context = RunContext {
            layer: self.args.options.layer.clone(),
            ..RunContext::default()
        };
        let stochastic = method.is_stochastic();
        let classes: Vec<usize> = loaded
            .iter()
            .map(|l| l.record.target.unwrap_or(0))
            .collect();
        let rows: Vec<DynTensor> = if stochastic || method.uses_feature_mask() {
            let mut rows = Vec::with_capacity(loaded.len());
            for (row, item) in loaded.iter().enumerate() {
                let own = method.seeded(sample_seed(self.args.options.seed, &item.sample.id));
                let context = RunContext {
                    feature_mask: self
                        .args
                        .options
                        .feature_mask(std::slice::from_ref(&own), item.photo.as_ref())?,
                    ..context.clone()
                };
                let input = batch.rows(row, row + 1);
                rows.push(own.attribute_tensor(
                    model,
                    &input,
                    &self.target(vec![classes[row]]),
                    &context,
                )?);
            }
            rows
        } else {
            let context = RunContext {
                feature_mask: FeatureMask::Elements,
                ..context
            };
            let all =
                method.attribute_tensor(model, batch, &self.target(classes.clone()), &context)?;
            (0..loaded.len())
                .map(|row| all.rows(row, row + 1))
                .collect()
        };
        let suffix = match &self.args.options.layer {
            Some(layer) if info.needs_layer() => format!(".{}", file_safe(layer)),
            _ => String::new(),
        };
        for (item, attribution) in loaded.iter().zip(rows) {
            let stem = format!(
                "attributions/{}.{}{suffix}",
                file_stem_for(&item.sample.id),
                info.name
            );
            let npy = format!("{stem}.npy");
            result.files.push(OutputFile {
                name: npy.clone(),
                bytes: encode_npy(attribution.shape(), &attribution.to_vec()?),
            });
            if let (true, Some(photo), false) = (
                self.args.dataset.pictures,
                &item.photo,
                info.family == Family::Layer,
            ) {
                let png = format!("{stem}.png");
                let picture = draw(photo, method, &attribution, &self.args.drawing())?;
                result.files.push(OutputFile {
                    bytes: picture.encode_png(&png)?,
                    name: png,
                });
            }
            result.records.push(Record {
                method: Some(info.name.to_string()),
                output: Some(npy),
                ..item.record.clone()
            });
        }
        Ok(())
    }
}
