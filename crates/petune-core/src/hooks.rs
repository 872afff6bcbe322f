//! The hooks a backbone calls at every site (design.md §3, `trait Hooks`).
//!
//! Every method defaults to identity, so a backbone run with [`NoHooks`] *is* the
//! reference model. Deltas return a hooks object from `Delta::bind`, holding whatever
//! per-batch state they computed (prefix key/values, generated prompts).

use tch::Tensor;

use crate::error::Result;
use crate::site::{LinearSite, NormSite, SublayerSite};
use crate::state::SeqState;

/// Per-layer attention prefix (P-tuning v2): virtual keys and values prepended to
/// the layer's own, attended by every query.
///
/// # Shapes
/// `k`, `v`: `[B, heads, P, head_dim]`; `mask` (optional): `[B, P]` int64, 1 = attend.
#[derive(Debug)]
pub struct KvPrefix {
    /// Prefix keys.
    pub k: Tensor,
    /// Prefix values.
    pub v: Tensor,
    /// Which prefix slots each example attends (all, when `None`).
    pub mask: Option<Tensor>,
}

/// The callbacks a backbone fires. All default to identity.
pub trait Hooks {
    /// Word embeddings before positions, token types and the embedding LayerNorm are
    /// added (PEFT-style prompt tuning). Tokens prepended here get position embeddings
    /// as if they were the first tokens of the input.
    fn input_embeds(&self, s: SeqState) -> Result<SeqState> {
        Ok(s)
    }

    /// Called before transformer layer `layer` runs; `layer = k` means after `k` layers
    /// (0 = the embedding output). LPT prepends its late prompt here at `k` = the
    /// authors' `add_prompt_layer` (paper PL − 1).
    fn before_layer(&self, _layer: usize, s: SeqState) -> Result<SeqState> {
        Ok(s)
    }

    /// Attention prefix for `layer` (P-tuning v2).
    fn attn_prefix(&self, _layer: usize) -> Option<KvPrefix> {
        None
    }

    /// Output `y` of the linear projection at `site`, given its input `x`
    /// (LoRA adds `scale · B(A(drop(x)))`; BitFit adds a bias delta).
    fn linear(&self, _site: LinearSite, _x: &Tensor, y: Tensor) -> Tensor {
        y
    }

    /// Output of the LayerNorm at `site` (BitFit's norm-bias delta).
    fn norm(&self, _site: NormSite, y: Tensor) -> Tensor {
        y
    }

    /// A sublayer's output after its projection and dropout, before the residual add
    /// (bottleneck adapters).
    fn sublayer_out(&self, _site: SublayerSite, h: Tensor) -> Tensor {
        h
    }
}

/// The identity hooks: the plain reference model.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Several hooks applied in order (e.g. LoRA and a prompt at once).
///
/// For `attn_prefix` the first member that returns a prefix wins.
pub struct Stack<'a>(pub Vec<Box<dyn Hooks + 'a>>);

impl Hooks for Stack<'_> {
    fn input_embeds(&self, mut s: SeqState) -> Result<SeqState> {
        for h in &self.0 {
            s = h.input_embeds(s)?;
        }
        Ok(s)
    }

    fn before_layer(&self, layer: usize, mut s: SeqState) -> Result<SeqState> {
        for h in &self.0 {
            s = h.before_layer(layer, s)?;
        }
        Ok(s)
    }

    fn attn_prefix(&self, layer: usize) -> Option<KvPrefix> {
        self.0.iter().find_map(|h| h.attn_prefix(layer))
    }

    fn linear(&self, site: LinearSite, x: &Tensor, mut y: Tensor) -> Tensor {
        for h in &self.0 {
            y = h.linear(site, x, y);
        }
        y
    }

    fn norm(&self, site: NormSite, mut y: Tensor) -> Tensor {
        for h in &self.0 {
            y = h.norm(site, y);
        }
        y
    }

    fn sublayer_out(&self, site: SublayerSite, mut h: Tensor) -> Tensor {
        for hook in &self.0 {
            h = hook.sublayer_out(site, h);
        }
        h
    }
}
