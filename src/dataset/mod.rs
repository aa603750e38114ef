//! Explaining a whole data set: samples read from a folder or a manifest, split into chunks that
//! are written atomically with a done marker each, so that a killed job resumes where it stopped and
//! never leaves a half-written result; shards for the schedulers people already run (SLURM job
//! arrays, Kubernetes Indexed Jobs) and [`merge`] to gather their indexes; a pool of workers on one
//! machine.
//!
//! The folder a job writes:
//!
//! - `job.json`: what the job is (its settings, chunk size and samples); a restart into the same
//!   folder checks it, so a different job is refused instead of mixed in;
//! - `chunks/chunk-000012.jsonl`: the index lines of chunk 12, written last: the chunk's done
//!   marker;
//! - `attributions/...`: the files the index lines name;
//! - `index.jsonl`: every index line in sample order, once every chunk is done (by the last shard,
//!   or by [`merge`]).
//!
//! Each chunk is computed by the caller's worker (a closure: load the samples, run the methods);
//! the job decides which chunks are left, writes their results and keeps count.

mod job;
mod merge;
mod samples;
mod shard;
#[cfg(feature = "object-store")]
mod store;

pub use job::{
    Chunk, ChunkResult, Job, JobSummary, OnError, OutputFile, Record, Written, WrittenFn,
};
pub use merge::{MergeSummary, merge};
pub use samples::{Sample, TextColumns, read_samples, read_text_samples};
pub use shard::Shard;
#[cfg(feature = "object-store")]
pub use store::ObjectStoreOut;

/// Whether `out` names object storage (`s3://`, `gs://`, `az://`, `file://`, ...) rather than a
/// folder: a scheme of letters and digits, then `://`.
pub fn is_store_url(out: &str) -> bool {
    out.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// The seed of a stochastic method for one sample: the user's `seed` mixed with the sample's id
/// (FNV-1a, then SplitMix64), so a sample gets the same draws whichever chunk, shard, worker or
/// retry computes it.
pub fn sample_seed(seed: u64, id: &str) -> u64 {
    let hash = firelight_core::randomize::layer_seed(id);
    let mut z = seed ^ hash;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A sample id made safe for a file name: path separators and other odd characters become `_`
/// (ids are unique, and [`read_samples`] refuses two that this maps to one name).
pub fn file_stem_for(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_urls_are_told_from_folders() {
        assert!(super::is_store_url("s3://bucket/audit"));
        assert!(super::is_store_url("file:///tmp/audit"));
        assert!(!super::is_store_url("audit/out"));
        assert!(!super::is_store_url("/tmp/a://b"));
    }

    use super::*;

    #[test]
    fn sample_seeds_depend_on_the_id_and_the_seed_only() {
        assert_eq!(sample_seed(0, "cats/a.png"), sample_seed(0, "cats/a.png"));
        assert_ne!(sample_seed(0, "cats/a.png"), sample_seed(0, "cats/b.png"));
        assert_ne!(sample_seed(0, "cats/a.png"), sample_seed(1, "cats/a.png"));
    }
}
