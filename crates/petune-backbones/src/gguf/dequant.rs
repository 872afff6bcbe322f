//! Quantized tensors kept as their raw GGML blocks, and their dequantization to float32 with
//! libtorch ops, on whatever device the blocks are (so a frozen base can stay quantized on the
//! GPU and be dequantized layer by layer).
//!
//! Block layouts and arithmetic follow gguf-py's reference `gguf.quants.dequantize` (gguf 0.19.0,
//! `gguf/quants.py`, classes `BF16`, `Q4_0`, `Q4_1`, `Q8_0`), which ggml's `dequantize_row_*` in
//! `ggml-quants.c` also computes; results are bit-identical to it (tests/gguf_dequant.rs):
//!
//! * `Q8_0`, 34 bytes per 32 values: f16 scale `d`, 32 × i8 `q`; value `d·q`.
//! * `Q4_0`, 18 bytes: f16 `d`, 16 bytes of nibbles; value `d·(q − 8)`.
//! * `Q4_1`, 20 bytes: f16 `d`, f16 `m`, 16 bytes of nibbles; value `d·q + m` (a product then a
//!   sum, each rounded to f32, as numpy does — never a fused multiply-add).
//!
//! In both 4-bit types byte `j` of the nibbles holds element `j` in its low nibble and element
//! `j + 16` in its high nibble. Scales are converted f16 → f32 exactly, subnormals included.

use petune_core::{Error, Result};
use tch::{Device, Kind, Tensor};

use super::ggml_type::GgmlType;

/// A tensor stored as raw GGML blocks.
///
/// # Shapes
/// `blocks`: `[n_bytes]` uint8; `shape`: the dequantized shape in PyTorch order, its last
/// dimension a whole number of blocks.
#[derive(Debug)]
pub struct QuantizedTensor {
    name: String,
    ggml_type: GgmlType,
    shape: Vec<i64>,
    blocks: Tensor,
}

impl QuantizedTensor {
    /// Wraps `blocks` (1-D uint8), checking that their size is what `shape` needs in `ggml_type`.
    pub fn new(
        name: &str,
        ggml_type: GgmlType,
        shape: Vec<i64>,
        blocks: Tensor,
    ) -> Result<QuantizedTensor> {
        let bad = |msg: String| Error::input(format!("quantized tensor `{name}`: {msg}"));
        let n: i64 = shape.iter().product();
        let row = *shape.last().ok_or_else(|| bad("empty shape".into()))?;
        if shape.iter().any(|&d| d <= 0) || row % ggml_type.block_size() as i64 != 0 {
            return Err(bad(format!(
                "shape {shape:?} is not whole {ggml_type} blocks of {}",
                ggml_type.block_size()
            )));
        }
        let want = ggml_type.bytes_for(n as u64).unwrap_or(u64::MAX);
        if blocks.f_kind()? != Kind::Uint8 || blocks.size() != [want as i64] {
            return Err(bad(format!(
                "blocks must be [{want}] uint8 for {shape:?} {ggml_type}, got {:?} {:?}",
                blocks.size(),
                blocks.f_kind()?
            )));
        }
        Ok(QuantizedTensor { name: name.to_string(), ggml_type, shape, blocks })
    }

    /// Tensor name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Storage type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// Dequantized shape (PyTorch order).
    pub fn shape(&self) -> &[i64] {
        &self.shape
    }

    /// The raw blocks (`[n_bytes]` uint8).
    pub fn blocks(&self) -> &Tensor {
        &self.blocks
    }

    /// The same tensor under another name.
    pub fn renamed(self, name: &str) -> QuantizedTensor {
        QuantizedTensor { name: name.to_string(), ..self }
    }

    /// A copy of the blocks on `device`.
    pub fn to_device(&self, device: Device) -> Result<QuantizedTensor> {
        Ok(QuantizedTensor {
            name: self.name.clone(),
            ggml_type: self.ggml_type,
            shape: self.shape.clone(),
            blocks: self.blocks.f_to_device(device)?,
        })
    }

