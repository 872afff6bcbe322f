//! Reading text files the way the authors' Python does: UTF-8 (a byte-order mark dropped,
//! invalid bytes an error naming the line), universal newlines, tab splitting with quoting
//! off (`csv.reader(f, delimiter="\t", quotechar=None)`, lpt-reference §6), and CSV through
//! the `csv` crate (RFC 4180: quotes, `""` escapes, delimiters and newlines inside quotes,
//! as Python's `csv` and pandas read them) with petune's own line numbers.
//!
//! The `csv` crate reports a record's position as where its reader stood, which after a
//! blank line or a CRLF is the previous line end, and it ends a quoted field that is still
//! open at the end of the input silently. Both matter for error messages, so records are
//! located by their first byte here, and a sentinel record appended to the text tells
//! whether the last quote was closed.

use std::path::Path;

use petune_core::{Error, Result};

/// Reads a UTF-8 file; a leading byte-order mark is dropped (Excel writes one). Invalid
/// UTF-8 is an [`Error::Input`] naming the file, line and byte.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut s = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let good = &e.as_bytes()[..at];
        let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
        Error::input(format!(
            "{}:{line}: not UTF-8 text (invalid byte 0x{:02x} at byte {at}); save the file as UTF-8",
            path.display(),
            e.as_bytes()[at],
        ))
    })?;
    if s.starts_with('\u{feff}') {
        s.drain(..'\u{feff}'.len_utf8());
    }
    Ok(s)
}

/// Splits into `(1-based line number, line)`, treating `\r\n`, `\r` and `\n` as line ends
/// like Python's text mode; a final terminator does not start an extra line.
pub(crate) fn numbered_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut i, mut line) = (0usize, 0usize, 1usize);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push((line, &text[start..i]));
                i += 1;
            }
            b'\r' => {
                out.push((line, &text[start..i]));
                i += if bytes.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
            }
            _ => {
                i += 1;
                continue;
            }
        }
        start = i;
        line += 1;
    }
    if start < bytes.len() {
        out.push((line, &text[start..]));
    }
    out
}

/// Byte offsets where lines start (universal newlines), to turn offsets into lines.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
                b'\r' | b'\n' => i += 1,
                _ => {
                    i += 1;
                    continue;
                }
            }
            starts.push(i);
        }
        LineStarts(starts)
    }

    /// The 1-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset)
    }
}

/// One parsed CSV record and the line it starts on.
#[derive(Debug)]
pub(crate) struct CsvRecord {
    pub line: usize,
    pub fields: Vec<String>,
}

/// The record appended to every text before parsing: it comes back as a record of its
/// own exactly when every quote of the text was closed.
const SENTINEL_FIELD: &str = "petune-end-of-file";

/// Parses comma-separated text with the `csv` crate. Blank lines are skipped (pandas'
/// `skip_blank_lines`); text after a closing quote is kept, as Python's non-strict reader
/// does; a quote still open at the end of the file is an error naming the line of the
/// record it opened in.
pub(crate) fn parse_csv(text: &str, path: &Path) -> Result<Vec<CsvRecord>> {
    let full = format!("{text}\n\"{SENTINEL_FIELD}\"\n");
    let lines = LineStarts::new(text);
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(full.as_bytes());
    let mut records: Vec<CsvRecord> = Vec::new();
    let mut closed = false;
    for rec in reader.records() {
        let rec = rec.map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        // The reader's position may be the previous line end; the record starts at the
        // first byte that is not a line terminator.
        let mut start = rec.position().map_or(0, |p| p.byte() as usize);
        while matches!(full.as_bytes().get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start >= text.len() {
            closed = rec.len() == 1 && &rec[0] == SENTINEL_FIELD;
            break;
        }
        records.push(CsvRecord {
            line: lines.line_of(start),
            fields: rec.iter().map(str::to_string).collect(),
        });
    }
    if !closed {
        let line = records.last().map_or(1, |r| r.line);
        return Err(Error::input(format!(
            "{}:{line}: a quoted field that starts in this record is never closed",
            path.display()
        )));
    }
    Ok(records)
}

/// One line of Hutto & Gilbert's ground-truth files (ICWSM 2014, shipped with
/// vaderSentiment): `id<TAB>mean_rating<TAB>text`. MR's and the VADER tasks' loaders both
/// read this format; each checks ids and ratings its own way.
pub(crate) struct RatedLine<'a> {
    /// 1-based line number in the file.
    pub line_no: usize,
    /// The id field, trimmed.
    pub id: &'a str,
    /// The mean rating, parsed (not range-checked).
    pub rating: f64,
    /// The text field, as written.
    pub text: &'a str,
}

