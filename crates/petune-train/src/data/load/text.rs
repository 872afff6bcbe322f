//! Reading text files the way the authors' Python does: universal newlines, tab splitting
//! with quoting off (`csv.reader(f, delimiter="\t", quotechar=None)`, lpt-reference §6), and a
//! small RFC 4180 CSV reader for LM-BFF's and generic CSV files (quotes, `""` escapes,
//! delimiters and newlines inside quotes, as Python's `csv` and pandas read them).

use std::path::Path;

use petune_core::{Error, Result};

/// Reads a UTF-8 file; a leading byte-order mark is dropped (Excel writes one).
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let mut s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
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

/// One parsed CSV record and the line it starts on.
#[derive(Debug)]
pub(crate) struct CsvRecord {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Parses comma-separated text. Blank lines are skipped (pandas' `skip_blank_lines`); text
/// after a closing quote is kept, as Python's non-strict reader does; a quote that is still
/// open at the end of the file is an error naming the line where it opened.
pub(crate) fn parse_csv(text: &str, path: &Path) -> Result<Vec<CsvRecord>> {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    // The current field has content or opened with a quote: a later quote is then literal,
    // and a line holding only `""` is a record with one empty field, not a blank line.
    let mut field_started = false;
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut quote_line = 0usize;
    let mut chars = text.chars().peekable();

    let mut end_record =
        |fields: &mut Vec<String>, field: &mut String, started: bool, at: usize| {
            let blank = fields.is_empty() && field.is_empty() && !started;
            fields.push(std::mem::take(field));
            let fs = std::mem::take(fields);
            if !blank {
                records.push(CsvRecord { line: at, fields: fs });
            }
        };

    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\r' => {
                    // Inside quotes a CRLF is one line break of the text; keep it as `\n`.
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    field.push('\n');
                    line += 1;
                }
                '\n' => {
                    field.push('\n');
                    line += 1;
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !field_started => {
                in_quotes = true;
                field_started = true;
                quote_line = line;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                field_started = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end_record(&mut fields, &mut field, field_started, record_line);
                field_started = false;
                line += 1;
                record_line = line;
            }
            c => {
                field.push(c);
                field_started = true;
            }
        }
    }
    if in_quotes {
        return Err(Error::input(format!(
            "{}:{quote_line}: quoted field is never closed",
            path.display()
        )));
    }
    if !fields.is_empty() || !field.is_empty() || field_started {
        end_record(&mut fields, &mut field, field_started, record_line);
    }
    Ok(records)
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
        // A quote inside an unquoted field is literal; text after a closing quote is kept.
        let r = parse_csv("a\"b,\"c\"d\n\"\"", p).unwrap();
        assert_eq!(r[0].fields, vec!["a\"b", "cd"]);
        assert_eq!(r[1].fields, vec![""]);
        let e = parse_csv("0,ok\n1,\"never closed\n", p).unwrap_err();
        assert!(e.to_string().contains("t.csv:2"), "{e}");
    }
}
