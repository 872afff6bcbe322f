//! petune-backbones: frozen Hugging Face backbones, each written once, firing the
//! typed sites of `petune-core` (docs/sites.md), loaded strictly from local HF folders.
//!
//! BERT and RoBERTa share one encoder ([`bert::BertBackbone`]); tokenization goes
//! through the `tokenizers` crate ([`tokenizer::TextTokenizer`]).

pub mod bert;
pub mod common;
pub mod loader;
pub mod tokenizer;

pub use bert::{BertBackbone, BertConfig};
pub use loader::{load_backbone, spec_from_config, LoadOptions, ModelDir};
pub use tokenizer::{EncodeOptions, EncodedBatch, PaddingSide, TextInput, TextTokenizer};
