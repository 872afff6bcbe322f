//! GGUF metadata: the thirteen value types (arrays of any of them, arrays of arrays included),
//! parsed strictly, and a key → value map with typed getters whose errors name the file and key.
//!
//! Value type ids and encodings follow the GGUF spec
//! (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>, `gguf_metadata_value_type`) and
//! gguf-py's `GGUFValueType` / `GGUFReader._get_field_parts`: an array is its element type (u32),
//! its length (u64), then the elements without their own type tag; an element that is itself an
//! array carries its own element type and length.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use petune_core::{Error, Result};

use super::cursor::{Cursor, ReadError};

/// Arrays nested deeper than this are refused (a corrupt file could otherwise nest until the
/// stack overflows: each level costs only 12 bytes).
const MAX_ARRAY_DEPTH: usize = 8;

/// The type of a metadata value (`gguf_metadata_value_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `uint8` (0).
    U8,
    /// `int8` (1).
    I8,
    /// `uint16` (2).
    U16,
    /// `int16` (3).
    I16,
    /// `uint32` (4).
    U32,
    /// `int32` (5).
    I32,
    /// `float32` (6).
    F32,
    /// `bool` (7): one byte, 0 or 1.
    Bool,
    /// `string` (8): u64 length + UTF-8 bytes.
    String,
    /// `array` (9).
    Array,
    /// `uint64` (10).
    U64,
    /// `int64` (11).
    I64,
    /// `float64` (12).
    F64,
}

impl ValueType {
    /// Every type, in id order.
    pub const ALL: [ValueType; 13] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::F32,
        ValueType::Bool,
        ValueType::String,
        ValueType::Array,
        ValueType::U64,
        ValueType::I64,
        ValueType::F64,
    ];

    /// The type with GGUF id `id`, if there is one.
    pub fn from_id(id: u32) -> Option<ValueType> {
        ValueType::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The GGUF id.
    pub fn id(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// The name gguf-py gives the type, lower-cased (`uint32`, `array`...).
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "uint8",
            I8 => "int8",
            U16 => "uint16",
            I16 => "int16",
            U32 => "uint32",
            I32 => "int32",
            F32 => "float32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "uint64",
            I64 => "int64",
            F64 => "float64",
        }
    }

    /// The fewest bytes a value of this type takes (strings and arrays: their headers).
    fn min_bytes(self) -> usize {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `float32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// `string`.
    String(String),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float64`.
    F64(f64),
    /// `array`: every element has type `elem`.
    Array {
        /// The element type.
        elem: ValueType,
        /// The elements.
        values: Vec<MetadataValue>,
    },
}

