//! One pre-LN GPT-2 block: `x + attn(ln_1(x))`, then `+ mlp(ln_2(·))`.
//!
//! Port of `transformers/models/gpt2/modeling_gpt2.py::{GPT2Block, GPT2Attention,
//! GPT2MLP}` (transformers 5.24, eager attention). Weights keep HF's `Conv1D` layout
//! (`[in, out]`). The fused `attn.c_attn` output `[B, T, 3H]` is split as
//! `[Q_all | K_all | V_all]` (each head-major) and each part goes through its own
//! linear site with the same input `ln_1(x)`, so Query, Key and Value are separate
//! sites; `attn.c_proj` = AttnOut, `mlp.c_fc` = FfnUp, `mlp.c_proj` = FfnDown. Sites
//! fire as docs/sites.md orders them for a pre-LN decoder: norm(Attn) (`ln_1`), Query,
//! Key, Value, AttnOut, sublayer(Attn), norm(Ffn) (`ln_2`), FfnUp, FfnDown,
//! sublayer(Ffn).
//!
//! `reorder_and_upcast_attn` only changes the precision of the score computation under
//! mixed precision; petune computes scores in the weights' kind either way.

use petune_core::{
    Hooks, KvPrefix, LayerKv, LinearRole, LinearSite, NormRole, NormSite, Result, Sublayer,
};
use tch::{nn, Tensor};

use super::config::Gpt2Config;
use crate::common::attention::{attend, merge_heads, split_heads};
use crate::common::layers::{qkv_sites, sublayer_out, Activation, Conv1D, LayerNorm};
use crate::common::weights::WeightSource;

/// A GPT-2 block.
#[derive(Debug)]
pub struct Gpt2Block {
    index: usize,
    ln_1: LayerNorm,
    c_attn: Conv1D,
    c_proj: Conv1D,
    ln_2: LayerNorm,
    c_fc: Conv1D,
    mlp_proj: Conv1D,
    act: Activation,
    heads: i64,
    scale: f64,
    attn_dropout: f64,
    resid_dropout: f64,
}

impl Gpt2Block {
    /// Loads `p` = `transformer.h.{index}` with HF's key names.
    pub fn load(
        src: &mut WeightSource,
        p: &nn::Path,
        cfg: &Gpt2Config,
        index: usize,
    ) -> Result<Gpt2Block> {
        let (h, i, eps) = (cfg.n_embd, cfg.inner(), cfg.layer_norm_epsilon);
        let site = |role| LinearSite { layer: index, role };
        let norm = |role| NormSite { layer: Some(index), role };
        let attn = p / "attn";
        let mlp = p / "mlp";
        Ok(Gpt2Block {
            index,
            ln_1: LayerNorm::load(src, &(p / "ln_1"), h, eps).at(norm(NormRole::Attn)),
            // No site of its own: its three slices are the Query/Key/Value sites.
            c_attn: Conv1D::load(src, &(&attn / "c_attn"), h, 3 * h),
            c_proj: Conv1D::load(src, &(&attn / "c_proj"), h, h).at(site(LinearRole::AttnOut)),
            ln_2: LayerNorm::load(src, &(p / "ln_2"), h, eps).at(norm(NormRole::Ffn)),
            c_fc: Conv1D::load(src, &(&mlp / "c_fc"), h, i).at(site(LinearRole::FfnUp)),
            mlp_proj: Conv1D::load(src, &(&mlp / "c_proj"), i, h).at(site(LinearRole::FfnDown)),
            act: Activation::from_hf(&cfg.activation_function, "activation_function")?,
            heads: cfg.n_head,
            scale: cfg.attn_scale(index),
            attn_dropout: cfg.attn_pdrop,
            resid_dropout: cfg.resid_pdrop,
        })
    }

    /// Adds `delta` `[out, in]` to the weight of `site`; Query, Key and Value are the
    /// three column blocks of the fused `c_attn` `[H, 3H]`.
    pub fn add_to_linear_weight(&self, site: LinearSite, delta: &Tensor) -> Result<()> {
        let h = self.c_proj.weight.size()[0];
        match site.role {
            LinearRole::Query => self.c_attn.add_to_weight(site, delta, Some((0, h))),
            LinearRole::Key => self.c_attn.add_to_weight(site, delta, Some((h, h))),
            LinearRole::Value => self.c_attn.add_to_weight(site, delta, Some((2 * h, h))),
            LinearRole::AttnOut => self.c_proj.add_to_weight(site, delta, None),
            LinearRole::FfnUp => self.c_fc.add_to_weight(site, delta, None),
            LinearRole::FfnDown => self.mlp_proj.add_to_weight(site, delta, None),
            LinearRole::FfnGate => {
                Err(petune_core::Error::config("site", "GPT-2's MLP has no gate projection"))
            }
        }
    }

    /// Runs the block on `x` `[B, T, H]` with the additive causal + padding bias
    /// `[B, 1, T, P + T]` (prefix columns first) and an already checked prefix.
    pub fn forward(
        &self,
        x: &Tensor,
        bias: &Tensor,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        self.forward_cached(x, bias, prefix, None, hooks, train).0
    }

    /// [`Gpt2Block::forward`] on new tokens `x` `[B, Tn, H]` after `past`'s cached keys
    /// and values (`bias` `[B, 1, Tn, P + Tc + Tn]`); returns the output and the keys and
    /// values attended, `[B, nh, Tc + Tn, d]`.
    pub fn forward_cached(
        &self,
        x: &Tensor,
        bias: &Tensor,
        prefix: Option<&KvPrefix>,
        past: Option<&LayerKv>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> (Tensor, Tensor, Tensor) {
        let h = x.size()[2];
        let normed = self.ln_1.forward(x, hooks);
        let fused = self.c_attn.forward(&normed, hooks); // [B, T, 3H]
        let parts = fused.split(h, -1); // 3 × [B, T, H]
        let [q, k, v] = qkv_sites(
            hooks,
            self.index,
            &normed,
            [parts[0].shallow_clone(), parts[1].shallow_clone(), parts[2].shallow_clone()],
        );
        let (q, k, v) =
            (split_heads(&q, self.heads), split_heads(&k, self.heads), split_heads(&v, self.heads)); // [B, nh, T, d]
        let (k, v) = match past {
            Some(p) => (Tensor::cat(&[&p.k, &k], 2), Tensor::cat(&[&p.v, &v], 2)), // [B, nh, Tc+T, d]
            None => (k, v),
        };
        let p_drop = if train { self.attn_dropout } else { 0.0 };
        let att = attend(
            &q,
            k.shallow_clone(),
            v.shallow_clone(),
            prefix,
            Some(bias),
            p_drop,
            Some(self.scale),
        );
        let ctx = merge_heads(&att); // [B, T, H]
        let (p, layer) = (self.resid_dropout, self.index);
        let a =
            sublayer_out(self.c_proj.forward(&ctx, hooks), p, train, hooks, layer, Sublayer::Attn);
        let x = a + x;
        let up = self.act.forward(&self.c_fc.forward(&self.ln_2.forward(&x, hooks), hooks)); // [B, T, I]
        let m =
            sublayer_out(self.mlp_proj.forward(&up, hooks), p, train, hooks, layer, Sublayer::Ffn);
        (x + m, k, v)
    }
}
