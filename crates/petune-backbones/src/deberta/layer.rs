//! One post-LN DeBERTa (v1) layer: disentangled attention → `attention.output.dense` →
//! dropout → LayerNorm(+x), then `intermediate.dense` → activation → `output.dense` →
//! dropout → LayerNorm(+x).
//!
//! Port of `transformers/models/deberta/modeling_deberta.py::{DebertaLayer,
//! DebertaAttention, DebertaSelfOutput, DebertaIntermediate, DebertaOutput}`
//! (transformers 5.24). `DebertaLayerNorm` puts epsilon inside the square root of the
//! biased variance, which is what `layer_norm` computes. Sites fire in the order of
//! docs/sites.md: Query, Key, Value, AttnOut, sublayer(Attn), norm(Attn), FfnUp,
//! FfnDown, sublayer(Ffn), norm(Ffn).

use petune_core::{
    Hooks, KvPrefix, LinearRole, LinearSite, NormRole, NormSite, Result, Sublayer, SublayerSite,
};
use tch::{nn, Tensor};

use super::attention::{DisentangledSelfAttention, RelativePositions};
use super::config::DebertaConfig;
use crate::common::layers::{dropout, Activation, LayerNorm, Linear};
use crate::common::weights::WeightSource;

/// A DeBERTa transformer layer.
#[derive(Debug)]
pub struct DebertaLayer {
    index: usize,
    attention: DisentangledSelfAttention,
    attn_out: Linear,
    attn_ln: LayerNorm,
    ffn_up: Linear,
    ffn_down: Linear,
    ffn_ln: LayerNorm,
    act: Activation,
    hidden_dropout: f64,
}

impl DebertaLayer {
    /// Loads `p` = `deberta.encoder.layer.{index}` with HF's key names.
    pub fn load(
        src: &mut WeightSource,
        p: &nn::Path,
        cfg: &DebertaConfig,
        index: usize,
    ) -> Result<DebertaLayer> {
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let site = |role| LinearSite { layer: index, role };
        let norm = |role| NormSite { layer: Some(index), role };
        let att = p / "attention";
        let self_out = &att / "output";
        let out = p / "output";
        Ok(DebertaLayer {
            index,
            attention: DisentangledSelfAttention::load(src, &(&att / "self"), cfg, index),
            attn_out: Linear::load(src, &(&self_out / "dense"), h, h, true)
                .at(site(LinearRole::AttnOut)),
            attn_ln: LayerNorm::load(src, &(&self_out / "LayerNorm"), h, eps)
                .at(norm(NormRole::Attn)),
            ffn_up: Linear::load(src, &(p / "intermediate" / "dense"), h, i, true)
                .at(site(LinearRole::FfnUp)),
            ffn_down: Linear::load(src, &(&out / "dense"), i, h, true)
                .at(site(LinearRole::FfnDown)),
            ffn_ln: LayerNorm::load(src, &(&out / "LayerNorm"), h, eps).at(norm(NormRole::Ffn)),
            act: Activation::from_hf(&cfg.hidden_act, "hidden_act")?,
            hidden_dropout: cfg.hidden_dropout_prob,
        })
    }

    /// Runs the layer on `x` `[B, T, H]`; see [`DisentangledSelfAttention::forward`]
    /// for `allowed`, `rel` and `prefix`.
    pub fn forward(
        &self,
        x: &Tensor,
        allowed: &Tensor,
        rel: Option<(&RelativePositions, &Tensor)>,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        let ctx = self.attention.forward(x, allowed, rel, prefix, hooks, train); // [B, T, H]
        let a = dropout(self.attn_out.forward(&ctx, hooks), self.hidden_dropout, train);
        let a = hooks.sublayer_out(SublayerSite { layer: self.index, kind: Sublayer::Attn }, a);
        let attended = self.attn_ln.forward(&(a + x), hooks);
        let up = self.act.forward(&self.ffn_up.forward(&attended, hooks)); // [B, T, I]
        let down = dropout(self.ffn_down.forward(&up, hooks), self.hidden_dropout, train);
        let down =
            hooks.sublayer_out(SublayerSite { layer: self.index, kind: Sublayer::Ffn }, down);
        self.ffn_ln.forward(&(down + &attended), hooks)
    }
}
