//! What the `config.json` types share: the serde defaults Hugging Face gives several
//! families, the validation checks every config runs on its sizes, dropout rates, norm
//! epsilon and padding id, and the norm sites of a spec.
//!
//! Field names are passed in because the families spell them differently (GPT-2's
//! `n_embd` is BERT's `hidden_size`), and errors must name the field of the file.

use petune_core::{Error, NormKind, NormRole, NormSite, NormSiteInfo, Result};

/// Serde default `true` (`tie_word_embeddings` and similar switches).
pub fn default_true() -> bool {
    true
}

/// Serde default of every dropout rate (HF's 0.1 in BERT, DeBERTa and GPT-2).
pub fn default_dropout() -> f64 {
    0.1
}

/// Serde default `hidden_act` of BERT and DeBERTa (exact GELU).
pub fn default_gelu() -> String {
    "gelu".into()
}

/// Serde default `max_position_embeddings` of BERT and DeBERTa.
pub fn default_max_positions() -> i64 {
    512
}

/// The largest size (vocabulary, hidden, heads, FFN, positions) a config may give.
pub const MAX_SIZE: i64 = 1 << 24;
/// The most layers a config may give.
pub const MAX_LAYERS: usize = 1024;

/// The shape checks every config runs, in this order: each `positive` field in
/// `1..=MAX_SIZE`, `layers` (named, value) in `1..=MAX_LAYERS`, and `hidden` divisible
/// by `heads` (both named).
pub fn check_sizes(
    positive: &[(&str, i64)],
    layers: (&str, usize),
    hidden: (&str, i64),
    heads: (&str, i64),
) -> Result<()> {
    for &(field, v) in positive {
        if v <= 0 {
            return Err(Error::config(field, format!("must be positive, got {v}")));
        }
        // Far above any real model, and low enough that parameter counts cannot
        // overflow and a placeholder shape cannot ask for petabytes.
        if v > MAX_SIZE {
            return Err(Error::config(
                field,
                format!("{v} is absurdly large (at most {MAX_SIZE})"),
            ));
        }
    }
    if layers.1 == 0 || layers.1 > MAX_LAYERS {
        return Err(Error::config(
            layers.0,
            format!("must be in 1..={MAX_LAYERS}, got {}", layers.1),
        ));
    }
    // Checked after `positive`, which callers make cover `heads`: no division by zero.
    if hidden.1 % heads.1 != 0 {
        return Err(Error::config(
            hidden.0,
            format!("{} is not divisible by {} {}", hidden.1, heads.0, heads.1),
        ));
    }
    Ok(())
}

/// Every dropout rate must lie in `[0, 1)`.
pub fn check_dropouts(rates: &[(&str, f64)]) -> Result<()> {
    for &(field, p) in rates {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config(field, format!("must be in [0, 1), got {p}")));
        }
    }
    Ok(())
}

/// The LayerNorm epsilon must be a positive number (NaN is rejected too).
pub fn check_eps(field: &str, eps: f64) -> Result<()> {
    if eps.is_nan() || eps <= 0.0 {
        return Err(Error::config(field, "must be positive"));
    }
    Ok(())
}

/// The padding id (as the config resolves it) must index the vocabulary: inputs are
/// padded with it and it is looked up in the word embeddings.
pub fn check_pad_id(pad: i64, vocab: i64) -> Result<()> {
    if pad < 0 || pad >= vocab {
        return Err(Error::config(
            "pad_token_id",
            format!("{pad} is outside the vocabulary of {vocab}"),
        ));
    }
    Ok(())
}

/// One norm site of width `dim` (`layer` `None` for the embedding or final norm); a
/// LayerNorm has a bias, an RMSNorm none.
pub fn norm_site(layer: Option<usize>, role: NormRole, dim: i64, kind: NormKind) -> NormSiteInfo {
    NormSiteInfo {
        site: NormSite { layer, role },
        dim,
        has_bias: kind == NormKind::LayerNorm,
        kind,
    }
}

/// The norm sites of `n_layers` layers of width `dim`, layer by layer: Attn then Ffn.
/// Callers add the embedding or final norm around them.
pub fn layer_norm_sites(
    n_layers: usize,
    dim: i64,
    kind: NormKind,
) -> impl Iterator<Item = NormSiteInfo> {
    (0..n_layers).flat_map(move |layer| {
        [NormRole::Attn, NormRole::Ffn].map(|role| norm_site(Some(layer), role, dim, kind))
    })
}
