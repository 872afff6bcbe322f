//! One training run, phase by phase: [`Run::prepare`] (data, delta, head, features,
//! optimizer, output folder, resume), [`Run::step`] (one optimizer step),
//! [`Run::evaluate`] (dev, best-so-far), [`Run::checkpoint`] and [`Run::finish`] (the
//! best tensors, test, report, outputs). [`crate::Trainer::fit`] strings them together.
//!
//! The order of every seeded operation is fixed (global seed → delta → head; dropout
//! reseeded from `(seed, step)` at each step; the epoch order from `seed + epoch`), which
//! is what makes a resumed run bit-identical to an uninterrupted one.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use petune_core::fsio::write_json_atomic;
use petune_core::tensor_io::{read_safetensors, write_safetensors};
use petune_core::{Error, Result};
use petune_ext::ProcessGroup;
use tch::Tensor;

use crate::checkpoint::{save_checkpoint, try_resume, Progress};
use crate::config::{NonFinitePolicy, RunConfig, TaskData, TrainConfig};
use crate::data::sampler::{epoch_order, step_sample, Sampling};
use crate::data::Metric;
use crate::data_parallel::{shard_range, sum_gradients_};
use crate::estimate::{check_fits, estimate_seconds};
use crate::features::{collate, Feature, FeatureEncoder};
use crate::memory::{peak_rss_mib, rss_mib};
use crate::optim::{AdamW, AdamWConfig};
use crate::precision::LossScaler;
use crate::prefix_cache::PrefixCache;
use crate::progress::Bar;
use crate::run_dir::{fingerprint, RunDir};
use crate::trained::{build_trainable, feature_encoder, input_limit, DeltaManifest, TrainedModel};
use crate::trainer::{EventHandler, FitResult, TrainEvent, TrainReport, Trainer};

/// Tensors by name (the best dev tensors kept in memory).
type NamedTensors = Vec<(String, Tensor)>;

/// The encoded splits of a run.
pub(crate) struct Features {
    pub train: Vec<Feature>,
    pub dev: Vec<Feature>,
    pub test: Option<Vec<Feature>>,
    pub test_mismatched: Option<Vec<Feature>>,
}

/// Everything a run holds between its phases.
pub(crate) struct Run<'g> {
    cfg: RunConfig,
    data: TaskData,
    trained: TrainedModel,
    features: Features,
    opt: AdamW,
    scaler: LossScaler,
    cache: Option<PrefixCache>,
    progress: Progress,
    out: Option<RunDir>,
    log: Option<std::fs::File>,
    bar: Bar,
    best_tensors: Option<NamedTensors>,
    lengths: Vec<usize>,
    order: Vec<usize>,
    total: i64,
    warmup: i64,
    trainable_params: i64,
    rss_start: f64,
    started: Instant,
    observer: Option<EventHandler>,
    /// The data-parallel group when training over more than one rank.
    dp: Option<&'g ProcessGroup>,
}

impl Features {
    /// Every split of `data`, tokenized once.
    fn encode(encoder: &FeatureEncoder, data: &TaskData) -> Result<Features> {
        let opt =
            |d: &Option<crate::data::Dataset>| d.as_ref().map(|t| encoder.encode(t)).transpose();
        Ok(Features {
            train: encoder.encode(&data.train)?,
            dev: encoder.encode(&data.dev)?,
            test: opt(&data.test)?,
            test_mismatched: opt(&data.test_mismatched)?,
        })
    }

    /// Refuses batch sizes whose largest batch cannot fit in memory (CPU), before any
    /// allocation ([`check_fits`]).
    fn check_memory(&self, spec: &petune_core::BackboneSpec, tc: &TrainConfig) -> Result<()> {
        let longest = |f: &[Feature]| f.iter().map(|x| x.ids.len()).max().unwrap_or(0) as i64;
        let n = |f: &[Feature], b: usize| f.len().min(b) as i64;
        let train = &self.train;
        check_fits(spec, n(train, tc.batch_size), longest(train), true, "batch_size")?;
        for set in [Some(&self.dev), self.test.as_ref()].into_iter().flatten() {
            check_fits(spec, n(set, tc.eval_batch_size), longest(set), false, "eval_batch_size")?;
        }
        Ok(())
    }
}

