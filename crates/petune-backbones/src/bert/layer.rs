//! One post-LN BERT/RoBERTa transformer layer (`BertLayer` in transformers'
//! modeling_bert.py): self-attention → dense → dropout → (+x) LayerNorm, then
//! dense → activation → dense → dropout → (+x) LayerNorm, firing the sites of
//! docs/sites.md in that order. Everything after self-attention is DeBERTa's too
//! ([`PostLnSublayers`]).

use petune_core::{Hooks, KvPrefix, LinearRole, LinearSite, Result};
use tch::{nn, Tensor};

use super::config::BertConfig;
use crate::common::attention::{attend, merge_heads, split_heads};
use crate::common::layers::Linear;
use crate::common::post_ln::PostLnSublayers;
use crate::common::weights::WeightSource;

/// A transformer layer.
#[derive(Debug)]
pub struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    outputs: PostLnSublayers,
    heads: i64,
    attn_dropout: f64,
}

impl BertLayer {
    /// Loads `p` = `encoder.layer.{index}` with HF's key names.
    pub fn load(
        src: &mut WeightSource,
        p: &nn::Path,
        cfg: &BertConfig,
        index: usize,
    ) -> Result<BertLayer> {
        let h = cfg.hidden_size;
        let site = |role| LinearSite { layer: index, role };
        let slf = p / "attention" / "self";
        Ok(BertLayer {
            query: Linear::load(src, &(&slf / "query"), h, h, true).at(site(LinearRole::Query)),
            key: Linear::load(src, &(&slf / "key"), h, h, true).at(site(LinearRole::Key)),
            value: Linear::load(src, &(&slf / "value"), h, h, true).at(site(LinearRole::Value)),
            outputs: PostLnSublayers::load(
                src,
                p,
                index,
                [h, cfg.intermediate_size],
                cfg.layer_norm_eps,
                &cfg.hidden_act,
                cfg.hidden_dropout_prob,
            )?,
            heads: cfg.num_attention_heads,
            attn_dropout: cfg.attention_probs_dropout_prob,
        })
    }

    /// Adds `delta` `[out, in]` to the weight of `site` (one of this layer's roles).
    pub fn add_to_linear_weight(&self, site: LinearSite, delta: &Tensor) -> Result<()> {
        let linear = match site.role {
            LinearRole::Query => &self.query,
            LinearRole::Key => &self.key,
            LinearRole::Value => &self.value,
            role => self.outputs.linear(role).ok_or_else(|| {
                petune_core::Error::config("site", format!("BERT has no {role:?} projection"))
            })?,
        };
        linear.add_to_weight(site, delta)
    }

    /// Runs the layer on `x` `[B, T, H]` with attention bias `[B, 1, 1, P + T]` (none when
    /// nothing is masked) and an
    /// already checked prefix.
    pub fn forward(
        &self,
        x: &Tensor,
        bias: Option<&Tensor>,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        self.forward_queries(x, x, bias, prefix, hooks, train)
    }

    /// The layer's output `[B, Tq, H]` for the query tokens `xq` `[B, Tq, H]` attending
    /// every token of `x` `[B, T, H]`: everything after the key and value projections
    /// is row-wise, so `xq` = a few rows of `x` gives those rows of [`BertLayer::forward`]
    /// (the bias is the same: it masks keys, not queries).
    pub fn forward_queries(
        &self,
        x: &Tensor,
        xq: &Tensor,
        bias: Option<&Tensor>,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        let q = split_heads(&self.query.forward(xq, hooks), self.heads); // [B, nh, Tq, d]
        let k = split_heads(&self.key.forward(x, hooks), self.heads); // [B, nh, T, d]
        let v = split_heads(&self.value.forward(x, hooks), self.heads);
        let p_drop = if train { self.attn_dropout } else { 0.0 };
        let ctx = merge_heads(&attend(&q, k, v, prefix, bias, p_drop, None)); // [B, Tq, H]
        self.outputs.forward(xq, &ctx, hooks, train)
    }
}
