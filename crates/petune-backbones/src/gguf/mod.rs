//! GGUF checkpoints (llama.cpp's format): a strict reader, dequantization of F32, F16, BF16,
//! Q8_0, Q4_0 and Q4_1 tensors bit-identical to gguf-py's, the byte-level BPE tokenizer of the
//! metadata, and the mapping of a `llama` GGUF to a Hugging Face `LlamaForCausalLM` (config,
//! tensor names, the Q/K rotary row permutation undone). See docs/gguf.md.
//!
//! Spec: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>; reference implementations:
//! gguf-py 0.19.0 (`GGUFReader`, `gguf.quants`) and transformers 5.24's GGUF loader.
//!
//! ```no_run
//! # fn main() -> petune_core::Result<()> {
//! use petune_backbones::gguf::GgufModel;
//! let model = GgufModel::open(".assets/smollm2")?; // a .gguf file, or a folder with one
//! let (hf_config, tensors, tokenizer) = model.into_parts();
//! # Ok(()) }
//! ```

mod cursor;
pub mod dequant;
pub mod file;
pub mod ggml_type;
pub mod llama;
pub mod metadata;
pub mod model;
pub mod tokenizer;

pub use dequant::QuantizedTensor;
pub use file::{GgufFile, TensorInfo, DEFAULT_ALIGNMENT};
pub use ggml_type::GgmlType;
pub use llama::{LlamaGguf, LlamaGgufConfig, TensorMapping};
pub use metadata::{Metadata, MetadataValue, ValueType};
pub use model::{is_gguf_path, resolve_gguf_path, GgufModel};
pub use tokenizer::{chat_template, gguf_tokenizer, SpecialIds};
