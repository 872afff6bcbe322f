//! Run configuration (`petune train --config RUN.json`): model folder, task and data,
//! method, head and training hyper-parameters, with the LPT authors' defaults
//! (lpt-reference.md §5: AdamW lr 1e-3, warm-up 6 %, weight decay 0.1, clipping 1.0,
//! 1,000 steps, evaluation every 100 steps, seed 42).

use std::path::PathBuf;

use petune_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::data::fewshot::{authors_splits, sample_few_shot_with_dev};
use crate::data::load::{
    load_file, load_mr_snippets, load_split, load_vader_snippets, mr_split, vader_split,
    MR_SPLIT_SEED,
};
use crate::data::{
    stratified_split, Dataset, Metric, Split, TaskName, TaskSpec, TemplateStyle, AUTHORS_SEEDS,
    K_DEV,
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
    /// A human-rated snippets file of vaderSentiment (`tweets_GroundTruth.txt`, ...; the
    /// VADER tasks `tweets`, `amazon`, `nyt` only), binarized and split by `vader_split` into
    /// a pool and a 1,000-example test set (`data::load::vader`, docs/tasks.md).
    RatedSnippets {
        /// The task's `*_GroundTruth.txt`.
        path: PathBuf,
    },
    /// A task folder in its public layout (GLUE TSV or LM-BFF) with train/dev/test files.
    TaskDir {
        /// The folder (e.g. `glue/SST-2`).
        dir: PathBuf,
    },
    /// The user's files (CSV, JSONL, Parquet by extension) with `text`, optional
    /// `text_pair`, `label`. Without `dev`, a stratified 10 % of `train` is held out
    /// ([`held_out_dev_size`]).
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

/// Which task a run trains: one of the paper's, or the user's own.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// A built-in task (templates, label words, metric and file layout of the paper).
    BuiltIn(TaskName),
    /// A task described in the config, with its data in CSV / JSONL / Parquet files.
    Custom(CustomTask),
}

impl From<TaskName> for TaskKind {
    fn from(t: TaskName) -> Self {
        TaskKind::BuiltIn(t)
    }
}

/// The user's own task (`"task": {"custom": {...}, "data": {"kind": "files", ...}}`).
/// Every field may be left out: the classes are then the training file's sorted distinct
/// labels, pairs are detected from `text_pair`, the template is the paper's single-text
/// or pair default, the label words are the class names, the metric accuracy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomTask {
    /// A name for the task (reports, `delta.json`); `custom` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Class names; class index = position. Inferred from the training file when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// The template in the text form of [`crate::data::Template::parse`] (`{text}`,
    /// `{text_pair}`, `{mask}`); [`CustomTask::SINGLE_TEMPLATE`] or
    /// [`CustomTask::PAIR_TEMPLATE`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// One verbalizer word per class (MLM heads); the class names when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_words: Option<Vec<String>>,
    /// Evaluation and selection metric; accuracy when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    /// Whether examples are text pairs; detected from the training file when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<bool>,
    /// GPT-2 LM-scoring pattern with `%s` for the label word; the authors' `It was %s .`
    /// (pairs: `They are %s .`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm_pattern: Option<String>,
}

impl CustomTask {
    /// The default template for single texts: the paper's sentiment prompt (Table 8,
    /// `It was [MASK].`), neutral enough for topics.
    pub const SINGLE_TEMPLATE: &'static str = "{text} It was {mask}.";
    /// The default template for pairs: the authors' NLI / paraphrase prompt
    /// (`{S1} ? <mask> , {S2}`, lpt-reference.md §4.1).
    pub const PAIR_TEMPLATE: &'static str = "{text} ? {mask} , {text_pair}";

