//! A data-set job: chunks, their done markers, resuming, and a pool of workers.

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use firelight_core::npy::write_atomic;
use firelight_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::{Sample, Shard, merge};

/// What a job does with a sample that cannot be read or explained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnError {
    /// Stop the job, naming the sample (the default: nothing is passed over unless asked).
    #[default]
    Fail,
    /// Record the error in the sample's index line and go on.
    Skip,
}

impl OnError {
    /// The line for a sample that failed: with [`OnError::Skip`] its error is recorded; with
    /// [`OnError::Fail`] the job stops, naming the sample.
    pub fn failure(self, position: usize, sample: &Sample, error: &Error) -> Result<Record> {
        match self {
            OnError::Fail => Err(Error::parameter(
                "inputs",
                sample.path.display(),
                format!(
                    "sample `{}` failed: {error} (--on-error skip records it and goes on)",
                    sample.id
                ),
            )),
            OnError::Skip => Ok(Record {
                error: Some(error.to_string()),
                ..Record::new(position, sample)
            }),
        }
    }
}

/// One line of a job's index: a sample explained by one method (or the error that stopped it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The sample's place in the data set, from 0.
    pub sample: usize,
    /// The sample's id.
    pub id: String,
    /// The file the sample was read from.
    pub input: String,
    /// The method (`None` on a line that reports a sample that could not be read).
    pub method: Option<String>,
    /// The class explained.
    pub target: Option<usize>,
    /// Its label.
    pub target_label: Option<String>,
    /// The predicted class.
    pub prediction: Option<usize>,
    /// Its label.
    pub prediction_label: Option<String>,
    /// The predicted class's probability.
    pub probability: Option<f32>,
    /// The explained output's value for this sample (the target's logit, or its probability).
    pub score: Option<f32>,
    /// The attribution file, relative to the index's folder.
    pub output: Option<String>,
    /// Why the sample has no result (with `--on-error skip`).
    pub error: Option<String>,
}

impl Record {
    /// A line for `sample` at `position` with nothing filled in yet.
    pub fn new(position: usize, sample: &Sample) -> Self {
        Self {
            sample: position,
            id: sample.id.clone(),
            input: sample.path.display().to_string(),
            method: None,
            target: None,
            target_label: None,
            prediction: None,
            prediction_label: None,
            probability: None,
            score: None,
            output: None,
            error: None,
        }
    }
}

/// A file a chunk's worker made, by its name relative to the job's folder.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputFile {
    /// Relative to the job's folder, e.g. `attributions/cat.saliency.npy`.
    pub name: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// What a worker computed for one chunk: its index lines and the files they name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChunkResult {
    /// One or more lines per sample.
    pub records: Vec<Record>,
    /// Written before the lines, so a line never names a file that is not there.
    pub files: Vec<OutputFile>,
}

/// The samples of one chunk.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    /// The chunk's number.
    pub index: usize,
    /// The place of its first sample in the data set.
    pub first: usize,
    /// Its samples.
    pub samples: &'a [Sample],
}

impl Chunk<'_> {
    /// The samples with their places in the data set.
    pub fn positioned(&self) -> impl Iterator<Item = (usize, &Sample)> {
        self.samples
            .iter()
            .enumerate()
            .map(move |(i, s)| (self.first + i, s))
    }
}

/// What [`Job::run`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSummary {
    /// Chunks computed by this run.
    pub computed: usize,
    /// This shard's chunks found done already (a resumed job).
    pub already_done: usize,
    /// Samples in the computed chunks.
    pub samples: usize,
    /// Index lines with an error (skipped samples) in the computed chunks.
    pub errors: usize,
    /// Chunks of other shards not done yet.
    pub others_pending: usize,
    /// The whole job's index, once every chunk of every shard is done.
    pub index: Option<PathBuf>,
}

/// A data set explained chunk by chunk into a folder (see the [module](super) for its layout).
#[derive(Clone, Debug)]
pub struct Job {
    out: PathBuf,
    samples: Vec<Sample>,
    chunk_size: usize,
    shard: Shard,
    on_error: OnError,
    workers: usize,
    settings: serde_json::Value,
    written: Option<Written>,
}

/// Told the names (relative to the job's folder) of the files a job has just written, whole and
/// under their final names: `job.json`, each chunk's files with its marker last, `index.jsonl`.
/// A copy made in that order (to object storage, say) is a job folder that resumes as this one.
#[derive(Clone)]
pub struct Written(pub std::sync::Arc<WrittenFn>);

/// The callback inside [`Written`].
pub type WrittenFn = dyn Fn(&[String]) -> Result<()> + Send + Sync;

impl std::fmt::Debug for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Written(..)")
    }
}

