//! The state that flows through a backbone's layer stack (design.md §3, `SeqState`).
//!
//! It carries the hidden states together with the padding mask, the position of every
//! token and the number of virtual tokens prepended so far, so that inserting tokens in
//! the middle of the network (LPT, prompt tuning, S-IDPG) never needs mask or position
//! surgery by the delta: the backbone derives its attention masks (DeBERTa its relative
//! positions, the Llama family its rotary angles) from this state at every layer.
//!
//! # Position convention
//! Text tokens start at the input's `position_ids` (or `0..T`). Tokens prepended by
//! [`SeqState::prepend`] take positions `0..P` and every existing token is shifted by
//! `P` (by the number of attended prompt slots of its row, for
//! [`SeqState::prepend_masked`]): every text–text relative offset is unchanged, which is
//! all rotary attention sees between text tokens, and the prompt sits right before the
//! text as if it had been the start of the input (Hugging Face's `inputs_embeds`
//! semantics). Families with absolute position embeddings (BERT, RoBERTa, GPT-2) add
//! them once in `embed` and do not read `positions` afterwards (docs/sites.md).

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::input::BackboneInput;

/// Hidden states with their padding mask, positions and prepended-token count.
///
/// # Shapes
/// `hidden` is `[B, T, H]`; `pad_mask` and `positions` are `[B, T]` int64, `pad_mask`
/// with 1 = attend. The first `n_prefix` positions are virtual tokens; text starts at
/// index `n_prefix`.
#[derive(Debug)]
pub struct SeqState {
    /// Hidden states `[B, T, H]`.
    pub hidden: Tensor,
    /// 1 = real or virtual token, 0 = padding, `[B, T]` int64.
    pub pad_mask: Tensor,
    /// Position id of every token `[B, T]` int64 (see the module docs).
    pub positions: Tensor,
    /// Virtual tokens prepended so far (they occupy indices `0..n_prefix`).
    pub n_prefix: i64,
}

impl Clone for SeqState {
    fn clone(&self) -> Self {
        SeqState {
            hidden: self.hidden.shallow_clone(),
            pad_mask: self.pad_mask.shallow_clone(),
            positions: self.positions.shallow_clone(),
            n_prefix: self.n_prefix,
        }
    }
}

/// Positions `0..T` for every row: `[B, T]` int64 on `mask`'s device.
fn sequential_positions(mask: &Tensor) -> Tensor {
    let (b, t) = (mask.size()[0], mask.size()[1]);
    Tensor::arange(t, (Kind::Int64, mask.device())).unsqueeze(0).expand([b, t], true)
}

impl SeqState {
    /// A state with no virtual tokens, positioned `0..T`.
    pub fn new(hidden: Tensor, pad_mask: Tensor) -> Self {
        let positions = sequential_positions(&pad_mask);
        SeqState { hidden, pad_mask, positions, n_prefix: 0 }
    }

    /// A state for `input`'s tokens: its padding mask, and its explicit `position_ids`
    /// or `0..T`.
    pub fn for_input(hidden: Tensor, input: &BackboneInput) -> Self {
        let pad_mask = input.attention_mask.shallow_clone();
        let positions = match &input.position_ids {
            Some(p) => p.shallow_clone(),
            None => sequential_positions(&pad_mask),
        };
        SeqState { hidden, pad_mask, positions, n_prefix: 0 }
    }