    /// The task's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("custom")
    }

    /// The full description for `train`: class names, pairs and the defaults resolved.
    pub fn spec(&self, train: &Dataset) -> Result<TaskSpec> {
        let labels = match &self.labels {
            Some(l) => l.clone(),
            None => train.label_names.clone(),
        };
        if let ([only], None) = (train.label_names.as_slice(), &self.labels) {
            return Err(one_class(self.name(), only, train.len()));
        }
        let has_pairs = train.examples.iter().any(|e| e.text_b.is_some());
        let pair = match self.pair {
            Some(false) if has_pairs => {
                return Err(Error::config(
                    "task.custom.pair",
                    "is false but the training data has `text_pair` values; drop the column or set `pair` to true",
                ))
            }
            Some(p) => p,
            None => has_pairs,
        };
        let default = if pair { Self::PAIR_TEMPLATE } else { Self::SINGLE_TEMPLATE };
        let template = self.template.as_deref().unwrap_or(default);
        let (words, from_names) = match &self.label_words {
            Some(w) => (w.clone(), false),
            None => (labels.clone(), true),
        };
        let mut spec = TaskSpec::new(self.name(), labels, template, words)?
            .with_metric(self.metric.unwrap_or(Metric::Accuracy))?;
        if spec.template.uses_text_pair() != pair {
            return Err(Error::config(
                "task.custom.template",
                if pair {
                    format!("`{template}` has no {{text_pair}} but the examples are pairs")
                } else {
                    format!("`{template}` uses {{text_pair}} but the examples are single texts")
                },
            ));
        }
        spec.label_words_from_names = from_names;
        let lm_default = if pair { "They are %s ." } else { "It was %s ." };
        spec.lm_pattern = Some(self.lm_pattern.clone().unwrap_or_else(|| lm_default.into()));
        Ok(spec)
    }
}

/// A task and its data. In JSON, a built-in task is `"name": "mr"`, the user's own
/// `"custom": {...}` ([`CustomTask`]; `{}` infers everything) with `"data": {"kind":
/// "files", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TaskConfigJson", into = "TaskConfigJson")]
pub struct TaskConfig {
    /// The task (templates, label words, metric).
    pub kind: TaskKind,
    /// Its data.
    pub data: DataSource,
    /// Few-shot sampling from the training data.
    pub fewshot: Option<FewShotConfig>,
    /// Template variant of a built-in task.
    pub template_style: TemplateStyle,
}

impl TaskConfig {
    /// A built-in task on `data`, full data, the authors' templates.
    pub fn builtin(name: TaskName, data: DataSource) -> TaskConfig {
        TaskConfig { kind: name.into(), data, fewshot: None, template_style: Default::default() }
    }

    /// The user's own task on `data`.
    pub fn custom(task: CustomTask, data: DataSource) -> TaskConfig {
        TaskConfig {
            kind: TaskKind::Custom(task),
            data,
            fewshot: None,
            template_style: Default::default(),
        }
    }

    /// The built-in task, if it is one.
    pub fn builtin_name(&self) -> Option<TaskName> {
        match &self.kind {
            TaskKind::BuiltIn(t) => Some(*t),
            TaskKind::Custom(_) => None,
        }
    }
}

/// The JSON form of [`TaskConfig`]: exactly one of `name` and `custom`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskConfigJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    custom: Option<CustomTask>,
    data: DataSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fewshot: Option<FewShotConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template_style: Option<TemplateStyle>,
}

