//! GGML tensor types: id, name, block size (elements) and block byte size of every type a GGUF
//! file may hold, so that any file's tensor table can be checked, even for types petune does
//! not dequantize.
//!
//! The table is gguf-py's `GGMLQuantizationType` and `GGML_QUANT_SIZES` (gguf 0.19.0,
//! `gguf/constants.py`), the same as `ggml_type` / `type_traits` in ggml's `ggml.c`.

use std::fmt;

/// One row of the table: id, name, elements per block, bytes per block.
struct TypeInfo {
    id: u32,
    name: &'static str,
    block: usize,
    bytes: usize,
}

const QK_K: usize = 256;

#[rustfmt::skip]
const TYPES: &[TypeInfo] = &[
    TypeInfo { id: 0, name: "F32", block: 1, bytes: 4 },
    TypeInfo { id: 1, name: "F16", block: 1, bytes: 2 },
    TypeInfo { id: 2, name: "Q4_0", block: 32, bytes: 2 + 16 },
    TypeInfo { id: 3, name: "Q4_1", block: 32, bytes: 2 + 2 + 16 },
    TypeInfo { id: 6, name: "Q5_0", block: 32, bytes: 2 + 4 + 16 },
    TypeInfo { id: 7, name: "Q5_1", block: 32, bytes: 2 + 2 + 4 + 16 },
    TypeInfo { id: 8, name: "Q8_0", block: 32, bytes: 2 + 32 },
    TypeInfo { id: 9, name: "Q8_1", block: 32, bytes: 4 + 4 + 32 },
    TypeInfo { id: 10, name: "Q2_K", block: QK_K, bytes: 2 + 2 + QK_K / 16 + QK_K / 4 },
    TypeInfo { id: 11, name: "Q3_K", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 8 + 12 },
    TypeInfo { id: 12, name: "Q4_K", block: QK_K, bytes: 2 + 2 + QK_K / 2 + 12 },
    TypeInfo { id: 13, name: "Q5_K", block: QK_K, bytes: 2 + 2 + QK_K / 2 + QK_K / 8 + 12 },
    TypeInfo { id: 14, name: "Q6_K", block: QK_K, bytes: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 },
    TypeInfo { id: 15, name: "Q8_K", block: QK_K, bytes: 4 + QK_K + QK_K / 8 },
    TypeInfo { id: 16, name: "IQ2_XXS", block: QK_K, bytes: 2 + QK_K / 4 },
    TypeInfo { id: 17, name: "IQ2_XS", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 32 },
    TypeInfo { id: 18, name: "IQ3_XXS", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 8 },
    TypeInfo { id: 19, name: "IQ1_S", block: QK_K, bytes: 2 + QK_K / 8 + QK_K / 16 },
    TypeInfo { id: 20, name: "IQ4_NL", block: 32, bytes: 2 + 16 },
    TypeInfo { id: 21, name: "IQ3_S", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4 },
    TypeInfo { id: 22, name: "IQ2_S", block: QK_K, bytes: 2 + QK_K / 4 + QK_K / 16 },
    TypeInfo { id: 23, name: "IQ4_XS", block: QK_K, bytes: 2 + 2 + QK_K / 2 + QK_K / 64 },
    TypeInfo { id: 24, name: "I8", block: 1, bytes: 1 },
    TypeInfo { id: 25, name: "I16", block: 1, bytes: 2 },
    TypeInfo { id: 26, name: "I32", block: 1, bytes: 4 },
    TypeInfo { id: 27, name: "I64", block: 1, bytes: 8 },
    TypeInfo { id: 28, name: "F64", block: 1, bytes: 8 },
    TypeInfo { id: 29, name: "IQ1_M", block: QK_K, bytes: QK_K / 8 + QK_K / 16 + QK_K / 32 },
    TypeInfo { id: 30, name: "BF16", block: 1, bytes: 2 },
    TypeInfo { id: 34, name: "TQ1_0", block: QK_K, bytes: 2 + 4 * 13 },
    TypeInfo { id: 35, name: "TQ2_0", block: QK_K, bytes: 2 + 64 },
    TypeInfo { id: 39, name: "MXFP4", block: 32, bytes: 1 + 16 },
    TypeInfo { id: 40, name: "NVFP4", block: 64, bytes: 4 + 32 },
    TypeInfo { id: 41, name: "Q1_0", block: 128, bytes: 2 + 16 },
];

/// A GGML tensor type known to the GGUF format.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType(u32);

impl GgmlType {
    /// 32-bit float.
    pub const F32: GgmlType = GgmlType(0);
    /// 16-bit float.
    pub const F16: GgmlType = GgmlType(1);
    /// 4-bit, blocks of 32: f16 scale `d`, 16 bytes of nibbles; value `(q − 8)·d`.
    pub const Q4_0: GgmlType = GgmlType(2);
    /// 4-bit, blocks of 32: f16 scale `d`, f16 minimum `m`, 16 bytes of nibbles; value `q·d + m`.
    pub const Q4_1: GgmlType = GgmlType(3);
    /// 8-bit, blocks of 32: f16 scale `d`, 32 signed bytes; value `q·d`.
    pub const Q8_0: GgmlType = GgmlType(8);
    /// bfloat16.
    pub const BF16: GgmlType = GgmlType(30);

    /// The types petune dequantizes.
    pub const SUPPORTED: [GgmlType; 6] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
    ];

    /// The type with GGML id `id`, if the format has one.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        TYPES.iter().any(|t| t.id == id).then_some(GgmlType(id))
    }

    fn info(self) -> &'static TypeInfo {
        // Every `GgmlType` comes from a constant or `from_id`, so the id is in the table.
        TYPES.iter().find(|t| t.id == self.0).unwrap_or(&TYPES[0])
    }

    /// The GGML id.
    pub fn id(self) -> u32 {
        self.0
    }

    /// The name (`Q4_1`).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Elements per block (1 for the plain float and integer types).
    pub fn block_size(self) -> usize {
        self.info().block
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        self.info().bytes
    }

    /// Whether petune can dequantize it.
    pub fn is_supported(self) -> bool {
        GgmlType::SUPPORTED.contains(&self)
    }

    /// Bytes taken by `n` elements; `None` when `n` is not a whole number of blocks or the
    /// size overflows.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let block = self.block_size() as u64;
        n.is_multiple_of(block)
            .then(|| (n / block).checked_mul(self.block_bytes() as u64))
            .flatten()
    }
}

impl fmt::Debug for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sizes_and_lookups() {
        assert_eq!(GgmlType::Q4_1.block_bytes(), 20);
        assert_eq!(GgmlType::Q8_0.block_bytes(), 34);
        assert_eq!(GgmlType::from_id(14).map(GgmlType::name), Some("Q6_K"));
        assert_eq!(GgmlType::from_id(14).map(GgmlType::block_bytes), Some(210));
        assert!(GgmlType::from_id(4).is_none(), "Q4_2 was removed from the format");
        assert_eq!(GgmlType::Q4_0.bytes_for(64), Some(36));
        assert_eq!(GgmlType::Q4_0.bytes_for(48), None);
        assert_eq!(GgmlType::F32.bytes_for(u64::MAX), None);
        // ids are unique
        for (i, a) in TYPES.iter().enumerate() {
            assert!(TYPES[i + 1..].iter().all(|b| b.id != a.id), "{}", a.name);
        }
    }
}
