//! Strict checkpoint loading: every missing, unexpected and wrongly shaped key is
//! collected and reported at once (unlike tch's `VarStore::load`, which stops at the
//! first missing name, or HF, which only warns).
//!
//! Backbones build their modules by asking a [`WeightSource`] for each parameter under
//! a tch [`nn::Path`]; the path's components joined with `.` are the canonical
//! (Hugging Face) key, so the VarStore's variable names are the checkpoint's keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use petune_core::tensor_io::read_safetensors;
use petune_core::{Error, KindMismatch, Result, ShapeMismatch, WeightReport};
use tch::{nn, Device, Kind, Tensor};

/// What a key normaliser says about one key of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// Use the tensor under this canonical key.
    Use(String),
    /// A buffer or unused head that is skipped on purpose (e.g. `position_ids`).
    Skip,
}

impl KeyAction {
    /// The canonical key, or `None` for a skipped one.
    pub fn canonical(self) -> Option<String> {
        match self {
            KeyAction::Use(k) => Some(k),
            KeyAction::Skip => None,
        }
    }
}

/// The tensors of a checkpoint, keyed canonically, handed out to module builders.
pub struct WeightSource {
    path: PathBuf,
    tensors: BTreeMap<String, Tensor>,
    taken: BTreeSet<String>,
    report: WeightReport,
    kind: Kind,
    device: Device,
}

impl WeightSource {
    /// Reads `path` and renames each key with `normalize`.
    pub fn open(
        path: &Path,
        device: Device,
        kind: Kind,
        normalize: impl Fn(&str) -> KeyAction,
    ) -> Result<Self> {
        let file = read_safetensors(path, Device::Cpu)?;
        Ok(Self::from_tensors(path, file.tensors, device, kind, normalize))
    }

    /// Serves tensors already in memory (named by their Hugging Face keys, e.g.
    /// dequantized from another format), renamed with `normalize`; `origin` names them
    /// in errors (the file they came from).
    pub fn from_tensors(
        origin: &Path,
        tensors: impl IntoIterator<Item = (String, Tensor)>,
        device: Device,
        kind: Kind,
        normalize: impl Fn(&str) -> KeyAction,
    ) -> Self {
        let tensors = tensors
            .into_iter()
            .filter_map(|(key, t)| match normalize(&key) {
                KeyAction::Use(canonical) => Some((canonical, t)),
                KeyAction::Skip => None,
            })
            .collect();
        WeightSource {
            path: origin.to_path_buf(),
            tensors,
            taken: BTreeSet::new(),
            report: WeightReport::default(),
            kind,
            device,
        }
    }

    /// The weights of a Hugging Face folder: `model.safetensors`, or every shard that
    /// `model.safetensors.index.json` lists (its `weight_map`), as one source.
    pub fn open_model_dir(
        dir: &Path,
        device: Device,
        kind: Kind,
        normalize: impl Fn(&str) -> KeyAction,
    ) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        if dir.join("model.safetensors").is_file() || !index.is_file() {
            return Self::open(&dir.join("model.safetensors"), device, kind, normalize);
        }
        let v: serde_json::Value = petune_core::fsio::read_json(&index)?;
        let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| {
            Error::config(format!("{}: weight_map", index.display()), "missing or not an object")
        })?;
        let shards: BTreeSet<&str> = map.values().filter_map(|f| f.as_str()).collect();
        let mut tensors = Vec::new();
        for shard in shards {
            tensors.extend(read_safetensors(&dir.join(shard), Device::Cpu)?.tensors);
        }
        Ok(Self::from_tensors(&index, tensors, device, kind, normalize))
    }

    /// The file being loaded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether any canonical key starts with `prefix` (used to detect optional parts
    /// such as an MLM head or a pooler).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.tensors.range(prefix.to_string()..).next().is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// Whether the canonical key exists.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Marks `key` as consumed without loading it (tied copies, aliases).
    pub fn skip(&mut self, key: &str) {
        if self.tensors.contains_key(key) {
            self.taken.insert(key.to_string());
        }
    }

    /// Takes the tensor `name` under `p` (canonical key `p.name`), checks its shape and
    /// registers it in `p`'s VarStore. A missing or mis-shaped tensor is recorded and a
    /// zero placeholder returned, so that one pass reports every problem.
    pub fn param(&mut self, p: &nn::Path, name: &str, shape: &[i64]) -> Tensor {
        let key = key_of(p, name);
        let t = self.raw(&key, shape);
        p.add(name, t, true)
    }

    /// Like [`WeightSource::param`] but returns the tensor without registering it.
    pub fn raw(&mut self, key: &str, shape: &[i64]) -> Tensor {
        self.taken.insert(key.to_string());
        // A zero-stride view in the target dtype and device: no memory, whatever the
        // (possibly absurd) shape; the load fails in `finish` before anything reads it.
        let placeholder = Tensor::zeros([], (self.kind, self.device)).expand(shape, false).detach();
        match self.tensors.get(key) {
            None => {
                self.report.missing.push(key.to_string());
                placeholder
            }
            Some(t) if t.size() != shape => {
                self.report.mismatched.push(ShapeMismatch {
                    key: key.to_string(),
                    expected: shape.to_vec(),
                    found: t.size(),
                });
                placeholder
            }
            Some(t) if !t.is_floating_point() => {
                self.report
                    .mistyped
                    .push(KindMismatch { key: key.to_string(), found: format!("{:?}", t.kind()) });
                placeholder
            }
            // Every parameter is floating point (integers were refused above).
            Some(t) => t.to_device(self.device).to_kind(self.kind).detach(),
        }
    }

    /// Ends loading: an error listing every problem, or `Ok` when the file matched.
    pub fn finish(mut self) -> Result<()> {
        let unexpected: Vec<String> =
            self.tensors.keys().filter(|k| !self.taken.contains(*k)).cloned().collect();
        self.report.unexpected = unexpected;
        if self.report.is_clean() {
            Ok(())
        } else {
            Err(Error::Weights { path: self.path, report: self.report })
        }
    }
}

/// The canonical key of variable `name` under path `p`.
pub fn key_of(p: &nn::Path, name: &str) -> String {
    let mut parts: Vec<&str> = p.components().collect();
    parts.push(name);
    parts.join(".")
}

/// The name Hugging Face loads a checkpoint key under: legacy LayerNorm parameters
/// `gamma`/`beta` become `weight`/`bias` (`PreTrainedModel._fix_state_dict_key_on_load`).
pub fn hf_renamed_key(key: &str) -> String {
    if let Some(stem) = key.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = key.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        key.to_string()
    }
}
