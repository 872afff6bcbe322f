//! Loaders for custom data: CSV with a header and JSON Lines.
//!
//! Both carry a `text`, an optional `text_pair` and a `label` per example, so any task
//! described by a [`crate::data::task::TaskSpec`] can be trained without writing a loader.
//! Labels resolve to class indices by one rule for both formats:
//!
//! - with `label_names` given: a label equal to a name is that class; otherwise a
//!   non-negative integer is the class index itself (`1` → `label_names[1]`);
//! - without: if every label is a non-negative integer, it is the class index and the
//!   classes are `"0"`, `"1"`, ... up to the largest seen; otherwise every label is a name,
//!   and classes are numbered in order of first appearance in the file. (In JSON a mix of
//!   integer and string labels is an error in this mode; in CSV every cell is text, so a
//!   mix just means all are names.)

use std::path::Path;

use petune_core::{Error, Result};
use serde_json::Value;

use super::text::{numbered_lines, parse_csv, read_text};
use crate::data::example::{Dataset, Example};

/// Above this many classes an integer label is taken for a mistake (an id column, say)
/// rather than allocating that many class names.
const MAX_CLASSES: u64 = 100_000;

/// A label as read, before resolution.
enum RawLabel {
    /// A string that is not a non-negative integer (CSV), or any JSON string.
    Name(String),
    /// A non-negative integer: a JSON number, or a CSV cell of digits.
    Index { value: u64, text: String },
}

struct Row {
    line: usize,
    text_a: String,
    text_b: Option<String>,
    label: RawLabel,
}

fn resolve(
    rows: Vec<Row>,
    label_names: Option<&[String]>,
    task: &str,
    path: &Path,
) -> Result<Dataset> {
    let shown = path.display();
    if rows.is_empty() {
        return Err(Error::input(format!("{shown}: empty file (no examples)")));
    }
    let mut names: Vec<String> = label_names.map(<[String]>::to_vec).unwrap_or_default();
    let all_indices = rows.iter().all(|r| matches!(r.label, RawLabel::Index { .. }));
    if label_names.is_none() && all_indices {
        let max = rows
            .iter()
            .filter_map(|r| match r.label {
                RawLabel::Index { value, .. } => Some(value),
                RawLabel::Name(_) => None,
            })
            .max()
            .unwrap_or(0);
        if max >= MAX_CLASSES {
            return Err(Error::input(format!(
                "{shown}: integer label {max} would mean more than {MAX_CLASSES} classes; \
                 pass label names or check the label column"
            )));
        }
        names = (0..=max).map(|i| i.to_string()).collect();
    }
    let collect = label_names.is_none() && !all_indices;
    let mut examples = Vec::with_capacity(rows.len());
    for row in rows {
        let label = match (&row.label, collect) {
            (RawLabel::Name(s), true) | (RawLabel::Index { text: s, .. }, true) => {
                match names.iter().position(|n| n == s) {
                    Some(i) => i,
                    None => {
                        names.push(s.clone());
                        names.len() - 1
                    }
                }
            }
            (RawLabel::Name(s), false) => names.iter().position(|n| n == s).ok_or_else(|| {
                Error::input(format!(
                    "{shown}:{}: unknown label `{s}` (expected one of {})",
                    row.line,
                    names.join(", ")
                ))
            })?,
            (RawLabel::Index { value, text }, false) => {
                match names.iter().position(|n| n == text) {
                    Some(i) => i,
                    None if *value < names.len() as u64 => *value as usize,
                    None => {
                        return Err(Error::input(format!(
                            "{shown}:{}: label {value} is out of range for {} classes ({})",
                            row.line,
                            names.len(),
                            names.join(", ")
                        )))
                    }
                }
            }
        };
        examples.push(Example { text_a: row.text_a, text_b: row.text_b, label });
    }
    Ok(Dataset { task: task.to_string(), label_names: names, examples })
}