    /// The same state with new hidden states (a layer's output) of the same length.
    pub fn with_hidden(self, hidden: Tensor) -> SeqState {
        SeqState { hidden, ..self }
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
    /// batch carry prompts of different lengths (mixed-task batches). The attended
    /// prompt slots of a row take positions `0..` in order and its tokens are shifted by
    /// their count.
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
        let mask = mask.to_kind(Kind::Int64).to_device(self.pad_mask.device());
        let hidden = Tensor::cat(&[prompt.to_kind(self.hidden.kind()), self.hidden], 1); // [B, P+T, H]
        let prompt_positions = (mask.cumsum(1, Kind::Int64) - 1).clamp_min(0); // [B, P]
        let shift = mask.sum_dim_intlist(1, true, Kind::Int64); // [B, 1]
        let positions = Tensor::cat(&[prompt_positions, self.positions + shift], 1); // [B, P+T]
        let pad_mask = Tensor::cat(&[mask, self.pad_mask], 1); // [B, P+T]
        Ok(SeqState { hidden, pad_mask, positions, n_prefix: self.n_prefix + p })
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
            positions: self.positions.index_select(0, idx),
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

    /// The text part's positions: `[B, T - n_prefix]`.
    pub fn text_positions(&self) -> Tensor {
        self.positions.narrow(1, self.n_prefix, self.seq_len() - self.n_prefix)
    }

    /// Indices `[B]` in this state of the text tokens at text positions `rows` `[B]`
    /// (0 = the first text token, after the `n_prefix` virtual ones).
    pub fn text_index(&self, rows: &Tensor) -> Tensor {
        rows + self.n_prefix
    }

    /// The state of one token per example: the text token at text position `rows[b]`
    /// of example `b`, with `hidden` `[B, 1, H]` already computed for those tokens alone
    /// (or gathered from this state's hidden states when `None`). Its mask is all ones,
    /// its positions are the tokens' own and it has no virtual tokens: what a head
    /// reading one token per example needs ([`crate::Backbone::layers_read_out`]).
    /// `rows` were checked against a state of this batch and text length (prompts
    /// prepended since then leave both unchanged); another state is a typed error.
    pub fn read_out(self, rows: &ReadRows, hidden: Option<Tensor>) -> Result<SeqState> {
        let text = self.seq_len() - self.n_prefix;
        if (rows.batch, rows.text_len) != (self.batch(), text) {
            return Err(Error::Shape {
                ctx: "read-out rows, checked against another state".into(),
                expected: format!("[{}] rows of a text of {text} tokens", self.batch()),
                got: vec![rows.batch, rows.text_len],
            });
        }
        let index = self.text_index(&rows.rows); // [B]
        let hidden = match hidden {
            Some(hidden) => hidden,
            None => crate::pool::gather_tokens(&self.hidden, &index).unsqueeze(1), // [B, 1, H]
        };
        let positions = self.positions.gather(1, &index.unsqueeze(1), false); // [B, 1]
        let pad_mask = positions.ones_like(); // [B, 1]
        Ok(SeqState { hidden, pad_mask, positions, n_prefix: 0 })
    }

    /// `rows` must be one text position per example, `[B]` int64 on this state's device,
    /// each below the text length: a typed error otherwise, before a gather could fail
    /// inside libtorch. One device-to-host copy (the rows' minimum and maximum).
    pub fn check_rows(&self, rows: &Tensor) -> Result<ReadRows> {
        let (b, text) = (self.batch(), self.seq_len() - self.n_prefix);
        let fits = rows.size() == [b]
            && rows.kind() == Kind::Int64
            && rows.device() == self.hidden.device()
            && (b == 0 || {
                let (lo, hi) = rows.aminmax(None, false);
                let range = Vec::<i64>::try_from(Tensor::stack(&[lo, hi], 0));
                matches!(range.as_deref(), Ok(&[lo, hi]) if lo >= 0 && hi < text)
            });
        if fits {
            return Ok(ReadRows { rows: rows.shallow_clone(), batch: b, text_len: text });
        }
        Err(Error::Shape {
            ctx: "read-out rows (one text position per example)".into(),
            expected: format!("[{b}] int64 on {:?}, each in 0..{text}", self.hidden.device()),
            got: rows.size(),
        })
    }

    /// Drops the virtual tokens, keeping only the text (whose positions stay as they are).
    pub fn strip_prefix(self) -> SeqState {
        let (hidden, pad_mask, positions) =
            (self.text_hidden(), self.text_mask(), self.text_positions());
        SeqState { hidden, pad_mask, positions, n_prefix: 0 }
    }
}

/// Text positions `[B]` int64, one per example, checked by [`SeqState::check_rows`]
/// against a state's batch size and text length: [`SeqState::read_out`] gathers them
/// without another check.
#[derive(Debug)]
pub struct ReadRows {
    rows: Tensor,
    batch: i64,
    text_len: i64,
}

impl ReadRows {
    /// The checked positions, `[B]` int64.
    pub fn tensor(&self) -> &Tensor {
        &self.rows
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
    fn prepended_tokens_come_first_and_text_offsets_are_unchanged() {
        let cpu = tch::Device::Cpu;
        // Left-padded row (positions as Hugging Face computes them) and a full row.
        let mask = Tensor::from_slice2(&[[0i64, 1, 1, 1], [1, 1, 1, 1]]);
        let pos = Tensor::from_slice2(&[[0i64, 0, 1, 2], [0, 1, 2, 3]]);
        let input = BackboneInput::new(Tensor::ones([2, 4], (Kind::Int64, cpu)))
            .unwrap()
            .with_attention_mask(mask)
            .unwrap()
            .with_positions(pos.shallow_clone())
            .unwrap();
        let s = SeqState::for_input(Tensor::zeros([2, 4, 3], (Kind::Float, cpu)), &input);
        let s = s.prepend(&Tensor::zeros([2, 3], (Kind::Float, cpu))).unwrap();
        // Prompt at 0..2, text at its positions + 2.
        let want = Tensor::from_slice2(&[[0i64, 1, 2, 2, 3, 4], [0, 1, 2, 3, 4, 5]]);
        assert!(s.positions.equal(&want));
        // Text shifted by the prompt length: every text–text offset unchanged.
        assert!(s.text_positions().equal(&(&pos + 2)));
        // A masked prompt slot shifts nothing and takes no position of its own.
        let masked = SeqState::for_input(Tensor::zeros([2, 4, 3], (Kind::Float, cpu)), &input)
            .prepend_masked(
                &Tensor::zeros([2, 2, 3], (Kind::Float, cpu)),
                &Tensor::from_slice2(&[[1i64, 0], [1, 1]]),
            )
            .unwrap();
        assert!(masked.text_positions().get(0).equal(&(pos.get(0) + 1)));
        assert!(masked.text_positions().get(1).equal(&(pos.get(1) + 2)));
        assert!(masked.strip_prefix().positions.get(1).equal(&(pos.get(1) + 2)));
    }

    #[test]
    fn read_out_keeps_the_text_token_of_each_row() {
        let cpu = tch::Device::Cpu;
        let hidden = Tensor::arange(2 * 3 * 2, (Kind::Float, cpu)).view([2, 3, 2]);
        let s = SeqState::new(hidden.shallow_clone(), Tensor::ones([2, 3], (Kind::Int64, cpu)))
            .prepend(&Tensor::full([1, 2], -1.0, (Kind::Float, cpu)))
            .unwrap();
        let rows = s.check_rows(&Tensor::from_slice(&[2i64, 0])).unwrap();
        let r = s.clone().read_out(&rows, None).unwrap();
        assert_eq!(r.hidden.size(), [2, 1, 2]);
        assert!(r.hidden.get(0).get(0).equal(&hidden.get(0).get(2)));
        assert!(r.hidden.get(1).get(0).equal(&hidden.get(1).get(0)));
        assert_eq!(Vec::<i64>::try_from(&r.positions.view([-1])).unwrap(), vec![3, 1]);
        assert_eq!((r.n_prefix, r.seq_len()), (0, 1));
        // Past the text (3 tokens), or not one per example: a typed error.
        for bad in [Tensor::from_slice(&[3i64, 0]), Tensor::from_slice(&[-1i64, 0])] {
            assert!(s.check_rows(&bad).is_err());
        }
        assert!(s.check_rows(&Tensor::from_slice(&[0i64])).is_err());
        assert!(s.check_rows(&Tensor::from_slice(&[0.0f32, 0.0])).is_err());
        // Rows checked against another state (a shorter text) are refused there.
        let short = SeqState::new(hidden.narrow(1, 0, 2), Tensor::ones([2, 2], (Kind::Int64, cpu)));
        assert!(short.read_out(&rows, None).is_err());
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