/// Resumes from `out`'s checkpoint when it has one (tensors and moments into `opt`, the
/// progress, the best tensors so far; the log cut back to that step), else starts the
/// folder afresh.
fn resume(out: &RunDir, opt: &mut AdamW, quiet: bool) -> Result<(Progress, Option<NamedTensors>)> {
    let ck = out.checkpoint_dir();
    let Some(progress) = try_resume(&ck, opt)? else {
        out.start_fresh()?;
        return Ok((Progress { best_step: -1, ..Default::default() }, None));
    };
    tracing::info!(step = progress.step, dir = %out.path().display(), "resuming from a checkpoint");
    out.trim_log(progress.step)?;
    if !quiet {
        eprintln!(
            "resuming {} from its checkpoint at step {}",
            out.path().display(),
            progress.step
        );
    }
    let device = opt.params().first().map_or(tch::Device::Cpu, |p| p.tensor.device());
    let best = if progress.best_step >= 0 {
        let f = read_safetensors(&ck.join("best.safetensors"), device)?;
        Some(f.tensors.into_iter().collect())
    } else {
        None
    };
    Ok((progress, best))
}

/// The frozen-prefix cache when the config asks for it (spilling into the output folder,
/// or a temporary one); an error for methods without a frozen prefix.
fn prefix_cache(
    cfg: &RunConfig,
    trained: &TrainedModel,
    out: Option<&RunDir>,
) -> Result<Option<PrefixCache>> {
    match (cfg.train.frozen_prefix_cache, trained.delta.as_deref()) {
        (false, _) => Ok(None),
        (true, Some(d)) if d.frozen_prefix_cacheable() && d.grad_floor() > 0 => {
            let dir = match out {
                Some(o) => o.path().join("prefix-cache"),
                None => {
                    std::env::temp_dir().join(format!("petune-prefix-cache-{}", std::process::id()))
                }
            };
            Ok(Some(PrefixCache::new(cfg.train.cache_budget_mib, dir)))
        }
        (true, _) => Err(Error::config(
            "frozen_prefix_cache",
            format!(
                "{} has no frozen prefix: only LPT and fixed AdapterDrop leave the lowest layers untouched",
                cfg.method.label()
            ),
        )),
    }
}

