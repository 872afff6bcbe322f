//! Parquet data files (cargo feature `parquet`): what Hugging Face `datasets` writes with
//! `Dataset.to_parquet` and pandas with `DataFrame.to_parquet` (snappy-compressed by
//! default; uncompressed files read too). Columns `text`, optional `text_pair`, and
//! `label` as a string or an integer (`datasets`' `ClassLabel` is stored as int64), read
//! row by row with the `parquet` crate's record API; rows are numbered from 1 in errors.

use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use petune_core::{Error, Result};

use super::generic::{Labels, RawLabel, TextRow};

/// Reads every row of a Parquet file.
pub(crate) fn rows(path: &Path, labels: Labels) -> Result<Vec<TextRow>> {
    let shown = path.display();
    let bad = |msg: String| Error::input(format!("{shown}: {msg}"));
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
    let iter = reader.get_row_iter(None).map_err(|e| bad(format!("cannot read rows: {e}")))?;
    let mut out = Vec::new();
    for (i, row) in iter.enumerate() {
        let n = i + 1;
        let at = |msg: String| Error::input(format!("{shown}: row {n}: {msg}"));
        let row = row.map_err(|e| at(format!("unreadable: {e}")))?;
        let (mut text, mut text_pair, mut label) = (None, None, None);
        let mut seen: Vec<&str> = Vec::new();
        for (name, field) in row.get_column_iter() {
            if seen.contains(&name.as_str()) {
                return Err(at(format!("column `{name}` appears twice")));
            }
            seen.push(name);
            match name.as_str() {
                "text" => text = Some(field),
                "text_pair" => text_pair = Some(field),
                "label" => label = Some(field),
                _ => {}
            }
        }
        let text = match text {
            Some(Field::Str(s)) if s.trim().is_empty() => return Err(at("empty `text`".into())),
            Some(Field::Str(s)) => s.clone(),
            Some(other) => return Err(at(format!("`text` must be a string, found {other}"))),
            None => return Err(at("no `text` column".into())),
        };
        let text_pair = match text_pair {
            None | Some(Field::Null) => None,
            Some(Field::Str(s)) => Some(s.clone()),
            Some(other) => {
                return Err(at(format!("`text_pair` must be a string or null, found {other}")))
            }
        };
        let index = |v: i128| -> Result<RawLabel> {
            u64::try_from(v)
                .map(|value| RawLabel::Index { value, text: value.to_string() })
                .map_err(|_| at(format!("`label` must be a non-negative integer, found {v}")))
        };
        let label = match (label, labels) {
            (None | Some(Field::Null), Labels::Optional) => None,
            (None, Labels::Required) => return Err(at("no `label` column".into())),
            (Some(Field::Null), Labels::Required) => return Err(at("missing `label`".into())),
            (Some(Field::Str(s)), _) if s.trim().is_empty() => {
                return Err(at("empty `label`".into()))
            }
            (Some(Field::Str(s)), _) => Some(RawLabel::Name(s.clone())),
            (Some(Field::Byte(v)), _) => Some(index(i128::from(*v))?),
            (Some(Field::Short(v)), _) => Some(index(i128::from(*v))?),
            (Some(Field::Int(v)), _) => Some(index(i128::from(*v))?),
            (Some(Field::Long(v)), _) => Some(index(i128::from(*v))?),
            (Some(Field::UByte(v)), _) => Some(index(i128::from(*v))?),
            (Some(Field::UShort(v)), _) => Some(index(i128::from(*v))?),
            (Some(Field::UInt(v)), _) => Some(index(i128::from(*v))?),
            (Some(Field::ULong(v)), _) => Some(index(i128::from(*v))?),
            (Some(other), _) => {
                return Err(at(format!("`label` must be a string or an integer, found {other}")))
            }
        };
        out.push(TextRow { line: n, text, text_pair, label });
    }
    Ok(out)
}
