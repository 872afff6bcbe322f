//! The frozen heads a BERT-family checkpoint may carry: the MLM head
//! (`BertOnlyMLMHead` as `cls.predictions.*`, `RobertaLMHead` as `lm_head.*`), whose
//! decoder is tied to the word embeddings, and BERT's pooler (`pooler.dense`, tanh).

use petune_core::{Family, Result};
use tch::{nn, Tensor};

use super::config::BertConfig;
use crate::common::layers::{Activation, LayerNorm, Linear};
use crate::common::weights::{key_of, WeightSource};

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
    /// Loads the head of `cfg`'s family; `word` is the tied decoder weight.
    pub fn load(
        src: &mut WeightSource,
        root: &nn::Path,
        cfg: &BertConfig,
        word: &Tensor,
    ) -> Result<MlmHead> {
        let (h, v) = (cfg.hidden_size, cfg.vocab_size);
        let (p, ln_name, act) = match cfg.family()? {
            Family::Roberta => (root / "lm_head", "layer_norm", Activation::Gelu),
            _ => (
                root / "cls" / "predictions",
                "",
                Activation::from_hf(&cfg.hidden_act, "hidden_act")?,
            ),
        };
        let (dense, ln) = if ln_name.is_empty() {
            let t = &p / "transform";
            (
                Linear::load(src, &(&t / "dense"), h, h, true),
                LayerNorm::load(src, &(&t / "LayerNorm"), h, cfg.layer_norm_eps),
            )
        } else {
            (
                Linear::load(src, &(&p / "dense"), h, h, true),
                LayerNorm::load(src, &(&p / ln_name), h, cfg.layer_norm_eps),
            )
        };
        let bias = src.param(&p, "bias", &[v]);
        // HF stores `decoder.bias` as an alias of `bias`, and the decoder weight only
        // when it is not tied.
        let decoder_p = &p / "decoder";
        src.skip(&key_of(&decoder_p, "bias"));
        let decoder = if cfg.tie_word_embeddings {
            src.skip(&key_of(&decoder_p, "weight"));
            word.shallow_clone()
        } else {
            src.param(&decoder_p, "weight", &[v, h])
        };
        Ok(MlmHead { dense, act, ln, decoder, bias })
    }

    /// Vocabulary logits `[.., V]` for hidden states `[.., H]`.
    pub fn forward(&self, hidden: &Tensor) -> Tensor {
        let none = petune_core::NoHooks;
        let x = self.act.forward(&self.dense.forward(hidden, &none));
        let x = self.ln.forward(&x, &none);
        x.linear(&self.decoder, Some(&self.bias))
    }
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