impl<'g> Run<'g> {
    /// Loads and encodes the data, builds delta, head and optimizer (seeded), locks and
    /// checks the output folder, resumes from its checkpoint, and says how long the run
    /// will take.
    pub(crate) fn prepare(trainer: Trainer, pg: Option<&'g ProcessGroup>) -> Result<Run<'g>> {
        let Trainer { model, cfg, data, quiet, restart, observer, pg: _ } = trainer;
        // A group of one rank is no group: the one-process loop, bit for bit.
        let dp = pg.filter(|pg| pg.world_size() > 1);
        let leader = dp.as_ref().is_none_or(|pg| pg.rank() == 0);
        // Ranks other than 0 write nothing and print nothing.
        let quiet = quiet || !leader;
        cfg.train.validate()?;
        crate::trainer::check_quantized_base(&cfg)?;
        crate::trainer::check_base_dtype(&cfg)?;
        let tc = &cfg.train;
        if tc.threads > 0 {
            tch::set_num_threads(tc.threads as i32);
        }
        let data = match data {
            Some(d) => d,
            None => cfg.task.load()?,
        };
        for warning in data.check_training_set()? {
            tracing::warn!(task = %data.spec.name, "{warning}");
        }
        // Lock and check the folder before anything is built or written there.
        let out = match &cfg.out_dir {
            Some(dir) if leader => Some(RunDir::open(dir, &fingerprint(&cfg, &data)?, restart)?),
            _ => None,
        };
        let crate::trainer::LoadedModel { backbone, tokenizer } = model;
        let device = backbone.device();
        tch::manual_seed(tc.seed as i64);
        let (trainable, delta, mut head, head_cfg) =
            build_trainable(cfg.head, &cfg.method, backbone.as_ref(), &tokenizer, &data.spec)?;
        if let (Some(p), crate::head::Head::Linear { dropout, .. }) = (tc.head_dropout, &mut head) {
            *dropout = p;
        }
        let limit = input_limit(tc.max_len, backbone.spec());
        let encoder =
            feature_encoder(head_cfg, &cfg.method, tokenizer, &data.spec, limit, tc.truncate)?;
        let features = Features::encode(&encoder, &data)?;
        if device == tch::Device::Cpu {
            features.check_memory(backbone.spec(), tc)?;
        }
        let manifest = DeltaManifest {
            petune_version: env!("CARGO_PKG_VERSION").into(),
            method: cfg.method.clone(),
            head: head_cfg,
            task: data.spec.clone(),
            max_len: tc.max_len,
            truncate: tc.truncate,
            backbone: backbone.spec().describe(),
        };
        crate::trainer::check_backbone_trainable(&cfg.method, backbone.as_ref())?;
        let mut trained =
            TrainedModel::assemble(backbone, trainable, delta, head, encoder, manifest);
        trained.set_full_last_layer(cfg.train.full_last_layer);
        if cfg.method.trains_backbone() {
            for (_, t) in trained.backbone.var_store().variables() {
                let _ = t.set_requires_grad(true);
            }
        }
        let params = trained.trainable_tensors();
        let trainable_params: i64 = params.iter().map(|(_, t)| t.numel() as i64).sum();
        // One call builds the optimizer, so that it can be swapped in one place.
        let mut opt = AdamW::new(
            params,
            AdamWConfig { weight_decay: tc.weight_decay, kind: tc.optimizer, ..Default::default() },
        )?;

        if let Some(head_lr) = tc.head_lr {
            // A param group of its own: the head at head_lr, on the same schedule.
            if opt.scale_lr("head.", head_lr / tc.lr)? == 0 {
                return Err(Error::config(
                    "head_lr",
                    "is set, but this head has no trainable tensors (the MLM verbalizer and LM scoring are frozen)",
                ));
            }
        }

        let (mut progress, mut best_tensors) = match &out {
            Some(out) => resume(out, &mut opt, quiet)?,
            None => (Progress { best_step: -1, ..Default::default() }, None),
        };
        match dp {
            Some(pg) => {
                (progress, best_tensors) =
                    crate::dp_run::sync_start(pg, &mut opt, progress, best_tensors)?;
            }
            None => {
                if let Some(w) = progress.world_size.filter(|&w| w > 1) {
                    eprintln!(
                        "resuming a checkpoint written by {w} ranks in one process: the global \
                         batch is the same (equal up to float rounding and dropout masks)"
                    );
                }
                progress.world_size = None;
            }
        }
        let log = out.as_ref().map(RunDir::open_log).transpose()?;
        let rss_start = rss_mib();
        let total = tc.total_steps(features.train.len());
        let warmup = (tc.warmup_rate * total as f64) as i64;
        tracing::info!(
            method = %cfg.method.label(),
            task = %data.spec.name,
            trainable_params,
            train = features.train.len(),
            dev = features.dev.len(),
            test = features.test.as_ref().map_or(0, Vec::len),
            steps = total,
            warmup,
            device = ?device,
            "training"
        );
        let cache = prefix_cache(&cfg, &trained, out.as_ref())?;
        tc.precision.check_device(device)?;
        // Process-wide, as torch.backends.cuda.matmul.allow_tf32; set either way so that a
        // run never inherits another's setting.
        petune_ext::set_allow_tf32_cublas(tc.tf32)?;
        let scaler = LossScaler::new(tc.precision, progress.loss_scale);
        let lengths: Vec<usize> = features.train.iter().map(|f| f.ids.len()).collect();
        let mut run = Run {
            order: Vec::new(),
            bar: Bar::new(0, 0, true),
            cfg,
            data,
            trained,
            features,
            opt,
            scaler,
            cache,
            progress,
            out,
            log,
            best_tensors,
            lengths,
            total,
            warmup,
            trainable_params,
            rss_start,
            started: Instant::now(),
            observer,
            dp,
        };
        // The epoch's order is computed once per epoch, not per step.
        run.order = run.order_of(run.progress.epoch);
        // Only rank 0 estimates (timed forward passes cost time; the others are quiet).
        let estimated_seconds = if !leader {
            0.0
        } else {
            estimate_seconds(
                &run.trained,
                &run.features,
                &run.cfg.train,
                run.total,
                run.progress.step,
            )?
        };
        if !quiet {
            eprintln!(
                "training {} for {} steps ({} examples, batch {}), evaluating on {} dev examples every {} steps: about {} (estimated from timed forward passes)",
                run.cfg.method.label(),
                run.total - run.progress.step,
                run.features.train.len(),
                run.cfg.train.batch_size * run.cfg.train.grad_accum,
                run.features.dev.len(),
                run.cfg.train.eval_every.min(run.total),
                crate::estimate::human_duration(estimated_seconds)
            );
        }
        run.emit(&TrainEvent::Started {
            total_steps: run.total,
            done_steps: run.progress.step,
            estimated_seconds,
        });
        run.bar = Bar::new(run.total as u64, run.progress.step as u64, quiet);
        run.started = Instant::now();
        Ok(run)
    }

    fn emit(&mut self, event: &TrainEvent<'_>) {
        if let Some(f) = self.observer.as_mut() {
            f(event);
        }
    }

    fn order_of(&self, epoch: u64) -> Vec<usize> {
        let tc = &self.cfg.train;
        let per_step = tc.batch_size * tc.grad_accum;
        epoch_order(&self.lengths, tc.seed.wrapping_add(epoch) as u32, per_step, tc.length_buckets)
    }

    fn log_line(&mut self, value: serde_json::Value) {
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{value}");
        }
    }