    /// Reorders the outermost rows: row `r` of the result is row `index[r]` of `self`. Works on
    /// the blocks, without dequantizing (a row is a whole number of blocks); a 1-D tensor's
    /// "rows" are its elements, which needs one element per block.
    ///
    /// # Shapes
    /// `index`: `[shape[0]]` int64, a permutation.
    pub fn permute_rows(&self, index: &Tensor) -> Result<QuantizedTensor> {
        let rows = self.shape[0];
        let n_bytes = self.blocks.size()[0];
        if self.shape.len() == 1 && self.ggml_type.block_size() != 1 {
            return Err(Error::Unsupported {
                what: format!("permuting a 1-D {} tensor", self.ggml_type),
                msg: format!("`{}`: its elements share blocks", self.name),
            });
        }
        if index.size() != [rows] {
            return Err(Error::input(format!(
                "row permutation of `{}` needs {rows} indices, got {:?}",
                self.name,
                index.size()
            )));
        }
        let index = index.f_to_device(self.blocks.device())?;
        let blocks = self
            .blocks
            .f_view([rows, n_bytes / rows])? // [rows, row bytes]
            .f_index_select(0, &index)?
            .f_reshape([n_bytes])?;
        QuantizedTensor::new(&self.name, self.ggml_type, self.shape.clone(), blocks)
    }

    /// The values as float32, on the blocks' device. A type petune does not dequantize is an
    /// [`Error::Unsupported`] naming it and the tensor.
    pub fn dequantize(&self) -> Result<Tensor> {
        let b = &self.blocks;
        let values = match self.ggml_type {
            GgmlType::F32 => b.f_view_dtype(Kind::Float)?,
            GgmlType::F16 => b.f_view_dtype(Kind::Half)?.f_to_kind(Kind::Float)?,
            GgmlType::BF16 => b.f_view_dtype(Kind::BFloat16)?.f_to_kind(Kind::Float)?,
            GgmlType::Q8_0 => {
                let blocks = self.block_rows()?; // [n_blocks, 34]
                let d = f16_field(&blocks, 0)?; // [n_blocks, 1]
                let q = blocks.f_narrow(1, 2, 32)?.f_contiguous()?.f_view_dtype(Kind::Int8)?;
                d.f_mul(&q.f_to_kind(Kind::Float)?)?
            }
            GgmlType::Q4_0 => {
                let blocks = self.block_rows()?; // [n_blocks, 18]
                let d = f16_field(&blocks, 0)?;
                let q = nibbles(&blocks, 2)?.f_sub_scalar(8.0)?; // [n_blocks, 32]
                d.f_mul(&q)?
            }
            GgmlType::Q4_1 => {
                let blocks = self.block_rows()?; // [n_blocks, 20]
                let (d, m) = (f16_field(&blocks, 0)?, f16_field(&blocks, 2)?);
                d.f_mul(&nibbles(&blocks, 4)?)?.f_add(&m)?
            }
            other => {
                return Err(Error::Unsupported {
                    what: format!("GGUF tensor type {other}"),
                    msg: format!(
                        "tensor `{}` is {other}; petune dequantizes {}",
                        self.name,
                        GgmlType::SUPPORTED.map(GgmlType::name).join(", ")
                    ),
                })
            }
        };
        Ok(values.f_reshape(self.shape.as_slice())?)
    }

    /// [`QuantizedTensor::dequantize`] in a forward pass, for a tensor whose type was checked
    /// at load ([`GgmlType::is_supported`]): like tch's non-`f_` ops, a failure of libtorch
    /// itself (out of memory) panics here, as the matrix product after it would.
    pub fn dequantize_t(&self) -> Tensor {
        match self.dequantize() {
            Ok(t) => t,
            Err(e) => panic!("dequantizing `{}`: {e}", self.name),
        }
    }

    /// The blocks as `[n_blocks, block bytes]`.
    fn block_rows(&self) -> Result<Tensor> {
        Ok(self.blocks.f_view([-1, self.ggml_type.block_bytes() as i64])?)
    }
}

