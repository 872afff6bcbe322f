//! Multi-head attention over a [`SeqState`]'s padding mask, with optional per-layer
//! prefix key/values (P-tuning v2), an optional causal pattern (decoders) with an
//! optional sliding window (Mistral, Qwen2), and grouped-query attention (fewer
//! key/value heads than query heads, each shared by a group of query heads).
//!
//! Masks are derived from the state at every call, so tokens prepended mid-network
//! are attended without any mask surgery by the method that inserted them. The
//! kernel is libtorch's `scaled_dot_product_attention` with an additive float mask
//! (`enable_gqa` for grouped heads). Keys and values enter [`attend`] as they are
//! attended (after any rotary rotation), so extra keys (prefixes, later a KV cache)
//! are concatenated in front of them there.

use petune_core::{Error, KvPrefix, Result, SeqState};
use tch::{Device, Kind, Tensor};

/// The additive value used for masked keys: float16's most negative finite value for
/// every kind, so that the bias stays finite when fp16 autocast casts an f32 bias (a
/// fully masked row, left padding under a causal mask, then gives a uniform row, not
/// NaN), while `exp` of it still underflows to exactly 0 next to any real score.
const MASK_VALUE: f64 = kind_min(Kind::Half);

/// Additive attention bias `[B, 1, Tq, P + Tk]` (or `[B, 1, 1, P + Tk]` when not causal)
/// from the key padding mask `[B, Tk]` and an optional prefix mask `[B, P]`.
pub fn attention_bias(
    pad_mask: &Tensor,
    prefix_mask: Option<&Tensor>,
    causal: bool,
    kind: Kind,
) -> Tensor {
    masked_bias(pad_mask, prefix_mask, causal.then_some(None), kind)
}

/// A causal decoder's bias `[B, 1, T, P + T]`: query `i` attends prefix slots and the
/// keys `j <= i`, within a sliding window `positions[i] - positions[j] < window` when
/// there is one (transformers' `sliding_window_causal_mask_function`). The window counts
/// the tokens' positions (`[B, T]`, as the state carries them), so neither padding nor a
/// prompt prepended mid-network changes which real tokens a text token sees; on a plain
/// input (positions `0..T`, or contiguous ones after left padding) it is transformers'
/// index window.
pub fn decoder_bias(
    pad_mask: &Tensor,
    positions: &Tensor,
    prefix_mask: Option<&Tensor>,
    window: Option<i64>,
    kind: Kind,
) -> Tensor {
    let near = window.map(|w| {
        let gap = positions.unsqueeze(2) - positions.unsqueeze(1); // [B, T, T]: p_i - p_j
        gap.lt(w).unsqueeze(1) // [B, 1, T, T]
    });
    masked_bias(pad_mask, prefix_mask, Some(near), kind)
}

/// A causal decoder's bias `[B, 1, Tn, P + Tc + Tn]` for `Tn` new tokens (key mask and
/// positions `[B, Tn]`) after `Tc` cached ones (`past`: their key mask and positions
/// `[B, Tc]`), columns ordered prefix, cached, new: a new token attends every prefix
/// slot, every attended cached token and the new tokens up to itself, within the
/// sliding window (counted in positions) when there is one. With nothing cached this is
/// [`decoder_bias`] (and, without a window, the causal [`attention_bias`]).
pub fn cached_decoder_bias(
    past: Option<(&Tensor, &Tensor)>,
    pad_mask: &Tensor,
    positions: &Tensor,
    prefix_mask: Option<&Tensor>,
    window: Option<i64>,
    kind: Kind,
) -> Tensor {
    let (b, tn) = (pad_mask.size()[0], pad_mask.size()[1]);
    let device = pad_mask.device();
    let mut key_masks = Vec::new();
    if let Some(pm) = prefix_mask {
        key_masks.push(pm.to_kind(Kind::Int64));
    }
    if let Some((m, _)) = past {
        key_masks.push(m.to_kind(Kind::Int64));
    }
    key_masks.push(pad_mask.to_kind(Kind::Int64));
    let keys = Tensor::cat(&key_masks, 1); // [B, P+Tc+Tn]
    let tc = past.map_or(0, |(m, _)| m.size()[1]);
    let n_prefix = keys.size()[1] - tc - tn;
    let attend = keys.ne(0).view([b, 1, 1, n_prefix + tc + tn]); // [B, 1, 1, P+Tc+Tn]
                                                                 // New token i (key index tc + i) sees keys j <= tc + i.
    let text = Tensor::ones([tn, tc + tn], (Kind::Bool, device)).tril(tc); // [Tn, Tc+Tn]
    let text = match window {
        Some(w) => {
            let key_pos = match past {
                Some((_, p)) => Tensor::cat(&[p.shallow_clone(), positions.shallow_clone()], 1),
                None => positions.shallow_clone(),
            }; // [B, Tc+Tn]
            let gap = positions.unsqueeze(2) - key_pos.unsqueeze(1); // [B, Tn, Tc+Tn]
            gap.lt(w).unsqueeze(1).logical_and(&text.view([1, 1, tn, tc + tn])) // [B, 1, Tn, Tc+Tn]
        }
        None => text.view([1, 1, tn, tc + tn]),
    };
    let b_pattern = text.size()[0];
    let pre = Tensor::ones([b_pattern, 1, tn, n_prefix], (Kind::Bool, device)); // [*, 1, Tn, P]
    let pattern = Tensor::cat(&[pre, text], 3); // [*, 1, Tn, P+Tc+Tn]
    let attend = attend.logical_and(&pattern); // [B, 1, Tn, P+Tc+Tn]
    let zeros = Tensor::zeros([1], (kind, device));
    zeros.masked_fill(&attend.logical_not(), MASK_VALUE).to_kind(kind)
}