impl TryFrom<TaskConfigJson> for TaskConfig {
    type Error = Error;
    fn try_from(j: TaskConfigJson) -> Result<Self> {
        let kind = match (j.name, j.custom) {
            (Some(name), None) => TaskKind::BuiltIn(name.parse().map_err(|_| {
                Error::config(
                    "task.name",
                    format!(
                        "unknown task `{name}` (built-in: {}); for your own data write \
                         `\"custom\": {{}}` instead of `name` (classes, template and metric are \
                         then inferred or defaulted, docs/own-data.md)",
                        TaskName::ALL.map(|t| t.authors_name()).join(", ")
                    ),
                )
            })?),
            (None, Some(c)) => {
                if j.template_style.is_some() {
                    return Err(Error::config(
                        "task.template_style",
                        "applies to the built-in tasks; a custom task gives its own `template`",
                    ));
                }
                if matches!(
                    j.data,
                    DataSource::MrSnippets { .. }
                        | DataSource::RatedSnippets { .. }
                        | DataSource::TaskDir { .. }
                ) {
                    return Err(Error::config(
                        "task.data",
                        "a custom task reads its own files: `{\"kind\": \"files\", \"train\": ...}`",
                    ));
                }
                TaskKind::Custom(c)
            }
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "task",
                    "give either `name` (a built-in task) or `custom` (your own), not both",
                ))
            }
            (None, None) => {
                return Err(Error::config(
                    "task",
                    "needs `name` (a built-in task such as `mr`) or `custom` (your own data, e.g. `\"custom\": {}`)",
                ))
            }
        };
        Ok(TaskConfig {
            kind,
            data: j.data,
            fewshot: j.fewshot,
            template_style: j.template_style.unwrap_or_default(),
        })
    }
}

impl From<TaskConfig> for TaskConfigJson {
    fn from(t: TaskConfig) -> Self {
        let (name, custom, style) = match t.kind {
            TaskKind::BuiltIn(n) => {
                // TaskName serializes as its snake_case name, which `FromStr` reads back.
                let name = serde_json::to_value(n)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| n.authors_name().to_string());
                (Some(name), None, Some(t.template_style))
            }
            TaskKind::Custom(c) => (None, Some(c), None),
        };
        TaskConfigJson { name, custom, data: t.data, fewshot: t.fewshot, template_style: style }
    }
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

/// Size of the dev set held out of a training set of `n_train` examples when the task
/// has none: 10 %, at most [`K_DEV`], at least one example (stratified by class).
pub fn held_out_dev_size(n_train: usize) -> usize {
    K_DEV.min(n_train / 10).max(1)
}

/// The error for training data of a single class.
pub fn one_class(task: &str, class: &str, count: usize) -> Error {
    Error::input(format!(
        "the training data of `{task}` has examples of one class only (`{class}`, {count} \
         examples): a classifier needs examples of at least two classes"
    ))
}

/// Classes with fewer training examples than this fraction of the largest class make a
/// strongly imbalanced training set (a warning).
pub const IMBALANCE_RATIO: f64 = 0.1;

impl TaskData {
    /// Checks the training set: fewer than two classes with examples is an error; the
    /// returned warnings name classes without examples and strong imbalance (a class
    /// with fewer than [`IMBALANCE_RATIO`] times the largest class's examples).
    pub fn check_training_set(&self) -> Result<Vec<String>> {
        let counts = self.train.label_counts();
        let names = &self.train.label_names;
        let present: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] > 0).collect();
        if let [only] = present.as_slice() {
            return Err(one_class(&self.spec.name, &names[*only], counts[*only]));
        }
        let mut warnings = Vec::new();
        let missing: Vec<&str> =
            (0..counts.len()).filter(|&c| counts[c] == 0).map(|c| names[c].as_str()).collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "no training examples for class(es) {}: they can never be predicted well",
                missing.join(", ")
            ));
        }
        let largest = counts.iter().copied().max().unwrap_or(0);
        let rare: Vec<String> = (0..counts.len())
            .filter(|&c| counts[c] > 0 && (counts[c] as f64) < IMBALANCE_RATIO * largest as f64)
            .map(|c| format!("{} ({})", names[c], counts[c]))
            .collect();
        if !rare.is_empty() {
            warnings.push(format!(
                "strongly imbalanced training data: the largest class has {largest} examples, \
                 {} fewer than a tenth of that; consider `macro_f1` or `matthews` as the metric",
                rare.join(", ")
            ));
        }
        Ok(warnings)
    }
}

