//! Where a model comes from: a Hugging Face folder (`config.json`, safetensors weights,
//! `tokenizer.json` or `vocab.json` + `merges.txt`) or a GGUF file (llama.cpp's format, or a
//! folder holding exactly one `.gguf` and no `config.json`). Every command and the trainer
//! open models through [`ModelSource`], so that `--model` takes either without any other code
//! knowing which (docs/gguf.md, "From the CLI").
//!
//! A GGUF is mapped to the Hugging Face `LlamaForCausalLM` it was converted from
//! ([`crate::gguf`]): its metadata is the `config.json`, its tensors (dequantized, or kept in
//! their blocks with [`LoadOptions::quantized_base`]) the weights, and its tokenizer and chat
//! template come from the metadata.

use std::path::{Path, PathBuf};

use petune_core::{Backbone, BackboneSpec, Error, Result};

use crate::gguf::{chat_template, gguf_tokenizer, resolve_gguf_path, GgufFile, LlamaGguf};
use crate::llama::{LlamaBackbone, LlamaConfig};
use crate::loader::{load_hf_backbone, spec_from_config, LoadOptions, ModelDir};
use crate::tokenizer::TextTokenizer;

/// A model to load: a Hugging Face folder or a GGUF file.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A Hugging Face folder (or a Hub snapshot of one).
    Hf(ModelDir),
    /// A `.gguf` file.
    Gguf(PathBuf),
}

/// What [`ModelSource::load`] gives: the frozen backbone, its tokenizer and chat template.
pub struct LoadedParts {
    /// The frozen backbone.
    pub backbone: Box<dyn Backbone>,
    /// Its tokenizer, with the model's bos / eos ids.
    pub tokenizer: TextTokenizer,
    /// The chat template (GGUF `tokenizer.chat_template`, or the folder's
    /// `chat_template.jinja` / `tokenizer_config.json` `chat_template`), if any.
    pub chat_template: Option<String>,
}

impl ModelSource {
    /// Resolves `path`: a folder with a `config.json` is a Hugging Face folder; a file, or a
    /// folder without `config.json` holding `.gguf` files, is a GGUF (a folder with several is
    /// an error naming them); anything else goes to [`ModelDir::open`] (Hub ids, and the error
    /// for a folder that is neither).
    pub fn open(path: impl AsRef<Path>) -> Result<ModelSource> {
        let path = path.as_ref();
        if path.is_file() {
            return Ok(ModelSource::Gguf(path.to_path_buf()));
        }
        if path.is_dir() && !path.join("config.json").is_file() && holds_gguf(path)? {
            return Ok(ModelSource::Gguf(resolve_gguf_path(path)?));
        }
        // Not a Hub id either: say what is missing rather than try to download it.
        if !path.exists() && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            return Err(Error::input(format!("{}: no such GGUF file", path.display())));
        }
        Ok(ModelSource::Hf(ModelDir::open(path)?))
    }

    /// The folder or the `.gguf` file.
    pub fn path(&self) -> &Path {
        match self {
            ModelSource::Hf(dir) => dir.path(),
            ModelSource::Gguf(file) => file,
        }
    }

    /// Whether this is a GGUF file.
    pub fn is_gguf(&self) -> bool {
        matches!(self, ModelSource::Gguf(_))
    }

    /// The spec, without building the backbone (a folder's `config.json`; a GGUF's metadata
    /// and tensor table, checked against each other).
    pub fn spec(&self) -> Result<BackboneSpec> {
        match self {
            ModelSource::Hf(dir) => spec_from_config(&dir.config_path()),
            ModelSource::Gguf(path) => {
                let file = GgufFile::open(path)?;
                let (config, llama) = gguf_config(&file)?;
                config.spec(config.capabilities(llama.tensors.iter().any(|m| m.hf == LM_HEAD)))
            }
        }
    }

    /// The frozen backbone.
    pub fn load_backbone(&self, opts: &LoadOptions) -> Result<Box<dyn Backbone>> {
        match self {
            ModelSource::Hf(dir) => {
                refuse_quantized_hf(dir.path(), opts)?;
                load_hf_backbone(dir, opts)
            }
            ModelSource::Gguf(path) => Ok(Box::new(gguf_backbone(&GgufFile::open(path)?, opts)?)),
        }
    }

    /// The tokenizer, padding with the spec's `pad_id` (a GGUF's own padding id, else its
    /// eos) and knowing the spec's bos / eos ids.
    pub fn tokenizer(&self, spec: &BackboneSpec) -> Result<TextTokenizer> {
        match self {
            ModelSource::Hf(dir) => TextTokenizer::from_model_dir(dir.path(), spec),
            ModelSource::Gguf(path) => {
                let file = GgufFile::open(path)?;
                Ok(gguf_tokenizer(file.metadata(), file.path())?
                    .with_specials(spec.bos_id, spec.eos_id))
            }
        }
    }

    /// The chat template, if the model has one.
    pub fn chat_template(&self) -> Result<Option<String>> {
        match self {
            ModelSource::Hf(dir) => hf_chat_template(dir.path()),
            ModelSource::Gguf(path) => chat_template(GgufFile::open(path)?.metadata()),
        }
    }

    /// Backbone, tokenizer and chat template, reading a GGUF file once.
    pub fn load(&self, opts: &LoadOptions) -> Result<LoadedParts> {
        match self {
            ModelSource::Hf(dir) => {
                let backbone = self.load_backbone(opts)?;
                let tokenizer = TextTokenizer::from_model_dir(dir.path(), backbone.spec())?;
                Ok(LoadedParts {
                    backbone,
                    tokenizer,
                    chat_template: hf_chat_template(dir.path())?,
                })
            }
            ModelSource::Gguf(path) => {
                let file = GgufFile::open(path)?;
                let backbone = gguf_backbone(&file, opts)?;
                let spec = backbone.spec();
                let tokenizer = gguf_tokenizer(file.metadata(), file.path())?
                    .with_specials(spec.bos_id, spec.eos_id);
                let chat_template = chat_template(file.metadata())?;
                Ok(LoadedParts { backbone: Box::new(backbone), tokenizer, chat_template })
            }
        }
    }
}

