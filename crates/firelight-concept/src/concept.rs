//! [`Concept`]: a named set of examples, from a folder of images or from tensors.

use std::path::{Path, PathBuf};

use firelight_core::{Device, DynTensor, Error, Result};
use firelight_viz::Preprocess;
use sha2::{Digest, Sha256};

/// A named set of examples of one idea ("striped"), as model inputs, batch first.
///
/// Its [`fingerprint`](Concept::fingerprint) is a hash of the example values themselves, so
/// cached activations follow the content, not the folder's name.
#[derive(Clone, Debug)]
pub struct Concept {
    name: String,
    examples: DynTensor,
    files: Vec<PathBuf>,
    texts: Vec<String>,
    fingerprint: String,
}

/// The image files (`.png`, `.jpg`, `.jpeg`) directly in `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "concept folder does not exist or is not a folder",
            ),
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
            .unwrap_or(false);
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Hex SHA-256 of the little-endian bytes of `values` and the shape.
pub(crate) fn hash_values(shape: &[usize], values: &[f32]) -> String {
    let mut hasher = Sha256::new();
    for d in shape {
        hasher.update((*d as u64).to_le_bytes());
    }
    for v in values {
        hasher.update(v.to_le_bytes());
    }
    hex(&hasher.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Concept {
    /// A concept from examples already prepared as model inputs (`[examples, ...]`).
    pub fn from_tensor(name: impl Into<String>, examples: DynTensor) -> Result<Self> {
        let name = name.into();
        check_name(&name)?;
        if examples.batch() == 0 {
            return Err(Error::parameter(
                "examples",
                format!("concept `{name}` with 0 examples"),
                "a concept needs at least one example",
            ));
        }
        examples.check_finite(&format!("examples of concept `{name}`"))?;
        let fingerprint = hash_values(examples.shape(), &examples.to_vec()?);
        Ok(Self {
            name,
            examples,
            files: Vec::new(),
            texts: Vec::new(),
            fingerprint,
        })
    }

    /// A concept from every image in `dir` (`.png`, `.jpg`, `.jpeg`, sorted by name), each made
    /// an input by `transform`. Fails on a missing or empty folder and names any unreadable image.
    pub fn from_folder(
        name: impl Into<String>,
        dir: impl AsRef<Path>,
        transform: &Preprocess,
        device: &Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let name = name.into();
        let files = image_files(dir)?;
        if files.is_empty() {
            return Err(Error::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("concept `{name}`: the folder holds no .png/.jpg/.jpeg images"),
                ),
            ));
        }
        Self::from_files(name, files, transform, device)
    }

    /// A concept from the given image files, in order.
    pub fn from_files(
        name: impl Into<String>,
        files: Vec<PathBuf>,
        transform: &Preprocess,
        device: &Device,
    ) -> Result<Self> {
        let tensors = files
            .iter()
            .map(|f| transform.load(f, device))
            .collect::<Result<Vec<_>>>()?;
        let mut concept = Self::from_tensor(name, DynTensor::cat(tensors)?)?;
        concept.files = files;
        Ok(concept)
    }

    /// The examples with indices `indices` as a new concept called `name` (random subsets of a
    /// pool of random images).
    pub fn subset(&self, name: impl Into<String>, indices: &[usize]) -> Result<Self> {
        if let Some(bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::parameter(
                "indices",
                bad,
                format!("concept `{}` has {} examples", self.name, self.len()),
            ));
        }
        let rows = indices
            .iter()
            .map(|&i| self.examples.rows(i, i + 1))
            .collect();
        let mut concept = Self::from_tensor(name, DynTensor::cat(rows)?)?;
        if !self.files.is_empty() {
            concept.files = indices.iter().map(|&i| self.files[i].clone()).collect();
        }
        if !self.texts.is_empty() {
            concept.texts = indices.iter().map(|&i| self.texts[i].clone()).collect();
        }
        Ok(concept)
    }

    /// The same concept with the sentences its examples were made from (text concepts: one per
    /// example, in order), which reports show; fails when the counts differ.
    pub fn with_texts(mut self, texts: Vec<String>) -> Result<Self> {
        if texts.len() != self.len() {
            return Err(Error::parameter(
                "texts",
                texts.len(),
                format!("concept `{}` has {} examples", self.name, self.len()),
            ));
        }
        self.texts = texts;
        Ok(self)
    }

    /// The sentences the examples were made from (empty unless given by
    /// [`Concept::with_texts`]).
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The concept's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The examples, batch first.
    pub fn examples(&self) -> &DynTensor {
        &self.examples
    }

    /// How many examples the concept has.
    pub fn len(&self) -> usize {
        self.examples.batch()
    }

    /// Whether the concept has no examples (never true for a constructed concept).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The image files the examples came from (empty for concepts made from tensors).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Hex SHA-256 of the example values and shape.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::parameter(
            "name",
            "\"\"",
            "a concept needs a non-empty name",
        ));
    }
    Ok(())
}
