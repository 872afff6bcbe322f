//! Loaders for the user's own data: CSV with a header, JSON Lines and (cargo feature
//! `parquet`) Parquet, the file Hugging Face `datasets` writes with `to_parquet`.
//!
//! Every format carries a `text`, an optional `text_pair` and (for training and
//! evaluation) a `label` per example; other columns or keys are ignored. A duplicated
//! column or key is an error (which one would be meant?), as are an empty text or label.
//!
//! Labels resolve to class indices by one rule for every format:
//!
//! - without class names, the classes are the file's **sorted distinct labels**
//!   (numerically when every label is a non-negative integer, `2 < 10`, else as strings);
//! - with class names given, a label equal to a name is that class; a non-negative
//!   integer is otherwise the class index itself (`1` → the second name), unless some
//!   name is itself an integer (then integers must match a name, never an index).
//!
//! In JSON a mix of integer and string labels is an error when no names are given; in
//! CSV every cell is text, so a mix just means that all are names.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use petune_core::{Error, Result};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::text::{numbered_lines, parse_csv, read_text};
use crate::data::example::{Dataset, Example};

/// A label as read, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawLabel {
    /// A string that is not a non-negative integer (CSV), or any JSON string.
    Name(String),
    /// A non-negative integer: a JSON number, or a CSV cell of digits.
    Index {
        /// Its value.
        value: u64,
        /// Its text, as a class name.
        text: String,
    },
}

impl RawLabel {
    /// The label as a class name.
    pub fn text(&self) -> &str {
        match self {
            RawLabel::Name(s) | RawLabel::Index { text: s, .. } => s,
        }
    }
}

/// Whether a reader needs a label in every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// Training and evaluation data: every row has a label.
    Required,
    /// Texts to predict: a label column is read when present, not required.
    Optional,
}

/// One row of a data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRow {
    /// Where it is: the line (CSV, JSONL) or row (Parquet) number, 1-based.
    pub line: usize,
    /// The text.
    pub text: String,
    /// The second text of a pair.
    pub text_pair: Option<String>,
    /// The label, when the file has one.
    pub label: Option<RawLabel>,
}

/// The data file formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `.csv`: comma-separated with a header row.
    Csv,
    /// `.jsonl`, `.json`, `.ndjson`: one JSON object per line.
    Jsonl,
    /// `.parquet` (needs the `parquet` feature).
    Parquet,
}

impl FileFormat {
    /// The format of `path` by its extension (case-insensitive).
    pub fn of(path: &Path) -> Result<FileFormat> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Ok(FileFormat::Csv),
            "jsonl" | "json" | "ndjson" => Ok(FileFormat::Jsonl),
            "parquet" => Ok(FileFormat::Parquet),
            _ => Err(Error::input(format!(
                "{}: unknown data file type `.{ext}`: use .csv (header `text`, `label`, optional \
                 `text_pair`), .jsonl (one {{\"text\": ..., \"label\": ...}} per line) or .parquet",
                path.display()
            ))),
        }
    }
}

/// Reads the rows of a CSV, JSONL or Parquet file (by extension).
pub fn read_rows(path: &Path, labels: Labels) -> Result<Vec<TextRow>> {
    let rows = match FileFormat::of(path)? {
        FileFormat::Csv => csv_rows(path, labels)?,
        FileFormat::Jsonl => jsonl_rows(path, labels)?,
        FileFormat::Parquet => parquet_rows(path, labels)?,
    };
    non_empty(rows, path)
}

/// Loads a labelled CSV, JSONL or Parquet file (by extension); labels resolve as the
/// module docs say.
pub fn load_file(path: &Path, task: &str, label_names: Option<&[String]>) -> Result<Dataset> {
    dataset(read_rows(path, Labels::Required)?, label_names, task, path)
}

