//! Tabular models with named features: rows from a CSV file (header = feature names) or from
//! `name=value` pairs, standardised as the model was trained, and the bundled diabetes MLP.
//!
//! A tabular model is an ONNX file with a `model.json` beside it naming its features in input
//! order, with the mean and standard deviation each raw value is standardised with before the model
//! (`x = (raw - mean) / std`): attributions are in standardised units, and the zero baseline is
//! the training mean.

use std::path::{Path, PathBuf};

use firelight_core::{Device, DynTensor, Error, Inputs, Model, Result};
use firelight_onnx::OnnxModel;
use serde::Deserialize;

use crate::bundled::models_dir;

/// What `model.json` says of a tabular model.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct TabularSpec {
    /// The features, in the model's input order.
    pub features: Vec<String>,
    /// Each feature's training mean (raw units).
    pub mean: Vec<f32>,
    /// Each feature's training standard deviation (raw units).
    pub std: Vec<f32>,
    /// The graph input's name (default: the graph's only input).
    #[serde(default)]
    pub input: Option<String>,
    /// What the model predicts (a name for messages and files).
    #[serde(default)]
    pub output: Option<String>,
}

impl TabularSpec {
    /// Reads and checks a `model.json`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let spec: TabularSpec = serde_json::from_str(&text).map_err(|e| {
            Error::Model(format!(
                "{}: not a tabular model description ({e}); it needs `features`, `mean` and `std`",
                path.display()
            ))
        })?;
        let n = spec.features.len();
        if n == 0 || spec.mean.len() != n || spec.std.len() != n {
            return Err(Error::Model(format!(
                "{}: {n} features but {} means and {} standard deviations",
                path.display(),
                spec.mean.len(),
                spec.std.len()
            )));
        }
        if let Some(bad) = spec.std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::Model(format!(
                "{}: the standard deviation of `{}` is {}, not a positive number",
                path.display(),
                spec.features[bad],
                spec.std[bad]
            )));
        }
        Ok(spec)
    }
}

/// A tabular model: the network and how its features are read.
pub struct TabularModel {
    model: OnnxModel,
    /// Its features and standardisation.
    pub spec: TabularSpec,
    /// A short name for messages.
    pub name: String,
}

impl TabularModel {
    /// The bundled MLP on scikit-learn's diabetes data (10 features, predicts disease
    /// progression one year on; see `models/diabetes_mlp/README.md`).
    pub fn diabetes_mlp(device: &Device) -> Result<Self> {
        Self::load(models_dir().join("diabetes_mlp").join("model.onnx"), device)
    }

    /// The bundled diabetes model's held-out rows (raw units), a CSV with a header.
    pub fn diabetes_test_rows() -> PathBuf {
        models_dir().join("diabetes_mlp").join("test_rows.csv")
    }

    /// An ONNX file with its `model.json` beside it.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let spec_path = path.with_file_name("model.json");
        let spec = TabularSpec::load(&spec_path)?;
        let model = OnnxModel::load(path, device)?;
        if let Some(shape) = model.input_shape()
            && shape != [spec.features.len()]
        {
            return Err(Error::ShapeMismatch {
                what: format!(
                    "{}'s input vs the {} features of {}",
                    path.display(),
                    spec.features.len(),
                    spec_path.display()
                ),
                expected: vec![spec.features.len()],
                got: shape,
            });
        }
        let name = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(Self { model, spec, name })
    }

    /// The network.
    pub fn model(&self) -> &dyn Model {
        &self.model
    }

    /// Raw rows standardised into the model's input `[rows, features]`.
    pub fn standardise(&self, rows: &Table, device: &Device) -> Result<DynTensor> {
        let n = self.spec.features.len();
        let mut values = Vec::with_capacity(rows.rows.len() * n);
        for row in &rows.rows {
            for ((v, m), s) in row.iter().zip(&self.spec.mean).zip(&self.spec.std) {
                values.push((v - m) / s);
            }
        }
        DynTensor::from_vec(values, vec![rows.rows.len(), n], device)
    }

    /// The standardised rows as the model's named input.
    pub fn inputs(&self, rows: &Table, device: &Device) -> Result<Inputs> {
        let x = self.standardise(rows, device)?;
        let name = self
            .spec
            .input
            .clone()
            .unwrap_or_else(|| Inputs::DEFAULT_NAME.to_string());
        Ok(Inputs::new().attributed(name, x))
    }

    /// The model's prediction for each row (its first output).
    pub fn predict(&self, rows: &Table, device: &Device) -> Result<Vec<f32>> {
        let out = self.model.predict(&self.inputs(rows, device)?)?;
        let [n, width] = out.dims();
        let values = DynTensor::new(out).to_vec()?;
        Ok((0..n).map(|r| values[r * width]).collect())
    }
}