/// The non-empty lines of a ground-truth file `text` (read from `shown`), split into their
/// three fields with the rating parsed; a line with another field count or a rating that
/// is not a number is an error naming the file and line.
pub(crate) fn rated_lines<'a>(text: &'a str, shown: &str) -> Result<Vec<RatedLine<'a>>> {
    let mut out = Vec::new();
    for (line_no, line) in numbered_lines(text) {
        if line.is_empty() {
            continue;
        }
        let at = |msg: String| line_error(shown, line_no, msg);
        let fields: Vec<&str> = line.split('\t').collect();
        let [id, rating, text] = fields.as_slice() else {
            return Err(at(format!(
                "expected `id<TAB>mean_rating<TAB>text`, found {} field(s)",
                fields.len()
            )));
        };
        let rating: f64 = rating
            .trim()
            .parse()
            .map_err(|_| at(format!("mean rating `{rating}` is not a number")))?;
        out.push(RatedLine { line_no, id: id.trim(), rating, text });
    }
    Ok(out)
}

/// An input error at `shown:line_no`.
pub(crate) fn line_error(shown: &str, line_no: usize, msg: String) -> Error {
    Error::input(format!("{shown}:{line_no}: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn universal_newlines() {
        let l = numbered_lines("a\r\nb\rc\n\nd");
        assert_eq!(l, vec![(1, "a"), (2, "b"), (3, "c"), (4, ""), (5, "d")]);
        assert_eq!(numbered_lines("x\n"), vec![(1, "x")]);
        assert!(numbered_lines("").is_empty());
        let starts = LineStarts::new("a\r\nb\rc\n\nd");
        let got: Vec<usize> = [0, 3, 5, 7, 8].iter().map(|&o| starts.line_of(o)).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn csv_quotes_and_lines() {
        let p = Path::new("t.csv");
        let text = "0,\"a, \"\"quoted\"\" text\"\r\n\n1,plain\n2,\"multi\nline\"\n3,\n";
        let r = parse_csv(text, p).unwrap();
        let got: Vec<(usize, Vec<&str>)> =
            r.iter().map(|r| (r.line, r.fields.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            got,
            vec![
                (1, vec!["0", "a, \"quoted\" text"]),
                (3, vec!["1", "plain"]),
                (4, vec!["2", "multi\nline"]),
                (6, vec!["3", ""]),
            ]
        );
        // CRLF and blank lines do not shift the numbers.
        let r = parse_csv("a,b\r\n\r\nc,d\r\n", p).unwrap();
        assert_eq!(r.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 3]);
        // A quote inside an unquoted field is literal; text after a closing quote is kept.
        let r = parse_csv("a\"b,\"c\"d\n\"\"", p).unwrap();
        assert_eq!(r[0].fields, vec!["a\"b", "cd"]);
        assert_eq!(r[1].fields, vec![""]);
        let e = parse_csv("0,ok\n1,\"never closed\n2,x\n", p).unwrap_err();
        assert!(e.to_string().contains("t.csv:2") && e.to_string().contains("never closed"), "{e}");
        let e = parse_csv("0,\"open", p).unwrap_err();
        assert!(e.to_string().contains("t.csv:1"), "{e}");
        assert!(parse_csv("", p).unwrap().is_empty());
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = std::env::temp_dir().join(format!("petune-utf8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latin1.csv");
        std::fs::write(&path, b"text,label\ncaf\xe9,1\n").unwrap();
        let e = read_text(&path).unwrap_err().to_string();
        assert!(e.contains("latin1.csv:2") && e.contains("UTF-8"), "{e}");
        std::fs::write(&path, "\u{feff}text,label\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "text,label\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
