//! Data loaders: every file format the paper's tasks come in, plus custom CSV/JSONL and the
//! real MR asset. Each returns a [`Dataset`] or an [`petune_core::Error`] naming the file and
//! line at fault (lpt-reference §6 "Formats"; the authors' `process.py` processors).
//!
//! | format | function |
//! |---|---|
//! | GLUE TSV (SST-2, MNLI, MRPC, QNLI, QQP, RTE) | [`load_glue_tsv`] |
//! | authors' `label\ttext` TSV (MR, MPQA, Subj, TREC) | [`load_lmbff_tsv`] |
//! | LM-BFF `label,"text"` CSV (same tasks) | [`load_lmbff_csv`] |
//! | either, chosen by task and extension | [`load_task_file`], [`load_split`] |
//! | the user's CSV with header / JSON Lines / Parquet | [`load_file`] ([`load_csv`], [`load_jsonl`]); unlabelled: [`load_texts`] |
//! | vaderSentiment's MR snippets | [`load_mr_snippets`], then [`mr_split`] |
//! | vaderSentiment's rated tweets, Amazon and NYT snippets (binarized) | [`load_vader_snippets`], then [`vader_split`] |

mod generic;
mod glue;
mod lmbff;
mod mr;
#[cfg(feature = "parquet")]
mod parquet;
pub(crate) mod text;
mod vader;

use std::path::Path;

use petune_core::Result;

use super::example::Dataset;
use super::task::{FileLayout, Split, TaskName};

pub use generic::{
    dataset, infer_label_names, load_csv, load_file, load_jsonl, load_texts, read_rows, FileFormat,
    Labels, RawLabel, TextRow,
};
pub use glue::load_glue_tsv;
pub use lmbff::{load_lmbff_csv, load_lmbff_tsv};
pub use mr::{
    load_mr_snippets, mr_split, MR_NUM_EXAMPLES, MR_NUM_POSITIVE, MR_SPLIT_SEED, MR_TEST_SIZE,
};
pub use vader::{
    binarize, load_vader_snippets, vader_file_name, vader_split, VaderData, VADER_MARGIN,
    VADER_SCALE, VADER_TEST_SIZE,
};

/// Loads one labelled file of a built-in task: GLUE TSV for GLUE tasks; for MR/MPQA/Subj/TREC
/// LM-BFF's CSV when the name ends in `.csv`, the authors' TSV otherwise.
pub fn load_task_file(task: TaskName, path: &Path) -> Result<Dataset> {
    match task.layout() {
        FileLayout::GlueTsv => load_glue_tsv(task, path),
        FileLayout::LmBff if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) => {
            load_lmbff_csv(task, path)
        }
        FileLayout::LmBff => load_lmbff_tsv(task, path),
    }
}

/// Loads a split from a task directory laid out as the authors' `<data_dir>/<task>/`
/// ([`TaskName::file_names`]): one data set per file, so MNLI's dev and test give matched
/// then mismatched.
pub fn load_split(task: TaskName, task_dir: &Path, split: Split) -> Result<Vec<Dataset>> {
    task.file_names(split).iter().map(|f| load_task_file(task, &task_dir.join(f))).collect()
}
