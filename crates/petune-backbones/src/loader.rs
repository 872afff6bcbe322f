//! Loading a backbone from a local Hugging Face folder (`config.json`,
//! `model.safetensors`, `tokenizer.json` or `vocab.json` + `merges.txt`), dispatching
//! on `model_type` ([`Family`]): `bert`/`roberta` ([`BertBackbone`]), `deberta`
//! ([`DebertaBackbone`], v1), `gpt2` ([`Gpt2Backbone`]) and `llama`/`mistral`/`qwen2`
//! ([`LlamaBackbone`]). [`load_backbone`] and [`model_spec`] also take a GGUF file
//! ([`crate::source::ModelSource`]).

use std::path::{Path, PathBuf};

use petune_core::fsio::read_json;
use petune_core::{Backbone, BackboneSpec, Error, Result};
use tch::{Device, Kind};

use crate::bert::{BertBackbone, BertConfig};
use crate::deberta::{DebertaBackbone, DebertaConfig};
use crate::family::Family;
use crate::gpt2::{Gpt2Backbone, Gpt2Config};
use crate::llama::{LlamaBackbone, LlamaConfig};
use crate::source::ModelSource;

/// How the frozen backbone's weights are stored (`train.base_dtype`, `--base-dtype`).
///
/// `bf16` stores every weight *matrix* (projections, embedding tables, LM heads) in
/// bfloat16, half the bytes, as a PEFT user loading with `torch_dtype=torch.bfloat16`
/// does; vectors (biases, norm scales and shifts, under 0.5 % of the bytes) stay float32,
/// because libtorch's LayerNorm refuses float32 input with bfloat16 parameters (with or
/// without autocast) and a float32 bias keeps the added term exact. Activations stay
/// float32: embedding rows are upcast when looked up, and a projection casts its weight
/// to the input's dtype per op — unless autocast is on, which runs the matmul in its
/// lower-precision dtype and then takes the bfloat16 weight as it is, with no cast at
/// all (see [`crate::common::layers::weight_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseDtype {
    /// Float32 (the checkpoint's values, the default).
    #[default]
    F32,
    /// Weight matrices in bfloat16, vectors in float32.
    Bf16,
}

impl BaseDtype {
    /// The libtorch kind of the stored weight matrices.
    pub fn kind(self) -> Kind {
        match self {
            BaseDtype::F32 => Kind::Float,
            BaseDtype::Bf16 => Kind::BFloat16,
        }
    }

    /// The config name (`f32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            BaseDtype::F32 => "f32",
            BaseDtype::Bf16 => "bf16",
        }
    }

    /// Parses a config / command-line name.
    pub fn parse(s: &str) -> Result<BaseDtype> {
        match s {
            "f32" => Ok(BaseDtype::F32),
            "bf16" => Ok(BaseDtype::Bf16),
            other => Err(Error::config(
                "base_dtype",
                format!("`{other}` is not a base dtype: f32 or bf16"),
            )),
        }
    }
}

/// Where and how to put the weights.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Device of the weights.
    pub device: Device,
    /// How the weight matrices are stored ([`BaseDtype`]).
    pub base_dtype: BaseDtype,
    /// Keep a GGUF's frozen projection weights in their quantized blocks and dequantize
    /// them layer by layer in the forward pass (a Hugging Face folder refuses it).
    pub quantized_base: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { device: Device::Cpu, base_dtype: BaseDtype::F32, quantized_base: false }
    }
}

impl LoadOptions {
    /// CUDA device 0 when available (loading libtorch's CUDA backend first, see
    /// [`petune_core::load_cuda_backend`]), else CPU; f32 weights.
    pub fn cuda_if_available() -> Self {
        let device = if petune_core::load_cuda_backend() { Device::Cuda(0) } else { Device::Cpu };
        LoadOptions { device, ..LoadOptions::default() }
    }
}

/// A Hugging Face model folder.
#[derive(Debug, Clone)]
pub struct ModelDir {
    dir: PathBuf,
}

