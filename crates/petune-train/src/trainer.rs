//! The trainer every method shares (`LptTrainer::new(model, cfg).fit()`), following the
//! LPT authors' loop (lpt-reference.md §5): random order each epoch, dynamic padding,
//! gradient accumulation, clipping at 1.0, HF AdamW with linear warm-up and decay,
//! evaluation every N steps with best-dev selection, then the test set with the best
//! tensors.
//!
//! Reproducible and resumable: initialisation is seeded, the data order of epoch `e` is
//! a numpy-compatible shuffle seeded by `seed + e`, and dropout is reseeded at every
//! optimizer step from `(seed, step)`, so a run resumed from a checkpoint (trainable
//! tensors, Adam moments, step, position, best-so-far: all written atomically) ends in
//! the same state as an uninterrupted one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use petune_backbones::{load_backbone, LoadOptions, ModelDir, TextTokenizer};
use petune_core::fsio::{read_json, write_json_atomic};
use petune_core::tensor_io::{read_safetensors, write_safetensors};
use petune_core::{Backbone, Error, Result};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use crate::config::{RunConfig, TaskData};
use crate::data::sampler::epoch_order;
use crate::data::MetricReport;
use crate::features::{collate, Feature};
use crate::memory::{peak_rss_mib, rss_mib};
use crate::optim::{linear_schedule, AdamW, AdamWConfig};
use crate::precision::LossScaler;
use crate::prefix_cache::PrefixCache;
use crate::trained::{build_head, feature_encoder, DeltaManifest, TrainedModel};

/// A loaded backbone with its tokenizer.
pub struct LoadedModel {
    /// The frozen backbone.
    pub backbone: Box<dyn Backbone>,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
}

impl LoadedModel {
    /// Loads a Hugging Face folder: the backbone, and its tokenizer from `tokenizer.json`
    /// or, when the folder has none, `vocab.json` + `merges.txt`
    /// ([`TextTokenizer::from_model_dir`]).
    pub fn from_dir(dir: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
        let md = ModelDir::open(dir)?;
        let backbone = load_backbone(md.path(), opts)?;
        let tokenizer = TextTokenizer::from_model_dir(md.path(), backbone.spec())?;
        tracing::info!(dir = %dir.display(), backbone = %backbone.spec().describe(), "loaded");
        Ok(LoadedModel { backbone, tokenizer })
    }
}

/// What `fit` reports (also `metrics.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Method label.
    pub method: String,
    /// Task name.
    pub task: String,
    /// Best dev metric and the step it was reached at.
    pub best_dev: Option<MetricReport>,
    /// Step of the best dev metric.
    pub best_step: i64,
    /// Test metric with the best tensors.
    pub test: Option<MetricReport>,
    /// Trainable parameters (delta + head; the whole backbone for model tuning).
    pub trainable_params: i64,
    /// Backbone parameters.
    pub backbone_params: i64,
    /// Training throughput: real (non-padding) tokens per millisecond of training steps.
    pub tokens_per_ms: f64,
    /// Resident memory when training started, MiB.
    pub rss_start_mib: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: f64,
    /// Optimizer steps done.
    pub steps: i64,
    /// Wall time of the training loop, seconds (evaluation included).
    pub train_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    step: i64,
    epoch: u64,
    position: usize,
    best_headline: Option<f64>,
    best_dev: Option<MetricReport>,
    best_step: i64,
    train_tokens: i64,
    train_ms: f64,
    /// The fp16 loss scale (`precision`), kept so a resumed run continues with it.
    #[serde(default)]
    loss_scale: Option<f64>,
}

/// The common trainer. `LptTrainer` is this type (the same loop runs every method).
pub struct Trainer {
    model: LoadedModel,
    cfg: RunConfig,
    data: Option<TaskData>,
    quiet: bool,
}

/// The trainer under the name the LPT paper's users look for.
pub type LptTrainer = Trainer;

/// The outcome of `fit`.
pub struct FitResult {
    /// The report.
    pub report: TrainReport,
    /// The trained model with the best dev tensors.
    pub model: TrainedModel,
}

fn log_line(file: &mut Option<std::fs::File>, value: serde_json::Value) {
    if let Some(f) = file {
        let _ = writeln!(f, "{value}");
    }
}

impl Trainer {
    /// A trainer for `cfg` on an already loaded model.
    pub fn new(model: LoadedModel, cfg: RunConfig) -> Trainer {
        Trainer { model, cfg, data: None, quiet: false }
    }

    /// Uses `data` instead of loading `cfg.task` (custom splits, tests).
    pub fn with_data(mut self, data: TaskData) -> Trainer {
        self.data = Some(data);
        self
    }

