//! The frozen heads a BERT-family checkpoint may carry: the MLM head
//! (`BertOnlyMLMHead` as `cls.predictions.*`, `RobertaLMHead` as `lm_head.*`), whose
//! decoder is tied to the word embeddings (the math is [`MlmHead`], shared with
//! DeBERTa; here only BERT's and RoBERTa's key names), and BERT's pooler
//! (`pooler.dense`, tanh).

use petune_core::Result;
use tch::{nn, Tensor};

use super::config::BertConfig;
use crate::common::layers::{Activation, Linear};
use crate::common::mlm_head::{MlmHead, MlmHeadShape};
use crate::common::weights::WeightSource;
use crate::family::Family;

/// Loads the MLM head of `cfg`'s family under `root`; `word` is the tied decoder weight.
/// RoBERTa's `lm_head` always uses exact GELU, BERT's transform the config's activation.
pub fn load_mlm_head(
    src: &mut WeightSource,
    root: &nn::Path,
    cfg: &BertConfig,
    word: &Tensor,
) -> Result<MlmHead> {
    let (p, dense, ln, act) = match cfg.family()? {
        Family::Roberta => {
            let p = root / "lm_head";
            (p.clone(), &p / "dense", &p / "layer_norm", Activation::Gelu)
        }
        _ => {
            let p = root / "cls" / "predictions";
            let t = &p / "transform";
            let act = Activation::from_hf(&cfg.hidden_act, "hidden_act")?;
            (p, &t / "dense", &t / "LayerNorm", act)
        }
    };
    let shape = MlmHeadShape {
        hidden: cfg.hidden_size,
        vocab: cfg.vocab_size,
        eps: cfg.layer_norm_eps,
        act,
        untied_decoder: !cfg.tie_word_embeddings,
    };
    Ok(MlmHead::load(src, &p, &dense, &ln, shape, word))
}

/// BERT's pooler: `tanh(W h + b)`.
#[derive(Debug)]
pub struct Pooler {
    dense: Linear,
}

impl Pooler {
    /// Loads `p.dense`.
    pub fn load(src: &mut WeightSource, p: &nn::Path, h: i64) -> Pooler {
        Pooler { dense: Linear::load(src, &(p / "dense"), h, h, true) }
    }

    /// Pooled vectors `[B, H]` from `[B, H]`.
    pub fn forward(&self, cls: &Tensor) -> Tensor {
        self.dense.forward(cls, &petune_core::NoHooks).tanh()
    }
}