impl ModelDir {
    /// Checks that `dir` has a `config.json`. A Hub model id where no such folder exists
    /// is fetched into the Hub cache with the `hub` feature ([`crate::hub`]), and is an
    /// error saying so without it.
    pub fn open(dir: impl AsRef<Path>) -> Result<ModelDir> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.join("config.json").is_file() {
            if !dir.exists() && crate::hub::looks_like_model_id(&dir) {
                let id = dir.to_string_lossy().into_owned();
                return Ok(ModelDir { dir: crate::hub::fetch_model(&id)? });
            }
            return Err(Error::input(format!(
                "{} is not a Hugging Face model folder: it has no config.json",
                dir.display()
            )));
        }
        Ok(ModelDir { dir })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `model.safetensors`.
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// `tokenizer.json`.
    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    /// `vocab.json` (byte-level BPE vocabulary, with `merges.txt`).
    pub fn vocab_path(&self) -> PathBuf {
        self.dir.join("vocab.json")
    }

    /// `merges.txt` (byte-level BPE merges, with `vocab.json`).
    pub fn merges_path(&self) -> PathBuf {
        self.dir.join("merges.txt")
    }

    /// The `model_type` field of `config.json`.
    pub fn model_type(&self) -> Result<String> {
        let v: serde_json::Value = read_json(&self.config_path())?;
        v.get("model_type").and_then(|m| m.as_str()).map(str::to_string).ok_or_else(|| {
            Error::Config {
                field: "model_type".into(),
                msg: format!("{} has no string `model_type`", self.config_path().display()),
            }
        })
    }
}

/// The spec a folder's `config.json` describes, without reading any weights (optional
/// parts as the config's `architectures` declare them).
pub fn spec_from_config(config_path: &Path) -> Result<BackboneSpec> {
    let v: serde_json::Value = read_json(config_path)?;
    let model_type = v.get("model_type").and_then(|m| m.as_str()).unwrap_or_default().to_string();
    match Family::from_model_type(&model_type)? {
        Family::Bert | Family::Roberta => {
            let cfg: BertConfig = parse_config(config_path, v)?;
            cfg.spec(cfg.declared_capabilities())
        }
        Family::Deberta => {
            let cfg: DebertaConfig = parse_config(config_path, v)?;
            cfg.spec(cfg.declared_capabilities(), cfg.declared_head())
        }
        Family::Gpt2 => {
            let cfg: Gpt2Config = parse_config(config_path, v)?;
            // Without weights an untied head is assumed present when declared.
            let declared = cfg.architectures.iter().any(|a| a.ends_with("LMHeadModel"));
            cfg.spec(cfg.capabilities(declared))
        }
        Family::Llama | Family::Mistral | Family::Qwen2 => {
            let cfg = LlamaConfig::from_json(v, config_path)?;
            let declared = cfg.architectures.iter().any(|a| a.ends_with("ForCausalLM"));
            cfg.spec(cfg.capabilities(declared))
        }
    }
}

fn parse_config<T: serde::de::DeserializeOwned>(path: &Path, v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|source| Error::Json { path: path.to_path_buf(), source })
}

/// The spec of the model at `path` (a Hugging Face folder's `config.json`, or a GGUF's
/// metadata), without building the backbone.
pub fn model_spec(path: impl AsRef<Path>) -> Result<BackboneSpec> {
    ModelSource::open(path)?.spec()
}

/// Loads the backbone at `path`, whatever its architecture: a Hugging Face folder, or a
/// GGUF file (or a folder holding one).
pub fn load_backbone(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Box<dyn Backbone>> {
    ModelSource::open(path)?.load_backbone(opts)
}

/// Loads the backbone of a Hugging Face folder.
pub(crate) fn load_hf_backbone(md: &ModelDir, opts: &LoadOptions) -> Result<Box<dyn Backbone>> {
    Ok(match Family::from_model_type(&md.model_type()?)? {
        Family::Bert | Family::Roberta => Box::new(BertBackbone::load(md.path(), opts)?),
        Family::Deberta => Box::new(DebertaBackbone::load(md.path(), opts)?),
        Family::Gpt2 => Box::new(Gpt2Backbone::load(md.path(), opts)?),
        Family::Llama | Family::Mistral | Family::Qwen2 => {
            Box::new(LlamaBackbone::load(md.path(), opts)?)
        }
    })
}
