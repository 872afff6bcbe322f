//! LM-BFF-layout loaders for MR, MPQA, Subj and TREC (lpt-reference §6 "Formats").
//!
//! Two encodings of the same data exist: the authors' code reads `label\ttext` TSV with no
//! header (`MrProcessor` & co. in `encoder-only/data/process.py`: label `line[0]`, text
//! `line[1]`, quoting off), while LM-BFF ships `label,"text"` CSV with no header (read there
//! by `pd.read_csv(..., header=None)` in `src/processors.py` of princeton-nlp/LM-BFF), for
//! its `original` data and its `k-shot` samples alike.

use std::path::Path;

use petune_core::{Error, Result};

use super::text::{numbered_lines, parse_csv, read_text};
use crate::data::example::{Dataset, Example};
use crate::data::task::{FileLayout, TaskName};

fn check_task(task: TaskName) -> Result<()> {
    if task.layout() == FileLayout::LmBff {
        Ok(())
    } else {
        Err(Error::config(
            "task",
            format!("{task} is a GLUE task, not an LM-BFF-layout one; use load_glue_tsv"),
        ))
    }
}

fn dataset(task: TaskName, examples: Vec<Example>, path: &Path) -> Result<Dataset> {
    if examples.is_empty() {
        return Err(Error::input(format!("{}: empty file", path.display())));
    }
    Ok(Dataset {
        task: task.authors_name().to_string(),
        label_names: task.label_names().iter().map(|s| s.to_string()).collect(),
        examples,
    })
}

fn label(task: TaskName, raw: &str, path: &Path, line: usize) -> Result<usize> {
    task.label_index(raw).ok_or_else(|| {
        Error::input(format!(
            "{}:{line}: unknown {task} label `{raw}` (expected one of {})",
            path.display(),
            task.label_names().join(", ")
        ))
    })
}

/// Loads the authors' `label\ttext` TSV (no header) of an LM-BFF-layout task.
///
/// Columns past the second are ignored, as `line[1]` ignores them. Errors ([`Error::Input`]
/// with file and line): empty file, a row without a tab, an unknown label; a GLUE task is
/// [`Error::Config`]. Blank lines are skipped.
pub fn load_lmbff_tsv(task: TaskName, path: &Path) -> Result<Dataset> {
    check_task(task)?;
    let text = read_text(path)?;
    let mut examples = Vec::new();
    for (line_no, line) in numbered_lines(&text) {
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(raw), Some(text)) = (fields.next(), fields.next()) else {
            return Err(Error::input(format!(
                "{}:{line_no}: expected `label<TAB>text`, found no tab",
                path.display()
            )));
        };
        examples.push(Example::single(text, label(task, raw, path, line_no)?));
    }
    dataset(task, examples, path)
}

/// Loads LM-BFF's `label,"text"` CSV (no header) of an LM-BFF-layout task.
///
/// Quoted fields may hold commas, `""` and newlines. Errors ([`Error::Input`] with file and
/// line): empty file, a record with fewer than two fields, an unknown label, an unclosed quote.
pub fn load_lmbff_csv(task: TaskName, path: &Path) -> Result<Dataset> {
    check_task(task)?;
    let text = read_text(path)?;
    let mut examples = Vec::new();
    for rec in parse_csv(&text, path)? {
        let [raw, text, ..] = rec.fields.as_slice() else {
            return Err(Error::input(format!(
                "{}:{}: expected `label,text`, found {} field(s)",
                path.display(),
                rec.line,
                rec.fields.len()
            )));
        };
        examples.push(Example::single(text.clone(), label(task, raw.trim(), path, rec.line)?));
    }
    dataset(task, examples, path)
}
