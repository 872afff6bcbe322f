//! The trainer every method shares (`Trainer::from_config(cfg)?.fit()`), following the
//! LPT authors' loop (lpt-reference.md §5): random order each epoch, dynamic padding,
//! gradient accumulation, clipping at 1.0, AdamW (fused by default, the authors' HF
//! recurrence on request) with linear warm-up and decay,
//! evaluation every N steps with best-dev selection, then the test set with the best
//! tensors. The loop itself, phase by phase (prepare, step, evaluate, checkpoint,
//! finish), is [`crate::run`].
//!
//! Reproducible and resumable: initialisation is seeded, the data order of epoch `e` is
//! a numpy-compatible shuffle seeded by `seed + e`, and dropout is reseeded at every
//! optimizer step from `(seed, step)`, so a run resumed from a checkpoint (trainable
//! tensors, Adam moments, step, position, best-so-far: all written atomically) ends in
//! the same state as an uninterrupted one. The output folder is locked and fingerprinted
//! ([`crate::run_dir`]), so two runs never mix in one folder.

use std::path::Path;

use petune_backbones::{LoadOptions, ModelSource, TextTokenizer};
use petune_core::{Backbone, Result};
use petune_ext::ProcessGroup;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::config::{RunConfig, TaskData};
use crate::data::{ClassificationReport, MetricReport};
use crate::run::Run;
use crate::trained::TrainedModel;

/// A loaded backbone with its tokenizer.
pub struct LoadedModel {
    /// The frozen backbone.
    pub backbone: Box<dyn Backbone>,
    /// Its tokenizer.
    pub tokenizer: TextTokenizer,
}

impl LoadedModel {
    /// Loads a model ([`ModelSource`]): from a Hugging Face folder the backbone and its
    /// tokenizer from `tokenizer.json` or, when the folder has none, `vocab.json` +
    /// `merges.txt` ([`TextTokenizer::from_model_dir`]); from a GGUF file both from the file.
    pub fn from_dir(dir: &Path, opts: &LoadOptions) -> Result<LoadedModel> {
        let parts = ModelSource::open(dir)?.load(opts)?;
        let (backbone, tokenizer) = (parts.backbone, parts.tokenizer);
        let (tokens, vocab) = (tokenizer.vocab_size() as i64, backbone.spec().vocab);
        if tokens > vocab {
            // Ids past the embeddings are refused at the first forward pass (a typed
            // error); say early that this tokenizer is probably another model's.
            tracing::warn!(
                "{} has {tokens} tokens but the model's vocabulary has {vocab}: the tokenizer may \
                 not belong to this model",
                tokenizer.path().display()
            );
        }
        tracing::info!(dir = %dir.display(), backbone = %backbone.spec().describe(), "loaded");
        Ok(LoadedModel { backbone, tokenizer })
    }
}

/// `train.quantized_base` keeps the base's projection weights in blocks that cannot
/// train: refused for a method that trains the backbone's weights (model tuning).
pub fn check_quantized_base(cfg: &RunConfig) -> Result<()> {
    if cfg.train.quantized_base && cfg.method.trains_backbone() {
        return Err(petune_core::Error::Incompatible {
            method: cfg.method.label(),
            backbone: cfg.model.display().to_string(),
            reason: "train.quantized_base keeps the frozen base weights in quantized blocks, \
                     which cannot be trained: turn it off to tune the whole model"
                .into(),
        });
    }
    Ok(())
}

/// `train.base_dtype: bf16` stores the frozen weights in bfloat16: refused for a method
/// that trains the backbone's weights (model tuning: they would train in bfloat16, where
/// an update below half a unit in the last place is lost, and there is nothing frozen to
/// store), and with `fp16` precision (every weight would be rounded twice, to bfloat16
/// and then to float16 by autocast).
pub fn check_base_dtype(cfg: &RunConfig) -> Result<()> {
    if cfg.train.base_dtype == petune_backbones::BaseDtype::F32 {
        return Ok(());
    }
    if cfg.method.trains_backbone() {
        return Err(petune_core::Error::Incompatible {
            method: cfg.method.label(),
            backbone: cfg.model.display().to_string(),
            reason: "train.base_dtype bf16 stores the frozen base weights in bfloat16, and \
                     model tuning trains every one of them: use base_dtype f32 (with \
                     precision bf16 for bfloat16 matmuls)"
                .into(),
        });
    }
    if cfg.train.precision == crate::precision::Precision::Fp16 {
        return Err(petune_core::Error::config(
            "base_dtype",
            "bf16 weights under fp16 autocast would be rounded twice (to bfloat16, then to \
             float16): use precision bf16 or f32 with base_dtype bf16",
        ));
    }
    Ok(())
}

/// A method that trains the backbone's weights needs them float32: a backbone loaded
/// with a bfloat16 base (whatever the run config says) is refused rather than trained in
/// bfloat16.
pub fn check_backbone_trainable(
    method: &crate::MethodConfig,
    backbone: &dyn petune_core::Backbone,
) -> Result<()> {
    if !method.trains_backbone() {
        return Ok(());
    }
    let vars = backbone.var_store().variables();
    if let Some((name, t)) = vars.iter().find(|(_, t)| t.kind() != tch::Kind::Float) {
        return Err(petune_core::Error::Incompatible {
            method: method.label(),
            backbone: backbone.spec().describe(),
            reason: format!(
                "{name} is stored as {:?}: model tuning trains float32 weights; load the model \
                 with base_dtype f32",
                t.kind()
            ),
        });
    }
    Ok(())
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
    /// Per-class precision / recall / F1 and confusion matrix on the test set.
    #[serde(default)]
    pub test_classes: Option<ClassificationReport>,
    /// The same on the dev set, with the best tensors, when there is no test set.
    #[serde(default)]
    pub dev_classes: Option<ClassificationReport>,
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
    /// Steps whose update was skipped for a non-finite loss (`on_non_finite: skip`).
    #[serde(default)]
    pub skipped_steps: i64,
    /// Wall time of the training loop, seconds (evaluation included).
    pub train_seconds: f64,
    /// Wall time of the optimizer steps alone, seconds: forward, backward, the gradient
    /// all-reduce and update (and filling the frozen-prefix cache), no evaluation — what a
    /// training-time budget is converted with (`petune_experiments::budget`). 0 in reports
    /// written before it.
    #[serde(default)]
    pub step_seconds: f64,
    /// Data-parallel ranks that trained (1: one process).
    #[serde(default = "one")]
    pub world_size: usize,
    /// Mean wall time of a step's gradient all-reduce, milliseconds (0 on one rank).
    #[serde(default)]
    pub comm_ms: f64,
}

