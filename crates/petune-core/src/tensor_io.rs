//! safetensors ⇄ tch, with errors that name the file and tensor.
//!
//! tch's own reader panics or gives bare messages on corrupt files and its writer
//! stores no `__metadata__` (PEFT wants `{"format": "pt"}`), so petune reads and
//! writes safetensors through the `safetensors` crate here.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::fsio::{read_file, write_atomic};

/// Tensors read from a safetensors file, by name, plus the file's metadata.
#[derive(Debug)]
pub struct TensorFile {
    /// Tensors by name (sorted).
    pub tensors: BTreeMap<String, Tensor>,
    /// The `__metadata__` map, if any.
    pub metadata: HashMap<String, String>,
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BOOL => Kind::Bool,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Bool => Dtype::BOOL,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        _ => return None,
    })
}

/// Reads every tensor of a safetensors file onto `device`.
///
/// A truncated or corrupt file, or an unsupported dtype, is an [`Error::Safetensors`]
/// naming the file (and the tensor).
pub fn read_safetensors(path: &Path, device: Device) -> Result<TensorFile> {
    let bytes = read_file(path)?;
    parse_safetensors(path, &bytes, device)
}

/// Parses safetensors `bytes` (`path` is only used in errors).
pub fn parse_safetensors(path: &Path, bytes: &[u8], device: Device) -> Result<TensorFile> {
    let bad = |msg: String| Error::Safetensors { path: path.to_path_buf(), msg };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("{e:?}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("{e:?}")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype()).ok_or_else(|| {
            bad(format!("tensor `{name}` has unsupported dtype {:?}", view.dtype()))
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        tensors.insert(name, t.to_device(device));
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    Ok(TensorFile { tensors, metadata })
}

/// Raw little-endian bytes of a tensor (moved to CPU and made contiguous).
pub fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let t = t.f_to_device(Device::Cpu)?.f_contiguous()?;
    let numel = t.numel();
    let mut buf = vec![0u8; numel * t.f_kind()?.elt_size_in_bytes()];
    t.f_copy_data_u8(&mut buf, numel)?;
    Ok(buf)
}

/// Serialises named tensors (with optional `__metadata__`) to safetensors bytes.
pub fn serialize_safetensors(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let kind = t.f_kind()?;
        let dtype = dtype_of(kind).ok_or_else(|| {
            Error::input(format!(
                "tensor `{name}`: dtype {kind:?} cannot be written to safetensors"
            ))
        })?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        owned.push((name.clone(), dtype, shape, tensor_bytes(t)?));
    }
    let mut views = Vec::with_capacity(owned.len());
    for (name, dtype, shape, data) in &owned {
        let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data)
            .map_err(|e| Error::input(format!("tensor `{name}`: {e:?}")))?;
        views.push((name.clone(), view));
    }
    safetensors::serialize(views, metadata)
        .map_err(|e| Error::input(format!("safetensors serialisation: {e:?}")))
}

/// Writes named tensors to `path` atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes = serialize_safetensors(tensors, metadata)?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_values_kinds_and_metadata() {
        let a = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        let b = Tensor::from_slice(&[1i64, -2, 3]);
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        let bytes = serialize_safetensors(
            &[("a".into(), a.shallow_clone()), ("b".into(), b.shallow_clone())],
            Some(meta),
        )
        .unwrap();
        let f = parse_safetensors(Path::new("mem"), &bytes, Device::Cpu).unwrap();
        assert!(f.tensors["a"].equal(&a));
        assert!(f.tensors["b"].equal(&b));
        assert_eq!(f.metadata["format"], "pt");
    }

    #[test]
    fn truncated_file_is_a_named_error() {
        let a = Tensor::randn([8, 8], (Kind::Float, Device::Cpu));
        let bytes = serialize_safetensors(&[("a".into(), a)], None).unwrap();
        let err = parse_safetensors(
            Path::new("cut.safetensors"),
            &bytes[..bytes.len() - 10],
            Device::Cpu,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Safetensors { .. }), "{err}");
        assert!(err.to_string().contains("cut.safetensors"), "{err}");
        let err = parse_safetensors(Path::new("junk.safetensors"), b"not a file", Device::Cpu)
            .unwrap_err();
        assert!(err.to_string().contains("junk.safetensors"), "{err}");
    }
}
