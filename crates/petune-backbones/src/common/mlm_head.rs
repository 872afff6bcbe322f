//! The MLM head of the encoders, whose math is the same in BERT/RoBERTa
//! (`BertLMPredictionHead`, `RobertaLMHead`) and DeBERTa v1
//! (`LegacyDebertaLMPredictionHead`, `DebertaLMPredictionHead`):
//! `LN(act(dense(h))) · Wᵀ + bias`, with `W` the word embeddings unless the checkpoint
//! stores an untied `decoder.weight`. Only the key names differ, so each family passes
//! its paths. The head is frozen and fires no site hooks.

use petune_core::NoHooks;
use tch::{nn, Tensor};

use super::layers::{weight_for, Activation, LayerNorm, Linear};
use super::weights::{key_of, WeightSource};

/// Sizes and switches of an MLM head, from the family's config.
#[derive(Debug, Clone, Copy)]
pub struct MlmHeadShape {
    /// Hidden size `H`.
    pub hidden: i64,
    /// Vocabulary size `V`.
    pub vocab: i64,
    /// LayerNorm epsilon.
    pub eps: f64,
    /// Transform activation.
    pub act: Activation,
    /// Read `decoder.weight` `[V, H]` from the file instead of tying it to `word`.
    pub untied_decoder: bool,
}

/// The MLM head: dense → activation → LayerNorm → decoder (tied) + bias.
#[derive(Debug)]
pub struct MlmHead {
    dense: Linear,
    act: Activation,
    ln: LayerNorm,
    decoder: Tensor,
    bias: Tensor,
}

impl MlmHead {
    /// Loads `dense` and `ln` (the transform), `p.bias` and, when untied,
    /// `p.decoder.weight`; `word` is the tied decoder weight `[V, H]`.
    pub fn load(
        src: &mut WeightSource,
        p: &nn::Path,
        dense: &nn::Path,
        ln: &nn::Path,
        shape: MlmHeadShape,
        word: &Tensor,
    ) -> MlmHead {
        let (h, v) = (shape.hidden, shape.vocab);
        let dense = Linear::load(src, dense, h, h, true);
        let ln = LayerNorm::load(src, ln, h, shape.eps);
        let bias = src.param(p, "bias", &[v]);
        // HF stores `decoder.bias` as an alias of `bias`, and the decoder weight only
        // when it is not tied.
        let decoder_p = p / "decoder";
        src.skip(&key_of(&decoder_p, "bias"));
        let decoder = if shape.untied_decoder {
            src.param(&decoder_p, "weight", &[v, h])
        } else {
            src.skip(&key_of(&decoder_p, "weight"));
            word.shallow_clone()
        };
        MlmHead { dense, act: shape.act, ln, decoder, bias }
    }

    /// Vocabulary logits `[.., V]` for hidden states `[.., H]`.
    pub fn forward(&self, hidden: &Tensor) -> Tensor {
        let x = self.act.forward(&self.dense.forward(hidden, &NoHooks));
        let x = self.ln.forward(&x, &NoHooks);
        x.linear(&weight_for(&self.decoder, &x), Some(&self.bias))
    }
}