impl TaskConfig {
    /// Loads the data and applies the few-shot protocol.
    pub fn load(&self) -> Result<TaskData> {
        match &self.kind {
            TaskKind::BuiltIn(name) => self.load_builtin(*name),
            TaskKind::Custom(custom) => self.load_custom(custom),
        }
    }

    fn load_custom(&self, custom: &CustomTask) -> Result<TaskData> {
        let DataSource::Files { train, dev, test } = &self.data else {
            return Err(Error::config("task.data", "a custom task reads `files`"));
        };
        let pool = load_file(train, custom.name(), custom.labels.as_deref())?;
        let spec = custom.spec(&pool)?;
        let names = Some(spec.label_names.as_slice());
        let dev = dev.as_ref().map(|p| load_file(p, &spec.name, names)).transpose()?;
        let test = test.as_ref().map(|p| load_file(p, &spec.name, names)).transpose()?;
        let (train, dev) = match (&self.fewshot, dev) {
            (Some(fs), dev) => {
                let split = sample_few_shot_with_dev(&pool, fs.k, fs.k_dev, fs.seed)?;
                (split.train, dev.unwrap_or(split.dev))
            }
            (None, Some(dev)) => (pool, dev),
            (None, None) => stratified_split(&pool, held_out_dev_size(pool.len()), MR_SPLIT_SEED)?,
        };
        Ok(TaskData { spec, train, dev, test, test_mismatched: None })
    }

