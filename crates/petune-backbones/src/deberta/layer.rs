//! One post-LN DeBERTa (v1) layer: disentangled attention → `attention.output.dense` →
//! dropout → LayerNorm(+x), then `intermediate.dense` → activation → `output.dense` →
//! dropout → LayerNorm(+x).
//!
//! Port of `transformers/models/deberta/modeling_deberta.py::{DebertaLayer,
//! DebertaAttention, DebertaSelfOutput, DebertaIntermediate, DebertaOutput}`
//! (transformers 5.24). `DebertaLayerNorm` puts epsilon inside the square root of the
//! biased variance, which is what `layer_norm` computes. Everything after the attention
//! is BERT's too ([`PostLnSublayers`]). Sites fire in the order of docs/sites.md:
//! Query, Key, Value, AttnOut, sublayer(Attn), norm(Attn), FfnUp, FfnDown,
//! sublayer(Ffn), norm(Ffn).

use petune_core::{Error, Hooks, KvPrefix, LinearRole, LinearSite, Result};
use tch::{nn, Tensor};

use super::attention::{DisentangledSelfAttention, RelativePositions};
use super::config::DebertaConfig;
use crate::common::post_ln::PostLnSublayers;
use crate::common::weights::WeightSource;

/// A DeBERTa transformer layer.
#[derive(Debug)]
pub struct DebertaLayer {
    attention: DisentangledSelfAttention,
    outputs: PostLnSublayers,
}

impl DebertaLayer {
    /// Loads `p` = `deberta.encoder.layer.{index}` with HF's key names.
    pub fn load(
        src: &mut WeightSource,
        p: &nn::Path,
        cfg: &DebertaConfig,
        index: usize,
    ) -> Result<DebertaLayer> {
        Ok(DebertaLayer {
            attention: DisentangledSelfAttention::load(
                src,
                &(p / "attention" / "self"),
                cfg,
                index,
            ),
            outputs: PostLnSublayers::load(
                src,
                p,
                index,
                [cfg.hidden_size, cfg.intermediate_size],
                cfg.layer_norm_eps,
                &cfg.hidden_act,
                cfg.hidden_dropout_prob,
            )?,
        })
    }

    /// Adds `delta` `[out, in]` to the weight of `site`: the Q/K/V rows of the fused
    /// `in_proj`, or a projection after the attention.
    pub fn add_to_linear_weight(&self, site: LinearSite, delta: &Tensor) -> Result<()> {
        match site.role {
            LinearRole::Query | LinearRole::Key | LinearRole::Value => {
                self.attention.add_to_qkv_weight(site, delta)
            }
            role => self
                .outputs
                .linear(role)
                .ok_or_else(|| {
                    Error::config("site", format!("DeBERTa has no {role:?} projection"))
                })?
                .add_to_weight(site, delta),
        }
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
        self.outputs.forward(x, &ctx, hooks, train)
    }
}
