//! `config.json` of DeBERTa (v1) checkpoints, field for field as transformers writes
//! them (`transformers/models/deberta/configuration_deberta.py::DebertaConfig`), its
//! validation, and the spec (site inventory, parameter count) it implies.

use petune_core::{
    Arch, BackboneSpec, Capabilities, Error, HfModule, HfNames, LinearRole, LinearSite, NormKind,
    NormRole, Result,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::common::config::{
    check_dropouts, check_eps, check_pad_id, check_sizes, default_dropout, default_gelu,
    default_max_positions, default_true, layer_norm_sites, norm_site,
};
use crate::common::layers::Activation;
use crate::family::Family;

/// The module of `site` in a bare `DebertaModel`: Query, Key and Value live in the fused
/// `attention.self.in_proj`, whose rows interleave q/k/v per head, so no name addresses
/// one of them alone.
pub fn hf_module(site: LinearSite) -> HfModule {
    let layer = format!("encoder.layer.{}", site.layer);
    match site.role {
        LinearRole::Query | LinearRole::Key | LinearRole::Value => HfModule::Unaddressable {
            path: format!("{layer}.attention.self.in_proj"),
            reason: "DeBERTa's q/k/v live in one in_proj whose rows interleave per head".into(),
        },
        LinearRole::AttnOut => HfModule::linear(format!("{layer}.attention.output.dense")),
        LinearRole::FfnUp => HfModule::linear(format!("{layer}.intermediate.dense")),
        LinearRole::FfnDown => HfModule::linear(format!("{layer}.output.dense")),
        LinearRole::FfnGate => {
            HfModule::Unaddressable { path: layer, reason: "DeBERTa's FFN has no gate".into() }
        }
    }
}

fn default_eps() -> f64 {
    1e-7
}
fn default_max_rel() -> i64 {
    -1
}
fn default_pad() -> Option<i64> {
    Some(0)
}

/// One relative-attention term of disentangled attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PosAttType {
    /// Content-to-position: query content against relative-position keys.
    C2p,
    /// Position-to-content: relative-position queries against key content.
    P2c,
}

/// `pos_att_type` as HF accepts it: a list (`["c2p", "p2c"]`), a `|`-separated string
/// (`"c2p|p2c"`, lower-cased by `DebertaConfig.__post_init__`) or null. Unknown terms
/// are kept as strings so that validation can name them.
fn de_pos_att<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => Vec::new(),
        Some(Raw::List(v)) => v,
        Some(Raw::Text(s)) => s.to_lowercase().split('|').map(|x| x.trim().to_string()).collect(),
    })
}

/// Where a checkpoint keeps its MLM head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlmHeadLayout {
    /// `cls.predictions.{transform.dense, transform.LayerNorm, bias}`
    /// (`LegacyDebertaOnlyMLMHead`, selected by `legacy = true`, HF's default).
    Legacy,
    /// `lm_predictions.lm_head.{dense, LayerNorm, bias}` (`DebertaOnlyMLMHead`, the
    /// original Microsoft checkpoints' layout, `legacy = false`).
    LmPredictions,
}

impl MlmHeadLayout {
    /// The key prefix of the head's tensors.
    pub fn key_prefix(self) -> &'static str {
        match self {
            MlmHeadLayout::Legacy => "cls.predictions.",
            MlmHeadLayout::LmPredictions => "lm_predictions.lm_head.",
        }
    }
}

