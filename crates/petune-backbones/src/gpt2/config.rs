//! `config.json` of GPT-2 checkpoints, field for field as transformers writes them
//! (`transformers/models/gpt2/configuration_gpt2.py::GPT2Config`, with its
//! `attribute_map` aliases), its validation, and the spec it implies.

use petune_core::{
    Arch, BackboneSpec, Capabilities, Error, HfModule, HfNames, LinearRole, LinearSite, NormKind,
    NormRole, Result,
};
use serde::{Deserialize, Serialize};

use crate::common::config::{
    check_dropouts, check_eps, check_pad_id, check_sizes, default_dropout, default_true,
    layer_norm_sites, norm_site,
};
use crate::common::layers::Activation;
use crate::family::Family;

/// The module of `site` in a bare `GPT2Model` with hidden size `h`: every projection is a
/// `Conv1D`, and Query, Key and Value are the three column blocks of `attn.c_attn`.
pub fn hf_module(site: LinearSite, h: i64) -> HfModule {
    let block = format!("h.{}", site.layer);
    let fused = |index: i64| HfModule::FusedBlock {
        path: format!("{block}.attn.c_attn"),
        conv1d: true,
        offset: index * h,
        len: h,
    };
    let own = |inside: &str| HfModule::Own { path: format!("{block}.{inside}"), conv1d: true };
    match site.role {
        LinearRole::Query => fused(0),
        LinearRole::Key => fused(1),
        LinearRole::Value => fused(2),
        LinearRole::AttnOut => own("attn.c_proj"),
        LinearRole::FfnUp => own("mlp.c_fc"),
        LinearRole::FfnDown => own("mlp.c_proj"),
        LinearRole::FfnGate => {
            HfModule::Unaddressable { path: block, reason: "GPT-2's MLP has no gate".into() }
        }
    }
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}
fn default_positions() -> i64 {
    1024
}
fn default_vocab() -> i64 {
    50257
}
fn default_embd() -> i64 {
    768
}
fn default_layers() -> usize {
    12
}
fn default_heads() -> i64 {
    12
}
fn default_special() -> Option<i64> {
    Some(50256)
}

/// A GPT-2 `config.json` (HF defaults are GPT-2 small's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// `gpt2`.
    pub model_type: String,
    /// e.g. `["GPT2LMHeadModel"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Vocabulary size.
    #[serde(default = "default_vocab")]
    pub vocab_size: i64,
    /// Size of the position table (`max_position_embeddings`).
    #[serde(default = "default_positions", alias = "max_position_embeddings")]
    pub n_positions: i64,
    /// Hidden size (`hidden_size`).
    #[serde(default = "default_embd", alias = "hidden_size")]
    pub n_embd: i64,
    /// Blocks (`num_hidden_layers`).
    #[serde(default = "default_layers", alias = "num_hidden_layers")]
    pub n_layer: usize,
    /// Attention heads (`num_attention_heads`).
    #[serde(default = "default_heads", alias = "num_attention_heads")]
    pub n_head: i64,
    /// MLP inner size; null means `4 · n_embd`.
    #[serde(default)]
    pub n_inner: Option<i64>,
    /// MLP activation.
    #[serde(default = "default_act")]
    pub activation_function: String,
    /// Dropout after the attention and MLP projections.
    #[serde(default = "default_dropout")]
    pub resid_pdrop: f64,
    /// Dropout on `wte + wpe`.
    #[serde(default = "default_dropout")]
    pub embd_pdrop: f64,
    /// Dropout on attention probabilities.
    #[serde(default = "default_dropout")]
    pub attn_pdrop: f64,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Scores divided by `sqrt(head_dim)`.
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    /// Scores further divided by `layer + 1`.
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Mixed-precision upcast of the scores (no effect in f32, see the module header).
    #[serde(default)]
    pub reorder_and_upcast_attn: bool,
    /// Cross-attention blocks (encoder-decoder use; not supported).
    #[serde(default)]
    pub add_cross_attention: bool,
    /// LM head tied to `wte`.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// Padding id: GPT-2 has none (null), petune then pads with 0 as the LPT authors do.
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    /// Beginning of sequence (`<|endoftext|>`, 50256).
    #[serde(default = "default_special")]
    pub bos_token_id: Option<i64>,
    /// End of sequence (`<|endoftext|>`, 50256).
    #[serde(default = "default_special")]
    pub eos_token_id: Option<i64>,
}

