//! GLUE TSV loader for SST-2, MNLI, MRPC, QNLI, QQP and RTE.
//!
//! Follows the authors' processors (`encoder-only/data/process.py`, lpt-reference §6
//! "Formats"): a header row, tab-separated columns with quoting off, texts and label at
//! task-specific columns (SST-2 `0`; label `1`; MRPC `3`,`4`; label `0`; MNLI `8`,`9`; label
//! last; QNLI/RTE `1`,`2`; label last; QQP `3`,`4`; label `5`).
//!
//! Only labelled files load. GLUE's own `test*.tsv` files carry no label column and are
//! rejected with an error that says so: the paper evaluates on the GLUE dev sets (the authors'
//! few-shot script copies them to `test*.tsv`, keeping their labelled columns), so an
//! unlabelled mode would only serve leaderboard submissions, which are out of scope.
//! Where the authors skip QQP rows with missing columns (`except IndexError: continue`),
//! petune reports them: a silently shorter file would shift the few-shot shuffle. Texts are kept
//! verbatim, empty ones included, as the authors' code keeps them.

use std::path::Path;

use petune_core::{Error, Result};

use super::text::{numbered_lines, read_text};
use crate::data::example::{Dataset, Example};
use crate::data::task::{FileLayout, TaskName};

/// A column reference: an index or Python's `line[-1]`.
#[derive(Debug, Clone, Copy)]
enum Col {
    At(usize),
    Last,
}

impl Col {
    fn get<'a>(&self, fields: &[&'a str]) -> Option<&'a str> {
        match self {
            Col::At(i) => fields.get(*i).copied(),
            Col::Last => fields.last().copied(),
        }
    }

    /// Columns a row needs for this reference to name a real column of its own.
    fn min_columns(&self) -> usize {
        match self {
            Col::At(i) => i + 1,
            Col::Last => 1,
        }
    }
}

struct GlueColumns {
    a: Col,
    b: Option<Col>,
    label: Col,
}

fn columns(task: TaskName) -> Option<GlueColumns> {
    let (a, b, label) = match task {
        TaskName::Sst2 => (Col::At(0), None, Col::At(1)),
        TaskName::Mrpc => (Col::At(3), Some(Col::At(4)), Col::At(0)),
        TaskName::Mnli => (Col::At(8), Some(Col::At(9)), Col::Last),
        TaskName::Qnli | TaskName::Rte => (Col::At(1), Some(Col::At(2)), Col::Last),
        TaskName::Qqp => (Col::At(3), Some(Col::At(4)), Col::At(5)),
        _ => return None,
    };
    Some(GlueColumns { a, b, label })
}

/// Header names of GLUE's label columns; a header with none of them is a test file.
const LABEL_HEADERS: [&str; 4] = ["label", "gold_label", "Quality", "is_duplicate"];

/// Loads a labelled GLUE TSV file (`train.tsv`, `dev.tsv`, MNLI `dev_matched.tsv` /
/// `dev_mismatched.tsv`, or the authors' few-shot files) of `task`.
///
/// Errors: I/O ([`Error::Io`]); a non-GLUE task ([`Error::Config`]); an empty file, a header
/// without a label column (an unlabelled test file), a row with too few columns or an
/// unknown label ([`Error::Input`], naming file and line). Blank lines are skipped.
pub fn load_glue_tsv(task: TaskName, path: &Path) -> Result<Dataset> {
    let cols = columns(task).ok_or_else(|| {
        Error::config(
            "task",
            format!(
                "{task} is not a GLUE task (its layout is {:?}); use load_lmbff_tsv",
                task.layout()
            ),
        )
    })?;
    debug_assert_eq!(task.layout(), FileLayout::GlueTsv);
    let text = read_text(path)?;
    let lines = numbered_lines(&text);
    let shown = path.display();
    let Some(&(_, header)) = lines.first() else {
        return Err(Error::input(format!("{shown}: empty file")));
    };
    let header_fields: Vec<&str> = header.split('\t').collect();
    if !header_fields.iter().any(|h| LABEL_HEADERS.contains(&h.trim())) {
        return Err(Error::input(format!(
            "{shown}:1: header `{}` has no label column ({}); this looks like an unlabelled \
             GLUE test file, which petune does not load (evaluate on the GLUE dev set, as the paper does)",
            header.replace('\t', "\\t"),
            LABEL_HEADERS.join(", ")
        )));
    }
    // A `line[-1]` label must be a column of its own after the texts: an RTE row cut down to
    // three columns would otherwise read its second sentence as the label.
    let texts_end =
        [Some(cols.a), cols.b].into_iter().flatten().map(|c| c.min_columns()).max().unwrap_or(1);
    let needed = match cols.label {
        Col::Last => texts_end + 1,
        label => texts_end.max(label.min_columns()),
    };
    let names = task.label_names();
    let mut examples = Vec::new();
    for &(line_no, line) in &lines[1..] {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let (a, b, raw) = match (cols.a.get(&fields), cols.b.map(|c| c.get(&fields)), cols.label.get(&fields)) {
            (Some(a), None, Some(l)) if fields.len() >= needed => (a, None, l),
            (Some(a), Some(Some(b)), Some(l)) if fields.len() >= needed => (a, Some(b), l),
            _ => {
                return Err(Error::input(format!(
                    "{shown}:{line_no}: {task} rows need at least {needed} tab-separated columns, found {}",
                    fields.len()
                )))
            }
        };
        let label = task.label_index(raw).ok_or_else(|| {
            Error::input(format!(
                "{shown}:{line_no}: unknown {task} label `{raw}` (expected one of {})",
                names.join(", ")
            ))
        })?;
        examples.push(Example { text_a: a.to_string(), text_b: b.map(str::to_string), label });
    }
    if examples.is_empty() {
        return Err(Error::input(format!("{shown}: no examples after the header")));
    }
    Ok(Dataset {
        task: task.authors_name().to_string(),
        label_names: names.iter().map(|s| s.to_string()).collect(),
        examples,
    })
}