/// The texts of a data file, labelled or not (what `predict` reads).
pub fn load_texts(path: &Path) -> Result<Vec<(String, Option<String>)>> {
    Ok(read_rows(path, Labels::Optional)?.into_iter().map(|r| (r.text, r.text_pair)).collect())
}

/// Loads a CSV file whose header names the columns `text`, `label` and optionally
/// `text_pair` (any order; other columns are ignored). An empty `text_pair` cell is `None`.
/// Labels resolve as the module docs say; `task` names the data set.
///
/// Errors ([`Error::Input`] with file and line): empty file, header without `text`/`label`,
/// a column named twice, a record whose field count differs from the header's, an empty
/// text or label, an unknown or out-of-range label, an unclosed quote, invalid UTF-8.
pub fn load_csv(path: &Path, task: &str, label_names: Option<&[String]>) -> Result<Dataset> {
    dataset(non_empty(csv_rows(path, Labels::Required)?, path)?, label_names, task, path)
}

/// Loads JSON Lines: one object per line with `text` (string), optional `text_pair` (string
/// or null) and `label` (string or non-negative integer); other keys are ignored, blank lines
/// skipped. Labels resolve as the module docs say (a JSON string is always a name).
///
/// Errors ([`Error::Input`] with file and line): empty file, invalid JSON, a key given
/// twice, a missing, empty or mistyped field, an unknown or out-of-range label.
pub fn load_jsonl(path: &Path, task: &str, label_names: Option<&[String]>) -> Result<Dataset> {
    dataset(non_empty(jsonl_rows(path, Labels::Required)?, path)?, label_names, task, path)
}

fn non_empty(rows: Vec<TextRow>, path: &Path) -> Result<Vec<TextRow>> {
    if rows.is_empty() {
        return Err(Error::input(format!("{}: empty file (no examples)", path.display())));
    }
    Ok(rows)
}

/// The class names of unlabelled-name data: its sorted distinct labels (numerically when
/// all are integers).
pub fn infer_label_names(rows: &[TextRow]) -> Vec<String> {
    let labels: Vec<&RawLabel> = rows.iter().filter_map(|r| r.label.as_ref()).collect();
    if labels.iter().all(|l| matches!(l, RawLabel::Index { .. })) {
        let values: BTreeSet<u64> = labels
            .iter()
            .filter_map(|l| match l {
                RawLabel::Index { value, .. } => Some(*value),
                RawLabel::Name(_) => None,
            })
            .collect();
        values.into_iter().map(|v| v.to_string()).collect()
    } else {
        let names: BTreeSet<&str> = labels.iter().map(|l| l.text()).collect();
        names.into_iter().map(str::to_string).collect()
    }
}

/// Resolves labelled `rows` into a data set whose classes are `label_names`, or the
/// sorted distinct labels when none are given.
pub fn dataset(
    rows: Vec<TextRow>,
    label_names: Option<&[String]>,
    task: &str,
    path: &Path,
) -> Result<Dataset> {
    // A JSON number and a JSON string are different things; guessing how `1` and `"pos"`
    // relate would silently misnumber classes, so a mix needs explicit names. (In CSV every
    // cell is text: a mix of digits and words just means that all are names.)
    if label_names.is_none() && FileFormat::of(path).ok() != Some(FileFormat::Csv) {
        let is_index = |r: &TextRow| matches!(r.label, Some(RawLabel::Index { .. }));
        if let Some(first) = rows.first() {
            if let Some(odd) = rows.iter().find(|r| is_index(r) != is_index(first)) {
                return Err(Error::input(format!(
                    "{}: labels mix integers and strings (row {} differs); give the class \
                     names (`labels` in the task) or use one kind",
                    location(path, odd.line),
                    first.line
                )));
            }
        }
    }
    let names: Vec<String> = match label_names {
        Some(n) => n.to_vec(),
        None => infer_label_names(&rows),
    };
    let index_fallback = !names.iter().any(|n| parse_index(n).is_some());
    let mut examples = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(raw) = &row.label else {
            return Err(Error::input(format!("{}: missing `label`", location(path, row.line))));
        };
        let label = match names.iter().position(|n| n == raw.text()) {
            Some(i) => i,
            None => match raw {
                RawLabel::Index { value, .. } if index_fallback && *value < names.len() as u64 => {
                    *value as usize
                }
                RawLabel::Index { value, .. } if index_fallback => {
                    return Err(Error::input(format!(
                        "{}: label {value} is out of range for {} classes ({})",
                        location(path, row.line),
                        names.len(),
                        names.join(", ")
                    )))
                }
                _ => {
                    return Err(Error::input(format!(
                        "{}: unknown label `{}` (the classes are {})",
                        location(path, row.line),
                        raw.text(),
                        names.join(", ")
                    )))
                }
            },
        };
        examples.push(Example { text_a: row.text, text_b: row.text_pair, label });
    }
    Ok(Dataset { task: task.to_string(), label_names: names, examples })
}