impl Gpt2Config {
    /// MLP inner size.
    pub fn inner(&self) -> i64 {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Padding id: the config's, else 0 (`config.pad_token_id = 0` in the LPT code;
    /// any id works, padded positions are masked).
    pub fn pad_id(&self) -> i64 {
        self.pad_token_id.unwrap_or(0)
    }

    /// Checks every value petune relies on.
    pub fn validate(&self) -> Result<()> {
        if self.model_type != "gpt2" {
            return Err(Error::Unsupported {
                what: format!("model_type `{}`", self.model_type),
                msg: "the GPT-2 backbone loads `gpt2` checkpoints".into(),
            });
        }
        check_sizes(
            &[
                ("vocab_size", self.vocab_size),
                ("n_positions", self.n_positions),
                ("n_embd", self.n_embd),
                ("n_head", self.n_head),
                ("n_inner", self.inner()),
            ],
            ("n_layer", self.n_layer),
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
        )?;
        check_dropouts(&[
            ("resid_pdrop", self.resid_pdrop),
            ("embd_pdrop", self.embd_pdrop),
            ("attn_pdrop", self.attn_pdrop),
        ])?;
        check_eps("layer_norm_epsilon", self.layer_norm_epsilon)?;
        if self.add_cross_attention {
            return Err(Error::Unsupported {
                what: "add_cross_attention".into(),
                msg: "GPT-2 cross-attention (encoder-decoder use) is not implemented".into(),
            });
        }
        Activation::from_hf(&self.activation_function, "activation_function")?;
        check_pad_id(self.pad_id(), self.vocab_size)?;
        Ok(())
    }

    /// The attention score scale of block `layer` (HF `GPT2Attention.scaling`).
    pub fn attn_scale(&self, layer: usize) -> f64 {
        let mut s = 1.0;
        if self.scale_attn_weights {
            s = ((self.n_embd / self.n_head) as f64).powf(-0.5);
        }
        if self.scale_attn_by_inverse_layer_idx {
            s /= (layer + 1) as f64;
        }
        s
    }

    /// Optional parts: a tied LM head always exists (it is `wte`); an untied one only
    /// when the checkpoint stores `lm_head.weight` (`has_untied_head`).
    pub fn capabilities(&self, has_untied_head: bool) -> Capabilities {
        Capabilities {
            attn_prefix: true,
            input_embeds: true,
            lm_head: self.tie_word_embeddings || has_untied_head,
            pooler: false,
        }
    }

    /// The spec for a backbone with the given optional parts.
    pub fn spec(&self, capabilities: Capabilities) -> Result<BackboneSpec> {
        self.validate()?;
        let (h, i, l, v) = (self.n_embd, self.inner(), self.n_layer, self.vocab_size);
        // Conv1D projections all carry a bias.
        let linear_sites = BackboneSpec::layer_linear_sites(l, &LinearRole::PLAIN_FFN, |site| {
            let (d_in, d_out) = BackboneSpec::square_attention_sizes(site.role, h, i);
            (d_in, d_out, true, hf_module(site, h))
        });
        let mut norm_sites: Vec<_> = layer_norm_sites(l, h, NormKind::LayerNorm).collect();
        norm_sites.push(norm_site(None, NormRole::Final, h, NormKind::LayerNorm));
        let embeddings = v * h + self.n_positions * h;
        // ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj.
        let per_layer =
            2 * h + (h * 3 * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h);
        let head = if capabilities.lm_head && !self.tie_word_embeddings { v * h } else { 0 };
        Ok(BackboneSpec {
            model_type: Family::Gpt2.model_type().into(),
            arch: Arch::CausalDecoder,
            hidden: h,
            n_layers: l,
            n_heads: self.n_head,
            n_kv_heads: self.n_head,
            head_dim: h / self.n_head,
            intermediate: i,
            vocab: v,
            type_vocab: 0,
            max_positions: self.n_positions,
            pad_id: self.pad_id(),
            bos_id: self.bos_token_id,
            eos_id: self.eos_token_id,
            capabilities,
            linear_sites,
            norm_sites,
            hf_names: HfNames {
                base_prefix: "transformer.".into(),
                peft_task_type: "FEATURE_EXTRACTION".into(),
            },
            total_params: embeddings + per_layer * l as i64 + 2 * h + head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_small_defaults_count_124m_parameters() {
        let cfg: Gpt2Config = serde_json::from_str(r#"{"model_type": "gpt2"}"#).unwrap();
        let spec = cfg.spec(cfg.capabilities(false)).unwrap();
        // HF's GPT2LMHeadModel("gpt2").num_parameters() with tied lm_head.
        assert_eq!(spec.total_params, 124_439_808);
        assert_eq!(spec.intermediate, 3072);
        assert_eq!(spec.pad_id, 0);
    }

    #[test]
    fn aliases_and_bad_values() {
        let cfg: Gpt2Config = serde_json::from_str(
            r#"{"model_type": "gpt2", "hidden_size": 64, "num_attention_heads": 3}"#,
        )
        .unwrap();
        assert_eq!(cfg.n_embd, 64);
        assert!(matches!(cfg.validate().unwrap_err(), Error::Config { .. }));
        let cfg: Gpt2Config =
            serde_json::from_str(r#"{"model_type": "gpt2", "add_cross_attention": true}"#).unwrap();
        assert!(matches!(cfg.validate().unwrap_err(), Error::Unsupported { .. }));
    }
}
