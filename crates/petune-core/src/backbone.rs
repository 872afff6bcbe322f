//! The frozen-backbone contract (design.md §3, `trait Backbone`).
//!
//! A forward pass is split into `embed → layers(range) → finish` so that callers can
//! run the layers below a prompt layer without autograd and the rest with it, or
//! stop at any layer (probes, `petune forward`).

use std::ops::Range;

use tch::{nn::VarStore, Device, Tensor};

use crate::error::Result;
use crate::hooks::Hooks;
use crate::input::BackboneInput;
use crate::kv_cache::KvCache;
use crate::site::LinearSite;
use crate::spec::BackboneSpec;
use crate::state::SeqState;

/// A transformer backbone written once per architecture, exposing typed sites.
pub trait Backbone {
    /// Shape, sites and capabilities.
    fn spec(&self) -> &BackboneSpec;

    /// The store holding the backbone's weights (frozen unless model tuning).
    fn var_store(&self) -> &VarStore;

    /// Device of the weights.
    fn device(&self) -> Device {
        self.var_store().device()
    }

    /// Embedding layer. Fires `input_embeds`. Returns the embedding output
    /// (`hidden.0` in Hugging Face's `hidden_states`).
    fn embed(&self, input: &BackboneInput, hooks: &dyn Hooks, train: bool) -> Result<SeqState>;

    /// Runs transformer layers `range` (0-based, end exclusive). Fires `before_layer(i)`
    /// before layer `i`, and within each layer `attn_prefix`, `linear`, `norm` and
    /// `sublayer_out`. `layers(s, 0..k)` then `layers(_, k..L)` equals `layers(s, 0..L)`.
    fn layers(
        &self,
        s: SeqState,
        range: Range<usize>,
        hooks: &dyn Hooks,
        train: bool,
    ) -> Result<SeqState>;

    /// [`Backbone::layers`], where the caller reads one token per example afterwards: the
    /// text token at text position `rows[b]` of example `b` (`[B]` int64, each below the
    /// text length). Returns the state of those tokens alone ([`SeqState::read_out`]).
    /// The last layer of `range` then needs only their rows on its query side — its
    /// keys and values still come from every token — and a family that can compute
    /// just those rows does ([`Backbone::read_out_rows_only`]); by default every token is
    /// computed and the rows are gathered (as well when the hooks are not
    /// [`Hooks::row_wise`]). The same values either way, up to the summation order of a
    /// smaller matmul; in training the same distribution, other dropout draws.
    fn layers_read_out(
        &self,
        s: SeqState,
        range: Range<usize>,
        hooks: &dyn Hooks,
        train: bool,
        rows: &Tensor,
    ) -> Result<SeqState> {
        let rows = s.check_rows(rows)?;
        let s = self.layers(s, range, hooks, train)?;
        s.read_out(&rows, None)
    }

    /// Whether [`Backbone::layers_read_out`] computes only the rows read in the last
    /// layer (rather than every token, then a gather) under row-wise hooks.
    fn read_out_rows_only(&self) -> bool {
        false
    }

    /// After the last layer: GPT-2's final LayerNorm (`ln_f`, fires `norm(Final)`);
    /// identity for post-LN encoders.
    fn finish(&self, s: SeqState, hooks: &dyn Hooks, train: bool) -> Result<SeqState>;

    /// [`Backbone::embed`] for cached decoding ([`crate::kv_cache`]): on an empty cache
    /// the prefill (hooks fire as in `embed`), afterwards a step embedding new tokens
    /// that continue the cached ones (`input_embeds` does not fire again; the input's
    /// positions are taken as they are, so pass [`KvCache::next_positions`]). Causal
    /// decoders only: the default is a typed refusal.
    fn embed_cached(
        &self,
        _input: &BackboneInput,
        _hooks: &dyn Hooks,
        _cache: &mut KvCache,
    ) -> Result<SeqState> {
        Err(no_cache(self.spec()))
    }

    /// [`Backbone::layers`] with a key/value cache ([`crate::kv_cache`]): a layer the
    /// cache has not seen runs the prefill (`before_layer` fires) and stores its keys
    /// and values; afterwards the state's tokens are new ones attending everything
    /// cached, and only they are computed. Eval mode, no dropout. Causal decoders only:
    /// the default is a typed refusal.
    fn layers_cached(
        &self,
        _s: SeqState,
        _range: Range<usize>,
        _hooks: &dyn Hooks,
        _cache: &mut KvCache,
    ) -> Result<SeqState> {
        Err(no_cache(self.spec()))
    }

    /// `embed → layers(0..L) → finish`.
    fn forward_t(&self, input: &BackboneInput, hooks: &dyn Hooks, train: bool) -> Result<SeqState> {
        let s = self.embed(input, hooks, train)?;
        let s = self.layers(s, 0..self.spec().n_layers, hooks, train)?;
        self.finish(s, hooks, train)
    }

    /// The word-embedding matrix `[V, H]` (vocabulary-sampled prompt init, tied heads).
    fn word_embeddings(&self) -> Tensor;

    /// LM / MLM head logits `[.., V]` for final hidden states `[.., H]`.
    /// Fails with `Error::Unsupported` when the checkpoint has no head.
    fn lm_logits(&self, hidden: &Tensor, train: bool) -> Result<Tensor>;

    /// Adds `delta` (`[out, in]`, the `nn.Linear` layout whatever the checkpoint
    /// stores) to the frozen weight of the projection at `site`, in place and without
    /// autograd. LoRA merges and unmerges through this; fused projections (GPT-2's
    /// `c_attn`, DeBERTa's `in_proj`) update only the rows of that role.
    fn add_to_linear_weight(&self, site: LinearSite, _delta: &Tensor) -> Result<()> {
        Err(crate::Error::Incompatible {
            method: "weight merging".into(),
            backbone: self.spec().describe(),
            reason: format!("no writable weight for {site:?}"),
        })
    }

    /// BERT-style pooler (`tanh(W h_[CLS] + b)`) on `[B, H]` vectors, when present.
    fn pooler(&self, cls: &Tensor) -> Result<Tensor>;
}

/// The refusal of cached decoding on a backbone that has no causal attention.
fn no_cache(spec: &BackboneSpec) -> crate::Error {
    crate::Error::Unsupported {
        what: "cached decoding".into(),
        msg: format!("{} is not a causal decoder", spec.describe()),
    }
}

/// Runs the whole backbone and returns every hidden state: the embedding output, then
/// the output of each layer, the last one after `finish` (as Hugging Face's
/// `output_hidden_states=True` does).
pub fn all_hidden_states(
    backbone: &dyn Backbone,
    input: &BackboneInput,
    hooks: &dyn Hooks,
    train: bool,
) -> Result<(Vec<Tensor>, SeqState)> {
    let n = backbone.spec().n_layers;
    let mut s = backbone.embed(input, hooks, train)?;
    let mut out = vec![s.hidden.shallow_clone()];
    for i in 0..n {
        s = backbone.layers(s, i..i + 1, hooks, train)?;
        if i + 1 == n {
            s = backbone.finish(s, hooks, train)?;
        }
        out.push(s.hidden.shallow_clone());
    }
    Ok((out, s))
}
