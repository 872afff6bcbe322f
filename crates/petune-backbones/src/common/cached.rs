//! Cached decoding for every causal decoder, written once (the protocol is in
//! [`petune_core::kv_cache`]): the embedding of a prefill or of a step, and the layer
//! loop that stores each layer's keys and values and positions new tokens as the full
//! forward pass would.
//!
//! On the prefill this is the ordinary loop of [`super::layer_loop`] (`before_layer`
//! fires, so a delta's prompt is prepended where it always is) except that every layer
//! also stores what it attended. On a step the state holds only the new tokens; in
//! layer `i` they take their input positions plus the shift the prefill recorded there
//! (the attended tokens prepended below `i`), and attend the layer's cached tokens
//! (prompt tokens included) and each other causally.

use std::ops::Range;

use petune_core::kv_cache::input_positions;
use petune_core::{
    BackboneInput, Error, Hooks, KvCache, KvPrefix, LinearSite, NormSite, Result, SeqState,
    SublayerSite,
};
use tch::{Kind, Tensor};

use super::attention::checked_prefix_mask;
use super::backbone::check_layer_range;
use super::layer_loop::LayerStack;

/// A step's hooks: the delta's per-call hooks, without the prepending ones (their
/// tokens are already in the cache).
struct StepHooks<'a>(&'a dyn Hooks);

impl Hooks for StepHooks<'_> {
    fn attn_prefix(&self, layer: usize) -> Option<KvPrefix> {
        self.0.attn_prefix(layer)
    }

    fn row_wise(&self) -> bool {
        self.0.row_wise()
    }

    fn linear(&self, site: LinearSite, x: &Tensor, y: Tensor) -> Tensor {
        self.0.linear(site, x, y)
    }

    fn norm(&self, site: NormSite, y: Tensor) -> Tensor {
        self.0.norm(site, y)
    }

    fn sublayer_out(&self, site: SublayerSite, h: Tensor) -> Tensor {
        self.0.sublayer_out(site, h)
    }
}

/// `Backbone::embed_cached` given the family's `embed` (which must fire `input_embeds`
/// on the hooks it is handed) and `embed_shift`, the position shift its embedding gave
/// the text on the prefill. A step's input without `position_ids` continues the cache.
pub fn embed_cached(
    input: &BackboneInput,
    hooks: &dyn Hooks,
    cache: &mut KvCache,
    embed: impl Fn(&BackboneInput, &dyn Hooks) -> Result<SeqState>,
    embed_shift: impl Fn(&SeqState, &dyn Hooks) -> i64,
) -> Result<SeqState> {
    let Some(next) = cache.next_positions() else {
        let s = embed(input, hooks)?;
        let shift = embed_shift(&s, hooks);
        cache.record_embedded(input, Some(shift));
        return Ok(s);
    };
    if next.size()[0] != input.batch() {
        return Err(Error::Shape {
            ctx: "cached decoding step".into(),
            expected: format!("[{}, T] (the cached batch)", next.size()[0]),
            got: input.input_ids.size(),
        });
    }
    let input = match input.position_ids {
        Some(_) => input.clone(),
        None => {
            let t = input.seq_len();
            let steps = Tensor::arange(t, (Kind::Int64, input.device())).unsqueeze(0); // [1, T]
            input.clone().with_positions(next.to_device(input.device()) + steps)?
            // [B, T]
        }
    };
    let shifted = input.clone().with_positions(input_positions(&input) + cache.embed_shift())?;
    let s = embed(&shifted, &StepHooks(hooks))?;
    cache.record_embedded(&input, None);
    Ok(s)
}

/// `Backbone::layers_cached` for every causal decoder: runs layers `range` of `stack`
/// on `s`, prefilling the layers `cache` has not seen and stepping the others.
pub fn run_layers_cached<S: LayerStack>(
    stack: &S,
    mut s: SeqState,
    range: Range<usize>,
    hooks: &dyn Hooks,
    cache: &mut KvCache,
) -> Result<SeqState> {
    let spec = stack.spec();
    check_layer_range(&range, spec.n_layers)?;
    if cache.n_layers() != spec.n_layers {
        return Err(Error::config(
            "kv_cache",
            format!("a cache of {} layers for a {}-layer model", cache.n_layers(), spec.n_layers),
        ));
    }
    let Some(base) = cache.input_positions().map(Tensor::shallow_clone) else {
        return Err(Error::config("kv_cache", "layers before the embedding (call embed_cached)"));
    };
    let t = base.size()[1];
    let (kv_heads, head_dim) = (spec.n_kv_heads, spec.head_dim);
    for i in range {
        let shift = match cache.layer(i) {
            None => {
                s = hooks.before_layer(i, s)?;
                let text = s.text_positions(); // [B, T]
                if text.size() != base.size() {
                    return Err(Error::Shape {
                        ctx: format!("cached prefill of layer {i}"),
                        expected: format!("[B, {t}] text tokens (what was embedded)"),
                        got: text.size(),
                    });
                }
                Some(text.narrow(1, t - 1, 1) - base.narrow(1, t - 1, 1)) // [B, 1]
            }
            Some(past) => {
                if s.n_prefix != 0 || s.seq_len() != t {
                    return Err(Error::config(
                        "kv_cache",
                        format!("a step of layer {i} must hold exactly the {t} embedded tokens"),
                    ));
                }
                s.positions = &base + &past.shift; // [B, Tn]
                None
            }
        };
        let prefix = hooks.attn_prefix(i);
        let prefix_mask = checked_prefix_mask(prefix.as_ref(), &s, kv_heads, head_dim, i)?;
        let past = cache.layer(i);
        let ctx = stack.cached_context(i, &s, past, prefix_mask.as_ref())?;
        let (hidden, k, v) =
            stack.forward_layer_cached(i, &s.hidden, &ctx, prefix.as_ref(), past, hooks)?;
        cache.store(i, k, v, &s.pad_mask, &s.positions, shift)?;
        s = s.with_hidden(hidden);
    }
    Ok(s)
}