    /// All steps are done.
    pub(crate) fn done(&self) -> bool {
        self.progress.step >= self.total
    }

    /// One optimizer step: the next `grad_accum` micro-batches (a new epoch's order when
    /// the last one is used up), backward, the update at the scheduled learning rate; a
    /// non-finite loss stops the run or skips the update (`on_non_finite`).
    pub(crate) fn step(&mut self) -> Result<()> {
        // drop_last=False, as the authors' RandomSampler loader: the last step of an
        // epoch may see fewer examples.
        let per_step = self.cfg.train.sampling == Sampling::PerStep;
        if !per_step && self.progress.position >= self.order.len() {
            self.progress.epoch += 1;
            self.progress.position = 0;
            self.order = self.order_of(self.progress.epoch);
        }
        let tc = self.cfg.train.clone();
        let device = self.trained.backbone.device();
        let pad_id = self.trained.encoder.tokenizer.pad_id();
        let t0 = Instant::now();
        // Each rank draws its own dropout masks (rank 0 those of the one-process run).
        let rank = self.dp.map_or(0, |pg| pg.rank() as i64);
        tch::manual_seed(
            (tc.seed as i64)
                .wrapping_mul(1_000_003)
                .wrapping_add(self.progress.step)
                .wrapping_add(rank.wrapping_mul(crate::dp_run::RANK_SEED_STRIDE)),
        );
        let mut loss_sum = 0.0;
        let mut tokens = 0;
        let drawn = per_step.then(|| {
            let n = self.features.train.len();
            step_sample(n, tc.batch_size * tc.grad_accum, tc.seed, self.progress.step)
        });
        for micro in 0..tc.grad_accum {
            let idx: Vec<usize> = match &drawn {
                Some(d) => {
                    d.iter().skip(micro * tc.batch_size).take(tc.batch_size).copied().collect()
                }
                None => {
                    let start = self.progress.position + micro * tc.batch_size;
                    self.order.iter().skip(start).take(tc.batch_size).copied().collect()
                }
            };
            if idx.is_empty() {
                break;
            }
            // This rank's share of the micro-batch, and the weight that makes the sum of
            // the ranks' losses the one-process loss of the whole micro-batch.
            let (idx, weight) = match self.dp {
                Some(pg) => {
                    let share = shard_range(idx.len(), pg.rank(), pg.world_size())?;
                    let w = share.len() as f64 / idx.len() as f64;
                    (idx[share].to_vec(), Some(w))
                }
                None => (idx, None),
            };
            if idx.is_empty() {
                continue;
            }
            let feats: Vec<&Feature> = idx.iter().map(|&i| &self.features.train[i]).collect();
            let batch = collate(&feats, pad_id, device)?;
            let (trained, cache) = (&self.trained, &mut self.cache);
            let loss = tc.precision.autocast(device, || -> Result<Tensor> {
                let delta = trained.delta.as_deref();
                let s0 = match (cache.as_mut(), delta) {
                    (Some(c), Some(d)) => {
                        Some(c.state(trained.backbone.as_ref(), d, &batch, &idx)?)
                    }
                    _ => None,
                };
                let (b, head) = (trained.backbone.as_ref(), &trained.head);
                let out = crate::model::head_output(
                    b,
                    delta,
                    head,
                    &batch,
                    s0,
                    true,
                    tc.full_last_layer,
                )?;
                let loss = trained.head.loss(&out, &batch.labels) / tc.grad_accum as f64;
                Ok(match weight {
                    Some(w) => loss * w,
                    None => loss,
                })
            })?;
            self.scaler.backward(&loss);
            loss_sum += loss.double_value(&[]);
            tokens += batch.n_tokens;
        }
        let mut comm_ms = 0.0;
        if let Some(pg) = self.dp {
            // One flat all-reduce: the gradients, the loss and the token count summed.
            let params: Vec<Tensor> =
                self.opt.params().iter().map(|p| p.tensor.shallow_clone()).collect();
            let mut scalars = [loss_sum, tokens as f64];
            let stats = sum_gradients_(pg, &params, &mut scalars)?;
            loss_sum = scalars[0];
            tokens = scalars[1].round() as i64;
            comm_ms = stats.seconds * 1e3;
        }
        let step = self.progress.step + 1;
        let lr = tc.lr * tc.schedule.factor(self.progress.step, self.warmup, self.total);
        if !loss_sum.is_finite() {
            match tc.on_non_finite {
                NonFinitePolicy::Error => {
                    return Err(Error::NonFinite { step, what: "loss".into(), value: loss_sum })
                }
                NonFinitePolicy::Skip => {
                    self.opt.zero_grad();
                    self.progress.skipped_steps += 1;
                    tracing::warn!(step, loss = loss_sum, "non-finite loss: update skipped");
                }
            }
        } else {
            // As HF's Trainer: a step skipped on an fp16 overflow still advances the schedule.
            let outcome = self.scaler.step(&mut self.opt, tc.max_grad_norm, lr)?;
            if !outcome.applied {
                tracing::warn!(step, scale = self.scaler.scale(), "fp16 overflow: update skipped");
            } else if !outcome.grad_norm.is_finite() {
                // f32: the update has been applied with a non-finite gradient.
                return Err(Error::NonFinite {
                    step,
                    what: "gradient norm".into(),
                    value: outcome.grad_norm,
                });
            }
        }
        self.progress.loss_scale = Some(self.scaler.scale());
        self.progress.step = step;
        self.progress.position += tc.batch_size * tc.grad_accum;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        self.progress.train_tokens += tokens;
        self.progress.train_ms += ms;
        self.progress.comm_ms += comm_ms;
        self.bar.set(step as u64, &format!("loss {loss_sum:.4}"));
        tracing::debug!(step, loss = loss_sum, lr, tokens, ms, "step");
        self.log_line(serde_json::json!({"step": step, "loss": loss_sum, "lr": lr, "tokens_per_ms": tokens as f64 / ms.max(1e-9), "peak_rss_mib": peak_rss_mib()}));
        self.emit(&TrainEvent::Step { step, loss: loss_sum });
        Ok(())
    }

