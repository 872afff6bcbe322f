//! petune-backbones: frozen Hugging Face backbones, each written once, firing the
//! typed sites of `petune-core` (docs/sites.md), loaded strictly from local HF folders or GGUF files ([`source::ModelSource`]).
//!
//! BERT and RoBERTa share one encoder ([`bert::BertBackbone`]); DeBERTa v1
//! ([`deberta::DebertaBackbone`]), GPT-2 ([`gpt2::Gpt2Backbone`]) and the Llama family
//! (Llama, Mistral, Qwen2: [`llama::LlamaBackbone`]) fire the same sites. Tokenization
//! goes through the `tokenizers` crate ([`tokenizer::TextTokenizer`]), from
//! `tokenizer.json` or `vocab.json` + `merges.txt`.

pub mod bert;
pub mod common;
pub mod deberta;
pub mod family;
pub mod gguf;
pub mod gpt2;
pub mod hub;
pub mod llama;
pub mod loader;
pub mod source;
pub mod tokenizer;

pub use bert::{BertBackbone, BertConfig};
pub use deberta::{DebertaBackbone, DebertaConfig};
pub use family::Family;
pub use gpt2::{Gpt2Backbone, Gpt2Config};
pub use llama::{LlamaBackbone, LlamaConfig};
pub use loader::{load_backbone, model_spec, spec_from_config, BaseDtype, LoadOptions, ModelDir};
pub use source::{LoadedParts, ModelSource};
pub use tokenizer::{EncodeOptions, EncodedBatch, PaddingSide, TextInput, TextTokenizer};