    /// No progress output on stderr.
    pub fn quiet(mut self, quiet: bool) -> Trainer {
        self.quiet = quiet;
        self
    }

    /// Trains, selects on dev, evaluates on test; writes the output folder when set.
    pub fn fit(self) -> Result<FitResult> {
        let Trainer { model, cfg, data, quiet } = self;
        cfg.train.validate()?;
        let tc = &cfg.train;
        if tc.threads > 0 {
            tch::set_num_threads(tc.threads as i32);
        }
        let data = match data {
            Some(d) => d,
            None => cfg.task.load()?,
        };
        let LoadedModel { backbone, tokenizer } = model;
        let device = backbone.device();
        tch::manual_seed(tc.seed as i64);
        let trainable = VarStore::new(device);
        let delta = cfg.method.build(&(trainable.root() / "delta"), backbone.as_ref())?;
        let (head, head_cfg) = build_head(
            cfg.head,
            &cfg.method,
            backbone.as_ref(),
            &tokenizer,
            &data.spec,
            &trainable,
        )?;
        let encoder =
            feature_encoder(head_cfg, &cfg.method, tokenizer, &data.spec, tc.max_len, tc.truncate)?;
        let train_f = encoder.encode(&data.train)?;
        let dev_f = encoder.encode(&data.dev)?;
        let test_f = data.test.as_ref().map(|t| encoder.encode(t)).transpose()?;
        let test_mm_f = data.test_mismatched.as_ref().map(|t| encoder.encode(t)).transpose()?;
        let manifest = DeltaManifest {
            petune_version: env!("CARGO_PKG_VERSION").into(),
            method: cfg.method.clone(),
            head: head_cfg,
            task: data.spec.clone(),
            max_len: tc.max_len,
            truncate: tc.truncate,
            backbone: backbone.spec().describe(),
        };
        let trained = TrainedModel::assemble(backbone, trainable, delta, head, encoder, manifest);
        if cfg.method.trains_backbone() {
            for (_, t) in trained.backbone.var_store().variables() {
                let _ = t.set_requires_grad(true);
            }
        }
        let params = trained.trainable_tensors();
        let trainable_params: i64 = params.iter().map(|(_, t)| t.numel() as i64).sum();
        let mut opt = AdamW::new(
            params,
            AdamWConfig { weight_decay: tc.weight_decay, ..Default::default() },
        )?;

        let out_dir = cfg.out_dir.clone();
        let mut progress = Progress { best_step: -1, ..Default::default() };
        if let Some(dir) = &out_dir {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            if let Some(p) = try_resume(dir, &mut opt)? {
                tracing::info!(step = p.step, dir = %dir.display(), "resuming from a checkpoint");
                progress = p;
            }
        }
        let mut log = match &out_dir {
            Some(dir) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("log.jsonl"))
                    .map_err(|e| Error::io(dir.join("log.jsonl"), e))?,
            ),
            None => None,
        };
        let rss_start = rss_mib();
        let total = tc.total_steps(train_f.len());
        let warmup = (tc.warmup_rate * total as f64) as i64;
        let abort_after: Option<i64> =
            std::env::var("PETUNE_ABORT_AFTER_STEP").ok().and_then(|s| s.parse().ok());
        tracing::info!(
            method = %cfg.method.label(),
            task = %data.spec.name,
            trainable_params,
            train = train_f.len(),
            dev = dev_f.len(),
            test = test_f.as_ref().map_or(0, Vec::len),
            steps = total,
            warmup,
            device = ?device,
            "training"
        );
        let started = Instant::now();
        let bar = crate::progress::Bar::new(total as u64, progress.step as u64, quiet);
        let pad_id = trained.encoder.tokenizer.pad_id();
        let mut best_tensors: Option<Vec<(String, Tensor)>> = None;
        if let Some(dir) = &out_dir {
            if progress.best_step >= 0 {
                let f = read_safetensors(&dir.join("checkpoint").join("best.safetensors"), device)?;
                best_tensors = Some(f.tensors.into_iter().collect());
            }
        }

        let mut cache = match (tc.frozen_prefix_cache, trained.delta.as_deref()) {
            (false, _) => None,
            (true, Some(d)) if d.frozen_prefix_cacheable() && d.grad_floor() > 0 => {
                let dir = match &out_dir {
                    Some(o) => o.join("prefix-cache"),
                    None => std::env::temp_dir().join(format!("petune-prefix-cache-{}", std::process::id())),
                };
                Some(PrefixCache::new(tc.cache_budget_mib, dir))
            }
            (true, _) => {
                return Err(Error::config(
                    "frozen_prefix_cache",
                    format!(
                        "{} has no frozen prefix: only LPT and fixed AdapterDrop leave the lowest layers untouched",
                        cfg.method.label()
                    ),
                ))
            }
        };
        let per_step = tc.batch_size * tc.grad_accum;
        // The epoch's order is computed once per epoch, not per step.
        let lengths: Vec<usize> = train_f.iter().map(|f| f.ids.len()).collect();
        let order_of = |epoch: u64| {
            epoch_order(&lengths, (tc.seed + epoch) as u32, per_step, tc.length_buckets)
        };
        let mut order = order_of(progress.epoch);
        tc.precision.check_device(device)?;
        let mut scaler = LossScaler::new(tc.precision, progress.loss_scale);
        while progress.step < total {
            // drop_last=False, as the authors' RandomSampler loader: the last step of an
            // epoch may see fewer examples.
            if progress.position >= order.len() {
                progress.epoch += 1;
                progress.position = 0;
                order = order_of(progress.epoch);
                continue;
            }
            let t0 = Instant::now();
            tch::manual_seed((tc.seed as i64).wrapping_mul(1_000_003).wrapping_add(progress.step));
            let mut loss_sum = 0.0;
            let mut tokens = 0;
            for micro in 0..tc.grad_accum {
                let start = progress.position + micro * tc.batch_size;
                let idx: Vec<usize> =
                    order.iter().skip(start).take(tc.batch_size).copied().collect();
                if idx.is_empty() {
                    break;
                }
                let feats: Vec<&Feature> = idx.iter().map(|&i| &train_f[i]).collect();
                let batch = collate(&feats, pad_id, device)?;
                let loss = tc.precision.autocast(|| -> Result<Tensor> {
                    let s = match (cache.as_mut(), trained.delta.as_deref()) {
                        (Some(c), Some(d)) => {
                            let s0 = c.state(trained.backbone.as_ref(), d, &batch, &idx)?;
                            let b = trained.backbone.as_ref();
                            crate::model::forward_from(b, d, &batch, s0, true)?
                        }
                        _ => crate::model::forward(
                            trained.backbone.as_ref(),
                            trained.delta.as_deref(),
                            &batch,
                            true,
                        )?,
                    };
                    let out = trained.head.forward(trained.backbone.as_ref(), &s, &batch, true)?;
                    Ok(trained.head.loss(&out, &batch.labels) / tc.grad_accum as f64)
                })?;
                scaler.backward(&loss);
                loss_sum += loss.double_value(&[]);
                tokens += batch.n_tokens;
            }
            let lr = tc.lr * linear_schedule(progress.step, warmup, total);
            // As HF's Trainer: a step skipped on an fp16 overflow still advances the schedule.
            let outcome = scaler.step(&mut opt, tc.max_grad_norm, lr);
            if !outcome.applied {
                tracing::warn!(
                    step = progress.step,
                    scale = scaler.scale(),
                    "fp16 overflow: update skipped"
                );
            }
            progress.loss_scale = Some(scaler.scale());
            progress.step += 1;
            progress.position += per_step;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            progress.train_tokens += tokens;
            progress.train_ms += ms;
            bar.set(progress.step as u64, &format!("loss {loss_sum:.4}"));
            tracing::debug!(step = progress.step, loss = loss_sum, lr, tokens, ms, "step");
            log_line(
                &mut log,
                serde_json::json!({"step": progress.step, "loss": loss_sum, "lr": lr, "tokens_per_ms": tokens as f64 / ms.max(1e-9), "peak_rss_mib": peak_rss_mib()}),
            );
            if progress.step % tc.eval_every == 0 || progress.step == total {
                let dev = trained.evaluate_features(&dev_f, tc.eval_batch_size)?;
                let better = progress.best_headline.is_none_or(|b| dev.headline > b);
                if better {
                    progress.best_headline = Some(dev.headline);
                    progress.best_dev = Some(dev.clone());
                    progress.best_step = progress.step;
                    best_tensors = Some(
                        trained
                            .trainable_tensors()
                            .into_iter()
                            .map(|(n, t)| (n, t.detach().copy()))
                            .collect(),
                    );
                    if let (Some(dir), Some(b)) = (&out_dir, &best_tensors) {
                        write_safetensors(
                            &dir.join("checkpoint").join("best.safetensors"),
                            b,
                            None,
                        )?;
                    }
                }
                tracing::info!(step = progress.step, metric = %dev.key, dev = dev.headline, best = better, "evaluated on dev");
                bar.println(&format!(
                    "step {:>5}  dev {} = {:.4}{}",
                    progress.step,
                    dev.key,
                    dev.headline,
                    if better { "  (best)" } else { "" }
                ));
                log_line(
                    &mut log,
                    serde_json::json!({"step": progress.step, "dev": dev.values, "best": better}),
                );
            }
            if let (Some(dir), Some(every)) = (&out_dir, tc.save_every) {
                if progress.step % every == 0 {
                    save_checkpoint(dir, &opt, &progress)?;
                    tracing::debug!(step = progress.step, "checkpoint written");
                    if abort_after == Some(progress.step) {
                        // Simulates a crash right after a checkpoint (resume tests).
                        std::process::abort();
                    }
                }
            }
        }
        bar.finish();
        if let Some(best) = &best_tensors {
            let path = out_dir.clone().unwrap_or_else(|| PathBuf::from("<memory>"));
            let map = best.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
            crate::checkpoint::copy_into(&path, &map, &trained.trainable_tensors(), true)?;
        }
        for (_, t) in trained.backbone.var_store().variables() {
            let _ = t.set_requires_grad(false);
        }
        let test = match (&test_f, &test_mm_f) {
            (Some(m), Some(mm)) if data.spec.metric == crate::data::Metric::MnliAvg => {
                Some(trained.evaluate_mnli_features(m, mm, tc.eval_batch_size)?)
            }
            (Some(f), _) => Some(trained.evaluate_features(f, tc.eval_batch_size)?),
            (None, _) => None,
        };
        let report = TrainReport {
            method: cfg.method.label(),
            task: data.spec.name.clone(),
            best_dev: progress.best_dev.clone(),
            best_step: progress.best_step,
            test,
            trainable_params,
            backbone_params: trained.backbone.spec().total_params,
            tokens_per_ms: progress.train_tokens as f64 / progress.train_ms.max(1e-9),
            rss_start_mib: rss_start,
            peak_rss_mib: peak_rss_mib(),
            steps: progress.step,
            train_seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            best_step = report.best_step,
            best_dev = report.best_dev.as_ref().map(|m| m.headline),
            test = report.test.as_ref().map(|m| m.headline),
            tokens_per_ms = report.tokens_per_ms,
            peak_rss_mib = report.peak_rss_mib,
            "finished"
        );
        if let Some(dir) = &out_dir {
            trained.save(dir)?;
            write_json_atomic(&dir.join("metrics.json"), &report)?;
            tracing::info!(dir = %dir.display(), "wrote the delta, metrics and log");
        }
        Ok(FitResult { report, model: trained })
    }
}