fn one() -> usize {
    1
}

impl TrainReport {
    /// Mean wall time of an optimizer step, milliseconds (the all-reduce included).
    pub fn mean_step_ms(&self) -> f64 {
        self.step_seconds * 1e3 / self.steps.max(1) as f64
    }
}

/// What a training run tells an observer ([`Trainer::on_event`]) as it goes.
#[derive(Debug)]
pub enum TrainEvent<'a> {
    /// Training is about to start (after resuming, if it resumed).
    Started {
        /// Optimizer steps of the whole run.
        total_steps: i64,
        /// Steps already done (a resumed run).
        done_steps: i64,
        /// Estimated seconds for the remaining steps and evaluations.
        estimated_seconds: f64,
    },
    /// An optimizer step ended (its log line is written).
    Step {
        /// The step (1-based).
        step: i64,
        /// Its training loss (summed over micro-batches).
        loss: f64,
    },
    /// The dev set was evaluated.
    Evaluated {
        /// The step.
        step: i64,
        /// The dev metric.
        report: &'a MetricReport,
        /// A new best.
        best: bool,
    },
    /// A checkpoint was written.
    Checkpoint {
        /// The step.
        step: i64,
        /// The checkpoint folder.
        dir: &'a Path,
    },
}

/// An observer of a run's events.
pub type EventHandler = Box<dyn FnMut(&TrainEvent<'_>)>;

/// The common trainer. `LptTrainer` is this type (the same loop runs every method).
pub struct Trainer {
    pub(crate) model: LoadedModel,
    pub(crate) cfg: RunConfig,
    pub(crate) data: Option<TaskData>,
    pub(crate) quiet: bool,
    pub(crate) restart: bool,
    pub(crate) observer: Option<EventHandler>,
    pub(crate) pg: Option<ProcessGroup>,
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

impl Trainer {
    /// A trainer for `cfg` on an already loaded model.
    pub fn new(model: LoadedModel, cfg: RunConfig) -> Trainer {
        Trainer { model, cfg, data: None, quiet: false, restart: false, observer: None, pg: None }
    }

    /// A trainer for `cfg`, loading `cfg.model` on `cfg.train.device`.
    pub fn from_config(cfg: RunConfig) -> Result<Trainer> {
        cfg.train.validate()?;
        check_quantized_base(&cfg)?;
        check_base_dtype(&cfg)?;
        let opts = cfg.train.load_options()?;
        let model = LoadedModel::from_dir(&cfg.model, &opts)?;
        Ok(Trainer::new(model, cfg))
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

    /// Starts over in the output folder: petune's outputs and checkpoints there are
    /// removed first, whatever run they belong to (`petune train --restart`).
    pub fn restart(mut self, restart: bool) -> Trainer {
        self.restart = restart;
        self
    }

    /// Calls `f` at every [`TrainEvent`] (progress reporting, syncing checkpoints).
    pub fn on_event(mut self, f: impl FnMut(&TrainEvent<'_>) + 'static) -> Trainer {
        self.observer = Some(Box::new(f));
        self
    }

    /// Trains data-parallel over `pg`'s ranks (docs/scaling-out.md): every rank runs
    /// this trainer with the same config and data; each takes its share of every global
    /// batch, the gradients are summed over the ranks before clipping, and every rank
    /// applies the same update. Rank 0's starting state (and a checkpoint it resumes
    /// from) is broadcast first; evaluation is sharded and gathered, so every rank
    /// returns the same report; rank 0 alone writes the output folder. A group of one
    /// rank trains as without one.
    pub fn with_process_group(mut self, pg: ProcessGroup) -> Trainer {
        self.pg = Some(pg);
        self
    }

    /// Trains, selects on dev, evaluates on test; writes the output folder when set.
    /// With a process group ([`Trainer::with_process_group`]) an error leaves the group
    /// without waiting for the other ranks.
    pub fn fit(mut self) -> Result<FitResult> {
        let pg = self.pg.take();
        let result = Self::fit_in(self, pg.as_ref());
        if let (Err(_), Some(pg)) = (&result, pg) {
            // A failed rank leaves at once: dropping the group would wait (up to its
            // timeout) for peers that may be blocked in a collective this rank will never
            // join. The handle is leaked; a group is unusable after a failure anyway.
            std::mem::forget(pg);
        }
        result
    }

    fn fit_in(self, pg: Option<&ProcessGroup>) -> Result<FitResult> {
        let mut run = Run::prepare(self, pg)?;
        while !run.done() {
            run.step()?;
            if run.evaluation_due() {
                run.evaluate()?;
            }
            if run.checkpoint_due() {
                run.checkpoint()?;
            }
        }
        run.finish()
    }
}

/// Total of a tensor list's elements.
pub fn count_params(tensors: &[(String, Tensor)]) -> i64 {
    tensors.iter().map(|(_, t)| t.numel() as i64).sum()
}
