//! The typed vocabulary of injection sites (design.md §3, "Sites").
//!
//! A backbone names every place a delta may act on with one of these values and calls
//! the matching [`crate::Hooks`] method there. This replaces PEFT's module-name tables
//! and OpenDelta's name maps: a method asks for `LinearRole::Query`, never for a
//! string like `attention.self.query`.

use serde::{Deserialize, Serialize};

/// Which projection of a transformer layer a linear site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearRole {
    /// Attention query projection.
    Query,
    /// Attention key projection.
    Key,
    /// Attention value projection.
    Value,
    /// Attention output projection.
    AttnOut,
    /// First FFN projection (hidden → intermediate).
    FfnUp,
    /// Second FFN projection (intermediate → hidden).
    FfnDown,
}

impl LinearRole {
    /// All roles, in the order a layer runs them.
    pub const ALL: [LinearRole; 6] = [
        LinearRole::Query,
        LinearRole::Key,
        LinearRole::Value,
        LinearRole::AttnOut,
        LinearRole::FfnUp,
        LinearRole::FfnDown,
    ];
}

/// A linear projection inside transformer layer `layer` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinearSite {
    /// 0-based layer index.
    pub layer: usize,
    /// Which projection.
    pub role: LinearRole,
}

/// Which LayerNorm a norm site is.
///
/// The role names the sublayer a norm belongs to: post-LN encoders (BERT, RoBERTa,
/// DeBERTa) normalise *after* the residual add, pre-LN GPT-2 normalises the sublayer's
/// input (`ln_1` = `Attn`, `ln_2` = `Ffn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormRole {
    /// The embedding LayerNorm (encoders).
    Embeddings,
    /// The attention sublayer's LayerNorm.
    Attn,
    /// The feed-forward sublayer's LayerNorm.
    Ffn,
    /// The final LayerNorm (GPT-2 `ln_f`).
    Final,
}

/// A LayerNorm: `layer` is `None` for the embedding and final norms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NormSite {
    /// 0-based layer index, or `None` outside the layer stack.
    pub layer: Option<usize>,
    /// Which norm.
    pub role: NormRole,
}

/// A sublayer of a transformer layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sublayer {
    /// Self-attention (after its output projection and dropout).
    Attn,
    /// Feed-forward (after its down projection and dropout).
    Ffn,
}

/// The output of a sublayer just before the residual add (where adapters go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SublayerSite {
    /// 0-based layer index.
    pub layer: usize,
    /// Which sublayer.
    pub kind: Sublayer,
}

/// One linear site of a backbone, with its sizes (for allocating per-site deltas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearSiteInfo {
    /// The site.
    pub site: LinearSite,
    /// Input features.
    pub d_in: i64,
    /// Output features.
    pub d_out: i64,
    /// Whether the frozen projection has a bias.
    pub has_bias: bool,
}

/// One norm site of a backbone, with its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormSiteInfo {
    /// The site.
    pub site: NormSite,
    /// Normalised width.
    pub dim: i64,
    /// Whether the norm has an affine bias.
    pub has_bias: bool,
}

/// Any site a delta can act on (for `petune inspect` and `Delta::touched_sites`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "site", rename_all = "snake_case")]
pub enum SiteRef {
    /// The word embeddings (`Hooks::input_embeds`).
    InputEmbeds,
    /// Before a layer (`Hooks::before_layer`), 0 = the embedding output.
    BeforeLayer {
        /// Layers run before it.
        layer: usize,
    },
    /// A layer's attention prefix (`Hooks::attn_prefix`).
    AttnPrefix {
        /// 0-based layer.
        layer: usize,
    },
    /// A linear projection (`Hooks::linear`).
    Linear(LinearSite),
    /// A LayerNorm (`Hooks::norm`).
    Norm(NormSite),
    /// A sublayer output (`Hooks::sublayer_out`).
    Sublayer(SublayerSite),
}
