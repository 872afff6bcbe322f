//! petune-backbones: frozen Hugging Face backbones, each written once, firing the
//! typed sites of `petune-core` (docs/sites.md), loaded strictly from local HF folders.
//!
//! BERT and RoBERTa share one encoder ([`bert::BertBackbone`]); DeBERTa v1
//! ([`deberta::DebertaBackbone`]) and GPT-2 ([`gpt2::Gpt2Backbone`]) fire the same
//! sites. Tokenization goes through the `tokenizers` crate
//! ([`tokenizer::TextTokenizer`]), from `tokenizer.json` or `vocab.json` + `merges.txt`.

pub mod bert;
pub mod common;
pub mod deberta;
pub mod gguf;
pub mod gpt2;
pub mod hub;
pub mod loader;
pub mod tokenizer;

pub use bert::{BertBackbone, BertConfig};
pub use deberta::{DebertaBackbone, DebertaConfig};
pub use gpt2::{Gpt2Backbone, Gpt2Config};
pub use loader::{load_backbone, spec_from_config, LoadOptions, ModelDir};
pub use tokenizer::{EncodeOptions, EncodedBatch, PaddingSide, TextInput, TextTokenizer};
