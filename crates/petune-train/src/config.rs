//! Run configuration (`petune train --config RUN.json`): model folder, task and data,
//! method, head and training hyper-parameters, with the LPT authors' defaults
//! (lpt-reference.md §5: AdamW lr 1e-3, warm-up 6 %, weight decay 0.1, clipping 1.0,
//! 1,000 steps, evaluation every 100 steps, seed 42).

use std::path::PathBuf;

use petune_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::data::fewshot::authors_splits;
use crate::data::load::{
    load_csv, load_jsonl, load_mr_snippets, load_split, mr_split, MR_SPLIT_SEED,
};
use crate::data::{
    stratified_split, Dataset, Split, TaskName, TaskSpec, TemplateStyle, AUTHORS_SEEDS, K_DEV,
};
use crate::head::HeadConfig;
use crate::method::MethodConfig;

/// Where a task's data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// The MR snippets file of scripts/setup.sh, split by `mr_split` into a pool and a
    /// 2,000-example test set.
    MrSnippets {
        /// `movieReviewSnippets_GroundTruth.txt`.
        path: PathBuf,
    },
    /// A task folder in its public layout (GLUE TSV or LM-BFF) with train/dev/test files.
    TaskDir {
        /// The folder (e.g. `glue/SST-2`).
        dir: PathBuf,
    },
    /// Generic CSV or JSONL files with `text`, optional `text_pair`, `label`.
    Files {
        /// Training file.
        train: PathBuf,
        /// Development file.
        #[serde(default)]
        dev: Option<PathBuf>,
        /// Test file.
        #[serde(default)]
        test: Option<PathBuf>,
    },
}

/// The authors' few-shot protocol (lpt-reference.md §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FewShotConfig {
    /// Training examples in total (100 or 500 in the paper).
    pub k: usize,
    /// One of the authors' seeds (100, 13, 21, 42, 87).
    pub seed: u32,
    /// Size of the sampled dev set (1,000).
    #[serde(default = "default_k_dev")]
    pub k_dev: usize,
}

fn default_k_dev() -> usize {
    K_DEV
}

/// A task and its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// The task (templates, label words, metric).
    pub name: TaskName,
    /// Its data.
    pub data: DataSource,
    /// Few-shot sampling from the training data.
    #[serde(default)]
    pub fewshot: Option<FewShotConfig>,
    /// Template variant.
    #[serde(default)]
    pub template_style: TemplateStyle,
}

/// Train / dev / test of one run.
#[derive(Debug, Clone)]
pub struct TaskData {
    /// Templates, label words, metric.
    pub spec: TaskSpec,
    /// Training set.
    pub train: Dataset,
    /// Model-selection set.
    pub dev: Dataset,
    /// Held-out evaluation set (MNLI: matched).
    pub test: Option<Dataset>,
    /// MNLI's mismatched evaluation set, scored with `test` as `Metric::MnliAvg`.
    pub test_mismatched: Option<Dataset>,
}

fn first(mut v: Vec<Dataset>, what: &str) -> Result<Dataset> {
    if v.is_empty() {
        return Err(Error::input(format!("no {what} data found")));
    }
    Ok(v.swap_remove(0))
}

impl TaskConfig {
    /// Loads the data and applies the few-shot protocol.
    pub fn load(&self) -> Result<TaskData> {
        let spec = self.name.spec(self.template_style);
        let (pool, dev, dev_mm, test, test_mm) = match &self.data {
            DataSource::MrSnippets { path } => {
                let all = load_mr_snippets(path)?;
                let (pool, test) = mr_split(&all, MR_SPLIT_SEED)?;
                (pool, None, None, Some(test), None)
            }
            DataSource::TaskDir { dir } => {
                let train = first(load_split(self.name, dir, Split::Train)?, "train")?;
                // MNLI gives [matched, mismatched]; other tasks one set.
                let mut dev =
                    load_split(self.name, dir, Split::Dev).unwrap_or_default().into_iter();
                let mut test =
                    load_split(self.name, dir, Split::Test).unwrap_or_default().into_iter();
                (train, dev.next(), dev.next(), test.next(), test.next())
            }
            DataSource::Files { train, dev, test } => {
                let names = Some(spec.label_names.as_slice());
                let load = |p: &PathBuf| -> Result<Dataset> {
                    match p.extension().and_then(|e| e.to_str()) {
                        Some("jsonl") | Some("json") => load_jsonl(p, &spec.name, names),
                        _ => load_csv(p, &spec.name, names),
                    }
                };
                let (dev, test) =
                    (dev.as_ref().map(load).transpose()?, test.as_ref().map(load).transpose()?);
                (load(train)?, dev, None, test, None)
            }
        };
        let (train, dev, test, test_mismatched) = match (&self.fewshot, dev) {
            (Some(fs), dev) => {
                // The authors' script shuffles LM-BFF pools in place across its seed loop,
                // so seed s starts from the previous seeds' order: replay that prefix.
                let seeds: Vec<u32> = match AUTHORS_SEEDS.iter().position(|&s| s == fs.seed) {
                    Some(i) => AUTHORS_SEEDS[..=i].to_vec(),
                    None => vec![fs.seed],
                };
                let split = authors_splits(self.name, &pool, fs.k, fs.k_dev, &seeds)?
                    .pop()
                    .ok_or_else(|| Error::input("no seed to sample with"))?;
                // Few-shot: the original dev sets (GLUE) become the test sets, as the authors do.
                (split.train, split.dev, test.or(dev), test_mm.or(dev_mm))
            }
            // Full-data GLUE reports on dev (also the selection set, paper Table 1); MNLI
            // then scores matched and mismatched dev together.
            (None, Some(dev)) if test.is_none() && dev_mm.is_some() => {
                (pool, dev.clone(), Some(dev), dev_mm)
            }
            (None, Some(dev)) => (pool, dev, test, test_mm),
            (None, None) => {
                let n_dev = K_DEV.min(pool.len() / 10).max(1);
                let (train, dev) = stratified_split(&pool, n_dev, MR_SPLIT_SEED)?;
                (train, dev, test, test_mm)
            }
        };
        Ok(TaskData { spec, train, dev, test, test_mismatched })
    }
}