    fn load_builtin(&self, name: TaskName) -> Result<TaskData> {
        let spec = name.spec(self.template_style);
        let (pool, dev, dev_mm, test, test_mm) = match &self.data {
            DataSource::MrSnippets { .. } if name.is_vader() => {
                return Err(Error::config(
                    "task.data",
                    format!(
                        "`{name}` reads its own rated-snippets file: {{\"kind\": \"rated_snippets\", \"path\": \".assets/vader/{}\"}}",
                        crate::data::load::vader_file_name(name).unwrap_or("…")
                    ),
                ))
            }
            DataSource::MrSnippets { path } => {
                let all = load_mr_snippets(path)?;
                let (pool, test) = mr_split(&all, MR_SPLIT_SEED)?;
                (pool, None, None, Some(test), None)
            }
            DataSource::RatedSnippets { path } => {
                let all = load_vader_snippets(name, path)?.dataset;
                let (pool, test) = vader_split(&all, MR_SPLIT_SEED)?;
                (pool, None, None, Some(test), None)
            }
            DataSource::TaskDir { dir } => {
                let train = first(load_split(name, dir, Split::Train)?, "train")?;
                // MNLI gives [matched, mismatched]; other tasks one set.
                let mut dev = load_split(name, dir, Split::Dev).unwrap_or_default().into_iter();
                let mut test = load_split(name, dir, Split::Test).unwrap_or_default().into_iter();
                (train, dev.next(), dev.next(), test.next(), test.next())
            }
            DataSource::Files { train, dev, test } => {
                let names = Some(spec.label_names.as_slice());
                let load = |p: &PathBuf| load_file(p, &spec.name, names);
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
                let split = authors_splits(name, &pool, fs.k, fs.k_dev, &seeds)?
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
                let (train, dev) =
                    stratified_split(&pool, held_out_dev_size(pool.len()), MR_SPLIT_SEED)?;
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
    /// `f32`; `fp16`: CUDA autocast with dynamic loss scaling; `bf16`: autocast to
    /// bfloat16 on CUDA or CPU, no scaler (`precision`).
    pub precision: crate::precision::Precision,
    /// `adamw_fused` (default: `torch.optim.AdamW(fused=True)` with foreach clipping) or
    /// `hf_adamw` (the LPT authors' `transformers.AdamW` recurrence, for exact
    /// reproduction) — `optim`.
    pub optimizer: crate::optim::OptimizerKind,
    /// Let CUDA run float32 matmuls in TF32 (`torch.backends.cuda.matmul.allow_tf32`);
    /// off by default, as in PyTorch. No effect on CPU.
    pub tf32: bool,
    /// What a NaN or infinite training loss does: stop the run with a typed error
    /// (default), or skip that step's update and go on.
    pub on_non_finite: NonFinitePolicy,
    /// Keep a GGUF model's frozen projection weights in their quantized blocks,
    /// dequantized layer by layer (docs/gguf.md); refused for model tuning, whose
    /// weights train. Left out of the written config when off, so that older run
    /// folders keep their fingerprint.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quantized_base: bool,
    /// How the frozen backbone weights are stored: `f32` (default) or `bf16` (weight
    /// matrices in bfloat16, half the bytes; vectors, the delta, the head and the
    /// optimizer state stay float32: `petune_backbones::BaseDtype`). Refused for model
    /// tuning, whose weights train, and with `fp16` precision. Left out of the written
    /// config at its default.
    #[serde(skip_serializing_if = "is_default")]
    pub base_dtype: petune_backbones::BaseDtype,
    /// The rate after the warm-up: `linear` decay to 0 (the authors', default) or
    /// `constant`.
    #[serde(skip_serializing_if = "is_default")]
    pub schedule: crate::optim::Schedule,
    /// How a step's examples are drawn: `epochs` (shuffled passes, the authors' loader,
    /// default) or `per_step` (a fresh random batch each step).
    #[serde(skip_serializing_if = "is_default")]
    pub sampling: crate::data::sampler::Sampling,
    /// Peak learning rate of the task head (`head.*` tensors), on the same schedule;
    /// `None` = `lr` (one rate for head and delta, the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_lr: Option<f64>,
    /// Dropout of the linear head before its projection; `None` = 0.1 (the default).
    /// 0 turns it off, e.g. to compare data-parallel runs with one process number for
    /// number (docs/scaling-out.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dropout: Option<f64>,
    /// Compute the last layer at every token, in training and in the run's evaluation.
    /// Off by default: a head that reads one token per example gets the last layer at
    /// that token alone (`model::head_output`) — the same values up to the summation
    /// order of smaller matmuls, in training the same distribution with other dropout
    /// draws. On reproduces runs made before the read-out.
    /// Left out of the written config when off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub full_last_layer: bool,
}

/// Whether `v` is its type's default (fields left out of the serialized config, so that
/// configs written before they existed keep their fingerprint).
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// What a non-finite training loss does (`train.on_non_finite`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Stop with [`Error::NonFinite`]: nothing diverged is ever saved as a result.
    #[default]
    Error,
    /// Skip the step's update (its gradients are dropped; the schedule still advances)
    /// and count it in the report (`skipped_steps`).
    Skip,
}

/// Upper bounds on sizes and counts: beyond them a value is a typo, not a plan (and
/// products of them would overflow).
const MAX_COUNT: u64 = 1 << 30;
/// The most libtorch threads a config may ask for.
pub const MAX_THREADS: usize = 1024;

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
            optimizer: crate::optim::OptimizerKind::AdamwFused,
            tf32: false,
            on_non_finite: NonFinitePolicy::Error,
            quantized_base: false,
            base_dtype: Default::default(),
            schedule: Default::default(),
            sampling: Default::default(),
            head_lr: None,
            head_dropout: None,
            full_last_layer: false,
        }
    }
}

