//! A GGUF file, parsed and validated: header, metadata, the tensor table, and the tensors' raw
//! bytes.
//!
//! Layout (GGUF v2/v3, little-endian; <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>):
//! magic `GGUF`, version u32, tensor count u64, metadata count u64, the metadata key/value pairs,
//! one info per tensor (name, n_dims u32, dims u64 × n_dims with the fastest-varying first,
//! type u32, offset u64 relative to the data section), padding to `general.alignment` (u32,
//! default 32), then the data section. Version 1 (32-bit counts) and big-endian files are refused.
//!
//! Everything is checked before use: counts and lengths against the bytes that remain, dims
//! against overflow, row lengths against the type's block size, offsets against the alignment,
//! every tensor's bytes inside the file and no two tensors overlapping. Each failure is an
//! [`Error::Gguf`] naming the file and what is wrong.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use petune_core::fsio::read_file;
use petune_core::{Error, Result};
use tch::Tensor;

use super::cursor::{Cursor, ReadError};
use super::dequant::QuantizedTensor;
use super::ggml_type::GgmlType;
use super::metadata::{read_type, Metadata, MetadataValue, ValueType};

/// `GGUF` read as a little-endian u32.
const MAGIC: [u8; 4] = *b"GGUF";
/// The alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// At most this many dimensions per tensor (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;
/// The fewest bytes of one tensor info: empty name (8), n_dims (4), one dim (8), type (4),
/// offset (8).
const MIN_TENSOR_INFO_BYTES: usize = 32;
/// The fewest bytes of one metadata pair: empty key (8), type (4), a one-byte value.
const MIN_KV_BYTES: usize = 13;

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions in GGML order: `dims[0]` is the fastest-varying (the row length).
    pub dims: Vec<u64>,
    /// Storage type.
    pub ggml_type: GgmlType,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
    /// Number of elements.
    pub n_elements: u64,
    /// Number of bytes of the data.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// The shape in PyTorch order (the GGML dims reversed): `[rows, row length]` for a matrix.
    pub fn shape(&self) -> Vec<i64> {
        self.dims.iter().rev().map(|&d| d as i64).collect()
    }
}

