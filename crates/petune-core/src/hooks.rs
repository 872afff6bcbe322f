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
/// Backbones with rotary positions (the Llama family) prepend them to the keys *after*
/// the rotation, as they are: prefix keys are not rotated (they have no position), and
/// the text keeps its positions.
///
/// # Shapes
/// `k`, `v`: `[B, kv_heads, P, head_dim]` (`BackboneSpec::n_kv_heads`: fewer than the
/// query heads under grouped-query attention); `mask` (optional): `[B, P]` int64,
/// 1 = attend.
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
    /// Word embeddings `[B, T, H]`, before positions, token types, the embedding
    /// LayerNorm (encoders) and the embedding dropout. Tokens prepended here (prompt
    /// tuning) are positioned by each family's own convention:
    ///
    /// * **BERT / RoBERTa** (PEFT's convention, as Hugging Face treats `inputs_embeds`):
    ///   the prepended tokens are the first tokens of the input. Positions run `0..P+T`
    ///   (BERT) or `padding_idx + 1 ..` sequentially (RoBERTa, padding no longer
    ///   skipped), so the text is shifted by `P`; they get token type 0 and go through
    ///   the embedding LayerNorm and dropout with the text.
    /// * **DeBERTa v1**: likewise first. Released checkpoints have no absolute
    ///   positions (`position_biased_input = false`); the relative positions rebuilt at
    ///   every layer put the prompt at `0..P` and the text at `P..P+T` (text-to-text
    ///   distances unchanged); token type 0 where a type embedding exists.
    /// * **GPT-2** (the LPT authors' convention, `K = 0`): the prepended tokens get
    ///   **no** position embedding and the text keeps its positions `0..T` (or the
    ///   explicit `position_ids`); they are concatenated after `wte + wpe`, before the
    ///   embedding dropout.
    /// * **Llama family** (no absolute positions, no embedding norm or dropout): the
    ///   prepended tokens are the first tokens of the input for rotary attention
    ///   (`SeqState::prepend`: prompt at positions `0..P`, text shifted by `P`), exactly
    ///   Hugging Face's `inputs_embeds`; both prompt conventions coincide.
    ///
    /// A prompt prepended by `before_layer(0)` instead enters after the whole embedding
    /// block (no position, no LayerNorm, no embedding dropout), on every family.
    fn input_embeds(&self, s: SeqState) -> Result<SeqState> {
        Ok(s)
    }

    /// Whether tokens prepended by `input_embeds` are positioned like ordinary tokens in
    /// front of the text (Hugging Face's `inputs_embeds` semantics, which PEFT relies
    /// on): the prompt gets positions `0..P` and the text `P..P+T`. Only GPT-2 reads
    /// this — its default follows the LPT authors (prompt without position, text keeps
    /// `0..T`); the encoders and the Llama family always position prepended tokens as
    /// the first tokens.
    fn positions_include_prefix(&self) -> bool {
        false
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

    /// Whether every site computes a token's output from that token's input alone (the
    /// attention's keys and values aside), so that a layer may run its query side at a
    /// few tokens only ([`crate::Backbone::layers_read_out`]) and give those tokens the
    /// values — and, in training, the distribution of dropout draws — of the whole
    /// layer. True for every delta except a fused LoRA pair with dropout in training.
    fn row_wise(&self) -> bool {
        true
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

    fn positions_include_prefix(&self) -> bool {
        self.0.iter().any(|h| h.positions_include_prefix())
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

    fn row_wise(&self) -> bool {
        self.0.iter().all(|h| h.row_wise())
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