/// Rows of raw feature values, in the model's feature order.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// One label per row (`row 1`, `row 2`, ... or the `--row` text).
    pub labels: Vec<String>,
    /// The values, one `Vec` per row, in feature order.
    pub rows: Vec<Vec<f32>>,
}

impl Table {
    /// Reads a CSV file whose header names the features (in any order; every feature once, no
    /// other column). Fails naming the row and column of a missing, non-numeric or NaN cell.
    pub fn read_csv(path: impl AsRef<Path>, features: &[String]) -> Result<Self> {
        let path = path.as_ref();
        let fail = |reason: String| Error::Model(format!("{}: {reason}", path.display()));
        let (mut reader, header) = open_csv(path)?;
        let order = column_order(&header, features).map_err(fail)?;
        let mut labels = Vec::new();
        let mut rows = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let line = index + 2;
            let record = record.map_err(|e| fail(format!("line {line}: {e}")))?;
            if record.len() != header.len() {
                return Err(fail(format!(
                    "line {line} has {} cells, the header {}",
                    record.len(),
                    header.len()
                )));
            }
            let row = order
                .iter()
                .map(|&col| parse_cell(&record[col], &header[col]))
                .collect::<std::result::Result<Vec<f32>, String>>()
                .map_err(|e| fail(format!("line {line} (row {}): {e}", index + 1)))?;
            labels.push(format!("row {}", index + 1));
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(fail("no rows under the header".into()));
        }
        Ok(Self { labels, rows })
    }

    /// The rows of a CSV file (header checked as [`Table::read_csv`] does) as data-set samples,
    /// each row's cells in feature order in its [`Sample::content`], unparsed: a bad cell fails
    /// only its own sample when the job runs ([`Table::from_sample`]). Ids are an `id` column's,
    /// else `row-000001` by row number.
    ///
    /// [`Sample::content`]: crate::dataset::Sample::content
    pub fn read_samples(
        path: impl AsRef<Path>,
        features: &[String],
    ) -> Result<Vec<crate::dataset::Sample>> {
        let path = path.as_ref();
        let fail = |reason: String| Error::Model(format!("{}: {reason}", path.display()));
        let (mut reader, mut header) = open_csv(path)?;
        let id_column = header.iter().position(|h| h.eq_ignore_ascii_case("id"));
        if let Some(id) = id_column {
            // Out of the feature check, which refuses other columns.
            header[id] = String::new();
        }
        let features_only: Vec<String> = header.iter().filter(|h| !h.is_empty()).cloned().collect();
        let order = column_order(&features_only, features).map_err(fail)?;
        let positions: Vec<usize> = (0..header.len())
            .filter(|&c| Some(c) != id_column)
            .collect();
        let mut samples = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let line = index + 2;
            let record = record.map_err(|e| fail(format!("line {line}: {e}")))?;
            let cells: Vec<&str> = order
                .iter()
                .map(|&f| record.get(positions[f]).unwrap_or(""))
                .collect();
            let id = id_column
                .and_then(|c| record.get(c))
                .filter(|v| !v.is_empty())
                .map_or_else(|| format!("row-{:06}", index + 1), str::to_string);
            samples.push(crate::dataset::Sample {
                id,
                path: path.to_path_buf(),
                target: None,
                content: Some(cells.join(",")),
            });
        }
        if samples.is_empty() {
            return Err(fail("no rows under the header".into()));
        }
        Ok(samples)
    }

    /// A data-set sample's row ([`Table::read_samples`]), labelled by its id; fails naming the
    /// column of a missing or non-numeric cell.
    pub fn from_sample(sample: &crate::dataset::Sample, features: &[String]) -> Result<Self> {
        let fail = |reason: String| Error::Model(format!("row `{}`: {reason}", sample.id));
        let content = sample.content.as_deref().unwrap_or_default();
        let cells: Vec<&str> = content.split(',').collect();
        if cells.len() != features.len() {
            return Err(fail(format!(
                "{} cells for {} features",
                cells.len(),
                features.len()
            )));
        }
        let row = cells
            .iter()
            .zip(features)
            .map(|(cell, name)| parse_cell(cell, name))
            .collect::<std::result::Result<Vec<f32>, String>>()
            .map_err(fail)?;
        Ok(Self {
            labels: vec![sample.id.clone()],
            rows: vec![row],
        })
    }

    /// These tables' rows, one after another.
    pub fn concat(tables: Vec<Table>) -> Self {
        let mut all = Self {
            labels: Vec::new(),
            rows: Vec::new(),
        };
        for table in tables {
            all.labels.extend(table.labels);
            all.rows.extend(table.rows);
        }
        all
    }

    /// One row from `name=value` pairs (`age=54,sex=2,bmi=36.1,...`): every feature once.
    pub fn parse_row(text: &str, features: &[String]) -> Result<Self> {
        let fail = |reason: String| Error::Model(format!("--row `{text}`: {reason}"));
        let mut names = Vec::new();
        let mut cells = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| fail(format!("`{pair}` is not name=value")))?;
            names.push(name.trim().to_string());
            cells.push(value.trim().to_string());
        }
        let order = column_order(&names, features).map_err(fail)?;
        let row = order
            .iter()
            .map(|&i| parse_cell(&cells[i], &names[i]))
            .collect::<std::result::Result<Vec<f32>, String>>()
            .map_err(fail)?;
        Ok(Self {
            labels: vec![text.to_string()],
            rows: vec![row],
        })
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// For each feature, the column holding it; fails naming missing, unknown and repeated columns.
/// A CSV reader on `path` (cells trimmed) and its header.
fn open_csv(path: &Path) -> Result<(csv::Reader<std::fs::File>, Vec<String>)> {
    let fail = |reason: String| Error::Model(format!("{}: {reason}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| match e.kind() {
            csv::ErrorKind::Io(_) => Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()),
            ),
            _ => fail(e.to_string()),
        })?;
    let header = reader
        .headers()
        .map_err(|e| fail(format!("cannot read the header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    Ok((reader, header))
}

fn column_order(
    columns: &[String],
    features: &[String],
) -> std::result::Result<Vec<usize>, String> {
    let mut problems = Vec::new();
    let missing: Vec<&str> = features
        .iter()
        .filter(|f| !columns.contains(f))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing column(s) {}", missing.join(", ")));
    }
    let extra: Vec<&str> = columns
        .iter()
        .filter(|c| !features.contains(c))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        problems.push(format!("unknown column(s) {}", extra.join(", ")));
    }
    let mut seen = Vec::new();
    for c in columns {
        if seen.contains(&c) {
            problems.push(format!("column `{c}` appears twice"));
        }
        seen.push(c);
    }
    if !problems.is_empty() {
        return Err(format!(
            "{}; the model's features are: {}",
            problems.join("; "),
            features.join(", ")
        ));
    }
    Ok(features
        .iter()
        .map(|f| columns.iter().position(|c| c == f).expect("checked above"))
        .collect())
}