/// Optimisation hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Examples per forward pass.
    pub batch_size: usize,
    /// Examples per evaluation forward pass.
    pub eval_batch_size: usize,
    /// Optimizer steps (ignored when `epochs` is set).
    pub max_steps: i64,
    /// Train for this many passes over the training set instead of `max_steps` (the
    /// authors' full-data setting: 10 epochs).
    pub epochs: Option<i64>,
    /// Warm-up steps as a fraction of `max_steps`.
    pub warmup_rate: f64,
    /// Decoupled weight decay (not on biases and LayerNorms).
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Forward passes per optimizer step.
    pub grad_accum: usize,
    /// Evaluate on dev every this many steps (and after the last).
    pub eval_every: i64,
    /// Seed of initialisation, data order and dropout.
    pub seed: u64,
    /// Longest input in tokens.
    pub max_len: usize,
    /// Cut over-long inputs instead of failing.
    pub truncate: bool,
    /// Write a resumable checkpoint every this many steps (needs an output folder).
    pub save_every: Option<i64>,
    /// `cpu`, `cuda` or `auto`.
    pub device: String,
    /// Threads for libtorch (0 = its default).
    pub threads: usize,
    /// Reuse the frozen layers' outputs below the method's floor across epochs (LPT,
    /// fixed AdapterDrop). Computed in eval mode: no dropout below the prompt layer.
    pub frozen_prefix_cache: bool,
    /// Memory for the frozen-prefix cache, MiB; beyond it states spill to disk.
    pub cache_budget_mib: f64,
    /// Length bucketing: sort pools of this many steps by length so that batches pad
    /// little (`data::sampler`); 0 = the authors' plain random order.
    pub length_buckets: usize,
    /// `f32`, or `fp16`: CUDA autocast with dynamic loss scaling (`precision`).
    pub precision: crate::precision::Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lr: 1e-3,
            batch_size: 16,
            eval_batch_size: 32,
            max_steps: 1000,
            epochs: None,
            warmup_rate: 0.06,
            weight_decay: 0.1,
            max_grad_norm: 1.0,
            grad_accum: 1,
            eval_every: 100,
            seed: 42,
            max_len: 512,
            truncate: false,
            save_every: None,
            device: "auto".into(),
            threads: 0,
            frozen_prefix_cache: false,
            cache_budget_mib: 2048.0,
            length_buckets: 0,
            precision: crate::precision::Precision::F32,
        }
    }
}

impl TrainConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let checks = [
            (self.lr > 0.0 && self.lr.is_finite(), "lr", "must be positive"),
            (self.batch_size > 0, "batch_size", "must be positive"),
            (self.eval_batch_size > 0, "eval_batch_size", "must be positive"),
            (self.max_steps > 0, "max_steps", "must be positive"),
            (self.epochs.is_none_or(|e| e > 0), "epochs", "must be positive"),
            ((0.0..1.0).contains(&self.warmup_rate), "warmup_rate", "must be in [0, 1)"),
            (self.weight_decay >= 0.0, "weight_decay", "must not be negative"),
            (self.max_grad_norm > 0.0, "max_grad_norm", "must be positive"),
            (self.grad_accum > 0, "grad_accum", "must be positive"),
            (self.eval_every > 0, "eval_every", "must be positive"),
            (self.max_len > 2, "max_len", "must be at least 3"),
            (self.save_every.is_none_or(|s| s > 0), "save_every", "must be positive"),
            (
                petune_core::is_device_name(&self.device),
                "device",
                "must be auto, cpu, cuda or cuda:N",
            ),
        ];
        for (ok, field, msg) in checks {
            if !ok {
                return Err(Error::config(field, msg));
            }
        }
        Ok(())
    }

    /// Optimizer steps of a run over `n_train` examples: `max_steps`, or with `epochs`
    /// `epochs · ceil(n_train / (batch_size · grad_accum))` (the last batch of an epoch
    /// may be partial).
    pub fn total_steps(&self, n_train: usize) -> i64 {
        match self.epochs {
            Some(e) => e * n_train.div_ceil(self.batch_size * self.grad_accum).max(1) as i64,
            None => self.max_steps,
        }
    }

    /// The libtorch device (an error when it names a GPU that is not there).
    pub fn device(&self) -> Result<tch::Device> {
        petune_core::parse_device(&self.device)
    }
}

/// Everything one training run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Hugging Face model folder.
    pub model: PathBuf,
    /// Task and data.
    pub task: TaskConfig,
    /// Method.
    pub method: MethodConfig,
    /// Head.
    #[serde(default)]
    pub head: HeadConfig,
    /// Hyper-parameters.
    #[serde(default)]
    pub train: TrainConfig,
    /// Output folder (`delta.safetensors`, `delta.json`, `metrics.json`, `log.jsonl`,
    /// checkpoints); nothing is written when absent.
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_count_partial_last_batches() {
        let mut t = TrainConfig { batch_size: 16, max_steps: 7, ..Default::default() };
        assert_eq!(t.total_steps(100), 7);
        t.epochs = Some(10);
        assert_eq!(t.total_steps(100), 70); // 6 full batches + 1 partial per epoch
        t.grad_accum = 2;
        assert_eq!(t.total_steps(100), 40);
        t.epochs = Some(0);
        assert!(t.validate().is_err());
    }
}
