//! The state that flows through a backbone's layer stack (design.md §3, `SeqState`).
//!
//! It carries the hidden states together with the padding mask and the number of
//! virtual tokens prepended so far, so that inserting tokens in the middle of the
//! network (LPT, prompt tuning, S-IDPG) never needs mask surgery by the delta: the
//! backbone derives its attention masks (and DeBERTa its relative positions) from
//! this state at every layer.

use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// Hidden states with their padding mask and prepended-token count.
///
/// # Shapes
/// `hidden` is `[B, T, H]`; `pad_mask` is `[B, T]` int64 with 1 = attend. The first
/// `n_prefix` positions are virtual tokens; text starts at index `n_prefix`.
#[derive(Debug)]
pub struct SeqState {
    /// Hidden states `[B, T, H]`.
    pub hidden: Tensor,
    /// 1 = real or virtual token, 0 = padding, `[B, T]` int64.
    pub pad_mask: Tensor,
    /// Virtual tokens prepended so far (they occupy positions `0..n_prefix`).
    pub n_prefix: i64,
}

impl Clone for SeqState {
    fn clone(&self) -> Self {
        SeqState {
            hidden: self.hidden.shallow_clone(),
            pad_mask: self.pad_mask.shallow_clone(),
            n_prefix: self.n_prefix,
        }
    }
}

impl SeqState {
    /// A state with no virtual tokens.
    pub fn new(hidden: Tensor, pad_mask: Tensor) -> Self {
        SeqState { hidden, pad_mask, n_prefix: 0 }
    }

    /// Batch size `B`.
    pub fn batch(&self) -> i64 {
        self.hidden.size()[0]
    }

    /// Current sequence length `T` (virtual tokens included).
    pub fn seq_len(&self) -> i64 {
        self.hidden.size()[1]
    }

    /// Hidden size `H`.
    pub fn hidden_size(&self) -> i64 {
        self.hidden.size()[2]
    }

    /// Prepends `prompt` (`[B, P, H]`, or `[P, H]` shared by the whole batch), every
    /// prompt token attended.
    pub fn prepend(self, prompt: &Tensor) -> Result<SeqState> {
        let prompt = self.batched_prompt(prompt)?;
        let p = prompt.size()[1];
        let mask = Tensor::ones([self.batch(), p], (Kind::Int64, self.pad_mask.device()));
        self.prepend_masked(&prompt, &mask)
    }

    /// Prepends `prompt` `[B, P, H]` with its own mask `[B, P]` (1 = attend): lets one
    /// batch carry prompts of different lengths (mixed-task batches).
    pub fn prepend_masked(self, prompt: &Tensor, mask: &Tensor) -> Result<SeqState> {
        let prompt = self.batched_prompt(prompt)?;
        let p = prompt.size()[1];
        if mask.size() != [self.batch(), p] {
            return Err(Error::Shape {
                ctx: "prompt mask".into(),
                expected: format!("[{}, {p}]", self.batch()),
                got: mask.size(),
            });
        }
        let hidden = Tensor::cat(&[prompt.to_kind(self.hidden.kind()), self.hidden], 1); // [B, P+T, H]
        let pad_mask = Tensor::cat(&[mask.to_kind(Kind::Int64), self.pad_mask], 1); // [B, P+T]
        Ok(SeqState { hidden, pad_mask, n_prefix: self.n_prefix + p })
    }

    fn batched_prompt(&self, prompt: &Tensor) -> Result<Tensor> {
        let (b, h) = (self.batch(), self.hidden_size());
        let size = prompt.size();
        match size.as_slice() {
            [_, hh] if *hh == h => Ok(prompt.unsqueeze(0).expand([b, size[0], h], false)),
            [bb, _, hh] if *bb == b && *hh == h => Ok(prompt.shallow_clone()),
            _ => Err(Error::Shape {
                ctx: "prompt".into(),
                expected: format!("[{b}, P, {h}] or [P, {h}]"),
                got: size,
            }),
        }
    }

    /// The examples at rows `idx` (`[n]` int64).
    pub fn select_rows(&self, idx: &Tensor) -> SeqState {
        SeqState {
            hidden: self.hidden.index_select(0, idx),
            pad_mask: self.pad_mask.index_select(0, idx),
            n_prefix: self.n_prefix,
        }
    }

    /// Number of attended positions per example, `[B]` int64.
    pub fn valid_lengths(&self) -> Tensor {
        self.pad_mask.sum_dim_intlist(1, false, Kind::Int64)
    }

    /// The text part (without the prepended virtual tokens): `[B, T - n_prefix, H]`.
    pub fn text_hidden(&self) -> Tensor {
        self.hidden.narrow(1, self.n_prefix, self.seq_len() - self.n_prefix)
    }

    /// The text part's padding mask: `[B, T - n_prefix]`.
    pub fn text_mask(&self) -> Tensor {
        self.pad_mask.narrow(1, self.n_prefix, self.seq_len() - self.n_prefix)
    }

    /// Drops the virtual tokens, keeping only the text positions.
    pub fn strip_prefix(self) -> SeqState {
        let hidden = self.text_hidden();
        let pad_mask = self.text_mask();
        SeqState { hidden, pad_mask, n_prefix: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_extends_hidden_mask_and_prefix_count() {
        let hidden = Tensor::randn([2, 3, 4], (Kind::Float, tch::Device::Cpu));
        let mask = Tensor::from_slice2(&[[1i64, 1, 0], [1, 1, 1]]);
        let s = SeqState::new(hidden.shallow_clone(), mask);
        let prompt = Tensor::randn([5, 4], (Kind::Float, tch::Device::Cpu));
        let s = s.prepend(&prompt).unwrap();
        assert_eq!(s.hidden.size(), [2, 8, 4]);
        assert_eq!(s.n_prefix, 5);
        assert_eq!(Vec::<i64>::try_from(&s.valid_lengths()).unwrap(), vec![7, 8]);
        assert!(s.text_hidden().equal(&hidden));
        assert!(s.hidden.narrow(1, 0, 5).get(1).equal(&prompt));
        let s = s.prepend(&Tensor::zeros([2, 1, 4], (Kind::Float, tch::Device::Cpu))).unwrap();
        assert_eq!(s.n_prefix, 6);
        assert!(s.strip_prefix().hidden.equal(&hidden));
    }

    #[test]
    fn prepend_rejects_wrong_width() {
        let s = SeqState::new(
            Tensor::zeros([2, 3, 4], (Kind::Float, tch::Device::Cpu)),
            Tensor::ones([2, 3], (Kind::Int64, tch::Device::Cpu)),
        );
        let err = s.prepend(&Tensor::zeros([5, 3], (Kind::Float, tch::Device::Cpu))).unwrap_err();
        assert!(err.to_string().contains("prompt"), "{err}");
    }
}
