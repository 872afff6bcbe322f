//! Prompt tuning (Lester et al., 2021; the LPT paper's "PT" row, lpt-reference.md §7):
//! `len` trained vectors prepended to every input, nothing else trained.
//!
//! Two conventions, because the two reference implementations differ:
//! * [`PromptPosition::Authors`] — the LPT authors' code: on the encoders the prompt is
//!   concatenated to the *output* of the embedding block (no position embedding, no
//!   embedding LayerNorm or dropout), i.e. LPT at prompt layer 1; on GPT-2 it is
//!   concatenated after `wte + wpe` without a position, before the embedding dropout.
//! * [`PromptPosition::Peft`] — PEFT's `PromptTuningConfig`: the prompt is prepended to
//!   the word embeddings and the model is called with `inputs_embeds`, so the prompt
//!   takes positions `0..P`, the text `P..P+T` (RoBERTa: sequential from
//!   `padding_idx + 1`, not padding-aware), token type 0, and both go through the
//!   embedding LayerNorm (encoders) and dropout. Files in PEFT's format load into this
//!   convention ([`crate::peft`]).

use petune_core::{
    Arch, Backbone, BackboneSpec, BindCtx, Delta, Error, Hooks, Result, SeqState, SiteRef,
};
use petune_lpt::{prompt_var, PromptInit};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Where the prompt enters (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PromptPosition {
    /// The LPT authors' prompt tuning.
    #[default]
    Authors,
    /// PEFT's prompt tuning (Hugging Face `inputs_embeds` semantics).
    Peft,
}

/// Prompt-tuning settings (paper: 20 tokens, N(0, 1)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptTuningConfig {
    /// Prompt length.
    #[serde(default = "default_len")]
    pub len: i64,
    /// Initialisation: `{"kind": "random", "std": 1.0}` or `{"kind": "vocab", "first_n": N}`
    /// (rows of the word embeddings, as PEFT's `SAMPLE_VOCAB` with `first_n` = vocabulary).
    #[serde(default)]
    pub init: PromptInit,
    /// Where the prompt enters.
    #[serde(default)]
    pub position: PromptPosition,
}

fn default_len() -> i64 {
    20
}

impl Default for PromptTuningConfig {
    fn default() -> Self {
        PromptTuningConfig {
            len: default_len(),
            init: PromptInit::default(),
            position: PromptPosition::default(),
        }
    }
}

impl PromptTuningConfig {
    /// Trainable parameters: `len · d`.
    pub fn trainable_params(&self, spec: &BackboneSpec) -> i64 {
        self.len * spec.hidden
    }

    /// Checks the config against a backbone before anything is allocated.
    pub fn validate(&self, spec: &BackboneSpec) -> Result<()> {
        if self.len < 1 {
            return Err(Error::config("len", "prompt tuning needs at least one token"));
        }
        let needs_input_embeds =
            self.position == PromptPosition::Peft || spec.arch == Arch::CausalDecoder;
        if needs_input_embeds && !spec.capabilities.input_embeds {
            return Err(Error::Incompatible {
                method: "prompt tuning".into(),
                backbone: spec.describe(),
                reason: "the backbone has no input_embeds site".into(),
            });
        }
        Ok(())
    }
}

/// The trained prompt.
#[derive(Debug)]
pub struct PromptTuningDelta {
    cfg: PromptTuningConfig,
    /// Prepend at `input_embeds` (else at `before_layer(0)`).
    at_input: bool,
    /// `[len, d]`.
    prompt: Tensor,
}

impl PromptTuningDelta {
    /// Allocates the prompt under `p` (`p.prompt_embedding.weight`, the authors' name).
    pub fn new(p: &nn::Path, cfg: &PromptTuningConfig, backbone: &dyn Backbone) -> Result<Self> {
        let spec = backbone.spec();
        cfg.validate(spec)?;
        let words = backbone.word_embeddings();
        let prompt = prompt_var(
            &(p / "prompt_embedding"),
            "weight",
            cfg.len,
            spec.hidden,
            &cfg.init,
            Some(&words),
        )?;
        let at_input = cfg.position == PromptPosition::Peft || spec.arch == Arch::CausalDecoder;
        Ok(PromptTuningDelta { cfg: cfg.clone(), at_input, prompt })
    }

    /// The prompt `[len, d]`.
    pub fn prompt(&self) -> &Tensor {
        &self.prompt
    }

    /// The config.
    pub fn config(&self) -> &PromptTuningConfig {
        &self.cfg
    }
}

struct PromptHooks<'a>(&'a PromptTuningDelta);

impl Hooks for PromptHooks<'_> {
    fn input_embeds(&self, s: SeqState) -> Result<SeqState> {
        if self.0.at_input {
            s.prepend(&self.0.prompt)
        } else {
            Ok(s)
        }
    }

    fn positions_include_prefix(&self) -> bool {
        self.0.cfg.position == PromptPosition::Peft
    }

    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        if layer == 0 && !self.0.at_input {
            s.prepend(&self.0.prompt)
        } else {
            Ok(s)
        }
    }
}

impl Delta for PromptTuningDelta {
    fn name(&self) -> &'static str {
        "prompt_tuning"
    }

    fn bind<'a>(&'a self, _ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>> {
        Ok(Box::new(PromptHooks(self)))
    }

    fn touched_sites(&self) -> Vec<(SiteRef, i64)> {
        let site =
            if self.at_input { SiteRef::InputEmbeds } else { SiteRef::BeforeLayer { layer: 0 } };
        vec![(site, self.prompt.numel() as i64)]
    }
}
