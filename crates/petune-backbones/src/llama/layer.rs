//! One pre-norm Llama-family decoder layer: `x + attn(rms(x))`, then `+ mlp(rms(·))`.
//!
//! Port of `LlamaDecoderLayer`, `LlamaAttention` and `LlamaMLP` (transformers 5.24
//! models/llama/modeling_llama.py; `MistralAttention` and `Qwen2Attention` differ only in
//! biases and sliding windows, models/{mistral,qwen2}/modular_*.py). Sites fire as
//! docs/sites.md orders them for a pre-norm decoder with a gated FFN: norm(Attn)
//! (`input_layernorm`), Query, Key, Value, AttnOut, sublayer(Attn), norm(Ffn)
//! (`post_attention_layernorm`), FfnGate, FfnUp, FfnDown, sublayer(Ffn).
//!
//! Attention: q `[B, heads, T, d]` and k, v `[B, kv_heads, T, d]` from their projections,
//! q and k rotated by the angles of the tokens' positions, then grouped-query attention
//! (each key/value head serves `heads / kv_heads` query heads) over prefix key/values
//! (unrotated) and the rotated keys, scores scaled by `1/sqrt(d)`. The MLP is SwiGLU:
//! `down(act(gate(x)) · up(x))`. There is no dropout outside attention.

use petune_core::{
    Error, Hooks, KvPrefix, LayerKv, LinearRole, LinearSite, NormRole, NormSite, Result, Sublayer,
};
use tch::{nn, Tensor};

use super::config::LlamaConfig;
use crate::common::attention::{attend, merge_heads, split_heads};
use crate::common::layers::{sublayer_out, Activation, Linear, RmsNorm};
use crate::common::rotary::Rotary;
use crate::common::weights::WeightSource;

/// What every layer's attention reads besides the hidden states, from the state as it
/// is now: the causal (+ window) and padding bias `[B, 1, T, P + T]` and the rotary
/// `cos`, `sin` `[B, 1, T, d]` of the tokens' positions.
pub struct LlamaContext {
    /// Additive attention bias.
    pub bias: Tensor,
    /// Cosines of the rotary angles.
    pub cos: Tensor,
    /// Sines of the rotary angles.
    pub sin: Tensor,
}

/// A decoder layer.
#[derive(Debug)]
pub struct LlamaLayer {
    index: usize,
    input_layernorm: RmsNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    post_attention_layernorm: RmsNorm,
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    act: Activation,
    heads: i64,
    kv_heads: i64,
    attn_dropout: f64,
}