    /// Whether the dev set is evaluated after this step.
    pub(crate) fn evaluation_due(&self) -> bool {
        let step = self.progress.step;
        step % self.cfg.train.eval_every == 0 || step == self.total
    }

    /// Evaluates on dev; a new best keeps a copy of the trainable tensors (and writes
    /// `checkpoint/best.safetensors` when there is an output folder).
    pub(crate) fn evaluate(&mut self) -> Result<()> {
        let dev = self.trained.evaluate_features(
            &self.features.dev,
            self.cfg.train.eval_batch_size,
            self.dp,
        )?;
        let step = self.progress.step;
        let better = self.progress.best_headline.is_none_or(|b| dev.headline > b);
        if better {
            self.progress.best_headline = Some(dev.headline);
            self.progress.best_dev = Some(dev.clone());
            self.progress.best_step = step;
            let best: Vec<(String, Tensor)> = self
                .trained
                .trainable_tensors()
                .into_iter()
                .map(|(n, t)| (n, t.detach().copy()))
                .collect();
            if let Some(out) = &self.out {
                write_safetensors(&out.checkpoint_dir().join("best.safetensors"), &best, None)?;
            }
            self.best_tensors = Some(best);
        }
        tracing::info!(step, metric = %dev.key, dev = dev.headline, best = better, "evaluated on dev");
        self.bar.println(&format!(
            "step {:>5}  dev {} = {:.4}{}",
            step,
            dev.key,
            dev.headline,
            if better { "  (best)" } else { "" }
        ));
        self.log_line(serde_json::json!({"step": step, "dev": dev.values, "best": better}));
        self.emit(&TrainEvent::Evaluated { step, report: &dev, best: better });
        Ok(())
    }

