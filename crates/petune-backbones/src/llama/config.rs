//! `config.json` of the Llama family — `LlamaConfig`, `MistralConfig`, `Qwen2Config` of
//! transformers 5.24 (models/{llama,mistral,qwen2}/configuration_*.py), field for field —
//! its validation, the rotary settings it implies (legacy `rope_theta` + `rope_scaling`
//! or transformers 5's `rope_parameters`; modeling_rope_utils.py), and the spec.
//!
//! The three model types differ in defaults and in where they put biases and sliding
//! windows:
//!
//! | | q/k/v bias | o bias | MLP bias | sliding window |
//! |---|---|---|---|---|
//! | `llama` | `attention_bias` | `attention_bias` | `mlp_bias` | none |
//! | `mistral` | no | no | no | `sliding_window` on every layer |
//! | `qwen2` | yes | no | no | `use_sliding_window`: `layer_types`, else layers ≥ `max_window_layers` |

use petune_core::{
    Arch, BackboneSpec, Capabilities, Error, HfModule, HfNames, LinearRole, LinearSite, NormKind,
    NormRole, Result,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::config::{
    check_dropouts, check_eps, check_pad_id, check_sizes, layer_norm_sites, norm_site,
};
use crate::common::layers::Activation;
use crate::common::rotary::RopeScaling;
use crate::family::Family;

fn default_vocab() -> i64 {
    32000
}
fn default_hidden() -> i64 {
    4096
}
fn default_intermediate() -> i64 {
    11008
}
fn default_layers() -> usize {
    32
}
fn default_heads() -> i64 {
    32
}
fn default_act() -> String {
    "silu".into()
}
fn default_positions() -> i64 {
    2048
}
fn default_eps() -> f64 {
    1e-6
}
fn default_bos() -> Option<i64> {
    Some(1)
}
fn default_eos() -> Option<TokenIds> {
    Some(TokenIds::One(2))
}
fn default_window_layers() -> usize {
    28
}

/// transformers' default `rope_theta` (`RotaryEmbeddingConfigMixin.default_theta`).
const DEFAULT_THETA: f64 = 10_000.0;

/// The keys whose transformers default differs from `LlamaConfig`'s, per model type
/// (`MistralConfig`, `Qwen2Config` class attributes), applied by
/// [`LlamaConfig::from_json`] where the file omits them.
fn type_defaults(model_type: &str) -> Vec<(&'static str, Value)> {
    match model_type {
        "mistral" => vec![
            ("intermediate_size", 14336.into()),
            ("num_key_value_heads", 8.into()),
            ("max_position_embeddings", (4096 * 32).into()),
            ("sliding_window", 4096.into()),
        ],
        "qwen2" => vec![
            ("vocab_size", 151936.into()),
            ("intermediate_size", 22016.into()),
            ("num_key_value_heads", 32.into()),
            ("max_position_embeddings", 32768.into()),
            ("sliding_window", 4096.into()),
            ("bos_token_id", Value::Null),
            ("eos_token_id", Value::Null),
        ],
        _ => Vec::new(),
    }
}

/// One token id or several (`eos_token_id: [128001, 128009]` in Llama 3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// One id.
    One(i64),
    /// Several ids (the first is the spec's).
    Many(Vec<i64>),
}

impl TokenIds {
    /// The first id.
    pub fn first(&self) -> Option<i64> {
        match self {
            TokenIds::One(id) => Some(*id),
            TokenIds::Many(ids) => ids.first().copied(),
        }
    }
}

/// `rope_parameters` (transformers 5) or the legacy `rope_scaling` dict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    /// `default`, `linear`, `llama3` (others are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_type: Option<String>,
    /// The legacy name of `rope_type`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub legacy_type: Option<String>,
    /// Base of the frequencies (overrides the top-level `rope_theta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// Scaling factor (`linear`, `llama3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// `llama3`: low-frequency factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    /// `llama3`: high-frequency factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    /// `llama3`: pre-training context (default `max_position_embeddings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<i64>,
    /// Fraction of each head that is rotated (only 1 is supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_rotary_factor: Option<f64>,
}