impl MetadataValue {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        use MetadataValue as M;
        match self {
            M::U8(_) => ValueType::U8,
            M::I8(_) => ValueType::I8,
            M::U16(_) => ValueType::U16,
            M::I16(_) => ValueType::I16,
            M::U32(_) => ValueType::U32,
            M::I32(_) => ValueType::I32,
            M::F32(_) => ValueType::F32,
            M::Bool(_) => ValueType::Bool,
            M::String(_) => ValueType::String,
            M::U64(_) => ValueType::U64,
            M::I64(_) => ValueType::I64,
            M::F64(_) => ValueType::F64,
            M::Array { .. } => ValueType::Array,
        }
    }

    /// The type written out, arrays with their element types (`array<array<int32>>`).
    pub fn type_name(&self) -> String {
        match self {
            MetadataValue::Array { elem: ValueType::Array, values } => {
                // Nested arrays may differ in their inner types; the first one names them.
                let inner = values.first().map_or("array".to_string(), MetadataValue::type_name);
                format!("array<{inner}>")
            }
            MetadataValue::Array { elem, .. } => format!("array<{elem}>"),
            v => v.value_type().name().to_string(),
        }
    }

    /// The value as an integer, whatever its integer type.
    pub fn as_i128(&self) -> Option<i128> {
        use MetadataValue as M;
        Some(match *self {
            M::U8(v) => v.into(),
            M::I8(v) => v.into(),
            M::U16(v) => v.into(),
            M::I16(v) => v.into(),
            M::U32(v) => v.into(),
            M::I32(v) => v.into(),
            M::U64(v) => v.into(),
            M::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The value as a float (`float32` / `float64` only).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetadataValue::F32(v) => Some(v.into()),
            MetadataValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetadataValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, when the value is an array.
    pub fn as_array(&self) -> Option<&[MetadataValue]> {
        match self {
            MetadataValue::Array { values, .. } => Some(values),
            _ => None,
        }
    }

    /// The value as JSON (64-bit integers exactly, f32 widened to f64).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            MetadataValue::String(s) => J::String(s.clone()),
            MetadataValue::Bool(b) => J::Bool(*b),
            MetadataValue::Array { values, .. } => {
                J::Array(values.iter().map(MetadataValue::to_json).collect())
            }
            MetadataValue::U64(v) => J::from(*v),
            MetadataValue::I64(v) => J::from(*v),
            v => match (v.as_i128(), v.as_f64()) {
                (Some(i), _) => J::from(i as i64),
                (_, Some(f)) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
                _ => J::Null,
            },
        }
    }

    /// Reads one value of type `ty` (arrays recursively, at most [`MAX_ARRAY_DEPTH`] deep).
    pub(crate) fn read(
        c: &mut Cursor<'_>,
        ty: ValueType,
        what: &str,
        depth: usize,
    ) -> Result<MetadataValue, ReadError> {
        use MetadataValue as M;
        Ok(match ty {
            ValueType::U8 => M::U8(c.u8(what)?),
            ValueType::I8 => M::I8(c.u8(what)? as i8),
            ValueType::U16 => M::U16(c.u16(what)?),
            ValueType::I16 => M::I16(c.u16(what)? as i16),
            ValueType::U32 => M::U32(c.u32(what)?),
            ValueType::I32 => M::I32(c.u32(what)? as i32),
            ValueType::F32 => M::F32(f32::from_bits(c.u32(what)?)),
            ValueType::Bool => {
                let at = c.pos();
                match c.u8(what)? {
                    0 => M::Bool(false),
                    1 => M::Bool(true),
                    b => {
                        return Err(format!(
                            "{what} at byte {at} is a bool of value {b}, not 0 or 1"
                        ))
                    }
                }
            }
            ValueType::String => M::String(c.string(what)?),
            ValueType::U64 => M::U64(c.u64(what)?),
            ValueType::I64 => M::I64(c.u64(what)? as i64),
            ValueType::F64 => M::F64(f64::from_bits(c.u64(what)?)),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(format!(
                        "{what} at byte {} nests arrays more than {MAX_ARRAY_DEPTH} deep",
                        c.pos()
                    ));
                }
                let elem = read_type(c, &format!("the element type of {what}"))?;
                let n = c.count(elem.min_bytes(), &format!("the length of {what}"))?;
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    values.push(M::read(c, elem, &format!("{what}[{i}]"), depth + 1)?);
                }
                M::Array { elem, values }
            }
        })
    }
}

/// Reads a value type id.
pub(crate) fn read_type(c: &mut Cursor<'_>, what: &str) -> Result<ValueType, ReadError> {
    let at = c.pos();
    let id = c.u32(what)?;
    ValueType::from_id(id)
        .ok_or_else(|| format!("{what} at byte {at} is {id}, not a GGUF value type"))
}

/// The metadata of a GGUF file: keys in file order, with typed getters.
#[derive(Debug, Clone)]
pub struct Metadata {
    path: PathBuf,
    entries: Vec<(String, MetadataValue)>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// An empty map for the file `path` (named in errors).
    pub(crate) fn new(path: &Path) -> Self {
        Metadata { path: path.to_path_buf(), entries: Vec::new(), index: HashMap::new() }
    }

    /// Adds a key; a key seen before is an error (gguf-py refuses duplicates too).
    pub(crate) fn insert(&mut self, key: String, value: MetadataValue) -> Result<(), ReadError> {
        if self.index.contains_key(&key) {
            return Err(format!("metadata key `{key}` appears twice"));
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys and values in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetadataValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    fn error(&self, key: &str, msg: impl fmt::Display) -> Error {
        Error::Gguf { path: self.path.clone(), msg: format!("metadata `{key}`: {msg}") }
    }

    fn wrong_type(&self, key: &str, v: &MetadataValue, wanted: &str) -> Error {
        self.error(key, format!("expected {wanted}, found {}", v.type_name()))
    }

    /// A non-negative integer of any integer type, if present.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let i = v.as_i128().ok_or_else(|| self.wrong_type(key, v, "an integer"))?;
        u64::try_from(i).map(Some).map_err(|_| self.error(key, format!("{i} is negative")))
    }

    /// A non-negative integer that must be present.
    pub fn u64(&self, key: &str) -> Result<u64> {
        self.opt_u64(key)?.ok_or_else(|| self.error(key, "missing"))
    }

    /// A float (`float32` or `float64`), if present.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        v.as_f64().map(Some).ok_or_else(|| self.wrong_type(key, v, "a float"))
    }

