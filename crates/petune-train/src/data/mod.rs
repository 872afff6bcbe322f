//! Tasks and data for petune's trainer: examples, the paper's ten tasks with their templates
//! and label words, loaders for every format they come in, the LPT authors' few-shot protocol
//! (with numpy's generator, so the splits are theirs), and the paper's metrics.
//!
//! Reference: docs/lpt-reference.md §4 (templates, label words) and §6 (formats, few-shot
//! protocol, metrics), which cite github.com/xyltt/LPT @ 634c7b2.

pub mod example;
pub mod fewshot;
pub mod load;
pub mod metrics;
pub mod numpy_rng;
pub mod sampler;
pub mod task;
pub mod template;

pub use example::{Dataset, Example};
pub use fewshot::{
    authors_split, authors_splits, sample_few_shot, sample_few_shot_with_dev, stratified_split,
    FewShotSplit, AUTHORS_SEEDS, K_DEV,
};
pub use metrics::{ClassScores, ClassificationReport, Metric, MetricReport};
pub use task::{FileLayout, LmVerbalizer, Split, TaskName, TaskSpec, TemplateStyle};
pub use template::{Slot, Template, TemplatePart, TextTransform};