/// A Llama / Mistral / Qwen2 `config.json` (defaults are `LlamaConfig`'s; parse with
/// [`LlamaConfig::from_json`] or [`LlamaConfig::from_file`] to get Mistral's and Qwen2's
/// own defaults for keys a file omits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// `llama`, `mistral` or `qwen2`.
    pub model_type: String,
    /// e.g. `["LlamaForCausalLM"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Vocabulary size.
    #[serde(default = "default_vocab")]
    pub vocab_size: i64,
    /// Hidden size.
    #[serde(default = "default_hidden")]
    pub hidden_size: i64,
    /// FFN inner size (of the gate and up projections).
    #[serde(default = "default_intermediate")]
    pub intermediate_size: i64,
    /// Decoder layers.
    #[serde(default = "default_layers")]
    pub num_hidden_layers: usize,
    /// Query heads.
    #[serde(default = "default_heads")]
    pub num_attention_heads: i64,
    /// Key/value heads (grouped-query attention); null = `num_attention_heads`.
    #[serde(default)]
    pub num_key_value_heads: Option<i64>,
    /// Size of one head; null = `hidden_size / num_attention_heads`.
    #[serde(default)]
    pub head_dim: Option<i64>,
    /// Activation of the gate (SwiGLU: `silu`).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Context length it was trained for (no position table: rotary).
    #[serde(default = "default_positions")]
    pub max_position_embeddings: i64,
    /// RMSNorm epsilon.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Padding id (usually null: petune then pads with the end-of-sequence id).
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    /// Beginning-of-sequence id.
    #[serde(default = "default_bos")]
    pub bos_token_id: Option<i64>,
    /// End-of-sequence id(s).
    #[serde(default = "default_eos")]
    pub eos_token_id: Option<TokenIds>,
    /// LM head tied to the token embeddings.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Legacy rotary base (transformers 4); `rope_parameters.rope_theta` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// Legacy rotary scaling (transformers 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeParameters>,
    /// Rotary settings (transformers 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    /// `llama`: biases on q/k/v/o.
    #[serde(default)]
    pub attention_bias: bool,
    /// Dropout on attention probabilities while training.
    #[serde(default)]
    pub attention_dropout: f64,
    /// `llama`: biases on gate/up/down.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Sliding-window size (`mistral`; `qwen2` with `use_sliding_window`).
    #[serde(default)]
    pub sliding_window: Option<i64>,
    /// `qwen2`: whether `sliding_window` applies.
    #[serde(default)]
    pub use_sliding_window: bool,
    /// `qwen2`: layers from this index on slide (without `layer_types`).
    #[serde(default = "default_window_layers")]
    pub max_window_layers: usize,
    /// `qwen2`: `full_attention` / `sliding_attention` per layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_types: Option<Vec<String>>,
}

/// transformers' `LlamaConfig()` (Llama-2-7B's shape); other loaders (GGUF metadata)
/// start from it and set the fields they read.
impl Default for LlamaConfig {
    fn default() -> Self {
        LlamaConfig {
            model_type: "llama".into(),
            architectures: vec!["LlamaForCausalLM".into()],
            vocab_size: default_vocab(),
            hidden_size: default_hidden(),
            intermediate_size: default_intermediate(),
            num_hidden_layers: default_layers(),
            num_attention_heads: default_heads(),
            num_key_value_heads: None,
            head_dim: None,
            hidden_act: default_act(),
            max_position_embeddings: default_positions(),
            rms_norm_eps: default_eps(),
            pad_token_id: None,
            bos_token_id: default_bos(),
            eos_token_id: default_eos(),
            tie_word_embeddings: false,
            rope_theta: None,
            rope_scaling: None,
            rope_parameters: None,
            attention_bias: false,
            attention_dropout: 0.0,
            mlp_bias: false,
            sliding_window: None,
            use_sliding_window: false,
            max_window_layers: default_window_layers(),
            layer_types: None,
        }
    }
}