/// [`attention_bias`] with `causal` = `Some(window pattern)`: the text part of a causal
/// pattern is further restricted to the `[B, 1, T, T]` pairs a sliding window allows.
fn masked_bias(
    pad_mask: &Tensor,
    prefix_mask: Option<&Tensor>,
    causal: Option<Option<Tensor>>,
    kind: Kind,
) -> Tensor {
    let (b, t) = (pad_mask.size()[0], pad_mask.size()[1]);
    let keys = match prefix_mask {
        Some(pm) => Tensor::cat(&[pm.to_kind(Kind::Int64), pad_mask.shallow_clone()], 1),
        None => pad_mask.shallow_clone(),
    };
    let n_prefix = keys.size()[1] - t;
    let attend = keys.ne(0).view([b, 1, 1, n_prefix + t]); // [B, 1, 1, P+T]
    let attend = if let Some(window) = causal {
        // Query i sees prefix slots and text keys j <= i (inside the window).
        let text = Tensor::ones([t, t], (Kind::Bool, pad_mask.device())).tril(0); // [T, T]
        let text = match window {
            Some(near) => near.logical_and(&text.view([1, 1, t, t])), // [B, 1, T, T]
            None => text.view([1, 1, t, t]),
        };
        let b_pattern = text.size()[0];
        let pre = Tensor::ones([b_pattern, 1, t, n_prefix], (Kind::Bool, pad_mask.device())); // [*, 1, T, P]
        let pattern = Tensor::cat(&[pre, text], 3); // [*, 1, T, P+T]
        attend.logical_and(&pattern) // [B, 1, T, P+T]
    } else {
        attend
    };
    let zeros = Tensor::zeros([1], (kind, pad_mask.device()));
    zeros.masked_fill(&attend.logical_not(), MASK_VALUE).to_kind(kind)
}

/// [`attention_bias`] for a bidirectional encoder, or `None` when every key is attended
/// (no padding, no masked prefix slot): libtorch's attention then needs no mask, which
/// lets it choose its fused kernel.
pub fn encoder_bias(pad_mask: &Tensor, prefix_mask: Option<&Tensor>, kind: Kind) -> Option<Tensor> {
    let all = |m: &Tensor| m.ne(0).all().int64_value(&[]) == 1;
    if all(pad_mask) && prefix_mask.is_none_or(all) {
        return None;
    }
    Some(attention_bias(pad_mask, prefix_mask, false, kind))
}

/// Repeats each of `x`'s key/value heads `groups` times: `[B, kv, T, d] → [B, kv·groups,
/// T, d]`, head `h` of the result being head `h / groups` of `x` (transformers'
/// `repeat_kv`).
pub fn repeat_kv(x: &Tensor, groups: i64) -> Tensor {
    if groups == 1 {
        return x.shallow_clone();
    }
    let (b, kv, t, d) = (x.size()[0], x.size()[1], x.size()[2], x.size()[3]);
    x.unsqueeze(2).expand([b, kv, groups, t, d], false).reshape([b, kv * groups, t, d])
}

/// Splits `[B, T, H]` into heads: `[B, heads, T, H / heads]`.
pub fn split_heads(x: &Tensor, heads: i64) -> Tensor {
    let (b, t, h) = (x.size()[0], x.size()[1], x.size()[2]);
    x.view([b, t, heads, h / heads]).transpose(1, 2)
}

