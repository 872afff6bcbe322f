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

use super::layers::LinearWeight;
use crate::gguf::QuantizedTensor;

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
    /// Weights kept in their GGUF blocks (served by [`WeightSource::linear_weight`]).
    quantized: BTreeMap<String, QuantizedTensor>,
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
            quantized: BTreeMap::new(),
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

    /// Adds weights kept as GGUF blocks, under canonical (Hugging Face) keys; only
    /// [`WeightSource::linear_weight`] hands them out, other parameters asking for one of
    /// these keys find it missing.
    pub fn with_quantized(mut self, tensors: impl IntoIterator<Item = QuantizedTensor>) -> Self {
        self.quantized.extend(tensors.into_iter().map(|q| (q.name().to_string(), q)));
        self
    }

    /// The file being loaded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether any canonical key starts with `prefix` (used to detect optional parts
    /// such as an MLM head or a pooler).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        let starts = |k: Option<&String>| k.is_some_and(|k| k.starts_with(prefix));
        starts(self.tensors.range(prefix.to_string()..).next().map(|(k, _)| k))
            || starts(self.quantized.range(prefix.to_string()..).next().map(|(k, _)| k))
    }

    /// Whether the canonical key exists.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key) || self.quantized.contains_key(key)
    }

    /// Marks `key` as consumed without loading it (tied copies, aliases).
    pub fn skip(&mut self, key: &str) {
        if self.contains(key) {
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

    /// A projection's weight `p.name`: its GGUF blocks, moved to the device, when the
    /// source holds them quantized (shape and type checked; problems recorded like
    /// [`WeightSource::param`]'s), else the dense parameter.
    pub fn linear_weight(&mut self, p: &nn::Path, name: &str, shape: &[i64]) -> LinearWeight {
        let key = key_of(p, name);
        let Some(q) = self.quantized.get(&key) else {
            return LinearWeight::Dense(self.param(p, name, shape));
        };
        self.taken.insert(key.clone());
        // The load fails in `finish`; a placeholder lets it report every other problem.
        let dense = |src: &mut WeightSource| LinearWeight::Dense(src.placeholder(shape));
        if q.shape() != shape {
            self.report.mismatched.push(ShapeMismatch {
                key: key.clone(),
                expected: shape.to_vec(),
                found: q.shape().to_vec(),
            });
            return dense(self);
        }
        if !q.ggml_type().is_supported() {
            self.report.mistyped.push(KindMismatch {
                key: key.clone(),
                found: format!("GGUF {} (not dequantized by petune)", q.ggml_type()),
            });
            return dense(self);
        }
        match q.to_device(self.device) {
            Ok(q) => LinearWeight::Quantized(q),
            Err(e) => {
                self.report.mistyped.push(KindMismatch {
                    key: key.clone(),
                    found: format!("GGUF blocks that cannot move to {:?}: {e}", self.device),
                });
                dense(self)
            }
        }
    }

    /// Like [`WeightSource::param`] but returns the tensor without registering it.
    pub fn raw(&mut self, key: &str, shape: &[i64]) -> Tensor {
        self.taken.insert(key.to_string());
        let placeholder = self.placeholder(shape);
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
            Some(t) => t.to_device(self.device).to_kind(self.kind_of(shape)).detach(),
        }
    }

    /// The stored kind of a tensor of `shape`: the load kind for matrices, float32 for
    /// vectors and scalars (biases and norm parameters stay float32 under a bfloat16
    /// base: [`crate::loader::BaseDtype`]).
    fn kind_of(&self, shape: &[i64]) -> Kind {
        if shape.len() >= 2 {
            self.kind
        } else {
            Kind::Float
        }
    }

    /// A zero-stride view in the target dtype and device: no memory, whatever the
    /// (possibly absurd) shape; the load fails in `finish` before anything reads it.
    fn placeholder(&self, shape: &[i64]) -> Tensor {
        Tensor::zeros([], (self.kind_of(shape), self.device)).expand(shape, false).detach()
    }

    /// Ends loading: an error listing every problem, or `Ok` when the file matched.
    pub fn finish(mut self) -> Result<()> {
        let unexpected: Vec<String> = self
            .tensors
            .keys()
            .chain(self.quantized.keys())
            .filter(|k| !self.taken.contains(*k))
            .cloned()
            .collect();
        self.report.unexpected = unexpected;
        if self.kind != Kind::Float {
            // The float32 tensors the stored ones were cast from go now, and the heap
            // gives their pages back, so the resident set shows the saving.
            self.tensors.clear();
            let _ = petune_ext::release_free_heap();
        }
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
