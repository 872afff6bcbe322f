//! The validated input of a backbone forward pass (design.md §3, `BackboneInput`):
//! shapes are checked when it is built, value ranges against a backbone's tables
//! ([`BackboneInput::check_against`]) before any embedding lookup, so ids from a
//! tokenizer that belongs to another model are a typed error instead of an
//! out-of-range index inside libtorch.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::spec::BackboneSpec;

/// Token ids plus the optional tensors that go with them; shapes checked once here.
///
/// # Shapes
/// Every tensor is `[B, T]` int64. `attention_mask` is 1 for real tokens, 0 for padding.
#[derive(Debug)]
pub struct BackboneInput {
    /// Token ids `[B, T]`.
    pub input_ids: Tensor,
    /// 1 = real token, 0 = padding, `[B, T]`.
    pub attention_mask: Tensor,
    /// Segment ids `[B, T]`, when the model uses them.
    pub token_type_ids: Option<Tensor>,
    /// Explicit position ids `[B, T]` (e.g. GPT-2 with left padding).
    pub position_ids: Option<Tensor>,
    /// The tokens an input-dependent prompt generator may read `[B, T]` (1 = readable);
    /// GPT-2 LM scoring hides the label span this way. `None` = every real token.
    pub context_mask: Option<Tensor>,
}

impl Clone for BackboneInput {
    fn clone(&self) -> Self {
        BackboneInput {
            input_ids: self.input_ids.shallow_clone(),
            attention_mask: self.attention_mask.shallow_clone(),
            token_type_ids: self.token_type_ids.as_ref().map(Tensor::shallow_clone),
            position_ids: self.position_ids.as_ref().map(Tensor::shallow_clone),
            context_mask: self.context_mask.as_ref().map(Tensor::shallow_clone),
        }
    }
}

fn check_bt(ctx: &str, t: &Tensor, b: i64, seq: i64) -> Result<()> {
    let size = t.size();
    if size != [b, seq] {
        return Err(Error::Shape { ctx: ctx.into(), expected: format!("[{b}, {seq}]"), got: size });
    }
    if t.kind() != Kind::Int64 {
        return Err(Error::input(format!("{ctx}: expected int64 values, got {:?}", t.kind())));
    }
    Ok(())
}

/// Smallest and largest value of a non-empty int64 tensor (checked at construction).
fn min_max(t: &Tensor) -> (i64, i64) {
    (t.min().int64_value(&[]), t.max().int64_value(&[]))
}

impl BackboneInput {
    /// Input with every token attended.
    pub fn new(input_ids: Tensor) -> Result<Self> {
        let size = input_ids.size();
        if size.len() != 2 || size[0] == 0 || size[1] == 0 {
            return Err(Error::Shape {
                ctx: "input_ids".into(),
                expected: "[B, T] with B, T > 0".into(),
                got: size,
            });
        }
        check_bt("input_ids", &input_ids, size[0], size[1])?;
        let attention_mask = input_ids.ones_like();
        Ok(BackboneInput {
            input_ids,
            attention_mask,
            token_type_ids: None,
            position_ids: None,
            context_mask: None,
        })
    }

    /// Sets the padding mask (1 = attend).
    pub fn with_attention_mask(mut self, mask: Tensor) -> Result<Self> {
        check_bt("attention_mask", &mask, self.batch(), self.seq_len())?;
        self.attention_mask = mask;
        Ok(self)
    }

    /// Sets segment ids.
    pub fn with_token_types(mut self, types: Tensor) -> Result<Self> {
        check_bt("token_type_ids", &types, self.batch(), self.seq_len())?;
        self.token_type_ids = Some(types);
        Ok(self)
    }

    /// Sets explicit position ids.
    pub fn with_positions(mut self, positions: Tensor) -> Result<Self> {
        check_bt("position_ids", &positions, self.batch(), self.seq_len())?;
        self.position_ids = Some(positions);
        Ok(self)
    }

    /// Sets the mask of tokens prompt generators may read.
    pub fn with_context_mask(mut self, mask: Tensor) -> Result<Self> {
        check_bt("context_mask", &mask, self.batch(), self.seq_len())?;
        self.context_mask = Some(mask);
        Ok(self)
    }

    /// Checks the values against `spec`'s tables before any lookup: token ids in
    /// `0..vocab`, token types in `0..type_vocab` (when the model has segment
    /// embeddings), explicit positions not negative (their upper bound depends on the
    /// family's offsets; the embeddings check it). An id past the vocabulary almost
    /// always means a tokenizer that belongs to another model, and the error says so.
    pub fn check_against(&self, spec: &BackboneSpec) -> Result<()> {
        let model = spec.describe();
        let (lo, hi) = min_max(&self.input_ids);
        if lo < 0 || hi >= spec.vocab {
            let bad = if lo < 0 { lo } else { hi };
            return Err(Error::input(format!(
                "token id {bad} is outside the vocabulary of {model} (ids 0..{}): the \
                 tokenizer does not belong to this model",
                spec.vocab
            )));
        }
        if let (Some(types), true) = (&self.token_type_ids, spec.type_vocab > 0) {
            let (lo, hi) = min_max(types);
            if lo < 0 || hi >= spec.type_vocab {
                let bad = if lo < 0 { lo } else { hi };
                return Err(Error::input(format!(
                    "token type {bad} is outside the {} segment type(s) of {model}: this model \
                     cannot embed a second segment (a sentence pair from a tokenizer made for \
                     another model?); join the pair into one text or use the model's own \
                     tokenizer",
                    spec.type_vocab
                )));
            }
        }
        if let Some(p) = &self.position_ids {
            let (lo, _) = min_max(p);
            if lo < 0 {
                return Err(Error::input(format!("position id {lo} is negative")));
            }
        }
        Ok(())
    }

    /// Batch size `B`.
    pub fn batch(&self) -> i64 {
        self.input_ids.size()[0]
    }

    /// Sequence length `T`.
    pub fn seq_len(&self) -> i64 {
        self.input_ids.size()[1]
    }

    /// Device of the ids.
    pub fn device(&self) -> Device {
        self.input_ids.device()
    }

    /// The examples at rows `idx` (`[n]` int64), every optional tensor included
    /// (mixed-delta batches bind each delta on its own rows).
    pub fn select_rows(&self, idx: &Tensor) -> Self {
        let pick = |t: &Tensor| t.index_select(0, idx);
        BackboneInput {
            input_ids: pick(&self.input_ids),
            attention_mask: pick(&self.attention_mask),
            token_type_ids: self.token_type_ids.as_ref().map(pick),
            position_ids: self.position_ids.as_ref().map(pick),
            context_mask: self.context_mask.as_ref().map(pick),
        }
    }

    /// Moves every tensor to `device`.
    pub fn to_device(&self, device: Device) -> Self {
        BackboneInput {
            input_ids: self.input_ids.to_device(device),
            attention_mask: self.attention_mask.to_device(device),
            token_type_ids: self.token_type_ids.as_ref().map(|t| t.to_device(device)),
            position_ids: self.position_ids.as_ref().map(|t| t.to_device(device)),
            context_mask: self.context_mask.as_ref().map(|t| t.to_device(device)),
        }
    }
}
