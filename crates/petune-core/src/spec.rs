//! What a backbone is, independent of its weights (design.md §3, `BackboneSpec`).
//!
//! A spec is computed from a checkpoint's `config.json` alone, so parameter counts and
//! the site inventory (with each site's Hugging Face module name) are known before (or
//! without) loading any weights. Which family a backbone belongs to is its Hugging Face
//! `model_type`, a name and nothing to dispatch on: methods read sizes, capabilities and
//! the inventory, never the family.

use serde::{Deserialize, Serialize};

use crate::site::{
    HfModule, HfNames, LinearRole, LinearSite, LinearSiteInfo, NormSiteInfo, Sublayer, SublayerSite,
};

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
    /// The family's Hugging Face `model_type` (`bert`, `roberta`, `deberta`, `gpt2`,
    /// `llama`, `mistral`, `qwen2`); for display and sanity checks only.
    pub model_type: String,
    /// Attention pattern.
    pub arch: Arch,
    /// Hidden size `d`.
    pub hidden: i64,
    /// Number of transformer layers `L`.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: i64,
    /// Key/value heads: `n_heads` for multi-head attention, fewer for grouped-query
    /// attention (each serves `n_heads / n_kv_heads` query heads). Key and Value sites
    /// and attention prefixes are `n_kv_heads · head_dim` wide.
    pub n_kv_heads: i64,
    /// Size of one head (`hidden / n_heads` unless the config says otherwise).
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
    /// Beginning-of-sequence id (`bos_token_id` of `config.json`), when the family has one.
    pub bos_id: Option<i64>,
    /// End-of-sequence id (the first `eos_token_id`), when the family has one.
    pub eos_id: Option<i64>,
    /// Optional parts present.
    pub capabilities: Capabilities,
    /// Every linear site, layer by layer in execution order.
    pub linear_sites: Vec<LinearSiteInfo>,
    /// Every norm site, in execution order.
    pub norm_sites: Vec<NormSiteInfo>,
    /// Checkpoint naming facts beyond the per-site modules.
    pub hf_names: HfNames,
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

    /// The inventory of `n_layers` layers running `roles` in that order, each site's
    /// `(d_in, d_out, has_bias, module)` given by `describe` (the family's sizes, biases
    /// and Hugging Face module names).
    pub fn layer_linear_sites(
        n_layers: usize,
        roles: &[LinearRole],
        describe: impl Fn(LinearSite) -> (i64, i64, bool, HfModule),
    ) -> Vec<LinearSiteInfo> {
        (0..n_layers)
            .flat_map(|layer| roles.iter().map(move |&role| LinearSite { layer, role }))
            .map(|site| {
                let (d_in, d_out, has_bias, hf_module) = describe(site);
                LinearSiteInfo { site, d_in, d_out, has_bias, hf_module }
            })
            .collect()
    }

    /// `(d_in, d_out)` of a role in a layer whose projections are all `hidden` wide
    /// except the FFN's `intermediate` (BERT, RoBERTa, DeBERTa, GPT-2).
    pub fn square_attention_sizes(role: LinearRole, hidden: i64, intermediate: i64) -> (i64, i64) {
        match role {
            LinearRole::FfnGate | LinearRole::FfnUp => (hidden, intermediate),
            LinearRole::FfnDown => (intermediate, hidden),
            _ => (hidden, hidden),
        }
    }

    /// Width of the keys and values (and of each attention-prefix slot): `n_kv_heads · head_dim`.
    pub fn kv_dim(&self) -> i64 {
        self.n_kv_heads * self.head_dim
    }

    /// The Hugging Face module of `site`, or a typed error when the backbone has no such
    /// site or the site has no name of its own (a fused layout names cannot express).
    pub fn hf_module(&self, site: LinearSite) -> crate::Result<&HfModule> {
        let info = self.linear_site(site).ok_or_else(|| crate::Error::Incompatible {
            method: "module names".into(),
            backbone: self.describe(),
            reason: format!("the backbone has no {site:?} site"),
        })?;
        match &info.hf_module {
            HfModule::Unaddressable { path, reason } => Err(crate::Error::Incompatible {
                method: "module names".into(),
                backbone: self.describe(),
                reason: format!("{site:?} lives in `{path}`: {reason}"),
            }),
            m => Ok(m),
        }
    }

    /// A short human-readable name, e.g. `roberta (24 layers, d=1024)`.
    pub fn describe(&self) -> String {
        format!("{} ({} layers, d={})", self.model_type, self.n_layers, self.hidden)
    }
}
