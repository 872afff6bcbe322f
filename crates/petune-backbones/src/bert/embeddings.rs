//! BERT / RoBERTa embeddings: word + token type + position, LayerNorm, dropout.
//!
//! Follows `transformers` `BertEmbeddings` and `RobertaEmbeddings`
//! (src/transformers/models/{bert,roberta}/modeling_*.py): BERT positions are
//! `0..T`; RoBERTa positions count real tokens from `padding_idx + 1` and give padding
//! `padding_idx`, unless tokens were prepended to the word embeddings (PEFT-style
//! prompt tuning), in which case, as HF does for `inputs_embeds`, positions run
//! sequentially from `padding_idx + 1`.

use petune_core::{BackboneInput, Hooks, NormRole, NormSite, Result, SeqState};
use tch::{nn, Kind, Tensor};

use super::config::BertConfig;
use crate::common::layers::{check_positions, dropout, embed_words, LayerNorm};
use crate::common::weights::WeightSource;
use crate::family::Family;

/// The embedding block.
#[derive(Debug)]
pub struct BertEmbeddings {
    word: Tensor,
    position: Tensor,
    token_type: Option<Tensor>,
    ln: LayerNorm,
    family: Family,
    pad_id: i64,
    max_positions: i64,
    dropout: f64,
}

impl BertEmbeddings {
    /// Loads `p.{word,position,token_type}_embeddings` and `p.LayerNorm`.
    pub fn load(src: &mut WeightSource, p: &nn::Path, cfg: &BertConfig) -> Result<BertEmbeddings> {
        let h = cfg.hidden_size;
        let word = src.param(&(p / "word_embeddings"), "weight", &[cfg.vocab_size, h]);
        let position =
            src.param(&(p / "position_embeddings"), "weight", &[cfg.max_position_embeddings, h]);
        let token_type = (cfg.type_vocab_size > 0).then(|| {
            src.param(&(p / "token_type_embeddings"), "weight", &[cfg.type_vocab_size, h])
        });
        let ln = LayerNorm::load(src, &(p / "LayerNorm"), h, cfg.layer_norm_eps)
            .at(NormSite { layer: None, role: NormRole::Embeddings });
        Ok(BertEmbeddings {
            word,
            position,
            token_type,
            ln,
            family: cfg.family()?,
            pad_id: cfg.pad_id(),
            max_positions: cfg.max_position_embeddings,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    /// The word-embedding matrix `[V, H]`.
    pub fn word_embeddings(&self) -> &Tensor {
        &self.word
    }

    fn positions(&self, input: &BackboneInput, n_prefix: i64, seq: i64) -> Tensor {
        let dev = input.device();
        match (self.family, n_prefix, &input.position_ids) {
            (_, 0, Some(explicit)) => explicit.shallow_clone(),
            (Family::Roberta, 0, None) => {
                // HF create_position_ids_from_input_ids: cumsum over non-pad tokens.
                let real = input.input_ids.ne(self.pad_id).to_kind(Kind::Int64); // [B, T]
                real.cumsum(1, Kind::Int64) * &real + self.pad_id
            }
            (Family::Roberta, _, _) => {
                (Tensor::arange(seq, (Kind::Int64, dev)) + self.pad_id + 1).unsqueeze(0)
                // [1, T]
            }
            _ => Tensor::arange(seq, (Kind::Int64, dev)).unsqueeze(0), // [1, T]
        }
    }

    /// Embeds `input`, firing `input_embeds` on the word embeddings.
    pub fn forward(
        &self,
        input: &BackboneInput,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Result<SeqState> {
        let ids = &input.input_ids;
        let s = embed_words(&self.word, input, hooks)?;
        let (b, seq, p) = (s.batch(), s.seq_len(), s.n_prefix);
        let positions = self.positions(input, p, seq);
        check_positions(&positions, seq, self.max_positions)?;
        let mut h = s.hidden.shallow_clone();
        if let Some(tt) = &self.token_type {
            let types = match &input.token_type_ids {
                Some(t) if p > 0 => Tensor::cat(
                    &[t.zeros_like().narrow(1, 0, 1).expand([b, p], false), t.shallow_clone()],
                    1,
                ),
                Some(t) => t.shallow_clone(),
                None => Tensor::zeros([b, seq], (Kind::Int64, ids.device())),
            };
            h += Tensor::embedding(tt, &types, -1, false, false);
        }
        h += Tensor::embedding(&self.position, &positions, -1, false, false);
        let h = dropout(self.ln.forward(&h, hooks), self.dropout, train);
        Ok(s.with_hidden(h))
    }
}