/// A DeBERTa (v1) `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DebertaConfig {
    /// `deberta` (v2/v3 checkpoints, `deberta-v2`, are rejected).
    pub model_type: String,
    /// e.g. `["DebertaForMaskedLM"]`.
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
    /// FFN (and MLM-transform) activation.
    #[serde(default = "default_gelu")]
    pub hidden_act: String,
    /// Dropout after projections and embeddings, and on the relative embeddings.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Size of the absolute position table (and the relative range when
    /// `max_relative_positions < 1`).
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: i64,
    /// Segment vocabulary (0 = no token-type embedding, DeBERTa's default).
    #[serde(default)]
    pub type_vocab_size: i64,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Disentangled relative attention on/off.
    #[serde(default)]
    pub relative_attention: bool,
    /// Relative range `k` (positions `[-k, k)`); `< 1` means `max_position_embeddings`.
    #[serde(default = "default_max_rel")]
    pub max_relative_positions: i64,
    /// Padding id (HF default 0).
    #[serde(default = "default_pad")]
    pub pad_token_id: Option<i64>,
    /// Add absolute position embeddings to the input (false in released checkpoints).
    #[serde(default = "default_true")]
    pub position_biased_input: bool,
    /// Relative terms, e.g. `["c2p", "p2c"]`.
    #[serde(default, deserialize_with = "de_pos_att")]
    pub pos_att_type: Vec<String>,
    /// Legacy (`cls.predictions`) vs `lm_predictions.lm_head` MLM head.
    #[serde(default = "default_true")]
    pub legacy: bool,
    /// MLM decoder tied to the word embeddings.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// Factorised embedding size (not supported unless equal to `hidden_size`).
    #[serde(default)]
    pub embedding_size: Option<i64>,
    /// Talking-heads attention (not supported).
    #[serde(default)]
    pub talking_head: bool,
}

impl DebertaConfig {
    /// The relative-attention terms, validated.
    pub fn pos_att_types(&self) -> Result<Vec<PosAttType>> {
        self.pos_att_type
            .iter()
            .map(|t| match t.as_str() {
                "c2p" => Ok(PosAttType::C2p),
                "p2c" => Ok(PosAttType::P2c),
                other => Err(Error::Unsupported {
                    what: format!("pos_att_type `{other}`"),
                    msg: "DeBERTa v1 computes c2p and p2c only".into(),
                }),
            })
            .collect()
    }

    /// Whether relative term `t` is computed (only with `relative_attention`).
    pub fn uses(&self, t: PosAttType) -> bool {
        self.relative_attention && self.pos_att_types().is_ok_and(|v| v.contains(&t))
    }

    /// HF's `scale_factor = 1 + len(pos_att_type)`: it counts the listed terms even
    /// when `relative_attention` is off.
    pub fn scale_factor(&self) -> i64 {
        1 + self.pos_att_type.len() as i64
    }

    /// The relative range `k` actually used (`max_relative_positions`, or
    /// `max_position_embeddings` when it is below 1).
    pub fn max_relative(&self) -> i64 {
        if self.max_relative_positions < 1 {
            self.max_position_embeddings
        } else {
            self.max_relative_positions
        }
    }

    /// Padding id (0 when the config says null).
    pub fn pad_id(&self) -> i64 {
        self.pad_token_id.unwrap_or(0)
    }

    /// The head layout `legacy` selects (used when the weights do not say).
    pub fn declared_head(&self) -> MlmHeadLayout {
        if self.legacy {
            MlmHeadLayout::Legacy
        } else {
            MlmHeadLayout::LmPredictions
        }
    }

    /// Checks every value petune relies on.
    pub fn validate(&self) -> Result<()> {
        if self.model_type != "deberta" {
            return Err(Error::Unsupported {
                what: format!("model_type `{}`", self.model_type),
                msg: "the DeBERTa backbone loads DeBERTa v1 (`deberta`) checkpoints".into(),
            });
        }
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
        check_eps("layer_norm_eps", self.layer_norm_eps)?;
        if let Some(e) = self.embedding_size {
            if e != self.hidden_size {
                return Err(Error::Unsupported {
                    what: format!("embedding_size {e} != hidden_size {}", self.hidden_size),
                    msg: "factorised embeddings (`embed_proj`) are not implemented".into(),
                });
            }
        }
        if self.talking_head {
            return Err(Error::Unsupported {
                what: "talking_head".into(),
                msg: "talking-heads attention is not implemented".into(),
            });
        }
        self.pos_att_types()?;
        Activation::from_hf(&self.hidden_act, "hidden_act")?;
        check_pad_id(self.pad_id(), self.vocab_size)?;
        Ok(())
    }

    /// Optional parts the `architectures` field promises (used when no weights are read).
    pub fn declared_capabilities(&self) -> Capabilities {
        let mlm = self.architectures.iter().any(|a| a.ends_with("ForMaskedLM"));
        Capabilities { attn_prefix: true, input_embeds: true, lm_head: mlm, pooler: false }
    }