    /// Whether a checkpoint is written after this step.
    pub(crate) fn checkpoint_due(&self) -> bool {
        match (&self.out, self.cfg.train.save_every) {
            (Some(_), Some(every)) => self.progress.step % every == 0,
            _ => false,
        }
    }

    /// Writes the resumable checkpoint (tensors, moments, progress).
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        let Some(out) = &self.out else { return Ok(()) };
        let ck = out.checkpoint_dir();
        save_checkpoint(&ck, &self.opt, &self.progress)?;
        tracing::debug!(step = self.progress.step, "checkpoint written");
        let step = self.progress.step;
        self.emit(&TrainEvent::Checkpoint { step, dir: &ck });
        Ok(())
    }

    /// Loads the best dev tensors, evaluates on test (per class too), and writes the
    /// outputs (`delta.*`, `metrics.json`).
    pub(crate) fn finish(self) -> Result<FitResult> {
        self.bar.finish();
        if let Some(best) = &self.best_tensors {
            let path = self
                .out
                .as_ref()
                .map_or_else(|| PathBuf::from("<memory>"), |o| o.path().to_path_buf());
            let map = best.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
            crate::checkpoint::copy_into(&path, &map, &self.trained.trainable_tensors(), true)?;
        }
        for (_, t) in self.trained.backbone.var_store().variables() {
            let _ = t.set_requires_grad(false);
        }
        let bs = self.cfg.train.eval_batch_size;
        let pg = self.dp;
        let (test, test_classes) = match (&self.features.test, &self.features.test_mismatched) {
            (Some(m), Some(mm)) if self.data.spec.metric == Metric::MnliAvg => {
                (Some(self.trained.evaluate_mnli_features(m, mm, bs, pg)?), None)
            }
            (Some(f), _) => {
                let (r, c) = self.trained.evaluate_features_detailed(f, bs, pg)?;
                (Some(r), Some(c))
            }
            (None, _) => (None, None),
        };
        let dev_classes = match &test {
            None => Some(self.trained.evaluate_features_detailed(&self.features.dev, bs, pg)?.1),
            Some(_) => None,
        };
        let p = &self.progress;
        let report = TrainReport {
            method: self.cfg.method.label(),
            task: self.data.spec.name.clone(),
            best_dev: p.best_dev.clone(),
            best_step: p.best_step,
            test,
            test_classes,
            dev_classes,
            trainable_params: self.trainable_params,
            backbone_params: self.trained.backbone.spec().total_params,
            tokens_per_ms: p.train_tokens as f64 / p.train_ms.max(1e-9),
            rss_start_mib: self.rss_start,
            peak_rss_mib: peak_rss_mib(),
            steps: p.step,
            skipped_steps: p.skipped_steps,
            world_size: self.dp.map_or(1, |pg| pg.world_size()),
            comm_ms: p.comm_ms / p.step.max(1) as f64,
            train_seconds: self.started.elapsed().as_secs_f64(),
            step_seconds: p.train_ms / 1e3,
        };
        tracing::info!(
            best_step = report.best_step,
            best_dev = report.best_dev.as_ref().map(|m| m.headline),
            test = report.test.as_ref().map(|m| m.headline),
            tokens_per_ms = report.tokens_per_ms,
            peak_rss_mib = report.peak_rss_mib,
            "finished"
        );
        if let Some(out) = &self.out {
            self.trained.save(out.path())?;
            write_json_atomic(&out.path().join("metrics.json"), &report)?;
            tracing::info!(dir = %out.path().display(), "wrote the delta, metrics and log");
        }
        Ok(FitResult { report, model: self.trained })
    }
}
