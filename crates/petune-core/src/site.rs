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
    /// The gate of a gated FFN (hidden → intermediate; Llama's `gate_proj`, whose
    /// activation multiplies the up projection). Runs before `FfnUp`.
    FfnGate,
    /// First FFN projection (hidden → intermediate; Llama's `up_proj`).
    FfnUp,
    /// Second FFN projection (intermediate → hidden; Llama's `down_proj`).
    FfnDown,
}

impl LinearRole {
    /// All roles, in the order a layer runs them (a plain FFN has no `FfnGate`).
    pub const ALL: [LinearRole; 7] = [
        LinearRole::Query,
        LinearRole::Key,
        LinearRole::Value,
        LinearRole::AttnOut,
        LinearRole::FfnGate,
        LinearRole::FfnUp,
        LinearRole::FfnDown,
    ];

    /// The roles of a transformer layer with a plain (ungated) FFN, in execution order.
    pub const PLAIN_FFN: [LinearRole; 6] = [
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

/// Which norm a norm site is.
///
/// The role names the sublayer a norm belongs to: post-LN encoders (BERT, RoBERTa,
/// DeBERTa) normalise *after* the residual add, pre-norm decoders normalise the
/// sublayer's input (GPT-2: `ln_1` = `Attn`, `ln_2` = `Ffn`; Llama: `input_layernorm` =
/// `Attn`, `post_attention_layernorm` = `Ffn`). Whether it is a LayerNorm or an RMSNorm
/// is the site's [`NormKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormRole {
    /// The embedding LayerNorm (encoders).
    Embeddings,
    /// The attention sublayer's LayerNorm.
    Attn,
    /// The feed-forward sublayer's LayerNorm.
    Ffn,
    /// The final norm (GPT-2 `ln_f`, Llama `norm`).
    Final,
}

/// What a norm site computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// LayerNorm: `(x - mean) / sqrt(var + eps) · w (+ b)`.
    #[default]
    LayerNorm,
    /// RMSNorm (Llama family): `x / sqrt(mean(x²) + eps) · w`, computed in float32, no bias.
    RmsNorm,
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

/// Where a linear site's weight lives in the Hugging Face module tree: the backbone's
/// own mapping from sites to checkpoint (and PEFT) module names, written once per family
/// (its `hf_module` function) and read by PEFT import/export, `petune inspect` and
/// anything else that needs a module name.
///
/// Paths are relative to the bare model (`AutoModel`: `encoder.layer.3.attention.self.query`,
/// `h.3.attn.c_attn`, `layers.3.self_attn.q_proj`); [`HfNames::base_prefix`] is what a
/// task model (`*ForMaskedLM`, `*ForCausalLM`) puts in front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HfModule {
    /// A module of its own: `nn.Linear` (`weight [out, in]`), or Hugging Face's
    /// `Conv1D` (`weight [in, out]`, GPT-2) when `conv1d`.
    Own {
        /// Module path in the bare model.
        path: String,
        /// Stored as `Conv1D`.
        conv1d: bool,
    },
    /// Output rows `offset .. offset + len` of a fused projection (GPT-2's `c_attn`
    /// holds `[q | k | v]`).
    FusedBlock {
        /// Module path of the fused projection in the bare model.
        path: String,
        /// Stored as `Conv1D`.
        conv1d: bool,
        /// First output feature of this site's block.
        offset: i64,
        /// Output features of the block.
        len: i64,
    },
    /// Inside a module whose layout no per-site name can express (DeBERTa's `in_proj`
    /// interleaves q/k/v rows per head): asking for its name is a typed error.
    Unaddressable {
        /// Module path of the projection holding the site.
        path: String,
        /// Why the site has no name of its own.
        reason: String,
    },
}

impl HfModule {
    /// A plain `nn.Linear` module.
    pub fn linear(path: impl Into<String>) -> HfModule {
        HfModule::Own { path: path.into(), conv1d: false }
    }

    /// The module path (of the fused or enclosing projection where there is one).
    pub fn path(&self) -> &str {
        match self {
            HfModule::Own { path, .. }
            | HfModule::FusedBlock { path, .. }
            | HfModule::Unaddressable { path, .. } => path,
        }
    }

    /// Whether the weight is stored as `Conv1D` (`[in, out]`).
    pub fn is_conv1d(&self) -> bool {
        matches!(
            self,
            HfModule::Own { conv1d: true, .. } | HfModule::FusedBlock { conv1d: true, .. }
        )
    }
}

/// Naming facts of a family's checkpoints that are not per site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfNames {
    /// Prefix of the base model inside the family's task models (`bert.`, `roberta.`,
    /// `deberta.`, `transformer.` (GPT-2), `model.` (Llama family)).
    pub base_prefix: String,
    /// The PEFT task type petune writes adapters for: `FEATURE_EXTRACTION` (module
    /// paths of the bare model, as `AutoModel` + PEFT give) or `CAUSAL_LM` (paths of the
    /// `*ForCausalLM` model, i.e. under `base_prefix`, as the Llama ecosystem uses).
    pub peft_task_type: String,
}

impl HfNames {
    /// The module path PEFT writes for a bare-model path, per `peft_task_type`.
    pub fn peft_path(&self, path: &str) -> String {
        if self.peft_task_type == "CAUSAL_LM" {
            format!("{}{path}", self.base_prefix)
        } else {
            path.to_string()
        }
    }
}

/// One linear site of a backbone, with its sizes (for allocating per-site deltas) and
/// its Hugging Face module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearSiteInfo {
    /// The site.
    pub site: LinearSite,
    /// Input features.
    pub d_in: i64,
    /// Output features.
    pub d_out: i64,
    /// Whether the frozen projection has a bias.
    pub has_bias: bool,
    /// Where its weight lives in the checkpoint.
    pub hf_module: HfModule,
}

/// One norm site of a backbone, with its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormSiteInfo {
    /// The site.
    pub site: NormSite,
    /// Normalised width.
    pub dim: i64,
    /// Whether the norm has an affine bias (RMSNorm never has).
    pub has_bias: bool,
    /// LayerNorm or RMSNorm.
    pub kind: NormKind,
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