    /// The spec for a backbone with the given optional parts and MLM head layout.
    pub fn spec(&self, capabilities: Capabilities, head: MlmHeadLayout) -> Result<BackboneSpec> {
        self.validate()?;
        let (h, i, l, v) =
            (self.hidden_size, self.intermediate_size, self.num_hidden_layers, self.vocab_size);
        // Q and V carry `q_bias` / `v_bias`; the fused `in_proj` has no K bias.
        let linear_sites = BackboneSpec::layer_linear_sites(l, &LinearRole::PLAIN_FFN, |site| {
            let (d_in, d_out) = BackboneSpec::square_attention_sizes(site.role, h, i);
            (d_in, d_out, site.role != LinearRole::Key, hf_module(site))
        });
        let mut norm_sites = vec![norm_site(None, NormRole::Embeddings, h, NormKind::LayerNorm)];
        norm_sites.extend(layer_norm_sites(l, h, NormKind::LayerNorm));
        let positions =
            if self.position_biased_input { self.max_position_embeddings * h } else { 0 };
        let embeddings = v * h + positions + self.type_vocab_size * h + 2 * h;
        let rel = if self.relative_attention { 2 * self.max_relative() * h } else { 0 };
        let c2p = if self.uses(PosAttType::C2p) { h * h } else { 0 };
        let p2c = if self.uses(PosAttType::P2c) { h * h + h } else { 0 };
        // in_proj + q_bias + v_bias, relative projections, attention output + LN,
        // FFN up and down + LN.
        let per_layer = (3 * h * h + 2 * h)
            + c2p
            + p2c
            + (h * h + h)
            + 2 * h
            + (h * i + i)
            + (i * h + h)
            + 2 * h;
        let untied_decoder = head == MlmHeadLayout::Legacy && !self.tie_word_embeddings;
        let head_params = if capabilities.lm_head {
            (h * h + h) + 2 * h + v + if untied_decoder { v * h } else { 0 }
        } else {
            0
        };
        Ok(BackboneSpec {
            model_type: Family::Deberta.model_type().into(),
            arch: Arch::Encoder,
            hidden: h,
            n_layers: l,
            n_heads: self.num_attention_heads,
            n_kv_heads: self.num_attention_heads,
            head_dim: h / self.num_attention_heads,
            intermediate: i,
            vocab: v,
            type_vocab: self.type_vocab_size,
            max_positions: self.max_position_embeddings,
            pad_id: self.pad_id(),
            bos_id: None,
            eos_id: None,
            capabilities,
            linear_sites,
            norm_sites,
            hf_names: HfNames {
                base_prefix: "deberta.".into(),
                peft_task_type: "FEATURE_EXTRACTION".into(),
            },
            total_params: embeddings + rel + per_layer * l as i64 + head_params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> DebertaConfig {
        let json = format!(
            r#"{{"model_type": "deberta", "vocab_size": 10, "hidden_size": 8,
                "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 16 {extra}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn pos_att_type_accepts_list_string_and_null() {
        assert_eq!(parse(r#", "pos_att_type": ["c2p", "p2c"]"#).pos_att_type, ["c2p", "p2c"]);
        assert_eq!(parse(r#", "pos_att_type": "P2C|c2p""#).pos_att_type, ["p2c", "c2p"]);
        assert!(parse(r#", "pos_att_type": null"#).pos_att_type.is_empty());
        assert_eq!(parse(r#", "pos_att_type": "c2p|p2c""#).scale_factor(), 3);
    }

    #[test]
    fn unknown_terms_and_v2_are_unsupported() {
        let err = parse(r#", "pos_att_type": ["p2p"]"#).validate().unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        let mut cfg = parse("");
        cfg.model_type = "deberta-v2".into();
        assert!(matches!(cfg.validate().unwrap_err(), Error::Unsupported { .. }));
        let mut cfg = parse("");
        cfg.hidden_size = 9;
        assert!(matches!(cfg.validate().unwrap_err(), Error::Config { .. }));
    }
}