    /// A float that must be present.
    pub fn f64(&self, key: &str) -> Result<f64> {
        self.opt_f64(key)?.ok_or_else(|| self.error(key, "missing"))
    }

    /// A string, if present.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        v.as_str().map(Some).ok_or_else(|| self.wrong_type(key, v, "a string"))
    }

    /// A string that must be present.
    pub fn str(&self, key: &str) -> Result<&str> {
        self.opt_str(key)?.ok_or_else(|| self.error(key, "missing"))
    }

    /// A bool, if present.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        v.as_bool().map(Some).ok_or_else(|| self.wrong_type(key, v, "a bool"))
    }

    /// An array of strings, if present.
    pub fn opt_str_array(&self, key: &str) -> Result<Option<Vec<&str>>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let items = v.as_array().ok_or_else(|| self.wrong_type(key, v, "an array of strings"))?;
        items
            .iter()
            .map(|item| item.as_str().ok_or_else(|| self.wrong_type(key, v, "an array of strings")))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// An array of integers (any integer type), if present.
    pub fn opt_int_array(&self, key: &str) -> Result<Option<Vec<i128>>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let items = v.as_array().ok_or_else(|| self.wrong_type(key, v, "an array of integers"))?;
        items
            .iter()
            .map(|item| {
                item.as_i128().ok_or_else(|| self.wrong_type(key, v, "an array of integers"))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8], ty: ValueType) -> Result<MetadataValue, ReadError> {
        MetadataValue::read(&mut Cursor::new(bytes), ty, "`k`", 0)
    }

    #[test]
    fn nested_arrays_and_empty_arrays_parse() {
        // array<array<u8>> = [[7, 8], []]
        let mut b = Vec::new();
        b.extend(9u32.to_le_bytes()); // element type: array
        b.extend(2u64.to_le_bytes());
        b.extend(0u32.to_le_bytes()); // [7, 8]: u8
        b.extend(2u64.to_le_bytes());
        b.extend([7u8, 8]);
        b.extend(0u32.to_le_bytes()); // []: u8
        b.extend(0u64.to_le_bytes());
        let v = parse(&b, ValueType::Array).unwrap();
        assert_eq!(v.type_name(), "array<array<uint8>>");
        assert_eq!(v.to_json(), serde_json::json!([[7, 8], []]));
    }

    #[test]
    fn deep_nesting_bad_bools_and_unknown_types_are_errors() {
        let mut b = Vec::new();
        for _ in 0..100 {
            b.extend(9u32.to_le_bytes());
            b.extend(1u64.to_le_bytes());
        }
        b.extend([0u8; 12]);
        let err = parse(&b, ValueType::Array).unwrap_err();
        assert!(err.contains("deep"), "{err}");
        assert!(parse(&[2], ValueType::Bool).unwrap_err().contains("not 0 or 1"));
        let mut b = 13u32.to_le_bytes().to_vec();
        b.extend(1u64.to_le_bytes());
        assert!(parse(&b, ValueType::Array).unwrap_err().contains("not a GGUF value type"));
    }

    #[test]
    fn getters_check_types_and_name_the_key() {
        let mut m = Metadata::new(Path::new("m.gguf"));
        m.insert("a.count".into(), MetadataValue::U32(7)).unwrap();
        m.insert("a.neg".into(), MetadataValue::I32(-1)).unwrap();
        m.insert("a.name".into(), MetadataValue::String("x".into())).unwrap();
        assert!(m.insert("a.count".into(), MetadataValue::U8(1)).is_err());
        assert_eq!(m.u64("a.count").unwrap(), 7);
        let err = m.u64("a.neg").unwrap_err().to_string();
        assert!(
            err.contains("m.gguf") && err.contains("a.neg") && err.contains("negative"),
            "{err}"
        );
        let err = m.f64("a.name").unwrap_err().to_string();
        assert!(err.contains("expected a float, found string"), "{err}");
        assert!(m.u64("a.missing").unwrap_err().to_string().contains("missing"));
        assert_eq!(m.opt_u64("a.missing").unwrap(), None);
    }
}
