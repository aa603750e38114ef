//! `firelight merge`: gather the chunks of a data-set job's shards into one index.

use std::path::PathBuf;

use firelight::dataset::merge;
use firelight::prelude::*;

#[derive(clap::Args, Debug)]
pub(crate) struct MergeArgs {
    /// The job's folders: one shared by every shard, or one per shard.
    #[arg(required = true, value_name = "DIR")]
    pub(crate) dirs: Vec<PathBuf>,
    /// Where the merged index.jsonl goes [default: the first folder].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

pub(crate) fn run(args: MergeArgs) -> Result<()> {
    let into = args.out.clone().unwrap_or_else(|| args.dirs[0].clone());
    let summary = merge(&args.dirs, &into)?;
    println!(
        "{} index lines from {} chunks{}: {}",
        summary.records,
        summary.chunks,
        match summary.errors {
            0 => String::new(),
            n => format!(" ({n} with an error)"),
        },
        summary.index.display()
    );
    Ok(())
}
