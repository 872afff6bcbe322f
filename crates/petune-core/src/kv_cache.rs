//! The key/value cache of incremental (autoregressive) decoding: what a causal decoder
//! keeps of the tokens it has already run, so that each new token costs one position
//! (the `past_key_values` of transformers' `generate`, `Cache` in
//! src/transformers/cache_utils.py).
//!
//! # Protocol
//! A cache starts empty. The first call of [`crate::Backbone::embed_cached`] /
//! [`crate::Backbone::layers_cached`] on it is the **prefill**: the whole prompt runs
//! as in an ordinary forward pass — `input_embeds` and `before_layer` fire, so a delta
//! prepends its prompt (prompt tuning, LPT's late prompt at its layer, S-IDPG) exactly
//! as without a cache — and every layer stores the keys and values it attended (after
//! the rotary rotation), with the key mask and positions of the state it ran on. Every
//! later call is a **step**: new tokens only, appended after everything cached. The
//! prepending hooks do not fire again (their tokens already sit in the cache of every
//! layer above the point where they were inserted, as in the full forward pass), while
//! the per-call hooks (`linear`: LoRA and BitFit; `norm`; `sublayer_out`: adapters;
//! `attn_prefix`: P-tuning v2's prefixes, kept outside the cache) fire on the new
//! tokens as usual.
//!
//! Cached decoding therefore assumes that `input_embeds` and `before_layer` only
//! *prepend* tokens (every method in petune does); a hook that rewrote the text's
//! hidden states there would be applied to the prompt but not to generated tokens.
//!
//! # Positions
//! A new token continues the input: its input-level position is one past the last one
//! ([`KvCache::next_positions`]). In layer `i` it gets that position plus the shift the
//! prefill saw there ([`LayerKv::shift`]: the number of attended tokens prepended below
//! layer `i`), so it is positioned exactly as it would be at the end of the full input
//! (`SeqState`'s position convention). The embedding layer applies its own shift
//! ([`KvCache::embed_shift`]: GPT-2's position embeddings of a PEFT-style prompt).

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::input::BackboneInput;

/// The input positions of `input`'s tokens: its `position_ids`, or `0..T` for every
/// row (`[B, T]` int64).
pub fn input_positions(input: &BackboneInput) -> Tensor {
    match &input.position_ids {
        Some(p) => p.shallow_clone(),
        None => {
            let (b, t) = (input.batch(), input.seq_len());
            Tensor::arange(t, (Kind::Int64, input.device())).unsqueeze(0).expand([b, t], true)
        }
    }
}

/// What one layer has cached.
///
/// # Shapes
/// `k`, `v`: `[B, kv_heads, Tc, head_dim]`; `mask`, `positions`: `[B, Tc]` int64 (the
/// key mask, 1 = attend, and the position of each cached token); `shift`: `[B, 1]`.
#[derive(Debug)]
pub struct LayerKv {
    /// Cached keys, as attended (after rotary rotation).
    pub k: Tensor,
    /// Cached values.
    pub v: Tensor,
    /// Key mask of the cached tokens.
    pub mask: Tensor,
    /// Positions of the cached tokens.
    pub positions: Tensor,
    /// What the prefill added to the input positions of the text in this layer.
    pub shift: Tensor,
}

impl LayerKv {
    /// Number of cached tokens `Tc`.
    pub fn len(&self) -> i64 {
        self.mask.size()[1]
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The cache of a whole decoder: one [`LayerKv`] per layer once the prefill ran it.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<Option<LayerKv>>,
    /// Input positions of the tokens the last call embedded `[B, T]`.
    input_positions: Option<Tensor>,
    /// Input-level position of the next token `[B, 1]`.
    next: Option<Tensor>,
    embed_shift: i64,
}

impl KvCache {
    /// An empty cache for a decoder of `n_layers` layers.
    pub fn new(n_layers: usize) -> KvCache {
        KvCache {
            layers: (0..n_layers).map(|_| None).collect(),
            input_positions: None,
            next: None,
            embed_shift: 0,
        }
    }

    /// Number of layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Whether the prefill has embedded its input (later calls are steps).
    pub fn is_started(&self) -> bool {
        self.next.is_some()
    }

    /// The cache of `layer`, once the prefill ran it.
    pub fn layer(&self, layer: usize) -> Option<&LayerKv> {
        self.layers.get(layer).and_then(Option::as_ref)
    }

    /// Tokens cached in `layer` (0 before the prefill ran it).
    pub fn cached_len(&self, layer: usize) -> i64 {
        self.layer(layer).map_or(0, LayerKv::len)
    }

    /// Input-level positions `[B, 1]` of the next token (one past the last embedded).
    pub fn next_positions(&self) -> Option<&Tensor> {
        self.next.as_ref()
    }

    /// Input positions `[B, T]` of the tokens the last embedding call took.
    pub fn input_positions(&self) -> Option<&Tensor> {
        self.input_positions.as_ref()
    }

    /// The embedding layer's position shift of the text (GPT-2 with a prompt prepended
    /// at `input_embeds` and `positions_include_prefix`; 0 otherwise).
    pub fn embed_shift(&self) -> i64 {
        self.embed_shift
    }