fn parse_cell(cell: &str, column: &str) -> std::result::Result<f32, String> {
    if cell.is_empty() {
        return Err(format!("column `{column}` is empty"));
    }
    let value: f32 = cell
        .parse()
        .map_err(|_| format!("column `{column}` holds `{cell}`, not a number"))?;
    if !value.is_finite() {
        return Err(format!("column `{column}` is {cell} (NaN or infinite)"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features() -> Vec<String> {
        ["age", "bmi", "bp"].map(String::from).to_vec()
    }

    fn csv(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn columns_in_any_order_are_read_in_feature_order() {
        let (_dir, path) = csv("bp, age, bmi\n80, 50, 22.5\n90,60,30\n");
        let table = Table::read_csv(&path, &features()).unwrap();
        assert_eq!(
            table.rows,
            vec![vec![50.0, 22.5, 80.0], vec![60.0, 30.0, 90.0]]
        );
    }

    #[test]
    fn missing_extra_and_bad_cells_are_named_by_row_and_column() {
        let (_dir, path) = csv("age,bmi,height\n1,2,3\n");
        let err = Table::read_csv(&path, &features()).unwrap_err().to_string();
        assert!(
            err.contains("missing column(s) bp") && err.contains("unknown column(s) height"),
            "{err}"
        );
        let (_dir, path) = csv("age,bmi,bp\n1,2,3\n4,abc,6\n");
        let err = Table::read_csv(&path, &features()).unwrap_err().to_string();
        assert!(
            err.contains("line 3 (row 2)") && err.contains("`bmi` holds `abc`"),
            "{err}"
        );
        let (_dir, path) = csv("age,bmi,bp\n1,NaN,3\n");
        let err = Table::read_csv(&path, &features()).unwrap_err().to_string();
        assert!(
            err.contains("row 1") && err.contains("`bmi` is NaN"),
            "{err}"
        );
        let (_dir, path) = csv("age,bmi,bp\n1,,3\n");
        let err = Table::read_csv(&path, &features()).unwrap_err().to_string();
        assert!(err.contains("`bmi` is empty"), "{err}");
    }

    #[test]
    fn a_row_from_pairs_needs_every_feature_once() {
        let table = Table::parse_row("bmi=22, age=50,bp=80", &features()).unwrap();
        assert_eq!(table.rows, vec![vec![50.0, 22.0, 80.0]]);
        let err = Table::parse_row("age=50,bmi=22", &features())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing column(s) bp"), "{err}");
        let err = Table::parse_row("age=50,bmi=22,bp", &features())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not name=value"), "{err}");
    }
}