impl TrainConfig {
    /// Checks the values (ranges, and bounds that keep every product of them finite).
    pub fn validate(&self) -> Result<()> {
        let count = |v: u64| v <= MAX_COUNT;
        let at_most = format!("must be positive and at most {MAX_COUNT}");
        let checks = [
            (self.lr > 0.0 && self.lr.is_finite(), "lr", "must be positive and finite".into()),
            (
                self.head_lr.is_none_or(|h| h > 0.0 && h.is_finite()),
                "head_lr",
                "must be positive and finite".into(),
            ),
            (
                self.head_dropout.is_none_or(|p| (0.0..1.0).contains(&p)),
                "head_dropout",
                "must be in [0, 1)".into(),
            ),
            (self.batch_size > 0 && count(self.batch_size as u64), "batch_size", at_most.clone()),
            (
                self.eval_batch_size > 0 && count(self.eval_batch_size as u64),
                "eval_batch_size",
                at_most.clone(),
            ),
            (self.max_steps > 0 && count(self.max_steps as u64), "max_steps", at_most.clone()),
            (
                self.epochs.is_none_or(|e| e > 0 && e <= 1_000_000),
                "epochs",
                "must be in 1..=1000000".into(),
            ),
            ((0.0..1.0).contains(&self.warmup_rate), "warmup_rate", "must be in [0, 1)".into()),
            (
                self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
                "weight_decay",
                "must be finite and not negative".into(),
            ),
            (self.max_grad_norm > 0.0, "max_grad_norm", "must be positive".into()),
            (self.grad_accum > 0 && count(self.grad_accum as u64), "grad_accum", at_most.clone()),
            (
                count((self.batch_size as u64).saturating_mul(self.grad_accum as u64)),
                "grad_accum",
                format!("batch_size × grad_accum must be at most {MAX_COUNT}"),
            ),
            (self.eval_every > 0, "eval_every", "must be positive".into()),
            (
                self.max_len > 2 && count(self.max_len as u64),
                "max_len",
                format!("must be in 3..={MAX_COUNT}"),
            ),
            (self.save_every.is_none_or(|s| s > 0), "save_every", "must be positive".into()),
            (
                self.threads <= MAX_THREADS,
                "threads",
                format!("must be at most {MAX_THREADS} (0 = libtorch's default)"),
            ),
            (
                self.cache_budget_mib >= 0.0 && self.cache_budget_mib.is_finite(),
                "cache_budget_mib",
                "must be finite and not negative".into(),
            ),
            (
                count(self.length_buckets as u64),
                "length_buckets",
                format!("must be at most {MAX_COUNT}"),
            ),
            (
                petune_core::is_device_name(&self.device),
                "device",
                "must be auto, cpu, cuda or cuda:N".into(),
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
            Some(e) => {
                let per_epoch =
                    n_train.div_ceil(self.batch_size.saturating_mul(self.grad_accum).max(1)).max(1);
                e.saturating_mul(per_epoch as i64)
            }
            None => self.max_steps,
        }
    }

    /// The libtorch device (an error when it names a GPU that is not there).
    pub fn device(&self) -> Result<tch::Device> {
        petune_core::parse_device(&self.device)
    }

    /// How to load the model: [`TrainConfig::device`], `quantized_base` and
    /// `base_dtype`.
    pub fn load_options(&self) -> Result<petune_backbones::LoadOptions> {
        Ok(petune_backbones::LoadOptions {
            device: self.device()?,
            quantized_base: self.quantized_base,
            base_dtype: self.base_dtype,
        })
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
    use crate::data::Example;

    fn task(json: &str) -> Result<TaskConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn task_configs_are_built_in_or_custom() {
        let files = r#""data": {"kind": "files", "train": "t.csv"}"#;
        let b = task(&format!(r#"{{"name": "SST-2", {files}}}"#)).unwrap();
        assert_eq!(b.builtin_name(), Some(TaskName::Sst2));
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["name"], "sst2");
        assert_eq!(json["template_style"], "authors_code");
        assert_eq!(serde_json::from_value::<TaskConfig>(json).unwrap(), b);
        let c = task(&format!(r#"{{"custom": {{}}, {files}}}"#)).unwrap();
        assert_eq!(c.kind, TaskKind::Custom(CustomTask::default()));
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("name").is_none() && json.get("template_style").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<TaskConfig>(json).unwrap(), c);
        for (bad, says) in [
            (format!(r#"{{"name": "sst3", {files}}}"#), "\"custom\": {}"),
            (format!(r#"{{"name": "mr", "custom": {{}}, {files}}}"#), "not both"),
            (format!(r#"{{{files}}}"#), "needs `name`"),
            (format!(r#"{{"custom": {{}}, "template_style": "paper", {files}}}"#), "built-in"),
            (r#"{"custom": {}, "data": {"kind": "task_dir", "dir": "x"}}"#.into(), "files"),
            (format!(r#"{{"custom": {{"labelz": []}}, {files}}}"#), "labelz"),
        ] {
            let e = task(&bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    fn pool(pairs: bool) -> Dataset {
        let ex = |t: &str, l| Example {
            text_a: t.into(),
            text_b: pairs.then(|| "b".to_string()),
            label: l,
        };
        Dataset {
            task: "t".into(),
            label_names: vec!["neg".into(), "pos".into()],
            examples: vec![ex("a", 0), ex("b", 1)],
        }
    }

    #[test]
    fn training_sets_of_one_class_fail_and_imbalanced_ones_warn() {
        let spec = CustomTask::default().spec(&pool(false)).unwrap();
        let set = |counts: &[usize]| {
            let names: Vec<String> = (0..counts.len()).map(|c| format!("c{c}")).collect();
            let examples = counts
                .iter()
                .enumerate()
                .flat_map(|(c, &n)| (0..n).map(move |_| Example::single("x", c)))
                .collect();
            let train = Dataset { task: "t".into(), label_names: names, examples };
            TaskData {
                spec: spec.clone(),
                dev: train.clone(),
                train,
                test: None,
                test_mismatched: None,
            }
        };
        assert!(set(&[5, 5, 5]).check_training_set().unwrap().is_empty());
        let e = set(&[0, 7, 0]).check_training_set().unwrap_err().to_string();
        assert!(e.contains("one class only") && e.contains("`c1`, 7"), "{e}");
        let w = set(&[50, 4, 0]).check_training_set().unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("c2") && w[1].contains("imbalanced") && w[1].contains("c1 (4)"),
            "{w:?}"
        );
    }

    #[test]
    fn custom_specs_default_from_the_data() {
        let spec = CustomTask::default().spec(&pool(false)).unwrap();
        assert_eq!(spec.name, "custom");
        assert_eq!(spec.label_names, vec!["neg", "pos"]);
        assert_eq!(spec.label_words, spec.label_names);
        assert!(spec.label_words_from_names);
        assert_eq!(spec.template.to_string(), CustomTask::SINGLE_TEMPLATE);
        assert_eq!(spec.metric, Metric::Accuracy);
        assert_eq!(spec.lm_pattern.as_deref(), Some("It was %s ."));
        let spec = CustomTask::default().spec(&pool(true)).unwrap();
        assert_eq!(spec.template.to_string(), CustomTask::PAIR_TEMPLATE);
        assert_eq!(spec.lm_pattern.as_deref(), Some("They are %s ."));
        let given = CustomTask {
            label_words: Some(vec!["bad".into(), "good".into()]),
            metric: Some(Metric::Matthews),
            ..Default::default()
        };
        let spec = given.spec(&pool(false)).unwrap();
        assert!(!spec.label_words_from_names);
        assert_eq!(spec.metric, Metric::Matthews);
        let pair_off = CustomTask { pair: Some(false), ..Default::default() };
        assert!(pair_off.spec(&pool(true)).unwrap_err().to_string().contains("text_pair"));
        let single_tpl =
            CustomTask { template: Some("{text} {mask}".into()), ..Default::default() };
        assert!(single_tpl.spec(&pool(true)).unwrap_err().to_string().contains("pairs"));
        let mut one = pool(false);
        one.label_names.truncate(1);
        one.examples.truncate(1);
        let e = CustomTask::default().spec(&one).unwrap_err().to_string();
        assert!(e.contains("one class only"), "{e}");
    }

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