/// The f16 at byte `at` of every block, as f32: `[n_blocks, 1]`.
fn f16_field(blocks: &Tensor, at: i64) -> Result<Tensor> {
    Ok(blocks
        .f_narrow(1, at, 2)?
        .f_contiguous()?
        .f_view_dtype(Kind::Half)?
        .f_to_kind(Kind::Float)?)
}

/// The 32 nibbles from byte `at` on, as f32 in element order (low nibbles are elements 0..16,
/// high nibbles 16..32): `[n_blocks, 32]`.
fn nibbles(blocks: &Tensor, at: i64) -> Result<Tensor> {
    let qs = blocks.f_narrow(1, at, 16)?; // [n_blocks, 16]
    let low = qs.f_bitwise_and(0x0f)?;
    let high = qs.f_bitwise_right_shift_tensor_scalar(4)?;
    Ok(Tensor::f_cat(&[low, high], 1)?.f_to_kind(Kind::Float)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(ty: GgmlType, shape: &[i64], bytes: &[u8]) -> QuantizedTensor {
        QuantizedTensor::new("t", ty, shape.to_vec(), Tensor::from_slice(bytes)).unwrap()
    }

    #[test]
    fn q4_0_nibble_order_and_offset() {
        // d = 1.0 (f16 0x3c00); byte j = low j, high 15 - j
        let mut b = vec![0x00, 0x3c];
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = Vec::<f32>::try_from(q(GgmlType::Q4_0, &[32], &b).dequantize().unwrap()).unwrap();
        let want: Vec<f32> =
            (0..16).map(|j| j as f32 - 8.0).chain((0..16).map(|j| 7.0 - j as f32)).collect();
        assert_eq!(v, want);
    }

    #[test]
    fn q4_1_scale_and_minimum() {
        // d = 0.5 (0x3800), m = -2.0 (0xc000), every nibble 3 (low) / 10 (high)
        let mut b = vec![0x00, 0x38, 0x00, 0xc0];
        b.extend([0xa3u8; 16]);
        let v =
            Vec::<f32>::try_from(q(GgmlType::Q4_1, &[1, 32], &b).dequantize().unwrap().view([-1]))
                .unwrap();
        assert!(v[..16].iter().all(|&x| x == 0.5 * 3.0 - 2.0));
        assert!(v[16..].iter().all(|&x| x == 0.5 * 10.0 - 2.0));
    }

    #[test]
    fn q8_0_is_signed_bytes_times_scale() {
        // d = 2.0 (0x4000), q = -128, -1, 0, 1, 127, ...
        let mut b = vec![0x00, 0x40];
        let qs: [i8; 32] = std::array::from_fn(|i| [-128i8, -1, 0, 1, 127][i % 5]);
        b.extend(qs.iter().map(|&x| x as u8));
        let v = Vec::<f32>::try_from(q(GgmlType::Q8_0, &[32], &b).dequantize().unwrap()).unwrap();
        assert_eq!(v, qs.iter().map(|&x| 2.0 * x as f32).collect::<Vec<_>>());
    }

    #[test]
    fn wrong_block_count_and_unsupported_types_are_errors() {
        let err =
            QuantizedTensor::new("w", GgmlType::Q8_0, vec![2, 32], Tensor::from_slice(&[0u8; 34]))
                .unwrap_err();
        assert!(err.to_string().contains("`w`"), "{err}");
        let q5 = GgmlType::from_id(6).unwrap();
        let err = q(q5, &[32], &[0u8; 22]).dequantize().unwrap_err().to_string();
        assert!(err.contains("Q5_0") && err.contains("`t`") && err.contains("Q4_1"), "{err}");
    }

    #[test]
    fn permuting_rows_moves_whole_blocks() {
        let x = Tensor::arange(4 * 32, (Kind::Float, Device::Cpu)).view([4, 32]);
        let bytes = petune_core::tensor_io::tensor_bytes(&x).unwrap();
        let t = q(GgmlType::F32, &[4, 32], &bytes);
        let idx = Tensor::from_slice(&[2i64, 0, 3, 1]);
        let p = t.permute_rows(&idx).unwrap().dequantize().unwrap();
        assert!(p.equal(&x.index_select(0, &idx)));
    }
}