/// Merges heads back: `[B, heads, T, d] → [B, T, heads·d]`.
pub fn merge_heads(x: &Tensor) -> Tensor {
    let (b, nh, t, d) = (x.size()[0], x.size()[1], x.size()[2], x.size()[3]);
    x.transpose(1, 2).contiguous().view([b, t, nh * d])
}

/// Checks a prefix against the batch and head layout, returning it unchanged.
pub fn check_prefix(
    prefix: &KvPrefix,
    b: i64,
    heads: i64,
    head_dim: i64,
    layer: usize,
) -> Result<()> {
    let ks = prefix.k.size();
    let ok =
        ks.len() == 4 && ks[0] == b && ks[1] == heads && ks[3] == head_dim && prefix.v.size() == ks;
    if !ok {
        return Err(Error::Shape {
            ctx: format!("attention prefix of layer {layer}"),
            expected: format!("k, v: [{b}, {heads}, P, {head_dim}]"),
            got: ks,
        });
    }
    Ok(())
}

/// Scaled dot-product attention of `q` (`[B, heads, T, d]`) over `k, v`
/// (`[B, kv_heads, T, d]`, `kv_heads` dividing `heads`) with an optional prefix;
/// `bias` must already cover the prefix columns. `scale` is the score scale (`None` =
/// libtorch's `1/sqrt(d)`, BERT's): GPT-2's `scale_attn_weights = false` and
/// `scale_attn_by_inverse_layer_idx` change it.
pub fn attend(
    q: &Tensor,
    k: Tensor,
    v: Tensor,
    prefix: Option<&KvPrefix>,
    bias: Option<&Tensor>,
    dropout_p: f64,
    scale: Option<f64>,
) -> Tensor {
    let (k, v) = match prefix {
        Some(p) => (
            Tensor::cat(&[p.k.to_kind(k.kind()), k], 2), // [B, heads, P+T, d]
            Tensor::cat(&[p.v.to_kind(v.kind()), v], 2),
        ),
        None => (k, v),
    };
    let groups = q.size()[1] / k.size()[1];
    if dropout_p > 0.0 && q.device() == Device::Cpu {
        // Training on CPU: libtorch's attention runs this same arithmetic (its fused CPU
        // kernel takes no dropout) but draws the probabilities' dropout mask with float
        // Bernoulli samples, the costliest op of the step; see petune_core::dropout.
        let (k, v) = (repeat_kv(&k, groups), repeat_kv(&v, groups));
        let d = *q.size().last().unwrap_or(&1);
        let scale = scale.unwrap_or(1.0 / (d as f64).sqrt());
        let mut scores = (q * scale).matmul(&k.transpose(-2, -1)); // [B, heads, T, P+T]
        if let Some(b) = bias {
            // In place: the product's backward needs its inputs, not its output.
            let _ = scores.f_add_(b);
        }
        let probs =
            petune_core::dropout::dropout(scores.softmax(-1, scores.kind()), dropout_p, true);
        return probs.matmul(&v); // [B, heads, T, d]
    }
    Tensor::scaled_dot_product_attention(q, &k, &v, bias, dropout_p, false, scale, groups > 1)
}

/// The key mask `[B, P]` (1 = attend) of a prefix: its own (shape checked), or all
/// ones. Call after [`check_prefix`], which validates `k`.
pub fn prefix_mask(prefix: &KvPrefix, batch: i64, device: Device, layer: usize) -> Result<Tensor> {
    let p = prefix.k.size()[2];
    match &prefix.mask {
        Some(m) if m.size() != [batch, p] => Err(Error::Shape {
            ctx: format!("attention prefix mask of layer {layer}"),
            expected: format!("[{batch}, {p}]"),
            got: m.size(),
        }),
        Some(m) => Ok(m.to_device(device).to_kind(Kind::Int64)),
        None => Ok(Tensor::ones([batch, p], (Kind::Int64, device))),
    }
}

/// The key mask `[B, P]` of layer `layer`'s prefix for state `s`, after checking the
/// prefix against the batch and head layout ([`check_prefix`], [`prefix_mask`]);
/// `None` without a prefix.
pub fn checked_prefix_mask(
    prefix: Option<&KvPrefix>,
    s: &SeqState,
    heads: i64,
    head_dim: i64,
    layer: usize,
) -> Result<Option<Tensor>> {
    let Some(p) = prefix else { return Ok(None) };
    check_prefix(p, s.batch(), heads, head_dim, layer)?;
    prefix_mask(p, s.batch(), s.hidden.device(), layer).map(Some)
}