/// The Llama family's module of `site` in a bare `LlamaModel` (`MistralModel`,
/// `Qwen2Model`): the one mapping from sites to checkpoint and PEFT names.
pub fn hf_module(site: LinearSite) -> HfModule {
    let inside = match site.role {
        LinearRole::Query => "self_attn.q_proj",
        LinearRole::Key => "self_attn.k_proj",
        LinearRole::Value => "self_attn.v_proj",
        LinearRole::AttnOut => "self_attn.o_proj",
        LinearRole::FfnGate => "mlp.gate_proj",
        LinearRole::FfnUp => "mlp.up_proj",
        LinearRole::FfnDown => "mlp.down_proj",
    };
    HfModule::linear(format!("layers.{}.{inside}", site.layer))
}

/// A layer's projections in execution order (the gate runs before the up projection).
pub const LAYER_ROLES: [LinearRole; 7] = LinearRole::ALL;

impl LlamaConfig {
    /// Parses a `config.json` value, filling keys it omits with its model type's
    /// transformers defaults.
    pub fn from_json(mut value: Value, origin: &std::path::Path) -> Result<LlamaConfig> {
        if let Some(obj) = value.as_object_mut() {
            let model_type =
                obj.get("model_type").and_then(Value::as_str).unwrap_or("").to_string();
            for (key, default) in type_defaults(&model_type) {
                obj.entry(key).or_insert(default);
            }
        }
        serde_json::from_value(value)
            .map_err(|source| Error::Json { path: origin.to_path_buf(), source })
    }

    /// Reads and parses `path` ([`LlamaConfig::from_json`]).
    pub fn from_file(path: &std::path::Path) -> Result<LlamaConfig> {
        Self::from_json(petune_core::fsio::read_json(path)?, path)
    }

