//! Gathering the chunks of a job's shards into one index.

use std::path::{Path, PathBuf};

use firelight_core::npy::write_atomic;
use firelight_core::{Error, Result};

use super::Record;
use super::job::{JobFile, marker_name};

/// What [`merge`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeSummary {
    /// `index.jsonl` in the folder merged into.
    pub index: PathBuf,
    /// Its lines.
    pub records: usize,
    /// Lines that carry an error.
    pub errors: usize,
    /// The job's chunks.
    pub chunks: usize,
}

pub(super) fn read_job_file(dir: &Path) -> Result<JobFile> {
    let path = dir.join("job.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::parameter(
            "job",
            path.display(),
            format!("not a firelight job file: {e}"),
        )
    })
}

/// Gathers the chunks of one job, written by its shards into `dirs` (one shared folder, or a folder
/// each), into `into/index.jsonl`: every index line in sample order, the file names made relative
/// to `into`. Fails, naming them, when chunks are missing or the folders hold different jobs.
pub fn merge(dirs: &[PathBuf], into: &Path) -> Result<MergeSummary> {
    let Some(first) = dirs.first() else {
        return Err(Error::parameter(
            "dirs",
            "none",
            "merge needs at least one job folder",
        ));
    };
    let job = read_job_file(first)?;
    for dir in &dirs[1..] {
        if read_job_file(dir)? != job {
            return Err(Error::parameter(
                "dirs",
                dir.display(),
                format!("holds another job than {}", first.display()),
            ));
        }
    }
    let mut lines = String::new();
    let (mut records, mut errors) = (0, 0);
    let mut missing = Vec::new();
    for chunk in 0..job.chunks() {
        let Some(dir) = dirs.iter().find(|d| d.join(marker_name(chunk)).is_file()) else {
            missing.push(chunk);
            continue;
        };
        let path = dir.join(marker_name(chunk));
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        for line in text.lines() {
            let mut record: Record = serde_json::from_str(line).map_err(|e| {
                Error::parameter(
                    "chunk",
                    path.display(),
                    format!("a damaged index line: {e}"),
                )
            })?;
            if let Some(output) = &record.output {
                record.output = Some(relative_to(into, &dir.join(output))?);
            }
            errors += usize::from(record.error.is_some());
            records += 1;
            lines.push_str(&serde_json::to_string(&record).expect("records serialise"));
            lines.push('\n');
        }
    }
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(|c| c.to_string()).collect();
        return Err(Error::parameter(
            "dirs",
            first.display(),
            format!(
                "{} of the job's {} chunks are not done ({}{}); run the shards that own them \
                 (chunk c belongs to shard c mod N), then merge again",
                missing.len(),
                job.chunks(),
                shown.join(", "),
                if missing.len() > 10 { ", ..." } else { "" }
            ),
        ));
    }
    std::fs::create_dir_all(into).map_err(|e| Error::io(into, e))?;
    if !into.join("job.json").is_file() {
        let text = std::fs::read(first.join("job.json")).map_err(|e| Error::io(first, e))?;
        write_atomic(&into.join("job.json"), &text)?;
    }
    let index = into.join("index.jsonl");
    write_atomic(&index, lines.as_bytes())?;
    // Every chunk is done, so no shard writes into these folders any more (a chunk's files come
    // before its marker): what a killed run left half-written goes. The top folder is left alone:
    // a shard finishing at the same moment may be writing its copy of the index there.
    for dir in dirs {
        for folder in ["chunks", "attributions"] {
            remove_temporary_files(&dir.join(folder));
        }
    }
    Ok(MergeSummary {
        index,
        records,
        errors,
        chunks: job.chunks(),
    })
}

/// `target` as a path from the folder `base` (with `/`), or as it is where no relative path exists.
fn relative_to(base: &Path, target: &Path) -> Result<String> {
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| Error::io(p, e));
    let (base, target) = (absolute(base)?, absolute(target)?);
    let base: Vec<_> = base.components().collect();
    let target_parts: Vec<_> = target.components().collect();
    let common = base
        .iter()
        .zip(&target_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return Ok(target.display().to_string());
    }
    let mut parts: Vec<String> = vec!["..".into(); base.len() - common];
    parts.extend(
        target_parts[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    Ok(parts.join("/"))
}

/// Removes the hidden temporary files (`.name.tmp-...`) a killed run left in a job's folders.
fn remove_temporary_files(dir: &Path) {
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                folders.push(path);
            } else if name.starts_with('.') && name.contains(".tmp-") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_out_of_the_merge_folder() {
        let root = std::env::temp_dir();
        assert_eq!(
            relative_to(
                &root.join("merged"),
                &root.join("shard1/attributions/a.npy")
            )
            .unwrap(),
            "../shard1/attributions/a.npy"
        );
        assert_eq!(
            relative_to(&root.join("job"), &root.join("job/attributions/a.npy")).unwrap(),
            "attributions/a.npy"
        );
    }
}
