//! Checkpoints of a run (`out_dir/checkpoint/`): the trainable tensors, both Adam
//! moments and (`adamw_fused`) each tensor's float32 step counter in
//! `state-<step>.safetensors`, then `progress.json` naming it (written
//! atomically after the tensors, so a crash between the two leaves the previous
//! consistent pair), and copying saved tensors into live variables strictly (every
//! missing, unexpected and mis-shaped name reported at once).

use std::collections::BTreeMap;
use std::path::Path;

use petune_core::fsio::{read_json, write_json_atomic};
use petune_core::tensor_io::{read_safetensors, write_safetensors};
use petune_core::{Error, Result, ShapeMismatch, WeightReport};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::data::MetricReport;
use crate::optim::AdamW;

/// Copies `saved[name]` into each target variable. With `exact`, names in `saved` that
/// match no target are errors too.
pub fn copy_into(
    path: &Path,
    saved: &BTreeMap<String, Tensor>,
    targets: &[(String, Tensor)],
    exact: bool,
) -> Result<()> {
    let mut report = WeightReport::default();
    let _guard = tch::no_grad_guard();
    for (name, var) in targets {
        match saved.get(name) {
            None => report.missing.push(name.clone()),
            Some(t) if t.size() != var.size() => report.mismatched.push(ShapeMismatch {
                key: name.clone(),
                expected: var.size(),
                found: t.size(),
            }),
            Some(t) => {
                let mut v = var.shallow_clone();
                v.f_copy_(&t.to_kind(var.kind()).to_device(var.device()))?;
            }
        }
    }
    if exact {
        let known: std::collections::BTreeSet<&String> = targets.iter().map(|(n, _)| n).collect();
        report.unexpected = saved.keys().filter(|k| !known.contains(k)).cloned().collect();
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(Error::Weights { path: path.to_path_buf(), report })
    }
}

/// Where a run stands: what a checkpoint's `progress.json` records (with the Adam step
/// count and the name of the tensor file written just before it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Progress {
    pub step: i64,
    pub epoch: u64,
    pub position: usize,
    pub best_headline: Option<f64>,
    pub best_dev: Option<MetricReport>,
    pub best_step: i64,
    pub train_tokens: i64,
    pub train_ms: f64,
    /// The fp16 loss scale (`precision`), kept so a resumed run continues with it.
    #[serde(default)]
    pub loss_scale: Option<f64>,
    /// Steps skipped for a non-finite loss (`on_non_finite: skip`).
    #[serde(default)]
    pub skipped_steps: i64,
    /// The number of data-parallel ranks that wrote this progress (absent: one).
    #[serde(default)]
    pub world_size: Option<usize>,
    /// Milliseconds spent in the gradient all-reduce over all steps (data parallel).
    #[serde(default)]
    pub comm_ms: f64,
}

/// Writes `dir/state-<step>.safetensors` (trainable tensors and both Adam moments), then
/// `dir/progress.json` naming it, then removes older state files.
pub(crate) fn save_checkpoint(dir: &Path, opt: &AdamW, progress: &Progress) -> Result<()> {
    let mut tensors = Vec::new();
    for p in opt.params() {
        tensors.push((format!("param.{}", p.name), p.tensor.detach()));
        tensors.push((format!("adam_m.{}", p.name), p.m.shallow_clone()));
        tensors.push((format!("adam_v.{}", p.name), p.v.shallow_clone()));
        if let Some(step) = &p.step {
            tensors.push((format!("adam_step.{}", p.name), step.shallow_clone()));
        }
    }
    // Tensors first, then the state that points at them: a crash between the two leaves
    // the previous consistent pair (the state names its step's tensor file).
    let file = format!("state-{}.safetensors", progress.step);
    write_safetensors(&dir.join(&file), &tensors, None)?;
    write_json_atomic(
        &dir.join("progress.json"),
        &serde_json::json!({"tensors": file, "adam_step": opt.step_count(), "progress": progress}),
    )?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("state-") && name != file {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// Loads the checkpoint in `dir` into `opt` (tensors, moments, step count), if there is one.
pub(crate) fn try_resume(dir: &Path, opt: &mut AdamW) -> Result<Option<Progress>> {
    let state_path = dir.join("progress.json");
    if !state_path.exists() {
        return Ok(None);
    }
    let state: serde_json::Value = read_json(&state_path)?;
    let bad = |msg: &str| Error::Input(format!("{}: {msg}", state_path.display()));
    let file = state.get("tensors").and_then(|v| v.as_str()).ok_or_else(|| bad("no `tensors`"))?;
    let progress: Progress =
        serde_json::from_value(state.get("progress").cloned().ok_or_else(|| bad("no `progress`"))?)
            .map_err(|source| Error::Json { path: state_path.clone(), source })?;
    let adam_step =
        state.get("adam_step").and_then(|v| v.as_i64()).ok_or_else(|| bad("no `adam_step`"))?;
    let path = dir.join(file);
    let saved = read_safetensors(
        &path,
        opt.params().first().map(|p| p.tensor.device()).unwrap_or(tch::Device::Cpu),
    )?;
    let mut targets = Vec::new();
    for p in opt.params() {
        targets.push((format!("param.{}", p.name), p.tensor.shallow_clone()));
        targets.push((format!("adam_m.{}", p.name), p.m.shallow_clone()));
        targets.push((format!("adam_v.{}", p.name), p.v.shallow_clone()));
        if let Some(step) = &p.step {
            targets.push((format!("adam_step.{}", p.name), step.shallow_clone()));
        }
    }
    copy_into(&path, &saved.tensors, &targets, true)?;
    opt.set_step_count(adam_step);
    Ok(Some(progress))
}