fn parse_index(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Loads a CSV file whose header names the columns `text`, `label` and optionally
/// `text_pair` (any order; other columns are ignored). An empty `text_pair` cell is `None`.
/// Labels resolve as the module docs say; `task` names the data set.
///
/// Errors ([`Error::Input`] with file and line): empty file, header without `text`/`label`,
/// a record whose field count differs from the header's, an unknown or out-of-range label,
/// an unclosed quote.
pub fn load_csv(path: &Path, task: &str, label_names: Option<&[String]>) -> Result<Dataset> {
    let shown = path.display();
    let text = read_text(path)?;
    let records = parse_csv(&text, path)?;
    let Some((header, body)) = records.split_first() else {
        return Err(Error::input(format!("{shown}: empty file")));
    };
    let find = |name: &str| header.fields.iter().position(|h| h.trim() == name);
    let (Some(ti), Some(li)) = (find("text"), find("label")) else {
        return Err(Error::input(format!(
            "{shown}:{}: header must name `text` and `label` columns (optional `text_pair`), found `{}`",
            header.line,
            header.fields.join(",")
        )));
    };
    let pi = find("text_pair");
    let mut rows = Vec::with_capacity(body.len());
    for rec in body {
        if rec.fields.len() != header.fields.len() {
            return Err(Error::input(format!(
                "{shown}:{}: {} field(s) but the header has {}",
                rec.line,
                rec.fields.len(),
                header.fields.len()
            )));
        }
        let raw = rec.fields[li].trim();
        let label = match parse_index(raw) {
            Some(value) => RawLabel::Index { value, text: raw.to_string() },
            None => RawLabel::Name(raw.to_string()),
        };
        let text_b = pi.map(|i| rec.fields[i].clone()).filter(|s| !s.is_empty());
        rows.push(Row { line: rec.line, text_a: rec.fields[ti].clone(), text_b, label });
    }
    resolve(rows, label_names, task, path)
}

/// Loads JSON Lines: one object per line with `text` (string), optional `text_pair` (string
/// or null) and `label` (string or non-negative integer); other keys are ignored, blank lines
/// skipped. Labels resolve as the module docs say (a JSON string is always a name).
///
/// Errors ([`Error::Input`] with file and line): empty file, invalid JSON, a missing or
/// mistyped field, an unknown or out-of-range label.
pub fn load_jsonl(path: &Path, task: &str, label_names: Option<&[String]>) -> Result<Dataset> {
    let shown = path.display();
    let text = read_text(path)?;
    let mut rows = Vec::new();
    for (line_no, line) in numbered_lines(&text) {
        if line.trim().is_empty() {
            continue;
        }
        let at = |msg: String| Error::input(format!("{shown}:{line_no}: {msg}"));
        let v: Value = serde_json::from_str(line).map_err(|e| at(format!("invalid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| at("expected a JSON object".to_string()))?;
        let text_a = match obj.get("text") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(at(format!("`text` must be a string, found {other}"))),
            None => return Err(at("missing `text`".to_string())),
        };
        let text_b = match obj.get("text_pair") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(at(format!("`text_pair` must be a string or null, found {other}")))
            }
        };
        let label = match obj.get("label") {
            Some(Value::String(s)) => RawLabel::Name(s.clone()),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(value) => RawLabel::Index { value, text: value.to_string() },
                None => {
                    return Err(at(format!("`label` must be a non-negative integer, found {n}")))
                }
            },
            Some(other) => {
                return Err(at(format!("`label` must be a string or an integer, found {other}")))
            }
            None => return Err(at("missing `label`".to_string())),
        };
        rows.push(Row { line: line_no, text_a, text_b, label });
    }
    if label_names.is_none() {
        // A JSON number and a JSON string are different things; guessing how `1` and `"pos"`
        // relate would silently misnumber classes, so a mix needs explicit names.
        let is_index = |r: &Row| matches!(r.label, RawLabel::Index { .. });
        if let Some(first) = rows.first() {
            if let Some(odd) = rows.iter().find(|r| is_index(r) != is_index(first)) {
                return Err(Error::input(format!(
                    "{shown}:{}: labels mix integers and strings (line {} differs); pass label names",
                    odd.line, first.line
                )));
            }
        }
    }
    resolve(rows, label_names, task, path)
}