fn save_checkpoint(dir: &Path, opt: &AdamW, progress: &Progress) -> Result<()> {
    let ck = dir.join("checkpoint");
    let mut tensors = Vec::new();
    for p in opt.params() {
        tensors.push((format!("param.{}", p.name), p.tensor.detach()));
        tensors.push((format!("adam_m.{}", p.name), p.m.shallow_clone()));
        tensors.push((format!("adam_v.{}", p.name), p.v.shallow_clone()));
    }
    // Tensors first, then the state that points at them: a crash between the two leaves
    // the previous consistent pair (the state names its step's tensor file).
    let file = format!("state-{}.safetensors", progress.step);
    write_safetensors(&ck.join(&file), &tensors, None)?;
    write_json_atomic(
        &ck.join("progress.json"),
        &serde_json::json!({"tensors": file, "adam_step": opt.step_count(), "progress": progress}),
    )?;
    if let Ok(entries) = std::fs::read_dir(&ck) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("state-") && name != file {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

fn try_resume(dir: &Path, opt: &mut AdamW) -> Result<Option<Progress>> {
    let ck = dir.join("checkpoint");
    let state_path = ck.join("progress.json");
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
    let path = ck.join(file);
    let saved = read_safetensors(
        &path,
        opt.params().first().map(|p| p.tensor.device()).unwrap_or(tch::Device::Cpu),
    )?;
    let mut targets = Vec::new();
    for p in opt.params() {
        targets.push((format!("param.{}", p.name), p.tensor.shallow_clone()));
        targets.push((format!("adam_m.{}", p.name), p.m.shallow_clone()));
        targets.push((format!("adam_v.{}", p.name), p.v.shallow_clone()));
    }
    crate::checkpoint::copy_into(&path, &saved.tensors, &targets, true)?;
    opt.set_step_count(adam_step);
    Ok(Some(progress))
}

/// Total of a tensor list's elements.
pub fn count_params(tensors: &[(String, Tensor)]) -> i64 {
    tensors.iter().map(|(_, t)| t.numel() as i64).sum()
}
