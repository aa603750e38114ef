//! The samples of a data set: the photos and `.npy` tensors of a folder, or the rows of a manifest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use firelight_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::file_stem_for;

/// The file kinds a folder's samples are read from (others, such as a README, are passed over).
const SAMPLE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "npy"];

/// One input of a data set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Unique within the data set: the path relative to the folder (with `/`), or the manifest's
    /// `id` column. Output names and stochastic methods' seeds derive from it.
    pub id: String,
    /// The file to read.
    pub path: PathBuf,
    /// What to explain for this sample (a class index or name), from the manifest's `target`
    /// column; `None` leaves it to the job's own target.
    pub target: Option<String>,
    /// The sample itself, for a sample that is a part of [`Sample::path`] rather than the whole
    /// file: a text (a line, or a table's text cell), or a table row's cells in feature order,
    /// comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// The samples of `source`: a folder (searched recursively for photos and `.npy` tensors, in the
/// order of their relative paths), or a manifest CSV with a `path` column (relative to the
/// manifest's folder) and optional `id` and `target` columns.
pub fn read_samples(source: &Path) -> Result<Vec<Sample>> {
    let samples = if source.is_dir() {
        folder_samples(source)?
    } else if source
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        manifest_samples(source)?
    } else if source.exists() {
        return Err(Error::parameter(
            "inputs",
            source.display(),
            "a data set is a folder of photos and .npy files, or a manifest CSV with a `path` column",
        ));
    } else {
        return Err(Error::io(
            source,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        ));
    };
    if samples.is_empty() {
        return Err(Error::parameter(
            "inputs",
            source.display(),
            "holds no samples (photos: .png, .jpg; tensors: .npy)",
        ));
    }
    check_unique(&samples)?;
    Ok(samples)
}

fn folder_samples(root: &Path) -> Result<Vec<Sample>> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&folder, e))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| {
                SAMPLE_EXTENSIONS
                    .iter()
                    .any(|known| e.eq_ignore_ascii_case(known))
            }) {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let id = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push(Sample {
                    id,
                    path,
                    target: None,
                    content: None,
                });
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

fn manifest_samples(manifest: &Path) -> Result<Vec<Sample>> {
    let bad = |reason: String| Error::parameter("inputs", manifest.display(), reason);
    let mut reader = csv::Reader::from_path(manifest).map_err(|e| bad(e.to_string()))?;
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let Some(path_column) = column("path") else {
        return Err(bad(format!(
            "a manifest needs a `path` column (it has {}); a tabular model's rows are a data set \
             with --model (the tabular model) --inputs rows.csv, or explained at once with --rows",
            headers.iter().collect::<Vec<_>>().join(", ")
        )));
    };
    let (id_column, target_column) = (column("id"), column("target"));
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut samples = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("row {}: {e}", row + 1)))?;
        let field = |column: Option<usize>| {
            column
                .and_then(|c| record.get(c))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let Some(path) = field(Some(path_column)) else {
            return Err(bad(format!("row {} has no path", row + 1)));
        };
        samples.push(Sample {
            id: field(id_column).unwrap_or(path).to_string(),
            path: base.join(path),
            target: field(target_column).map(String::from),
            content: None,
        });
    }
    Ok(samples)
}

/// Which columns of a table of texts hold what (`--text-column`, `--id-column`,
/// `--target-column`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextColumns {
    /// The texts (default `text`).
    pub text: String,
    /// Each row's id (default: an `id` column, else an unnamed first column such as the index
    /// pandas writes, else `row-000001` by row number).
    pub id: Option<String>,
    /// The class to explain per row (default `target`, if there is one).
    pub target: Option<String>,
}

impl Default for TextColumns {
    fn default() -> Self {
        Self {
            text: "text".into(),
            id: None,
            target: None,
        }
    }
}

/// The samples of a text data set: a `.csv` or `.tsv` table whose `columns.text` column holds
/// the texts (ids from `columns.id`, by default an `id` or unnamed first column or the row number; targets from
/// `columns.target`, default a `target` column), or any other file with one text per line
/// (empty lines passed over; ids `line-000017` by 1-based line number, so they stay the same
/// whichever lines are empty).
pub fn read_text_samples(source: &Path, columns: &TextColumns) -> Result<Vec<Sample>> {
    let extension = source
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase());
    let samples = match extension.as_deref() {
        Some(kind @ ("csv" | "tsv")) => table_texts(source, kind == "tsv", columns)?,
        _ => {
            let content = std::fs::read_to_string(source).map_err(|e| Error::io(source, e))?;
            content
                .lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(n, line)| Sample {
                    id: format!("line-{:06}", n + 1),
                    path: source.to_path_buf(),
                    target: None,
                    content: Some(line.to_string()),
                })
                .collect()
        }
    };
    if samples.is_empty() {
        return Err(Error::parameter(
            "inputs",
            source.display(),
            "holds no texts (one per line, or a table's text column)",
        ));
    }
    check_unique(&samples)?;
    Ok(samples)
}