/// A parsed GGUF file holding its bytes.
pub struct GgufFile {
    path: PathBuf,
    bytes: Vec<u8>,
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Reads and parses the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        GgufFile::parse(path, bytes)
    }

    /// Parses `bytes`; `path` names the file in errors.
    pub fn parse(path: impl AsRef<Path>, bytes: Vec<u8>) -> Result<GgufFile> {
        let path = path.as_ref();
        parse_layout(path, &bytes).map_err(|msg| Error::Gguf { path: path.to_path_buf(), msg }).map(
            |layout| GgufFile {
                path: path.to_path_buf(),
                bytes,
                version: layout.version,
                alignment: layout.alignment,
                data_start: layout.data_start,
                by_name: layout
                    .tensors
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.name.clone(), i))
                    .collect(),
                metadata: layout.metadata,
                tensors: layout.tensors,
            },
        )
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data section's alignment.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section (tensor offsets are relative to it).
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The tensor table, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of tensor `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name).ok_or_else(|| Error::Gguf {
            path: self.path.clone(),
            msg: format!("no tensor named `{name}`"),
        })
    }

    /// The raw bytes of tensor `name` (quantized blocks as stored).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.info(name)?;
        // Checked at parse time: the range lies inside the file.
        let start = (self.data_start + info.offset) as usize;
        Ok(&self.bytes[start..start + info.n_bytes as usize])
    }

    /// Tensor `name` as its raw blocks in a CPU `uint8` tensor, with its type and shape.
    pub fn quantized(&self, name: &str) -> Result<QuantizedTensor> {
        let info = self.info(name)?;
        let blocks = Tensor::f_from_slice(self.tensor_bytes(name)?)?;
        QuantizedTensor::new(&info.name, info.ggml_type, info.shape(), blocks)
    }

    /// Tensor `name` dequantized to a float32 CPU tensor in PyTorch order; a type petune does
    /// not dequantize is an [`Error::Unsupported`] naming it and the tensor.
    pub fn dequantize(&self, name: &str) -> Result<Tensor> {
        self.quantized(name)?.dequantize().map_err(|e| naming_file(e, &self.path))
    }
}

/// Adds the file to an [`Error::Unsupported`] raised where only the tensor is known.
pub(crate) fn naming_file(e: Error, path: &Path) -> Error {
    match e {
        Error::Unsupported { what, msg } => {
            Error::Unsupported { what, msg: format!("{}: {msg}", path.display()) }
        }
        e => e,
    }
}

/// What parsing finds; the bytes stay with the caller.
struct Layout {
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
}

fn parse_layout(path: &Path, bytes: &[u8]) -> Result<Layout, ReadError> {
    if cfg!(target_endian = "big") {
        return Err("petune reads GGUF on little-endian machines only".into());
    }
    let mut c = Cursor::new(bytes);
    let magic = c.take(4, "the magic")?;
    if magic != MAGIC {
        return Err(format!("bad magic {magic:02x?}, expected `GGUF`"));
    }
    let version = c.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => return Err("GGUF version 1 (32-bit counts) is not supported; convert to v3".into()),
        v if v & 0xffff == 0 && v.swap_bytes() <= 3 => {
            return Err(format!("version {v:#x} is byte-swapped: big-endian GGUF is not supported"))
        }
        v => return Err(format!("unknown GGUF version {v}")),
    }
    let n_tensors = c.count(MIN_TENSOR_INFO_BYTES, "the tensor count")?;
    let n_kv = c.count(MIN_KV_BYTES, "the metadata count")?;

    let mut metadata = Metadata::new(path);
    for i in 0..n_kv {
        let key = c.string(&format!("metadata key #{i}"))?;
        if key.is_empty() {
            return Err(format!("metadata key #{i} is empty"));
        }
        let what = format!("the value of `{key}`");
        let ty = read_type(&mut c, &format!("the type of `{key}`"))?;
        let value = MetadataValue::read(&mut c, ty, &what, 0)?;
        metadata.insert(key, value)?;
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(MetadataValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(MetadataValue::U32(a)) => {
            return Err(format!("general.alignment is {a}, not a power of two"))
        }
        Some(v) => {
            return Err(format!(
                "general.alignment must be a {}, found {}",
                ValueType::U32,
                v.type_name()
            ))
        }
    };

    let mut tensors = Vec::with_capacity(n_tensors);
    let mut seen = HashMap::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let info = read_tensor_info(&mut c, i, alignment)?;
        if seen.insert(info.name.clone(), i).is_some() {
            return Err(format!("tensor `{}` appears twice in the tensor table", info.name));
        }
        tensors.push(info);
    }

    let end_of_infos = c.pos() as u64;
    let data_start = end_of_infos.div_ceil(alignment) * alignment;
    check_data_ranges(&tensors, data_start, bytes.len() as u64)?;
    Ok(Layout { version, alignment, data_start, metadata, tensors })
}

fn read_tensor_info(c: &mut Cursor<'_>, i: usize, alignment: u64) -> Result<TensorInfo, ReadError> {
    let name = c.string(&format!("the name of tensor #{i}"))?;
    if name.is_empty() {
        return Err(format!("tensor #{i} has an empty name"));
    }
    let n_dims = c.u32(&format!("the dimension count of `{name}`"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(format!("tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        dims.push(c.u64(&format!("dimension {d} of `{name}`"))?);
    }
    let at = c.pos();
    let type_id = c.u32(&format!("the type of `{name}`"))?;
    let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
        format!("tensor `{name}` at byte {at} has type id {type_id}, not a GGML type")
    })?;
    let offset = c.u64(&format!("the data offset of `{name}`"))?;

    if dims.contains(&0) {
        return Err(format!("tensor `{name}` has a zero dimension {dims:?}"));
    }
    let n_elements = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| format!("tensor `{name}`: dimensions {dims:?} overflow"))?;
    if !dims[0].is_multiple_of(ggml_type.block_size() as u64) {
        return Err(format!(
            "tensor `{name}`: row length {} is not a multiple of the {ggml_type} block size {}",
            dims[0],
            ggml_type.block_size()
        ));
    }
    let n_bytes = ggml_type.bytes_for(n_elements).ok_or_else(|| {
        format!("tensor `{name}`: byte size of {n_elements} {ggml_type} elements overflows")
    })?;
    if !offset.is_multiple_of(alignment) {
        return Err(format!(
            "tensor `{name}`: data offset {offset} is not a multiple of the alignment {alignment}"
        ));
    }
    Ok(TensorInfo { name, dims, ggml_type, offset, n_elements, n_bytes })
}

/// Every tensor inside the file, no two overlapping.
fn check_data_ranges(
    tensors: &[TensorInfo],
    data_start: u64,
    file_len: u64,
) -> Result<(), ReadError> {
    let mut ranges: Vec<(u64, u64, &str)> = Vec::with_capacity(tensors.len());
    for t in tensors {
        let end = data_start
            .checked_add(t.offset)
            .and_then(|start| start.checked_add(t.n_bytes))
            .filter(|&end| end <= file_len)
            .ok_or_else(|| {
                format!(
                    "tensor `{}` ({} bytes at data offset {}) ends past the end of the file ({file_len} bytes, data from byte {data_start})",
                    t.name, t.n_bytes, t.offset
                )
            })?;
        ranges.push((data_start + t.offset, end, &t.name));
    }
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((_, a_end, a), (b_start, _, b)) = (pair[0], pair[1]);
        if b_start < a_end {
            return Err(format!("the data of tensors `{a}` and `{b}` overlap"));
        }
    }
    Ok(())
}
