//! Pieces of `impl Backbone` that every family writes the same way: the layer range
//! check of `Backbone::layers` and the errors for heads a checkpoint does not have.

use std::ops::Range;

use petune_core::{Error, Result};

/// `Backbone::layers`' range check: `range` must lie within `0..n_layers`.
pub fn check_layer_range(range: &Range<usize>, n_layers: usize) -> Result<()> {
    if range.start > range.end || range.end > n_layers {
        return Err(Error::config("layers", format!("range {range:?} is outside 0..{n_layers}")));
    }
    Ok(())
}

/// `Backbone::lm_logits` of an encoder loaded without its MLM head: the caller is
/// pointed at a classification head instead.
pub fn no_mlm_head(model_type: &str) -> Error {
    Error::Unsupported {
        what: "MLM logits".into(),
        msg: format!(
            "this {model_type} checkpoint has no MLM head (use a linear classification head)"
        ),
    }
}

/// `Backbone::pooler` of a backbone without a pooler; `msg` says why (and what to use).
pub fn no_pooler(msg: &str) -> Error {
    Error::Unsupported { what: "pooler".into(), msg: msg.into() }
}

/// The layer a site names, or a config error when the backbone has fewer layers.
pub fn layer_of<T>(layers: &[T], site: petune_core::LinearSite) -> Result<&T> {
    layers.get(site.layer).ok_or_else(|| {
        Error::config(
            "site",
            format!("layer {} is beyond the backbone's {}", site.layer, layers.len()),
        )
    })
}
