//! `config.json` of BERT and RoBERTa checkpoints, field for field as Hugging Face
//! writes them (`transformers` `BertConfig` / `RobertaConfig`), and its validation.

use petune_core::{
    Arch, BackboneSpec, Capabilities, Error, HfModule, HfNames, LinearRole, LinearSite, NormKind,
    NormRole, Result,
};
use serde::{Deserialize, Serialize};

use crate::common::config::{
    check_dropouts, check_pad_id, check_sizes, default_dropout, default_gelu,
    default_max_positions, default_true, layer_norm_sites, norm_site,
};
use crate::common::layers::Activation;
use crate::family::Family;

/// The module of `site` in a bare `BertModel` / `RobertaModel` (the family's one mapping
/// from sites to checkpoint and PEFT names).
pub fn hf_module(site: LinearSite) -> HfModule {
    let inside = match site.role {
        LinearRole::Query => "attention.self.query",
        LinearRole::Key => "attention.self.key",
        LinearRole::Value => "attention.self.value",
        LinearRole::AttnOut => "attention.output.dense",
        LinearRole::FfnUp => "intermediate.dense",
        LinearRole::FfnDown => "output.dense",
        LinearRole::FfnGate => {
            return HfModule::Unaddressable {
                path: format!("encoder.layer.{}", site.layer),
                reason: "BERT's FFN has no gate".into(),
            }
        }
    };
    HfModule::linear(format!("encoder.layer.{}.{inside}", site.layer))
}

fn default_eps() -> f64 {
    1e-12
}
fn default_type_vocab() -> i64 {
    2
}

/// A BERT-family `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BertConfig {
    /// `bert` or `roberta` (others are rejected).
    pub model_type: String,
    /// e.g. `["BertForMaskedLM"]`: tells whether the checkpoint should have an MLM head.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Hidden size.
    pub hidden_size: i64,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: i64,
    /// FFN inner size.
    pub intermediate_size: i64,
    /// FFN activation.
    #[serde(default = "default_gelu")]
    pub hidden_act: String,
    /// Dropout after projections and embeddings.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Size of the position table.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: i64,
    /// Segment vocabulary.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: i64,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Padding id (RoBERTa's position ids start after it).
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    /// Only `absolute` is supported.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// MLM decoder tied to the word embeddings (HF default true).
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

impl BertConfig {
    /// The family this config describes.
    pub fn family(&self) -> Result<Family> {
        match Family::from_model_type(&self.model_type) {
            Ok(f @ (Family::Bert | Family::Roberta)) => Ok(f),
            _ => Err(Error::Unsupported {
                what: format!("model_type `{}`", self.model_type),
                msg: "the BERT backbone loads `bert` and `roberta` checkpoints".into(),
            }),
        }
    }

    /// Checks every value petune relies on.
    pub fn validate(&self) -> Result<()> {
        self.family()?;
        check_sizes(
            &[
                ("vocab_size", self.vocab_size),
                ("hidden_size", self.hidden_size),
                ("num_attention_heads", self.num_attention_heads),
                ("intermediate_size", self.intermediate_size),
                ("max_position_embeddings", self.max_position_embeddings),
            ],
            ("num_hidden_layers", self.num_hidden_layers),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
        )?;
        if !(0..=crate::common::config::MAX_SIZE).contains(&self.type_vocab_size) {
            return Err(Error::config("type_vocab_size", "must be in 0..=2^24"));
        }
        check_dropouts(&[
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
        ])?;
        if let Some(kind) = self.position_embedding_type.as_deref() {
            if kind != "absolute" {
                return Err(Error::Unsupported {
                    what: format!("position_embedding_type `{kind}`"),
                    msg: "only absolute position embeddings are implemented".into(),
                });
            }
        }
        Activation::from_hf(&self.hidden_act, "hidden_act")?;
        let pad = self.pad_id();
        check_pad_id(pad, self.vocab_size)?;
        if self.family()? == Family::Roberta && self.max_position_embeddings <= pad + 1 {
            return Err(Error::config(
                "max_position_embeddings",
                "too small for RoBERTa's padding offset",
            ));
        }
        Ok(())
    }

    /// Padding id (BERT default 0, RoBERTa default 1).
    pub fn pad_id(&self) -> i64 {
        self.pad_token_id.unwrap_or(if self.model_type == "bert" { 0 } else { 1 })
    }

    /// Longest input in tokens (RoBERTa loses `pad + 1` table rows to its offset).
    pub fn max_tokens(&self) -> i64 {
        match self.family() {
            Ok(Family::Roberta) => self.max_position_embeddings - self.pad_id() - 1,
            _ => self.max_position_embeddings,
        }
    }

    /// Optional parts the `architectures` field promises (used when no weights are read).
    pub fn declared_capabilities(&self) -> Capabilities {
        let mlm = self
            .architectures
            .iter()
            .any(|a| a.ends_with("ForMaskedLM") || a.ends_with("ForPreTraining"));
        let base = self.architectures.iter().any(|a| a == "BertModel" || a == "RobertaModel");
        Capabilities { attn_prefix: true, input_embeds: true, lm_head: mlm, pooler: base }
    }

    /// The spec for a backbone with the given optional parts.
    pub fn spec(&self, capabilities: Capabilities) -> Result<BackboneSpec> {
        self.validate()?;
        let (h, i, l, v) =
            (self.hidden_size, self.intermediate_size, self.num_hidden_layers, self.vocab_size);
        let linear_sites = BackboneSpec::layer_linear_sites(l, &LinearRole::PLAIN_FFN, |site| {
            let (d_in, d_out) = BackboneSpec::square_attention_sizes(site.role, h, i);
            (d_in, d_out, true, hf_module(site))
        });
        let mut norm_sites = vec![norm_site(None, NormRole::Embeddings, h, NormKind::LayerNorm)];
        norm_sites.extend(layer_norm_sites(l, h, NormKind::LayerNorm));
        let embeddings =
            v * h + self.max_position_embeddings * h + self.type_vocab_size * h + 2 * h;
        let per_layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h;
        let pooler = if capabilities.pooler { h * h + h } else { 0 };
        let head = if capabilities.lm_head {
            (h * h + h) + 2 * h + v + if self.tie_word_embeddings { 0 } else { v * h }
        } else {
            0
        };
        let family = self.family()?;
        Ok(BackboneSpec {
            model_type: family.model_type().into(),
            arch: Arch::Encoder,
            hidden: h,
            n_layers: l,
            n_heads: self.num_attention_heads,
            n_kv_heads: self.num_attention_heads,
            head_dim: h / self.num_attention_heads,
            intermediate: i,
            vocab: v,
            type_vocab: self.type_vocab_size,
            max_positions: self.max_tokens(),
            pad_id: self.pad_id(),
            bos_id: None,
            eos_id: None,
            capabilities,
            linear_sites,
            norm_sites,
            hf_names: HfNames {
                base_prefix: format!("{}.", family.model_type()),
                peft_task_type: "FEATURE_EXTRACTION".into(),
            },
            total_params: embeddings + per_layer * l as i64 + pooler + head,
        })
    }
}
