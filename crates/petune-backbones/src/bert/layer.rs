//! One post-LN BERT/RoBERTa transformer layer (`BertLayer` in transformers'
//! modeling_bert.py): self-attention → dense → dropout → (+x) LayerNorm, then
//! dense → activation → dense → dropout → (+x) LayerNorm, firing the sites of
//! docs/sites.md in that order.

use petune_core::{
    Hooks, KvPrefix, LinearRole, LinearSite, NormRole, NormSite, Result, Sublayer, SublayerSite,
};
use tch::{nn, Tensor};

use super::config::BertConfig;
use crate::common::attention::{attend, check_prefix, merge_heads, split_heads};
use crate::common::layers::{dropout, Activation, LayerNorm, Linear};
use crate::common::weights::WeightSource;

/// A transformer layer.
#[derive(Debug)]
pub struct BertLayer {
    index: usize,
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    ffn_up: Linear,
    ffn_down: Linear,
    ffn_ln: LayerNorm,
    act: Activation,
    heads: i64,
    hidden_dropout: f64,
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
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let site = |role| LinearSite { layer: index, role };
        let att = p / "attention";
        let slf = &att / "self";
        let out = &att / "output";
        Ok(BertLayer {
            index,
            query: Linear::load(src, &(&slf / "query"), h, h, true).at(site(LinearRole::Query)),
            key: Linear::load(src, &(&slf / "key"), h, h, true).at(site(LinearRole::Key)),
            value: Linear::load(src, &(&slf / "value"), h, h, true).at(site(LinearRole::Value)),
            attn_out: Linear::load(src, &(&out / "dense"), h, h, true)
                .at(site(LinearRole::AttnOut)),
            attn_ln: LayerNorm::load(src, &(&out / "LayerNorm"), h, eps)
                .at(NormSite { layer: Some(index), role: NormRole::Attn }),
            ffn_up: Linear::load(src, &(p / "intermediate" / "dense"), h, i, true)
                .at(site(LinearRole::FfnUp)),
            ffn_down: Linear::load(src, &(p / "output" / "dense"), i, h, true)
                .at(site(LinearRole::FfnDown)),
            ffn_ln: LayerNorm::load(src, &(p / "output" / "LayerNorm"), h, eps)
                .at(NormSite { layer: Some(index), role: NormRole::Ffn }),
            act: Activation::from_hf(&cfg.hidden_act, "hidden_act")?,
            heads: cfg.num_attention_heads,
            hidden_dropout: cfg.hidden_dropout_prob,
            attn_dropout: cfg.attention_probs_dropout_prob,
        })
    }

    /// Runs the layer on `x` `[B, T, H]` with attention bias `[B, 1, 1, P + T]`.
    pub fn forward(
        &self,
        x: &Tensor,
        bias: &Tensor,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Result<Tensor> {
        let b = x.size()[0];
        if let Some(p) = prefix {
            check_prefix(p, b, self.heads, x.size()[2] / self.heads, self.index)?;
        }
        let q = split_heads(&self.query.forward(x, hooks), self.heads); // [B, nh, T, d]
        let k = split_heads(&self.key.forward(x, hooks), self.heads);
        let v = split_heads(&self.value.forward(x, hooks), self.heads);
        let p_drop = if train { self.attn_dropout } else { 0.0 };
        let ctx = merge_heads(&attend(&q, k, v, prefix, bias, p_drop)); // [B, T, H]
        let a = dropout(self.attn_out.forward(&ctx, hooks), self.hidden_dropout, train);
        let a = hooks.sublayer_out(SublayerSite { layer: self.index, kind: Sublayer::Attn }, a);
        let x1 = self.attn_ln.forward(&(a + x), hooks);
        let inner = self.act.forward(&self.ffn_up.forward(&x1, hooks));
        let o = dropout(self.ffn_down.forward(&inner, hooks), self.hidden_dropout, train);
        let o = hooks.sublayer_out(SublayerSite { layer: self.index, kind: Sublayer::Ffn }, o);
        Ok(self.ffn_ln.forward(&(o + x1), hooks))
    }
}
