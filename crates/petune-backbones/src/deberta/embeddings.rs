//! DeBERTa (v1) embeddings: word (+ absolute positions when `position_biased_input`)
//! (+ token types when `type_vocab_size > 0`) → LayerNorm → × padding mask → dropout.
//!
//! Port of `transformers/models/deberta/modeling_deberta.py::DebertaEmbeddings`
//! (transformers 5.24). Released checkpoints have neither absolute positions nor token
//! types, so `hidden.0 = LN(word[ids]) · mask`: padded rows are exactly zero. Tokens
//! prepended to the word embeddings (`input_embeds`) are treated as HF treats
//! `inputs_embeds`: absolute positions (if any) run `0..P+T`, token type 0.

use petune_core::{BackboneInput, Hooks, NormRole, NormSite, Result, SeqState};
use tch::{nn, Kind, Tensor};

use super::config::DebertaConfig;
use crate::common::layers::{check_positions, dropout, embed_words, LayerNorm};
use crate::common::weights::WeightSource;

/// The embedding block.
#[derive(Debug)]
pub struct DebertaEmbeddings {
    word: Tensor,
    position: Option<Tensor>,
    token_type: Option<Tensor>,
    ln: LayerNorm,
    max_positions: i64,
    dropout: f64,
}

impl DebertaEmbeddings {
    /// Loads `p.word_embeddings`, the optional `p.position_embeddings` and
    /// `p.token_type_embeddings`, and `p.LayerNorm`.
    pub fn load(src: &mut WeightSource, p: &nn::Path, cfg: &DebertaConfig) -> DebertaEmbeddings {
        let h = cfg.hidden_size;
        let word = src.param(&(p / "word_embeddings"), "weight", &[cfg.vocab_size, h]);
        let position = cfg.position_biased_input.then(|| {
            src.param(&(p / "position_embeddings"), "weight", &[cfg.max_position_embeddings, h])
        });
        let token_type = (cfg.type_vocab_size > 0).then(|| {
            src.param(&(p / "token_type_embeddings"), "weight", &[cfg.type_vocab_size, h])
        });
        let ln = LayerNorm::load(src, &(p / "LayerNorm"), h, cfg.layer_norm_eps)
            .at(NormSite { layer: None, role: NormRole::Embeddings });
        DebertaEmbeddings {
            word,
            position,
            token_type,
            ln,
            max_positions: cfg.max_position_embeddings,
            dropout: cfg.hidden_dropout_prob,
        }
    }

    /// The word-embedding matrix `[V, H]`.
    pub fn word_embeddings(&self) -> &Tensor {
        &self.word
    }

    /// Absolute position embeddings `[B|1, P+T, H]` (`position_biased_input` only):
    /// explicit positions when nothing was prepended, else `0..P+T`.
    fn position_embeds(&self, input: &BackboneInput, seq: i64, p: i64) -> Result<Option<Tensor>> {
        let Some(table) = &self.position else { return Ok(None) };
        let positions = match (&input.position_ids, p) {
            (Some(explicit), 0) => explicit.shallow_clone(),
            _ => Tensor::arange(seq, (Kind::Int64, input.device())).unsqueeze(0), // [1, P+T]
        };
        check_positions(&positions, seq, self.max_positions)?;
        Ok(Some(Tensor::embedding(table, &positions, -1, false, false)))
    }

    /// Token-type embeddings `[B, P+T, H]` (`type_vocab_size > 0` only); prepended
    /// tokens get segment 0, as HF's default `token_type_ids`.
    fn type_embeds(&self, input: &BackboneInput, b: i64, seq: i64, p: i64) -> Option<Tensor> {
        let table = self.token_type.as_ref()?;
        let dev = input.device();
        let types = match &input.token_type_ids {
            Some(t) => {
                Tensor::cat(&[Tensor::zeros([b, p], (Kind::Int64, dev)), t.shallow_clone()], 1)
            } // [B, P+T]
            None => Tensor::zeros([b, seq], (Kind::Int64, dev)),
        };
        Some(Tensor::embedding(table, &types, -1, false, false))
    }

    /// Embeds `input`, firing `input_embeds` on the word embeddings and the embedding
    /// LayerNorm's `norm` site.
    pub fn forward(
        &self,
        input: &BackboneInput,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Result<SeqState> {
        let s = embed_words(&self.word, input, hooks)?;
        let (seq, p) = (s.seq_len(), s.n_prefix);
        let h = s.hidden.shallow_clone();
        let h = match self.position_embeds(input, seq, p)? {
            Some(e) => h + e,
            None => h,
        };
        let h = match self.type_embeds(input, s.batch(), seq, p) {
            Some(e) => h + e,
            None => h,
        };
        // HF multiplies by the mask after the LayerNorm, so padded rows leave as zeros.
        let mask = s.pad_mask.unsqueeze(-1).to_kind(h.kind()); // [B, P+T, 1]
        let h = dropout(self.ln.forward(&h, hooks) * mask, self.dropout, train);
        Ok(s.with_hidden(h))
    }
}
