//! The frozen MLM head a DeBERTa (v1) checkpoint may carry, in either of the two
//! layouts transformers knows: `cls.predictions.{transform.dense, transform.LayerNorm,
//! bias}` (`LegacyDebertaOnlyMLMHead`, `legacy = true`) or
//! `lm_predictions.lm_head.{dense, LayerNorm, bias}` (`DebertaOnlyMLMHead`, the
//! original Microsoft checkpoints and the LPT authors' code).
//!
//! Port of `transformers/models/deberta/modeling_deberta.py::{
//! LegacyDebertaLMPredictionHead, DebertaLMPredictionHead}` (transformers 5.24). Both
//! compute `LN(act(dense(h))) · Wᵀ + bias` with `W` the word embeddings (the legacy
//! decoder's `decoder.weight`/`decoder.bias` are tied aliases, not saved), so one
//! struct serves both; only the keys differ. The LayerNorm is a plain `nn.LayerNorm`.

use petune_core::{NoHooks, Result};
use tch::{nn, Tensor};

use super::config::{DebertaConfig, MlmHeadLayout};
use crate::common::layers::{Activation, LayerNorm, Linear};
use crate::common::weights::{key_of, WeightSource};

/// The MLM head: dense → activation → LayerNorm → word-embedding decoder + bias.
#[derive(Debug)]
pub struct DebertaMlmHead {
    dense: Linear,
    act: Activation,
    ln: LayerNorm,
    decoder: Tensor,
    bias: Tensor,
}

impl DebertaMlmHead {
    /// Loads the head in `layout` under `root`; `word` is the tied decoder weight.
    pub fn load(
        src: &mut WeightSource,
        root: &nn::Path,
        cfg: &DebertaConfig,
        layout: MlmHeadLayout,
        word: &Tensor,
    ) -> Result<DebertaMlmHead> {
        let (h, v) = (cfg.hidden_size, cfg.vocab_size);
        let act = Activation::from_hf(&cfg.hidden_act, "hidden_act")?;
        let (p, transform) = match layout {
            MlmHeadLayout::Legacy => {
                let p = root / "cls" / "predictions";
                let t = &p / "transform";
                (p, t)
            }
            MlmHeadLayout::LmPredictions => {
                let p = root / "lm_predictions" / "lm_head";
                (p.clone(), p)
            }
        };
        let dense = Linear::load(src, &(&transform / "dense"), h, h, true);
        let ln = LayerNorm::load(src, &(&transform / "LayerNorm"), h, cfg.layer_norm_eps);
        let bias = src.param(&p, "bias", &[v]);
        // The legacy decoder's bias is an alias of `bias`; its weight is the word
        // embeddings unless the config unties them.
        let decoder_p = &p / "decoder";
        src.skip(&key_of(&decoder_p, "bias"));
        let decoder = if layout == MlmHeadLayout::Legacy && !cfg.tie_word_embeddings {
            src.param(&decoder_p, "weight", &[v, h])
        } else {
            src.skip(&key_of(&decoder_p, "weight"));
            word.shallow_clone()
        };
        Ok(DebertaMlmHead { dense, act, ln, decoder, bias })
    }

    /// Vocabulary logits `[.., V]` for hidden states `[.., H]`.
    pub fn forward(&self, hidden: &Tensor) -> Tensor {
        let none = NoHooks;
        let x = self.ln.forward(&self.act.forward(&self.dense.forward(hidden, &none)), &none);
        x.linear(&self.decoder, Some(&self.bias))
    }
}