/// What `job.json` holds: what makes two runs the same job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct JobFile {
    pub(super) settings: serde_json::Value,
    pub(super) chunk_size: usize,
    pub(super) samples: usize,
    /// FNV-1a of the samples' ids and targets (paths may differ between machines).
    pub(super) samples_digest: String,
}

impl JobFile {
    pub(super) fn chunks(&self) -> usize {
        self.samples.div_ceil(self.chunk_size)
    }
}

/// The name of chunk `index`'s done marker, relative to the job's folder.
pub(super) fn marker_name(index: usize) -> String {
    format!("chunks/chunk-{index:06}.jsonl")
}

impl Job {
    /// A job over `samples` into the folder `out`: 8 samples a chunk, one shard, one worker.
    pub fn new(out: impl Into<PathBuf>, samples: Vec<Sample>) -> Self {
        Self {
            out: out.into(),
            samples,
            chunk_size: 8,
            shard: Shard::WHOLE,
            on_error: OnError::Fail,
            workers: 1,
            settings: serde_json::Value::Null,
            written: None,
        }
    }

    /// Calls `written` with the names of the files the job writes, as soon as each is whole.
    pub fn on_written(mut self, written: Written) -> Self {
        self.written = Some(written);
        self
    }

    fn tell(&self, names: &[String]) -> Result<()> {
        match &self.written {
            Some(written) => (written.0)(names),
            None => Ok(()),
        }
    }

    /// Samples per chunk (a chunk is computed, written and resumed as one).
    pub fn chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// Compute only this shard's chunks.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// What a sample that fails does to the job.
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// Chunks computed at once, each by a worker of its own (with its share of the cores).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// What the job computes (model, methods, options): a restart with other settings into the
    /// same folder is refused.
    pub fn settings(mut self, settings: serde_json::Value) -> Self {
        self.settings = settings;
        self
    }

    /// The job's folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Chunks in the whole job (all shards).
    pub fn chunk_count(&self) -> usize {
        self.samples.len().div_ceil(self.chunk_size.max(1))
    }

