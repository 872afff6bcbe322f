//! What follows self-attention in a post-LN encoder layer, identical in BERT
//! (`BertSelfOutput`, `BertIntermediate`, `BertOutput`) and DeBERTa v1 (`DebertaSelfOutput`,
//! `DebertaIntermediate`, `DebertaOutput`): `attention.output.dense` → dropout →
//! LayerNorm(+x), then `intermediate.dense` → activation → `output.dense` → dropout →
//! LayerNorm(+x), under the same Hugging Face key names.
//!
//! Sites fire in the order of docs/sites.md after the attention's own Query, Key and
//! Value: AttnOut, sublayer(Attn), norm(Attn), FfnUp, FfnDown, sublayer(Ffn), norm(Ffn).

use petune_core::{Hooks, LinearRole, LinearSite, NormRole, NormSite, Result, Sublayer};
use tch::{nn, Tensor};

use super::layers::{sublayer_out, Activation, LayerNorm, Linear};
use super::weights::WeightSource;

/// The attention output and the FFN of one post-LN encoder layer.
#[derive(Debug)]
pub struct PostLnSublayers {
    index: usize,
    attn_out: Linear,
    attn_ln: LayerNorm,
    ffn_up: Linear,
    ffn_down: Linear,
    ffn_ln: LayerNorm,
    act: Activation,
    hidden_dropout: f64,
}

impl PostLnSublayers {
    /// Loads `p.attention.output.{dense, LayerNorm}`, `p.intermediate.dense` and
    /// `p.output.{dense, LayerNorm}` of layer `index` (`p` = `encoder.layer.{index}`);
    /// `[h, i]` are the hidden and FFN sizes, `hidden_act` the config's activation name.
    pub fn load(
        src: &mut WeightSource,
        p: &nn::Path,
        index: usize,
        [h, i]: [i64; 2],
        eps: f64,
        hidden_act: &str,
        hidden_dropout: f64,
    ) -> Result<PostLnSublayers> {
        let site = |role| LinearSite { layer: index, role };
        let norm = |role| NormSite { layer: Some(index), role };
        let self_out = p / "attention" / "output";
        let out = p / "output";
        Ok(PostLnSublayers {
            index,
            attn_out: Linear::load(src, &(&self_out / "dense"), h, h, true)
                .at(site(LinearRole::AttnOut)),
            attn_ln: LayerNorm::load(src, &(&self_out / "LayerNorm"), h, eps)
                .at(norm(NormRole::Attn)),
            ffn_up: Linear::load(src, &(p / "intermediate" / "dense"), h, i, true)
                .at(site(LinearRole::FfnUp)),
            ffn_down: Linear::load(src, &(&out / "dense"), i, h, true)
                .at(site(LinearRole::FfnDown)),
            ffn_ln: LayerNorm::load(src, &(&out / "LayerNorm"), h, eps).at(norm(NormRole::Ffn)),
            act: Activation::from_hf(hidden_act, "hidden_act")?,
            hidden_dropout,
        })
    }

    /// The projection of `role` (AttnOut, FfnUp or FfnDown), if it lives here.
    pub fn linear(&self, role: LinearRole) -> Option<&Linear> {
        match role {
            LinearRole::AttnOut => Some(&self.attn_out),
            LinearRole::FfnUp => Some(&self.ffn_up),
            LinearRole::FfnDown => Some(&self.ffn_down),
            _ => None,
        }
    }

    /// The layer's output `[B, T, H]` from its input `x` and the attention context
    /// `ctx` (both `[B, T, H]`).
    pub fn forward(&self, x: &Tensor, ctx: &Tensor, hooks: &dyn Hooks, train: bool) -> Tensor {
        let (p, layer) = (self.hidden_dropout, self.index);
        let a =
            sublayer_out(self.attn_out.forward(ctx, hooks), p, train, hooks, layer, Sublayer::Attn);
        let attended = self.attn_ln.forward(&(a + x), hooks);
        let up = self.act.forward(&self.ffn_up.forward(&attended, hooks)); // [B, T, I]
        let down =
            sublayer_out(self.ffn_down.forward(&up, hooks), p, train, hooks, layer, Sublayer::Ffn);
        self.ffn_ln.forward(&(down + &attended), hooks)
    }
}