    /// The family this config describes.
    pub fn family(&self) -> Result<Family> {
        match Family::from_model_type(&self.model_type) {
            Ok(f @ (Family::Llama | Family::Mistral | Family::Qwen2)) => Ok(f),
            _ => Err(Error::Unsupported {
                what: format!("model_type `{}`", self.model_type),
                msg: "the Llama backbone loads `llama`, `mistral` and `qwen2` checkpoints".into(),
            }),
        }
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> i64 {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Size of one head.
    pub fn head_size(&self) -> i64 {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Padding id: the config's, else the end-of-sequence id (what Llama recipes set),
    /// else 0; padded positions are masked, so only the hidden states *at* them show it.
    pub fn pad_id(&self) -> i64 {
        self.pad_token_id.or(self.eos_id()).unwrap_or(0)
    }

    /// The first end-of-sequence id.
    pub fn eos_id(&self) -> Option<i64> {
        self.eos_token_id.as_ref().and_then(TokenIds::first)
    }

    /// `(q/k/v, o, MLP)`: which projections carry a bias (see the module docs).
    pub fn biases(&self) -> Result<(bool, bool, bool)> {
        Ok(match self.family()? {
            Family::Qwen2 => (true, false, false),
            Family::Mistral => (false, false, false),
            _ => (self.attention_bias, self.attention_bias, self.mlp_bias),
        })
    }

    /// The sliding window of `layer`, or `None` for full causal attention.
    pub fn layer_window(&self, layer: usize) -> Result<Option<i64>> {
        Ok(match self.family()? {
            Family::Mistral => self.sliding_window,
            Family::Qwen2 => {
                let window = self.sliding_window.filter(|_| self.use_sliding_window);
                match &self.layer_types {
                    Some(types) => match types.get(layer).map(String::as_str) {
                        Some("sliding_attention") => window,
                        _ => None,
                    },
                    None => window.filter(|_| layer >= self.max_window_layers),
                }
            }
            _ => None,
        })
    }

    /// The rotary base and scaling.
    pub fn rope(&self) -> Result<(f64, RopeScaling)> {
        let params = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref());
        let theta = params.and_then(|p| p.rope_theta).or(self.rope_theta).unwrap_or(DEFAULT_THETA);
        let p = params.cloned().unwrap_or_default();
        if let Some(f) = p.partial_rotary_factor.filter(|f| *f != 1.0) {
            return Err(Error::Unsupported {
                what: format!("partial_rotary_factor {f}"),
                msg: "petune rotates whole heads".into(),
            });
        }
        let need = |v: Option<f64>, name: &str| {
            v.ok_or_else(|| Error::config(format!("rope_parameters.{name}"), "missing"))
        };
        let kind =
            p.rope_type.clone().or(p.legacy_type.clone()).unwrap_or_else(|| "default".into());
        let scaling = match kind.as_str() {
            "default" => RopeScaling::None,
            "linear" => RopeScaling::Linear { factor: need(p.factor, "factor")? },
            "llama3" => RopeScaling::Llama3 {
                factor: need(p.factor, "factor")?,
                low_freq_factor: need(p.low_freq_factor, "low_freq_factor")?,
                high_freq_factor: need(p.high_freq_factor, "high_freq_factor")?,
                original_max_positions: p
                    .original_max_position_embeddings
                    .unwrap_or(self.max_position_embeddings)
                    as f64,
            },
            other => {
                return Err(Error::Unsupported {
                    what: format!("rope_type `{other}`"),
                    msg: "petune implements the default, linear and llama3 rotary embeddings"
                        .into(),
                })
            }
        };
        // NaN and infinities are refused with the non-positive values.
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(theta) {
            return Err(Error::config("rope_theta", format!("must be positive, got {theta}")));
        }
        let ok = match scaling {
            RopeScaling::None => true,
            RopeScaling::Linear { factor } => positive(factor),
            RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, .. } => {
                positive(factor)
                    && positive(low_freq_factor)
                    && positive(high_freq_factor - low_freq_factor)
            }
        };
        if !ok {
            return Err(Error::config(
                "rope_parameters",
                "needs factor > 0 (llama3: and high_freq_factor > low_freq_factor > 0)",
            ));
        }
        Ok((theta, scaling))
    }

    /// Checks every value petune relies on.
    pub fn validate(&self) -> Result<()> {
        self.family()?;
        let (heads, kv) = (self.num_attention_heads, self.kv_heads());
        check_sizes(
            &[
                ("vocab_size", self.vocab_size),
                ("hidden_size", self.hidden_size),
                ("num_attention_heads", heads),
                ("num_key_value_heads", kv),
                ("intermediate_size", self.intermediate_size),
                ("max_position_embeddings", self.max_position_embeddings),
            ],
            ("num_hidden_layers", self.num_hidden_layers),
            // With an explicit head_dim the hidden size need not split into the heads.
            ("hidden_size", if self.head_dim.is_some() { heads } else { self.hidden_size }),
            ("num_attention_heads", heads),
        )?;
        if heads % kv != 0 {
            return Err(Error::config(
                "num_key_value_heads",
                format!("{kv} does not divide num_attention_heads {heads}"),
            ));
        }
        let d = self.head_size();
        if d <= 0 || d % 2 != 0 {
            return Err(Error::config("head_dim", format!("must be positive and even, got {d}")));
        }
        check_eps("rms_norm_eps", self.rms_norm_eps)?;
        check_dropouts(&[("attention_dropout", self.attention_dropout)])?;
        Activation::from_hf(&self.hidden_act, "hidden_act")?;
        check_pad_id(self.pad_id(), self.vocab_size)?;
        self.rope()?;
        if let Some(types) = &self.layer_types {
            if types.len() != self.num_hidden_layers {
                return Err(Error::config(
                    "layer_types",
                    format!("{} entries for {} layers", types.len(), self.num_hidden_layers),
                ));
            }
            if let Some(bad) =
                types.iter().find(|t| !matches!(t.as_str(), "full_attention" | "sliding_attention"))
            {
                return Err(Error::Unsupported {
                    what: format!("layer type `{bad}`"),
                    msg: "petune knows full_attention and sliding_attention".into(),
                });
            }
        }
        for layer in 0..self.num_hidden_layers {
            if let Some(w) = self.layer_window(layer)?.filter(|w| *w < 1) {
                return Err(Error::config("sliding_window", format!("must be positive, got {w}")));
            }
        }
        Ok(())
    }

    /// Optional parts: a tied LM head always exists (it is `embed_tokens`); an untied one
    /// only when the checkpoint stores `lm_head.weight` (`has_untied_head`).
    pub fn capabilities(&self, has_untied_head: bool) -> Capabilities {
        Capabilities {
            attn_prefix: true,
            input_embeds: true,
            lm_head: self.tie_word_embeddings || has_untied_head,
            pooler: false,
        }
    }

    /// `(d_in, d_out, has_bias)` of a site.
    fn site_shape(&self, role: LinearRole) -> Result<(i64, i64, bool)> {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let (q, kv) =
            (self.num_attention_heads * self.head_size(), self.kv_heads() * self.head_size());
        let (qkv_bias, o_bias, mlp_bias) = self.biases()?;
        Ok(match role {
            LinearRole::Query => (h, q, qkv_bias),
            LinearRole::Key | LinearRole::Value => (h, kv, qkv_bias),
            LinearRole::AttnOut => (q, h, o_bias),
            LinearRole::FfnGate | LinearRole::FfnUp => (h, i, mlp_bias),
            LinearRole::FfnDown => (i, h, mlp_bias),
        })
    }

    /// The spec for a backbone with the given optional parts.
    pub fn spec(&self, capabilities: Capabilities) -> Result<BackboneSpec> {
        self.validate()?;
        let (h, l, v) = (self.hidden_size, self.num_hidden_layers, self.vocab_size);
        let mut shapes = Vec::new();
        for role in LAYER_ROLES {
            shapes.push((role, self.site_shape(role)?));
        }
        let shape_of = |role| {
            shapes.iter().find(|(r, _)| *r == role).map(|(_, s)| *s).unwrap_or((0, 0, false))
        };
        let linear_sites = BackboneSpec::layer_linear_sites(l, &LAYER_ROLES, |site| {
            let (d_in, d_out, bias) = shape_of(site.role);
            (d_in, d_out, bias, hf_module(site))
        });
        let mut norm_sites: Vec<_> = layer_norm_sites(l, h, NormKind::RmsNorm).collect();
        norm_sites.push(norm_site(None, NormRole::Final, h, NormKind::RmsNorm));
        // Projections (+ biases) and the two RMSNorm scales of a layer.
        let per_layer: i64 = shapes
            .iter()
            .map(|(_, (d_in, d_out, bias))| d_in * d_out + if *bias { *d_out } else { 0 })
            .sum::<i64>()
            + 2 * h;
        let head = if capabilities.lm_head && !self.tie_word_embeddings { v * h } else { 0 };
        Ok(BackboneSpec {
            model_type: self.family()?.model_type().into(),
            arch: Arch::CausalDecoder,
            hidden: h,
            n_layers: l,
            n_heads: self.num_attention_heads,
            n_kv_heads: self.kv_heads(),
            head_dim: self.head_size(),
            intermediate: self.intermediate_size,
            vocab: v,
            type_vocab: 0,
            max_positions: self.max_position_embeddings,
            pad_id: self.pad_id(),
            bos_id: self.bos_token_id,
            eos_id: self.eos_id(),
            capabilities,
            linear_sites,
            norm_sites,
            hf_names: HfNames { base_prefix: "model.".into(), peft_task_type: "CAUSAL_LM".into() },
            total_params: v * h + per_layer * l as i64 + h + head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(json: &str) -> LlamaConfig {
        LlamaConfig::from_json(serde_json::from_str(json).unwrap(), Path::new("config.json"))
            .unwrap()
    }

    #[test]
    fn legacy_and_transformers5_rope_fields_mean_the_same() {
        let legacy = parse(
            r#"{"model_type": "llama", "rope_theta": 500000.0, "max_position_embeddings": 131072,
                "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#,
        );
        let v5 = parse(
            r#"{"model_type": "llama", "max_position_embeddings": 131072,
                "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}}"#,
        );
        assert_eq!(legacy.rope().unwrap(), v5.rope().unwrap());
        assert_eq!(
            parse(r#"{"model_type": "llama"}"#).rope().unwrap(),
            (10000.0, RopeScaling::None)
        );
        let old_name =
            parse(r#"{"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}}"#);
        assert_eq!(old_name.rope().unwrap().1, RopeScaling::Linear { factor: 2.0 });
        let yarn = parse(
            r#"{"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}"#,
        );
        assert!(matches!(yarn.validate().unwrap_err(), Error::Unsupported { .. }));
    }

    #[test]
    fn model_type_defaults_and_windows() {
        let mistral = parse(r#"{"model_type": "mistral", "num_hidden_layers": 2}"#);
        assert_eq!((mistral.kv_heads(), mistral.intermediate_size), (8, 14336));
        assert_eq!(mistral.layer_window(1).unwrap(), Some(4096));
        let no_window = parse(r#"{"model_type": "mistral", "sliding_window": null}"#);
        assert_eq!(no_window.layer_window(0).unwrap(), None);
        let qwen = parse(
            r#"{"model_type": "qwen2", "num_hidden_layers": 4, "use_sliding_window": true,
                "sliding_window": 16, "max_window_layers": 2}"#,
        );
        assert_eq!(qwen.vocab_size, 151936);
        assert_eq!(qwen.eos_id(), None);
        let windows: Vec<_> = (0..4).map(|l| qwen.layer_window(l).unwrap()).collect();
        assert_eq!(windows, [None, None, Some(16), Some(16)]);
        assert_eq!(qwen.biases().unwrap(), (true, false, false));
        let llama3 = parse(r#"{"model_type": "llama", "eos_token_id": [128001, 128009]}"#);
        assert_eq!((llama3.eos_id(), llama3.pad_id()), (Some(128001), 128001));
    }

    #[test]
    fn the_default_is_what_serde_gives_an_empty_llama_config() {
        assert_eq!(
            LlamaConfig::default(),
            parse(r#"{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}"#)
        );
        // SmolLM2-135M's shape from fields (as a GGUF loader would set them).
        let smol = LlamaConfig {
            vocab_size: 49152,
            hidden_size: 576,
            intermediate_size: 1536,
            num_hidden_layers: 30,
            num_attention_heads: 9,
            num_key_value_heads: Some(3),
            tie_word_embeddings: true,
            rope_theta: Some(100000.0),
            ..LlamaConfig::default()
        };
        assert_eq!(smol.spec(smol.capabilities(false)).unwrap().total_params, 134_515_008);
    }

    #[test]
    fn bad_values_are_typed_errors() {
        for json in [
            r#"{"model_type": "llama", "num_attention_heads": 32, "num_key_value_heads": 5}"#,
            r#"{"model_type": "llama", "hidden_size": 100, "num_attention_heads": 3}"#,
            r#"{"model_type": "llama", "rms_norm_eps": 0.0}"#,
            r#"{"model_type": "llama", "pad_token_id": 40000}"#,
            r#"{"model_type": "qwen2", "num_hidden_layers": 2, "layer_types": ["full_attention"]}"#,
            r#"{"model_type": "mistral", "sliding_window": 0}"#,
        ] {
            let err = parse(json).validate().unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{json}: {err}");
        }
        assert!(matches!(
            parse(r#"{"model_type": "gemma"}"#).validate().unwrap_err(),
            Error::Unsupported { .. }
        ));
    }
}