    /// Chunk `index`.
    pub fn chunk(&self, index: usize) -> Chunk<'_> {
        let first = index * self.chunk_size;
        let end = (first + self.chunk_size).min(self.samples.len());
        Chunk {
            index,
            first,
            samples: &self.samples[first.min(end)..end],
        }
    }

    /// Whether chunk `index` is done (its marker is there).
    pub fn is_done(&self, index: usize) -> bool {
        self.out.join(marker_name(index)).is_file()
    }

    /// This shard's chunks that are not done.
    pub fn pending(&self) -> Vec<usize> {
        (0..self.chunk_count())
            .filter(|&c| self.shard.owns(c) && !self.is_done(c))
            .collect()
    }

    /// The line for a sample that failed, by the job's [`OnError`] ([`OnError::failure`]).
    pub fn failure(&self, position: usize, sample: &Sample, error: &Error) -> Result<Record> {
        self.on_error.failure(position, sample, error)
    }

    fn job_file(&self) -> JobFile {
        let mut listing = String::new();
        for sample in &self.samples {
            let target = sample.target.as_deref().unwrap_or("");
            listing.push_str(&format!("{}\0{target}", sample.id));
            // A text's words or a row's cells are the sample: a file whose lines changed is
            // another job.
            if let Some(content) = &sample.content {
                listing.push_str(&format!("\0{content}"));
            }
            listing.push('\n');
        }
        let hash = firelight_core::randomize::layer_seed(&listing);
        JobFile {
            settings: self.settings.clone(),
            chunk_size: self.chunk_size,
            samples: self.samples.len(),
            samples_digest: format!("{hash:016x}"),
        }
    }

    /// Makes the folder and writes `job.json`, or checks that the one there is this job's.
    fn prepare(&self) -> Result<()> {
        if self.chunk_size == 0 {
            return Err(Error::parameter(
                "chunk_size",
                0,
                "a chunk holds at least one sample",
            ));
        }
        if self.workers == 0 {
            return Err(Error::parameter(
                "workers",
                0,
                "a job needs at least one worker",
            ));
        }
        for folder in ["chunks", "attributions"] {
            let path = self.out.join(folder);
            std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        let path = self.out.join("job.json");
        let wanted = self.job_file();
        if path.is_file() {
            let found = merge::read_job_file(&self.out)?;
            if found != wanted {
                let what = if found.settings != wanted.settings {
                    "other settings (model, methods or options)"
                } else if found.chunk_size != wanted.chunk_size {
                    "another --chunk-size"
                } else {
                    "other samples"
                };
                return Err(Error::parameter(
                    "out",
                    self.out.display(),
                    format!(
                        "holds a job with {what}; resume it with the same command, or write to \
                         another folder"
                    ),
                ));
            }
            return Ok(());
        }
        let mut text = serde_json::to_string_pretty(&wanted).expect("JSON values serialise");
        text.push('\n');
        write_atomic(&path, text.as_bytes())?;
        self.tell(&["job.json".to_string()])
    }

    /// Computes this shard's chunks that are not done with `make_worker(k)`'s workers (one per
    /// [`Job::workers`], each on a thread with its share of the cores), writing each chunk's files
    /// and then its marker atomically; `progress(done, total)` counts samples. Once every chunk of
    /// every shard is done, writes `index.jsonl`.
    pub fn run<W, M, P>(&self, make_worker: M, progress: P) -> Result<JobSummary>
    where
        M: Fn(usize) -> Result<W> + Sync,
        W: FnMut(&Chunk<'_>) -> Result<ChunkResult>,
        P: Fn(usize, usize) + Sync,
    {
        self.prepare()?;
        let pending = self.pending();
        let owned = (0..self.chunk_count())
            .filter(|&c| self.shard.owns(c))
            .count();
        let total: usize = pending.iter().map(|&c| self.chunk(c).samples.len()).sum();
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let errors = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        let workers = self.workers.min(pending.len()).max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / workers).max(1);
        progress(0, total);
        let work = |k: usize| -> Result<()> {
            let mut worker = None;
            loop {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let slot = next.fetch_add(1, Ordering::SeqCst);
                let Some(&index) = pending.get(slot) else {
                    return Ok(());
                };
                // Made on the first chunk, so a worker with nothing to do loads no model.
                let worker = match &mut worker {
                    Some(worker) => worker,
                    None => worker.insert(caught(index, || make_worker(k))?),
                };
                let chunk = self.chunk(index);
                let result = caught(index, || worker(&chunk))?;
                errors.fetch_add(
                    result.records.iter().filter(|r| r.error.is_some()).count(),
                    Ordering::SeqCst,
                );
                self.write_chunk(&chunk, &result)?;
                let finished = done.fetch_add(chunk.samples.len(), Ordering::SeqCst);
                progress(finished + chunk.samples.len(), total);
            }
        };
        let run_worker = |k: usize| {
            let result = if workers == 1 {
                work(k)
            } else {
                match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                    Ok(pool) => pool.install(|| work(k)),
                    Err(e) => Err(Error::Model(format!(
                        "cannot start a worker's threads: {e}"
                    ))),
                }
            };
            if let Err(e) = result {
                stop.store(true, Ordering::SeqCst);
                failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        };
        std::thread::scope(|scope| {
            for k in 0..workers {
                let run_worker = &run_worker;
                scope.spawn(move || run_worker(k));
            }
        });
        if let Some(error) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(error);
        }
        let others_pending = (0..self.chunk_count())
            .filter(|&c| !self.is_done(c))
            .count();
        let index = if others_pending == 0 {
            let index = merge(std::slice::from_ref(&self.out), &self.out)?.index;
            self.tell(&["index.jsonl".to_string()])?;
            Some(index)
        } else {
            None
        };
        Ok(JobSummary {
            computed: pending.len(),
            already_done: owned - pending.len(),
            samples: total,
            errors: errors.into_inner(),
            others_pending,
            index,
        })
    }

    /// The chunk's files, then its lines (the marker), each through a temporary file.
    fn write_chunk(&self, chunk: &Chunk<'_>, result: &ChunkResult) -> Result<()> {
        for file in &result.files {
            let relative = Path::new(&file.name);
            let inside = relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
            if !inside {
                return Err(Error::parameter(
                    "output",
                    &file.name,
                    "a chunk's files go inside the job's folder",
                ));
            }
            let path = self.out.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            write_atomic(&path, &file.bytes)?;
        }
        // In sample order (a worker may record a failure before the samples ahead of it), each
        // sample's methods in the order they ran.
        let mut records: Vec<&Record> = result.records.iter().collect();
        records.sort_by_key(|r| r.sample);
        let mut lines = String::new();
        for record in records {
            lines.push_str(&serde_json::to_string(record).expect("records serialise"));
            lines.push('\n');
        }
        write_atomic(&self.out.join(marker_name(chunk.index)), lines.as_bytes())?;
        let mut names: Vec<String> = result.files.iter().map(|f| f.name.clone()).collect();
        names.push(marker_name(chunk.index));
        self.tell(&names)
    }
}

/// Runs `work` for chunk `index`, turning a panic inside it (a device that went away mid-chunk: a
/// remote server stopped, a GPU lost) into an error that says the finished chunks are kept. The
/// panic's own message has already gone to stderr; the chunk leaves no files behind, since a
/// chunk's files are written only after it is computed.
fn caught<T>(index: usize, work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic without a message");
        Err(Error::Model(format!(
            "chunk {index} stopped: {message}; the chunks finished before it are kept, and the \
             same command resumes the job"
        )))
    })
}