/// The HF name of an untied LM head.
const LM_HEAD: &str = "lm_head.weight";

/// Whether the folder holds at least one `.gguf` file.
fn holds_gguf(dir: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The Llama config a GGUF's metadata describes, and its tensor mapping.
fn gguf_config(file: &GgufFile) -> Result<(LlamaConfig, LlamaGguf)> {
    let llama = LlamaGguf::new(file)?;
    let config = LlamaConfig::from_json(llama.hf_config(), file.path())?;
    Ok((config, llama))
}

/// The backbone of a parsed GGUF: dequantized, or with its projection weights kept in their
/// blocks when `opts.quantized_base`.
fn gguf_backbone(file: &GgufFile, opts: &LoadOptions) -> Result<LlamaBackbone> {
    let (config, llama) = gguf_config(file)?;
    if opts.quantized_base {
        LlamaBackbone::from_gguf_quantized(config, &llama, file, opts)
    } else {
        LlamaBackbone::from_tensors(config, llama.dequantized(file)?, file.path(), opts)
    }
}

/// `quantized_base` needs quantized blocks, which only a GGUF file has.
fn refuse_quantized_hf(dir: &Path, opts: &LoadOptions) -> Result<()> {
    if opts.quantized_base {
        return Err(Error::Unsupported {
            what: "quantized_base on a Hugging Face folder".into(),
            msg: format!(
                "{}: a quantized base keeps a GGUF file's Q4_0 / Q4_1 / Q8_0 blocks; give a .gguf \
                 model or leave quantized_base off",
                dir.display()
            ),
        });
    }
    Ok(())
}

/// A folder's chat template: `chat_template.jinja` (transformers 5), else the
/// `chat_template` string of `tokenizer_config.json`.
fn hf_chat_template(dir: &Path) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja).map(Some).map_err(|e| Error::io(&jinja, e));
    }
    let config = dir.join("tokenizer_config.json");
    if !config.is_file() {
        return Ok(None);
    }
    let v: serde_json::Value = petune_core::fsio::read_json(&config)?;
    Ok(v.get("chat_template").and_then(|t| t.as_str()).map(str::to_string))
}