/// Where row `line` of `path` is, in messages: `file:line`, or `file: row N` (Parquet).
fn location(path: &Path, line: usize) -> String {
    match FileFormat::of(path) {
        Ok(FileFormat::Parquet) => format!("{}: row {line}", path.display()),
        _ => format!("{}:{line}", path.display()),
    }
}

fn parse_index(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn csv_rows(path: &Path, labels: Labels) -> Result<Vec<TextRow>> {
    let shown = path.display();
    let text = read_text(path)?;
    let records = parse_csv(&text, path)?;
    let Some((header, body)) = records.split_first() else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = header.fields.iter().map(|h| h.trim()).collect();
    for (i, name) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|n| n == name && !n.is_empty()) {
            return Err(Error::input(format!(
                "{shown}:{}: column `{name}` appears twice in the header (columns {} and {}); \
                 rename or drop one",
                header.line,
                j + 1,
                i + 1
            )));
        }
    }
    let find = |name: &str| names.iter().position(|h| *h == name);
    let (ti, li) = (find("text"), find("label"));
    let (Some(ti), true) = (ti, li.is_some() || labels == Labels::Optional) else {
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
        let label = match li.map(|i| rec.fields[i].trim()) {
            None => None,
            Some("") if labels == Labels::Optional => None,
            Some("") => return Err(Error::input(format!("{shown}:{}: empty `label`", rec.line))),
            Some(raw) => Some(match parse_index(raw) {
                Some(value) => RawLabel::Index { value, text: raw.to_string() },
                None => RawLabel::Name(raw.to_string()),
            }),
        };
        let text = rec.fields[ti].clone();
        if text.trim().is_empty() {
            return Err(Error::input(format!("{shown}:{}: empty `text`", rec.line)));
        }
        let text_pair = pi.map(|i| rec.fields[i].clone()).filter(|s| !s.is_empty());
        rows.push(TextRow { line: rec.line, text, text_pair, label });
    }
    Ok(rows)
}