/// The most negative finite value of `kind` (`torch.finfo(dtype).min`), which
/// `masked_fill`-style masking (DeBERTa) writes into disallowed scores.
pub const fn kind_min(kind: Kind) -> f64 {
    match kind {
        Kind::Half => -65504.0,
        Kind::BFloat16 => -3.389_531_389_251_535_5e38,
        Kind::Double => f64::MIN,
        _ => f32::MIN as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention written out: scores, additive bias, softmax, values (heads repeated).
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> Tensor {
        let groups = q.size()[1] / k.size()[1];
        let (k, v) = (repeat_kv(k, groups), repeat_kv(v, groups));
        let d = q.size()[3] as f64;
        let scores = q.matmul(&k.transpose(-2, -1)) / d.sqrt() + bias;
        scores.softmax(-1, q.kind()).matmul(&v)
    }

    #[test]
    fn grouped_query_attention_with_a_sliding_window_matches_the_written_out_form() {
        let (b, t, d) = (2, 7, 16);
        for (kind, tol) in [(Kind::Double, 1e-9), (Kind::Float, 1e-5)] {
            let opts = (kind, Device::Cpu);
            let q = Tensor::randn([b, 4, t, d], opts);
            for kv in [4, 2, 1] {
                let k = Tensor::randn([b, kv, t, d], opts);
                let v = Tensor::randn([b, kv, t, d], opts);
                let mask = Tensor::from_slice2(&[[1i64, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]]);
                for window in [None, Some(3)] {
                    let pos = Tensor::arange(t, (Kind::Int64, Device::Cpu))
                        .unsqueeze(0)
                        .expand([b, t], true);
                    let bias = decoder_bias(&mask, &pos, None, window, kind);
                    let got = attend(
                        &q,
                        k.shallow_clone(),
                        v.shallow_clone(),
                        None,
                        Some(&bias),
                        0.0,
                        None,
                    );
                    let want = reference(&q, &k, &v, &bias);
                    let diff = (got - want).abs().max().double_value(&[]);
                    assert!(diff < tol, "{kind:?} kv {kv}, window {window:?}: {diff}");
                }
            }
        }
        // The window: query 6 sees keys 3..=6 only (window 4); when a prompt at positions
        // 0, 1 is followed by left padding and text at 2.. (the positions a late prompt
        // gives), the window counts positions: the prompt's second token stays in view.
        let ones = Tensor::ones([1, 7], (Kind::Int64, Device::Cpu));
        let seen = |pos: &[i64]| -> Vec<usize> {
            let bias =
                decoder_bias(&ones, &Tensor::from_slice2(&[pos]), None, Some(4), Kind::Float);
            let row = Vec::<f32>::try_from(bias.get(0).get(0).get(6)).unwrap();
            row.iter().enumerate().filter(|(_, v)| **v == 0.0).map(|(j, _)| j).collect()
        };
        assert_eq!(seen(&[0, 1, 2, 3, 4, 5, 6]), [3, 4, 5, 6]);
        assert_eq!(seen(&[0, 1, 2, 2, 2, 3, 4]), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn the_cached_bias_is_the_last_rows_of_the_full_one() {
        // Left padding, a prefix and a window: the bias of the last `tn` queries after
        // `tc` cached tokens equals those rows of the full bias, and with nothing cached
        // it is the full bias.
        let mask = Tensor::from_slice2(&[[0i64, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]);
        let pos = Tensor::from_slice2(&[[0i64, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5]]);
        let prefix = Tensor::from_slice2(&[[1i64, 0], [1, 1]]);
        for window in [None, Some(3)] {
            let full = decoder_bias(&mask, &pos, Some(&prefix), window, Kind::Float);
            let none = cached_decoder_bias(None, &mask, &pos, Some(&prefix), window, Kind::Float);
            assert!(none.equal(&full), "window {window:?}");
            for tc in [1, 4, 5] {
                let tn = 6 - tc;
                let past = (mask.narrow(1, 0, tc), pos.narrow(1, 0, tc));
                let got = cached_decoder_bias(
                    Some((&past.0, &past.1)),
                    &mask.narrow(1, tc, tn),
                    &pos.narrow(1, tc, tn),
                    Some(&prefix),
                    window,
                    Kind::Float,
                );
                assert!(got.equal(&full.narrow(2, tc, tn)), "window {window:?}, tc {tc}");
            }
        }
        let causal = attention_bias(&mask, None, true, Kind::Float);
        assert!(cached_decoder_bias(None, &mask, &pos, None, None, Kind::Float).equal(&causal));
    }
}
