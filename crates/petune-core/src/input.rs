//! The validated input of a backbone forward pass (design.md §3, `BackboneInput`).

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

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