    /// Records what an embedding call took: the input positions of its tokens (the
    /// input's `position_ids`, or `0..T`) and, on the prefill, the embedding shift.
    /// Called by backbones.
    pub fn record_embedded(&mut self, input: &BackboneInput, embed_shift: Option<i64>) {
        let positions = input_positions(input);
        let t = positions.size()[1];
        self.next = Some(positions.narrow(1, t - 1, 1) + 1); // [B, 1]
        self.input_positions = Some(positions);
        if let Some(shift) = embed_shift {
            self.embed_shift = shift;
        }
    }

    /// Stores a layer's keys and values `[B, kv_heads, Tc + Tn, d]` (the cached ones
    /// followed by the new tokens', as the layer attended them) and appends the new
    /// tokens' key mask and positions `[B, Tn]`. The first store of a layer is its
    /// prefill and sets its `shift` (`[B, 1]`, zeros when `None`). Called by the layer
    /// loop.
    pub fn store(
        &mut self,
        layer: usize,
        k: Tensor,
        v: Tensor,
        mask: &Tensor,
        positions: &Tensor,
        shift: Option<Tensor>,
    ) -> Result<()> {
        let n = self.layers.len();
        let slot = self.layers.get_mut(layer).ok_or_else(|| {
            Error::config("kv_cache", format!("layer {layer} is beyond the cache's {n} layers"))
        })?;
        let want = slot.as_ref().map_or(0, LayerKv::len) + mask.size()[1];
        let ks = k.size();
        if ks.len() != 4 || ks[2] != want || v.size() != ks || positions.size() != mask.size() {
            return Err(Error::Shape {
                ctx: format!("kv cache of layer {layer}"),
                expected: format!("k, v: [B, kv_heads, {want}, d], positions like the mask"),
                got: ks,
            });
        }
        let mask = mask.to_kind(Kind::Int64);
        let (mask, positions, shift) = match slot.take() {
            Some(past) => (
                Tensor::cat(&[past.mask, mask], 1), // [B, Tc+Tn]
                Tensor::cat(&[past.positions, positions.shallow_clone()], 1),
                past.shift,
            ),
            None => {
                let zeros = || Tensor::zeros([mask.size()[0], 1], (Kind::Int64, mask.device()));
                let shift = shift.unwrap_or_else(zeros);
                (mask, positions.shallow_clone(), shift)
            }
        };
        *slot = Some(LayerKv { k, v, mask, positions, shift });
        Ok(())
    }

    /// Keeps only the rows `idx` (`[n]` int64) of every cached tensor (a batch whose
    /// finished rows are dropped).
    pub fn select_rows(&mut self, idx: &Tensor) {
        for slot in self.layers.iter_mut() {
            if let Some(kv) = slot.take() {
                *slot = Some(LayerKv {
                    k: kv.k.index_select(0, idx),
                    v: kv.v.index_select(0, idx),
                    mask: kv.mask.index_select(0, idx),
                    positions: kv.positions.index_select(0, idx),
                    shift: kv.shift.index_select(0, idx),
                });
            }
        }
        self.next = self.next.as_ref().map(|n| n.index_select(0, idx));
        self.input_positions = self.input_positions.as_ref().map(|p| p.index_select(0, idx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_grows_each_layer_and_keeps_the_prefill_shift() {
        let cpu = tch::Device::Cpu;
        let mut c = KvCache::new(2);
        assert!(!c.is_started());
        let input = BackboneInput::new(Tensor::zeros([1, 3], (Kind::Int64, cpu))).unwrap();
        c.record_embedded(&input, Some(0));
        assert!(c.is_started());
        assert_eq!(Vec::<i64>::try_from(c.next_positions().unwrap().view([-1])).unwrap(), [3]);
        let kv = |t| Tensor::zeros([1, 2, t, 4], (Kind::Float, cpu));
        let mask = Tensor::ones([1, 3], (Kind::Int64, cpu));
        let pos = input_positions(&input);
        c.store(1, kv(3), kv(3), &mask, &pos, Some(Tensor::from_slice2(&[[5i64]]))).unwrap();
        assert_eq!(c.cached_len(0), 0);
        assert_eq!(c.cached_len(1), 3);
        let m1 = Tensor::ones([1, 1], (Kind::Int64, cpu));
        c.store(1, kv(4), kv(4), &m1, &Tensor::from_slice2(&[[8i64]]), None).unwrap();
        let l = c.layer(1).unwrap();
        assert_eq!(l.k.size(), [1, 2, 4, 4]);
        assert_eq!(Vec::<i64>::try_from(l.positions.view([-1])).unwrap(), [0, 1, 2, 8]);
        assert_eq!(l.shift.int64_value(&[0, 0]), 5);
        // Keys that do not cover the mask, and a layer beyond the cache, are errors.
        assert!(c.store(1, kv(4), kv(4), &m1, &Tensor::from_slice2(&[[9i64]]), None).is_err());
        let err = c.store(2, kv(3), kv(3), &mask, &pos, None).unwrap_err();
        assert!(err.to_string().contains("layer 2"), "{err}");
    }
}
