//! What a backbone is, independent of its weights (design.md §3, `BackboneSpec`).
//!
//! A spec is computed from a checkpoint's `config.json` alone, so parameter counts and
//! the site inventory are known before (or without) loading any weights.

use serde::{Deserialize, Serialize};

use crate::site::{LinearRole, LinearSite, LinearSiteInfo, NormSiteInfo, Sublayer, SublayerSite};

/// Model family: decides embeddings, attention flavour and checkpoint key layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// BERT and its descendants (MiniLM, splade...).
    Bert,
    /// RoBERTa (BERT layers, RoBERTa position ids).
    Roberta,
    /// DeBERTa v1.
    Deberta,
    /// GPT-2.
    Gpt2,
}

impl Family {
    /// The `model_type` string Hugging Face uses.
    pub fn hf_model_type(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::Deberta => "deberta",
            Family::Gpt2 => "gpt2",
        }
    }
}

/// Attention pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Bidirectional encoder.
    Encoder,
    /// Causal (left-to-right) decoder.
    CausalDecoder,
}

/// Optional parts and abilities of a loaded backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// Per-layer attention prefixes (P-tuning v2) are supported.
    pub attn_prefix: bool,
    /// The `input_embeds` site exists (prompts prepended to word embeddings).
    pub input_embeds: bool,
    /// The checkpoint has an LM / MLM head (`Backbone::lm_logits` works).
    pub lm_head: bool,
    /// The checkpoint has a pooler (BERT's dense + tanh on `[CLS]`).
    pub pooler: bool,
}

/// A backbone's shape, site inventory and parameter count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneSpec {
    /// Model family.
    pub family: Family,
    /// Attention pattern.
    pub arch: Arch,
    /// Hidden size `d`.
    pub hidden: i64,
    /// Number of transformer layers `L`.
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: i64,
    /// Size of one head (`hidden / n_heads`).
    pub head_dim: i64,
    /// FFN inner size.
    pub intermediate: i64,
    /// Vocabulary size.
    pub vocab: i64,
    /// Token-type (segment) vocabulary size; 0 when the model has no segment
    /// embeddings or ignores token types (GPT-2). Inputs are checked against it
    /// ([`crate::BackboneInput::check_against`]).
    #[serde(default)]
    pub type_vocab: i64,
    /// Longest input the position embeddings allow, in tokens.
    pub max_positions: i64,
    /// Id of the padding token.
    pub pad_id: i64,
    /// Optional parts present.
    pub capabilities: Capabilities,
    /// Every linear site, layer by layer in execution order.
    pub linear_sites: Vec<LinearSiteInfo>,
    /// Every norm site, in execution order.
    pub norm_sites: Vec<NormSiteInfo>,
    /// Number of parameters of the backbone as loaded (heads included, tied weights once).
    pub total_params: i64,
}

impl BackboneSpec {
    /// The sublayer sites (attention and FFN of every layer), in execution order.
    pub fn sublayer_sites(&self) -> Vec<SublayerSite> {
        (0..self.n_layers)
            .flat_map(|layer| {
                [Sublayer::Attn, Sublayer::Ffn]
                    .into_iter()
                    .map(move |kind| SublayerSite { layer, kind })
            })
            .collect()
    }

    /// The info for one linear site, if the backbone has it.
    pub fn linear_site(&self, site: LinearSite) -> Option<&LinearSiteInfo> {
        self.linear_sites.iter().find(|s| s.site == site)
    }

    /// The standard inventory of a transformer layer stack whose six projections are
    /// all `hidden`/`intermediate` linears (every family petune ships has this shape;
    /// only which ones carry a bias differs).
    pub fn standard_linear_sites(
        n_layers: usize,
        hidden: i64,
        intermediate: i64,
        has_bias: impl Fn(LinearRole) -> bool,
    ) -> Vec<LinearSiteInfo> {
        (0..n_layers)
            .flat_map(|layer| LinearRole::ALL.into_iter().map(move |role| (layer, role)))
            .map(|(layer, role)| {
                let (d_in, d_out) = match role {
                    LinearRole::FfnUp => (hidden, intermediate),
                    LinearRole::FfnDown => (intermediate, hidden),
                    _ => (hidden, hidden),
                };
                LinearSiteInfo {
                    site: LinearSite { layer, role },
                    d_in,
                    d_out,
                    has_bias: has_bias(role),
                }
            })
            .collect()
    }

    /// A short human-readable name, e.g. `roberta (24 layers, d=1024)`.
    pub fn describe(&self) -> String {
        format!("{} ({} layers, d={})", self.family.hf_model_type(), self.n_layers, self.hidden)
    }
}