impl LlamaLayer {
    /// Loads `p` = `model.layers.{index}` with Hugging Face's key names.
    pub fn load(
        src: &mut WeightSource,
        p: &nn::Path,
        cfg: &LlamaConfig,
        index: usize,
    ) -> Result<LlamaLayer> {
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.rms_norm_eps);
        let (q, kv) = (cfg.num_attention_heads * cfg.head_size(), cfg.kv_heads() * cfg.head_size());
        let (qkv_bias, o_bias, mlp_bias) = cfg.biases()?;
        let site = |role| LinearSite { layer: index, role };
        let norm = |role| NormSite { layer: Some(index), role };
        let (attn, mlp) = (p / "self_attn", p / "mlp");
        let linear = |src: &mut WeightSource, p: &nn::Path, d_in, d_out, bias, role| {
            Linear::load(src, p, d_in, d_out, bias).at(site(role))
        };
        Ok(LlamaLayer {
            index,
            input_layernorm: RmsNorm::load(src, &(p / "input_layernorm"), h, eps)
                .at(norm(NormRole::Attn)),
            q_proj: linear(src, &(&attn / "q_proj"), h, q, qkv_bias, LinearRole::Query),
            k_proj: linear(src, &(&attn / "k_proj"), h, kv, qkv_bias, LinearRole::Key),
            v_proj: linear(src, &(&attn / "v_proj"), h, kv, qkv_bias, LinearRole::Value),
            o_proj: linear(src, &(&attn / "o_proj"), q, h, o_bias, LinearRole::AttnOut),
            post_attention_layernorm: RmsNorm::load(src, &(p / "post_attention_layernorm"), h, eps)
                .at(norm(NormRole::Ffn)),
            gate_proj: linear(src, &(&mlp / "gate_proj"), h, i, mlp_bias, LinearRole::FfnGate),
            up_proj: linear(src, &(&mlp / "up_proj"), h, i, mlp_bias, LinearRole::FfnUp),
            down_proj: linear(src, &(&mlp / "down_proj"), i, h, mlp_bias, LinearRole::FfnDown),
            act: Activation::from_hf(&cfg.hidden_act, "hidden_act")?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.kv_heads(),
            attn_dropout: cfg.attention_dropout,
        })
    }

    /// The projection of `role`.
    fn linear(&self, role: LinearRole) -> &Linear {
        match role {
            LinearRole::Query => &self.q_proj,
            LinearRole::Key => &self.k_proj,
            LinearRole::Value => &self.v_proj,
            LinearRole::AttnOut => &self.o_proj,
            LinearRole::FfnGate => &self.gate_proj,
            LinearRole::FfnUp => &self.up_proj,
            LinearRole::FfnDown => &self.down_proj,
        }
    }

    /// Adds `delta` `[out, in]` to the weight of `site`.
    pub fn add_to_linear_weight(&self, site: LinearSite, delta: &Tensor) -> Result<()> {
        if site.layer != self.index {
            return Err(Error::config("site", format!("{site:?} is not in layer {}", self.index)));
        }
        self.linear(site.role).add_to_weight(site, delta)
    }

    /// Runs the layer on `x` `[B, T, H]` with the layer's context and an already checked
    /// prefix (`[B, kv_heads, P, d]`).
    pub fn forward(
        &self,
        x: &Tensor,
        ctx: &LlamaContext,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor {
        self.forward_cached(x, ctx, prefix, None, hooks, train).0
    }

    /// [`LlamaLayer::forward`] on new tokens `x` `[B, Tn, H]` after `past`'s cached
    /// (rotated) keys and values, the context covering them (`bias` `[B, 1, Tn, P + Tc +
    /// Tn]`, angles of the new tokens); returns the output and the keys and values
    /// attended, `[B, kv, Tc + Tn, d]`.
    pub fn forward_cached(
        &self,
        x: &Tensor,
        ctx: &LlamaContext,
        prefix: Option<&KvPrefix>,
        past: Option<&LayerKv>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> (Tensor, Tensor, Tensor) {
        let h = self.input_layernorm.forward(x, hooks);
        let q = split_heads(&self.q_proj.forward(&h, hooks), self.heads); // [B, nh, T, d]
        let k = split_heads(&self.k_proj.forward(&h, hooks), self.kv_heads); // [B, kv, T, d]
        let v = split_heads(&self.v_proj.forward(&h, hooks), self.kv_heads); // [B, kv, T, d]
        let (q, k) = (Rotary::apply(&q, &ctx.cos, &ctx.sin), Rotary::apply(&k, &ctx.cos, &ctx.sin));
        let (k, v) = match past {
            Some(p) => (Tensor::cat(&[&p.k, &k], 2), Tensor::cat(&[&p.v, &v], 2)), // [B, kv, Tc+T, d]
            None => (k, v),
        };
        let p_drop = if train { self.attn_dropout } else { 0.0 };
        let att =
            attend(&q, k.shallow_clone(), v.shallow_clone(), prefix, Some(&ctx.bias), p_drop, None);
        let att = merge_heads(&att); // [B, T, nh·d]
        let layer = self.index;
        let a = sublayer_out(
            self.o_proj.forward(&att, hooks),
            0.0,
            train,
            hooks,
            layer,
            Sublayer::Attn,
        );
        let x = x + a;
        let h = self.post_attention_layernorm.forward(&x, hooks);
        let gate = self.act.forward(&self.gate_proj.forward(&h, hooks)); // [B, T, I]
        let up = self.up_proj.forward(&h, hooks); // [B, T, I]
        let m = sublayer_out(
            self.down_proj.forward(&(gate * up), hooks),
            0.0,
            train,
            hooks,
            layer,
            Sublayer::Ffn,
        );
        (x + m, k, v)
    }
}
