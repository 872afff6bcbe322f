//! GPT-2 input embeddings: `wte[ids] + wpe[positions]` → dropout (`embd_pdrop`). No
//! LayerNorm.
//!
//! Port of the embedding part of `transformers/models/gpt2/modeling_gpt2.py::GPT2Model.forward`
//! (transformers 5.24). Positions are the input's explicit `position_ids` when given
//! (left padding: `clamp(cumsum(mask) - 1, 0)`), otherwise `0..T` for every row (HF
//! ignores the attention mask for positions).
//!
//! `token_type_ids` are ignored. transformers adds `wte[token_type_ids]` when a caller
//! passes them (a leftover of the original GPT's segment trick), but GPT-2 has no
//! segment embedding, the usual call and the LPT authors pass none, and petune's
//! callers fill them with zeros for every family: honouring them would silently add
//! `wte[0]` to every token.
//!
//! Tokens prepended to the word embeddings (`input_embeds` hook) get **no** position
//! (nor token-type) embedding and the text keeps its positions: this is the LPT
//! authors' prompt tuning on GPT-2 (`K = 0`: the prompt is concatenated after
//! `wte + wpe` and before the embedding dropout), which differs from the generic
//! `Hooks::input_embeds` wording ("positions as if first"); a prompt prepended by
//! `before_layer(0)` instead comes after the dropout. Hooks that ask for
//! `positions_include_prefix` (PEFT's prompt tuning) get Hugging Face's `inputs_embeds`
//! behaviour instead: prompt at positions `0..P`, text at `P..P+T`.

use petune_core::{BackboneInput, Error, Hooks, Result, SeqState};
use tch::{nn, Kind, Tensor};

use super::config::Gpt2Config;
use crate::common::layers::{check_positions, dropout, embed_words};
use crate::common::weights::WeightSource;

/// `wte`, `wpe` and the embedding dropout.
#[derive(Debug)]
pub struct Gpt2Embeddings {
    wte: Tensor,
    wpe: Tensor,
    n_positions: i64,
    dropout: f64,
}

impl Gpt2Embeddings {
    /// Loads `p.wte` and `p.wpe` (`p` = `transformer`).
    pub fn load(src: &mut WeightSource, p: &nn::Path, cfg: &Gpt2Config) -> Gpt2Embeddings {
        let h = cfg.n_embd;
        Gpt2Embeddings {
            wte: src.param(&(p / "wte"), "weight", &[cfg.vocab_size, h]),
            wpe: src.param(&(p / "wpe"), "weight", &[cfg.n_positions, h]),
            n_positions: cfg.n_positions,
            dropout: cfg.embd_pdrop,
        }
    }

    /// The token-embedding matrix `[V, H]` (also the tied LM head).
    pub fn wte(&self) -> &Tensor {
        &self.wte
    }

    /// Embeds `input`, firing `input_embeds` on `wte[ids]`.
    pub fn forward(
        &self,
        input: &BackboneInput,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Result<SeqState> {
        let s = embed_words(&self.wte, input, hooks)?;
        let (p, t) = (s.n_prefix, input.seq_len());
        if s.seq_len() != p + t {
            return Err(Error::Shape {
                ctx: "input_embeds hook output".into(),
                expected: format!("[B, {} + {t}, H] (prepended tokens + text)", p),
                got: s.hidden.size(),
            });
        }
        // With `positions_include_prefix` (PEFT) the prompt takes positions 0..P and the
        // text is shifted by P, as `inputs_embeds` would be.
        let shift = if p > 0 && hooks.positions_include_prefix() { p } else { 0 };
        let positions = match &input.position_ids {
            Some(explicit) => explicit + shift, // [B, T]
            None => {
                Tensor::arange_start(shift, shift + t, (Kind::Int64, input.device())).unsqueeze(0)
            } // [1, T]
        };
        check_positions(&positions, t, self.n_positions)?;
        let text = s.text_hidden() + Tensor::embedding(&self.wpe, &positions, -1, false, false); // [B, T, H]
        let h = if p > 0 {
            let prompt = s.hidden.narrow(1, 0, p); // [B, P, H]
            let prompt = if shift > 0 { prompt + self.wpe.narrow(0, 0, p) } else { prompt };
            Tensor::cat(&[prompt, text], 1) // [B, P+T, H]
        } else {
            text
        };
        Ok(s.with_hidden(dropout(h, self.dropout, train)))
    }
}
