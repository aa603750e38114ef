//! Concept activations at named layers, batched, and cached on disk.
//!
//! A cache entry is keyed by the model's key (a hash of its file for ONNX models), the layer and
//! the concept's [fingerprint](crate::Concept::fingerprint), and written with
//! [`write_atomic`](firelight_core::npy::write_atomic): an interrupted run leaves either the whole
//! entry or none. Entries are checked on read (parsable `.npy`, one row per example); one that is
//! not is recomputed and replaced.

use std::path::{Path, PathBuf};

use firelight_core::npy::{parse_npy, write_npy};
use firelight_core::{Device, DynTensor, Error, Inputs, Model, Recorder, Result, TapHook, Taps};
use sha2::{Digest, Sha256};

use crate::concept::{Concept, hex};

/// What identifies a model's weights for caching: a hash of its file, or a name you choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelKey(String);

impl ModelKey {
    /// SHA-256 of the model file's bytes (an ONNX file, a safetensors file, ...).
    pub fn of_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Ok(Self(hex(&Sha256::digest(&bytes))))
    }

    /// A key you vouch for (change it whenever the weights change).
    pub fn named(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where concept activations are kept between runs.
#[derive(Clone, Debug)]
pub struct ActivationCache {
    dir: PathBuf,
    model: ModelKey,
}

/// How many entries a run found in the cache and how many it computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries read from disk.
    pub hits: usize,
    /// Entries computed (and written).
    pub misses: usize,
}

impl ActivationCache {
    /// A cache in `dir` (created when needed) for the model identified by `model`.
    pub fn new(dir: impl Into<PathBuf>, model: ModelKey) -> Self {
        Self {
            dir: dir.into(),
            model,
        }
    }

    /// The model key entries are filed under.
    pub fn model_key(&self) -> &ModelKey {
        &self.model
    }

    /// The cache's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `concept`'s activations at `layer`.
    pub fn entry_path(&self, layer: &str, concept: &Concept) -> PathBuf {
        let mut hasher = Sha256::new();
        for part in [self.model.as_str(), layer, concept.fingerprint()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        self.dir.join(format!("{}.npy", hex(&hasher.finalize())))
    }

    /// The cached activations, if a valid entry with `rows` rows exists.
    fn read(&self, path: &Path, rows: usize, device: &Device) -> Option<DynTensor> {
        let bytes = std::fs::read(path).ok()?;
        let array = parse_npy(&bytes).ok()?;
        if array.shape.first() != Some(&rows) || array.data.iter().any(|v| !v.is_finite()) {
            return None;
        }
        array.into_tensor(device).ok()
    }

    /// `concept`'s activations at every layer in `layers` (flat `[examples, features]` per layer),
    /// read from the cache where valid and otherwise computed in batches of `batch_size` with one
    /// forward pass per batch for all missing layers, then written.
    pub fn activations(
        &self,
        model: &dyn Model,
        concept: &Concept,
        layers: &[String],
        batch_size: usize,
        stats: &mut CacheStats,
    ) -> Result<Vec<DynTensor>> {
        let device = concept.examples().device();
        let mut found: Vec<Option<DynTensor>> = layers
            .iter()
            .map(|l| self.read(&self.entry_path(l, concept), concept.len(), &device))
            .collect();
        let missing: Vec<String> = layers
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(l, _)| l.clone())
            .collect();
        stats.hits += layers.len() - missing.len();
        if !missing.is_empty() {
            std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
            let computed = layer_activations(model, concept.examples(), &missing, batch_size)?;
            for (layer, acts) in missing.iter().zip(computed) {
                write_npy(
                    self.entry_path(layer, concept),
                    acts.shape(),
                    &acts.to_vec()?,
                )?;
                let slot = layers
                    .iter()
                    .position(|l| l == layer)
                    .expect("missing ⊆ layers");
                found[slot] = Some(acts);
                stats.misses += 1;
            }
        }
        Ok(found
            .into_iter()
            .map(|f| f.expect("filled above"))
            .collect())
    }
}

/// Records `layers` and, once each has been seen, stops the forward pass (with an error the caller
/// recognises by `stopped`): the rest of the network is not needed for activations.
struct StopAfter {
    recorder: Recorder,
    left: Vec<String>,
    stopped: bool,
}

impl TapHook for StopAfter {
    fn visit(&mut self, layer: &str, value: DynTensor) -> Result<DynTensor> {
        let value = self.recorder.visit(layer, value)?;
        self.left.retain(|l| l != layer);
        if self.left.is_empty() {
            self.stopped = true;
            return Err(Error::Model(
                "activations recorded; forward pass stopped".into(),
            ));
        }
        Ok(value)
    }
}

/// The activations of `inputs` at each of `layers`, computed in batches of `batch_size` with one
/// forward pass per batch for all layers, stopped as soon as every layer has been seen once (a
/// layer a model visits twice keeps its first value). Each result keeps its layer's full shape.
pub fn layer_activations(
    model: &dyn Model,
    inputs: &DynTensor,
    layers: &[String],
    batch_size: usize,
) -> Result<Vec<DynTensor>> {
    for layer in layers {
        model.check_layer(layer)?;
    }
    if batch_size == 0 {
        return Err(Error::parameter("batch_size", 0, "must be at least 1"));
    }
    model.check_inputs(&Inputs::from(inputs))?;
    let mut parts: Vec<Vec<DynTensor>> = vec![Vec::new(); layers.len()];
    let mut start = 0;
    while start < inputs.batch() {
        let end = (start + batch_size).min(inputs.batch());
        let mut recorder = StopAfter {
            recorder: Recorder::new(layers.iter().cloned()),
            left: layers.to_vec(),
            stopped: false,
        };
        let result = model.forward(
            &Inputs::from(inputs.rows(start, end).detached()),
            &mut Taps::with_hook(&mut recorder),
        );
        if !recorder.stopped {
            result?;
        }
        let mut recorder = recorder.recorder;
        for (layer, part) in layers.iter().zip(parts.iter_mut()) {
            let value = recorder.take(layer).ok_or_else(|| {
                Error::Model(format!(
                    "the model lists layer `{layer}` but its forward pass never reached it"
                ))
            })?;
            part.push(value.detached());
        }
        start = end;
    }
    parts.into_iter().map(DynTensor::cat).collect()
}