/// A JSON object read with its keys in order, remembering the first key given twice
/// (`serde_json::Value` keeps the last silently).
struct Object {
    entries: Vec<(String, Value)>,
    duplicate: Option<String>,
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Object, A::Error> {
                let mut obj = Object { entries: Vec::new(), duplicate: None };
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if obj.duplicate.is_none() && obj.entries.iter().any(|(e, _)| *e == k) {
                        obj.duplicate = Some(k.clone());
                    }
                    obj.entries.push((k, v));
                }
                Ok(obj)
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

impl Object {
    fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

fn jsonl_rows(path: &Path, labels: Labels) -> Result<Vec<TextRow>> {
    let shown = path.display();
    let text = read_text(path)?;
    let mut rows = Vec::new();
    for (line_no, line) in numbered_lines(&text) {
        if line.trim().is_empty() {
            continue;
        }
        let at = |msg: String| Error::input(format!("{shown}:{line_no}: {msg}"));
        let obj: Object = serde_json::from_str(line).map_err(|e| {
            at(if e.is_data() {
                "expected a JSON object".to_string()
            } else {
                format!("invalid JSON: {e}")
            })
        })?;
        if let Some(k) = &obj.duplicate {
            return Err(at(format!("key `{k}` appears twice in this object")));
        }
        let text = match obj.get("text") {
            Some(Value::String(s)) if s.trim().is_empty() => return Err(at("empty `text`".into())),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(at(format!("`text` must be a string, found {other}"))),
            None => return Err(at("missing `text`".to_string())),
        };
        let text_pair = match obj.get("text_pair") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(at(format!("`text_pair` must be a string or null, found {other}")))
            }
        };
        let label = match (obj.get("label"), labels) {
            (None | Some(Value::Null), Labels::Optional) => None,
            (None, Labels::Required) => return Err(at("missing `label`".to_string())),
            (Some(Value::String(s)), _) if s.trim().is_empty() => {
                return Err(at("empty `label`".into()))
            }
            (Some(Value::String(s)), _) => Some(RawLabel::Name(s.clone())),
            (Some(Value::Number(n)), _) => match n.as_u64() {
                Some(value) => Some(RawLabel::Index { value, text: value.to_string() }),
                None => {
                    return Err(at(format!("`label` must be a non-negative integer, found {n}")))
                }
            },
            (Some(other), _) => {
                return Err(at(format!("`label` must be a string or an integer, found {other}")))
            }
        };
        rows.push(TextRow { line: line_no, text, text_pair, label });
    }
    Ok(rows)
}

#[cfg(not(feature = "parquet"))]
fn parquet_rows(path: &Path, _labels: Labels) -> Result<Vec<TextRow>> {
    Err(Error::Unsupported {
        what: format!("Parquet file {}", path.display()),
        msg: "this petune was built without the `parquet` feature: rebuild with \
              `cargo build --release --features parquet`, or convert the file to JSON Lines \
              (pandas: `pd.read_parquet(p).to_json(out, orient=\"records\", lines=True)`)"
            .into(),
    })
}

#[cfg(feature = "parquet")]
fn parquet_rows(path: &Path, labels: Labels) -> Result<Vec<TextRow>> {
    super::parquet::rows(path, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: usize, label: RawLabel) -> TextRow {
        TextRow { line, text: "t".into(), text_pair: None, label: Some(label) }
    }

    fn idx(v: u64) -> RawLabel {
        RawLabel::Index { value: v, text: v.to_string() }
    }

    #[test]
    fn inferred_names_are_sorted_distinct() {
        let rows = vec![row(1, idx(10)), row(2, idx(2)), row(3, idx(10))];
        assert_eq!(infer_label_names(&rows), vec!["2", "10"]);
        let rows = vec![
            row(1, RawLabel::Name("sports".into())),
            row(2, idx(3)),
            row(3, RawLabel::Name("arts".into())),
        ];
        assert_eq!(infer_label_names(&rows), vec!["3", "arts", "sports"]);
    }

    #[test]
    fn integer_names_never_fall_back_to_indices() {
        let p = Path::new("x.csv");
        let names = vec!["2".to_string(), "10".to_string()];
        let d = dataset(vec![row(1, idx(10)), row(2, idx(2))], Some(&names), "t", p).unwrap();
        assert_eq!(d.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![1, 0]);
        // `1` would be the index of "10", but integer class names are matched as names.
        let e = dataset(vec![row(3, idx(1))], Some(&names), "t", p).unwrap_err();
        assert!(
            e.to_string().contains("x.csv:3") && e.to_string().contains("unknown label `1`"),
            "{e}"
        );
        // Word names: an integer is an index.
        let words = vec!["neg".to_string(), "pos".to_string()];
        let d = dataset(vec![row(1, idx(1))], Some(&words), "t", p).unwrap();
        assert_eq!(d.examples[0].label, 1);
    }
}
