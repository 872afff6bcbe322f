//! The layer-loop protocol, written once for every backbone (docs/sites.md, "Documented
//! order"): for each layer `i` of the range, `before_layer(i)` (which may prepend
//! tokens), then `attn_prefix(i)` checked against the batch and the key/value-head
//! layout, then the attention context derived from the state *as it is now* (masks,
//! relative or rotary positions), then the layer itself, whose output replaces the
//! state's hidden states.
//!
//! Deriving the context from the current state is what lets a method prepend tokens
//! mid-network without touching masks or positions. The context is reused across
//! layers while the state's mask and positions are the very same tensors and no prefix
//! is involved (BERT-style encoders then pass the same bias, decoders the same causal
//! mask and rotary angles to every layer).

use std::ops::Range;
use std::rc::Rc;

use petune_core::{
    Backbone, BackboneSpec, Error, Hooks, KvPrefix, LayerKv, ReadRows, Result, SeqState,
};
use tch::Tensor;

use super::attention::checked_prefix_mask;
use super::backbone::check_layer_range;

/// A backbone's stack of transformer layers, as the shared loop drives it (the number
/// of layers and the key/value layout prefixes must have come from its spec).
pub trait LayerStack: Backbone {
    /// What every layer's attention needs besides the hidden states (an additive bias,
    /// DeBERTa's pairwise mask and relative positions, rotary angles...).
    type Context;

    /// The context for `layer` on state `s`, with the key mask `[B, P]` of the layer's
    /// attention prefix when there is one.
    fn context(
        &self,
        layer: usize,
        s: &SeqState,
        prefix_mask: Option<&Tensor>,
    ) -> Result<Self::Context>;

    /// Layers with the same kind share a context on the same state (Qwen2's
    /// sliding-window layers differ from its full-attention ones). All 0 by default.
    fn context_kind(&self, _layer: usize) -> usize {
        0
    }

    /// The context for `layer` on new tokens `s` after the tokens `past` holds (`None`:
    /// the prefill) for cached decoding ([`petune_core::kv_cache`]). Causal decoders
    /// implement it; the default is a typed refusal.
    fn cached_context(
        &self,
        _layer: usize,
        _s: &SeqState,
        _past: Option<&LayerKv>,
        _prefix_mask: Option<&Tensor>,
    ) -> Result<Self::Context> {
        Err(no_cache(self.spec()))
    }

    /// Runs `layer` on new tokens `x` `[B, Tn, H]` in eval mode, attending `past`'s
    /// keys and values before their own; returns the output and the layer's keys and
    /// values `[B, kv_heads, Tc + Tn, d]` (cached ones first) for the cache.
    fn forward_layer_cached(
        &self,
        _layer: usize,
        _x: &Tensor,
        _ctx: &Self::Context,
        _prefix: Option<&KvPrefix>,
        _past: Option<&LayerKv>,
        _hooks: &dyn Hooks,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        Err(no_cache(self.spec()))
    }

