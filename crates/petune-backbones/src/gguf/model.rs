//! One call from a `.gguf` path (or a folder holding exactly one) to what a Hugging Face-shaped
//! backbone constructor takes: a `config.json`-shaped value, named float32 tensors in HF layout,
//! and the tokenizer.

use std::path::{Path, PathBuf};

use petune_core::{Error, Result};
use serde_json::Value;
use tch::Tensor;

use super::file::GgufFile;
use super::llama::LlamaGguf;
use super::tokenizer::{chat_template, gguf_tokenizer};
use crate::tokenizer::TextTokenizer;

/// The `.gguf` file `path` names: the file itself, or the only `.gguf` in a folder. A folder
/// with none or several is an [`Error::Input`] saying so.
pub fn resolve_gguf_path(path: impl AsRef<Path>) -> Result<PathBuf> {
    let path = path.as_ref();
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(Error::input(format!("{}: no such GGUF file or folder", path.display())));
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let p = entry.map_err(|e| Error::io(path, e))?.path();
        if p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            found.push(p);
        }
    }
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::input(format!("{} holds no .gguf file", path.display()))),
        n => Err(Error::input(format!(
            "{} holds {n} .gguf files ({}); name one",
            path.display(),
            found
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Whether `path` is a `.gguf` file or a folder holding `.gguf` files but no `config.json`
/// (so that a loader can choose between a GGUF and a Hugging Face folder).
pub fn is_gguf_path(path: impl AsRef<Path>) -> bool {
    let path = path.as_ref();
    if path.is_file() {
        return path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    }
    path.is_dir() && !path.join("config.json").is_file() && resolve_gguf_path(path).is_ok()
}

/// A llama-architecture GGUF model, loaded: metadata, HF config, float32 tensors in HF layout,
/// tokenizer.
pub struct GgufModel {
    /// The parsed file (metadata, tensor table, raw blocks).
    pub file: GgufFile,
    /// Tensor mapping and hyper-parameters.
    pub llama: LlamaGguf,
    /// A Hugging Face `LlamaConfig` `config.json`.
    pub hf_config: Value,
    /// Every tensor under its HF name, float32, HF layout (Q/K un-permuted), on the CPU.
    pub tensors: Vec<(String, Tensor)>,
    /// The tokenizer built from the metadata.
    pub tokenizer: TextTokenizer,
    /// `tokenizer.chat_template`, if the file has one.
    pub chat_template: Option<String>,
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("file", &self.file)
            .field("hf_config", &self.hf_config)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufModel {
    /// Opens a `.gguf` file, or the only one in a folder ([`resolve_gguf_path`]).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufModel> {
        GgufModel::from_file(GgufFile::open(resolve_gguf_path(path)?)?)
    }

    /// Maps and dequantizes a parsed file.
    pub fn from_file(file: GgufFile) -> Result<GgufModel> {
        let llama = LlamaGguf::new(&file)?;
        let tokenizer = gguf_tokenizer(file.metadata(), file.path())?;
        let chat_template = chat_template(file.metadata())?;
        let tensors = llama.dequantized(&file)?;
        Ok(GgufModel {
            hf_config: llama.hf_config(),
            llama,
            tensors,
            tokenizer,
            chat_template,
            file,
        })
    }

    /// `(config.json value, named tensors, tokenizer)`, dropping the file's bytes.
    pub fn into_parts(self) -> (Value, Vec<(String, Tensor)>, TextTokenizer) {
        (self.hf_config, self.tensors, self.tokenizer)
    }
}
