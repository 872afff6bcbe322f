//! `petune train --model DIR --train FILE`: the full [`RunConfig`] inferred from a model
//! folder and a data file, so that a user's own data trains with no config file, and
//! `--print-config` can show (and `--config` re-run) exactly what was inferred.
//!
//! What is inferred: the classes (the training file's sorted distinct labels), whether
//! examples are pairs, the template (the paper's default for single texts or pairs), the
//! head the model supports (the MLM verbalizer when the checkpoint has an MLM head and
//! every class name is one token, a linear head at the mask otherwise; a linear head on
//! the first token for methods without a template), `max_len` (the model's positions, at
//! most 512), and a schedule sized to the data: [`Quickstart::EPOCHS`] passes, evaluated
//! and checkpointed [`Quickstart::EVALS`] times
//! (fewer passes for large files: at most [`Quickstart::MAX_STEPS`] steps). Without a dev file a stratified 10 % of
//! the training file is held out ([`crate::config::held_out_dev_size`]).

use std::path::PathBuf;

use petune_backbones::ModelSource;
use petune_core::Result;

use crate::config::{
    held_out_dev_size, one_class, CustomTask, DataSource, RunConfig, TaskConfig, TrainConfig,
};
use crate::data::load::{dataset, read_rows, Labels};
use crate::data::Metric;
use crate::head::HeadConfig;
use crate::method::MethodConfig;
use crate::trained::resolve_head_for_words;

/// What the quickstart is given; everything else is inferred.
#[derive(Debug, Clone)]
pub struct Quickstart {
    /// Hugging Face model folder.
    pub model: PathBuf,
    /// Training file (CSV, JSONL, Parquet).
    pub train: PathBuf,
    /// Dev file; a stratified part of `train` when absent.
    pub dev: Option<PathBuf>,
    /// Test file.
    pub test: Option<PathBuf>,
    /// The method.
    pub method: MethodConfig,
    /// The head (`auto` resolves as the module docs say).
    pub head: HeadConfig,
    /// Peak learning rate.
    pub lr: f64,
    /// Output folder.
    pub out_dir: Option<PathBuf>,
}

/// What the quickstart found in the data, to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    /// The classes, in order.
    pub labels: Vec<String>,
    /// Whether the examples are pairs.
    pub pair: bool,
    /// Training examples in the file.
    pub n_train: usize,
    /// Examples held out of it as the dev set (0 with a dev file).
    pub n_held_out: usize,
}

impl Quickstart {
    /// Passes over the training data (fewer for files that would exceed `MAX_STEPS`).
    pub const EPOCHS: i64 = 20;
    /// The most steps a quickstart run plans (whole epochs, at least one).
    pub const MAX_STEPS: i64 = 2000;
    /// Evaluations (and checkpoints) over the run.
    pub const EVALS: i64 = 10;
    /// Examples per step.
    pub const BATCH_SIZE: usize = 16;

    /// The inferred run config and what was found in the data.
    pub fn run_config(&self) -> Result<(RunConfig, Inferred)> {
        let rows = read_rows(&self.train, Labels::Required)?;
        let train = dataset(rows, None, "custom", &self.train)?;
        if let [only] = train.label_names.as_slice() {
            return Err(one_class(&self.train.display().to_string(), only, train.len()));
        }
        let pair = train.examples.iter().any(|e| e.text_b.is_some());
        let name = self
            .train
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty() && s != "train")
            .or_else(|| {
                let parent = self.train.parent()?.file_name()?;
                Some(parent.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "custom".into());
        let custom = CustomTask {
            name: Some(name),
            labels: Some(train.label_names.clone()),
            template: Some(
                if pair { CustomTask::PAIR_TEMPLATE } else { CustomTask::SINGLE_TEMPLATE }.into(),
            ),
            label_words: None,
            metric: Some(Metric::Accuracy),
            pair: Some(pair),
            lm_pattern: None,
        };
        let spec_of_task = custom.spec(&train)?;
        let source = ModelSource::open(&self.model)?;
        let spec = source.spec()?;
        let tokenizer = source.tokenizer(&spec)?;
        let head =
            resolve_head_for_words(self.head, &self.method, &spec, &tokenizer, &spec_of_task)?;
        let n_held_out = if self.dev.is_some() { 0 } else { held_out_dev_size(train.len()) };
        let n_fit = train.len() - n_held_out;
        let per_epoch = n_fit.div_ceil(Self::BATCH_SIZE).max(1) as i64;
        // Large files get fewer passes: at most MAX_STEPS steps (at least one epoch).
        let epochs = (Self::MAX_STEPS / per_epoch).clamp(1, Self::EPOCHS);
        let total = per_epoch * epochs;
        let every = (total / Self::EVALS).max(1);
        let train_cfg = TrainConfig {
            lr: self.lr,
            batch_size: Self::BATCH_SIZE,
            epochs: Some(epochs),
            eval_every: every,
            save_every: Some(every),
            max_len: spec.max_positions.clamp(3, 512) as usize,
            ..TrainConfig::default()
        };
        let data = DataSource::Files {
            train: self.train.clone(),
            dev: self.dev.clone(),
            test: self.test.clone(),
        };
        let cfg = RunConfig {
            model: self.model.clone(),
            task: TaskConfig::custom(custom, data),
            method: self.method.clone(),
            head,
            train: train_cfg,
            out_dir: self.out_dir.clone(),
        };
        let inferred =
            Inferred { labels: train.label_names.clone(), pair, n_train: train.len(), n_held_out };
        Ok((cfg, inferred))
    }
}