    /// Runs `layer` on `x` `[B, T, H]`.
    fn forward_layer(
        &self,
        layer: usize,
        x: &Tensor,
        ctx: &Self::Context,
        prefix: Option<&KvPrefix>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Tensor;

    /// `layer`'s output `[B, 1, H]` at token `index[b]` of each example (`[B]`, in
    /// range), its keys and values from all of `x` `[B, T, H]`, for a family whose
    /// context does not depend on the query rows (it says so in
    /// `Backbone::read_out_rows_only`). `None` by default: the loop runs the whole layer
    /// and gathers.
    #[allow(clippy::too_many_arguments)]
    fn forward_layer_rows(
        &self,
        _layer: usize,
        _x: &Tensor,
        _index: &Tensor,
        _ctx: &Self::Context,
        _prefix: Option<&KvPrefix>,
        _hooks: &dyn Hooks,
        _train: bool,
    ) -> Option<Tensor> {
        None
    }
}

/// The refusal of cached decoding by a layer stack without causal attention.
fn no_cache(spec: &BackboneSpec) -> Error {
    Error::Unsupported {
        what: "cached decoding".into(),
        msg: format!("{} is not a causal decoder", spec.describe()),
    }
}

/// What identifies a reusable context: the state's mask and positions tensors (by
/// storage), its length and the layer's context kind.
type ContextKey = (usize, usize, i64, usize);

fn key_of(s: &SeqState, kind: usize) -> ContextKey {
    (s.pad_mask.data_ptr() as usize, s.positions.data_ptr() as usize, s.seq_len(), kind)
}

/// A context kept for reuse, with the tensors its key points into held alive (so their
/// storage cannot be recycled for a different mask while the key is compared).
struct Cached<C> {
    key: ContextKey,
    _held: (Tensor, Tensor),
    ctx: Rc<C>,
}

/// `Backbone::layers` for every family: runs layers `range` of `stack` on `s`, firing
/// `before_layer` and `attn_prefix` before each (the layer fires its own sites).
pub fn run_layers<S: LayerStack>(
    stack: &S,
    s: SeqState,
    range: Range<usize>,
    hooks: &dyn Hooks,
    train: bool,
) -> Result<SeqState> {
    run_layers_reading(stack, s, range, hooks, train, None)
}

/// `Backbone::layers_read_out` for every family: [`run_layers`], the last layer of
/// `range` on its query side only at the text tokens `rows` `[B]` where the family can
/// ([`LayerStack::forward_layer_rows`]) and the hooks are row-wise; returns the state of
/// those tokens.
pub fn run_layers_read_out<S: LayerStack>(
    stack: &S,
    s: SeqState,
    range: Range<usize>,
    hooks: &dyn Hooks,
    train: bool,
    rows: &Tensor,
) -> Result<SeqState> {
    let rows = s.check_rows(rows)?;
    run_layers_reading(stack, s, range, hooks, train, Some(&rows))
}

/// The shared loop; with `rows`, the last layer of `range` computes the read-out rows.
fn run_layers_reading<S: LayerStack>(
    stack: &S,
    mut s: SeqState,
    range: Range<usize>,
    hooks: &dyn Hooks,
    train: bool,
    rows: Option<&ReadRows>,
) -> Result<SeqState> {
    let spec = stack.spec();
    check_layer_range(&range, spec.n_layers)?;
    let (kv_heads, head_dim) = (spec.n_kv_heads, spec.head_dim);
    let last = range.end.saturating_sub(1);
    let mut cached: Option<Cached<S::Context>> = None;
    for i in range {
        s = hooks.before_layer(i, s)?;
        let prefix = hooks.attn_prefix(i);
        let prefix_mask = checked_prefix_mask(prefix.as_ref(), &s, kv_heads, head_dim, i)?;
        let key = key_of(&s, stack.context_kind(i));
        let ctx = match (&prefix_mask, &cached) {
            (None, Some(c)) if c.key == key => Rc::clone(&c.ctx),
            _ => {
                let ctx = Rc::new(stack.context(i, &s, prefix_mask.as_ref())?);
                if prefix_mask.is_none() {
                    let held = (s.pad_mask.shallow_clone(), s.positions.shallow_clone());
                    cached = Some(Cached { key, _held: held, ctx: Rc::clone(&ctx) });
                }
                ctx
            }
        };
        if let (Some(rows), true, true) = (rows, i == last, hooks.row_wise()) {
            let index = s.text_index(rows.tensor());
            let x = &s.hidden;
            if let Some(hidden) =
                stack.forward_layer_rows(i, x, &index, &ctx, prefix.as_ref(), hooks, train)
            {
                return s.read_out(rows, Some(hidden));
            }
        }
        let hidden = stack.forward_layer(i, &s.hidden, &ctx, prefix.as_ref(), hooks, train);
        s = s.with_hidden(hidden);
    }
    match rows {
        Some(rows) => s.read_out(rows, None),
        None => Ok(s),
    }
}
