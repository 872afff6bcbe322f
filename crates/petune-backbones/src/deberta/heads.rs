//! The frozen MLM head a DeBERTa (v1) checkpoint may carry, in either of the two
//! layouts transformers knows: `cls.predictions.{transform.dense, transform.LayerNorm,
//! bias}` (`LegacyDebertaOnlyMLMHead`, `legacy = true`) or
//! `lm_predictions.lm_head.{dense, LayerNorm, bias}` (`DebertaOnlyMLMHead`, the
//! original Microsoft checkpoints and the LPT authors' code).
//!
//! Port of `transformers/models/deberta/modeling_deberta.py::{
//! LegacyDebertaLMPredictionHead, DebertaLMPredictionHead}` (transformers 5.24). Both
//! compute `LN(act(dense(h))) · Wᵀ + bias` with `W` the word embeddings (the legacy
//! decoder's `decoder.weight`/`decoder.bias` are tied aliases, not saved), which is
//! BERT's head too, so both layouts load into the shared [`MlmHead`]; only the keys
//! differ. The LayerNorm is a plain `nn.LayerNorm`.

use petune_core::Result;
use tch::{nn, Tensor};

use super::config::{DebertaConfig, MlmHeadLayout};
use crate::common::layers::Activation;
use crate::common::mlm_head::{MlmHead, MlmHeadShape};
use crate::common::weights::WeightSource;

/// Loads the head in `layout` under `root`; `word` is the tied decoder weight. Only the
/// legacy layout can untie its decoder (`decoder.weight`).
pub fn load_mlm_head(
    src: &mut WeightSource,
    root: &nn::Path,
    cfg: &DebertaConfig,
    layout: MlmHeadLayout,
    word: &Tensor,
) -> Result<MlmHead> {
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
    let shape = MlmHeadShape {
        hidden: cfg.hidden_size,
        vocab: cfg.vocab_size,
        eps: cfg.layer_norm_eps,
        act: Activation::from_hf(&cfg.hidden_act, "hidden_act")?,
        untied_decoder: layout == MlmHeadLayout::Legacy && !cfg.tie_word_embeddings,
    };
    Ok(MlmHead::load(src, &p, &(&transform / "dense"), &(&transform / "LayerNorm"), shape, word))
}