fn table_texts(source: &Path, tabs: bool, columns: &TextColumns) -> Result<Vec<Sample>> {
    let bad = |reason: String| Error::parameter("inputs", source.display(), reason);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if tabs { b'\t' } else { b',' })
        .from_path(source)
        .map_err(|e| bad(e.to_string()))?;
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let names = || headers.iter().collect::<Vec<_>>().join(", ");
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let named = |name: &Option<String>, default: &str, what: &str| match name {
        Some(name) => column(name)
            .map(Some)
            .ok_or_else(|| bad(format!("no {what} column `{name}` (it has {})", names()))),
        None => Ok(column(default)),
    };
    let text_column = column(&columns.text).ok_or_else(|| {
        bad(format!(
            "no text column `{}` (it has {}); --text-column names another",
            columns.text,
            names()
        ))
    })?;
    // Without an `id` column, an unnamed first column (the index pandas writes) holds the ids.
    let id_column = named(&columns.id, "id", "id")?.or_else(|| {
        (columns.id.is_none() && headers.get(0).is_some_and(|h| h.trim().is_empty())).then_some(0)
    });
    let target_column = named(&columns.target, "target", "target")?;
    let mut samples = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("row {}: {e}", row + 1)))?;
        let field = |column: Option<usize>| {
            column
                .and_then(|c| record.get(c))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let Some(text) = field(Some(text_column)) else {
            return Err(bad(format!("row {} has no text", row + 1)));
        };
        samples.push(Sample {
            id: field(id_column).map_or_else(|| format!("row-{:06}", row + 1), String::from),
            path: source.to_path_buf(),
            target: field(target_column).map(String::from),
            content: Some(text.to_string()),
        });
    }
    Ok(samples)
}

/// Ids must be unique, and so must the file names made from them.
fn check_unique(samples: &[Sample]) -> Result<()> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for sample in samples {
        if let Some(other) = seen.insert(file_stem_for(&sample.id), &sample.id) {
            let reason = if other == sample.id {
                format!("the id `{other}` appears twice")
            } else {
                format!("the ids `{other}` and `{}` give one file name", sample.id)
            };
            return Err(Error::parameter("inputs", &sample.id, reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("firelight-samples-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_folder_gives_its_photos_and_tensors_in_path_order() {
        let dir = scratch("folder");
        std::fs::create_dir_all(dir.join("b")).unwrap();
        for name in ["b/2.png", "a.JPG", "c.npy", "README.txt", ".hidden.png"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let ids: Vec<String> = read_samples(&dir)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["a.JPG", "b/2.png", "c.npy"]);
    }

    #[test]
    fn a_manifest_gives_ids_targets_and_paths_beside_it() {
        let dir = scratch("manifest");
        let manifest = dir.join("set.csv");
        std::fs::write(&manifest, "path,id,target\nx.png,first,tabby\ny.png,,3\n").unwrap();
        let samples = read_samples(&manifest).unwrap();
        assert_eq!(samples[0].id, "first");
        assert_eq!(samples[0].target.as_deref(), Some("tabby"));
        assert_eq!(samples[1].id, "y.png");
        assert_eq!(samples[1].path, dir.join("y.png"));
        std::fs::write(&manifest, "path,id\nx.png,a\ny.png,a\n").unwrap();
        assert!(
            read_samples(&manifest)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        std::fs::write(&manifest, "age,bmi\n1,2\n").unwrap();
        assert!(
            read_samples(&manifest)
                .unwrap_err()
                .to_string()
                .contains("--rows")
        );
    }

    #[test]
    fn texts_come_from_lines_or_a_table_column() {
        let dir = scratch("texts");
        let lines = dir.join("reviews.txt");
        std::fs::write(&lines, "Great pills.\n\n  \nAwful.\n").unwrap();
        let samples = read_text_samples(&lines, &TextColumns::default()).unwrap();
        let ids: Vec<&str> = samples.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["line-000001", "line-000004"]);
        assert_eq!(samples[1].content.as_deref(), Some("Awful."));

        let table = dir.join("reviews.tsv");
        std::fs::write(&table, "\tdrug\treview\trating\n7\tA\t\"Fine, \"\"really\"\"\"\tpositive\n9\tB\tBad\tnegative\n").unwrap();
        let columns = TextColumns {
            text: "review".into(),
            id: None,
            target: Some("rating".into()),
        };
        let samples = read_text_samples(&table, &columns).unwrap();
        assert_eq!(samples[0].id, "7");
        assert_eq!(samples[0].content.as_deref(), Some("Fine, \"really\""));
        assert_eq!(samples[1].target.as_deref(), Some("negative"));
        let no_text = read_text_samples(&table, &TextColumns::default()).unwrap_err();
        assert!(no_text.to_string().contains("review"), "{no_text}");
        let wrong = TextColumns {
            target: Some("label".into()),
            ..columns
        };
        assert!(
            read_text_samples(&table, &wrong)
                .unwrap_err()
                .to_string()
                .contains("`label`")
        );
    }

    #[test]
    fn an_empty_or_missing_data_set_is_refused() {
        let dir = scratch("empty");
        assert!(
            read_samples(&dir)
                .unwrap_err()
                .to_string()
                .contains("no samples")
        );
        assert!(read_samples(&dir.join("nothing")).is_err());
    }
}
