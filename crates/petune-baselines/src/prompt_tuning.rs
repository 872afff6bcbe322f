//! Prompt tuning (Lester et al., 2021; the LPT paper's "PT" row, lpt-reference.md §7):
//! `len` trained vectors prepended to every input, nothing else trained.
//!
//! Two conventions, because the two reference implementations differ:
//! * [`PromptPosition::EmbeddingOutput`] — the LPT authors' code: the prompt is
//!   concatenated to the *output* of the embedding block (no position embedding, no
//!   embedding LayerNorm or dropout), i.e. LPT at prompt layer 1.
//! * [`PromptPosition::InputEmbeds`] — PEFT's `PromptTuningConfig`: the prompt is
//!   prepended to the word embeddings (`inputs_embeds`), so it receives positions and
//!   goes through the embedding LayerNorm and dropout (`Hooks::input_embeds` documents
//!   each family). Files in PEFT's format load into this convention ([`crate::peft`]).

use petune_core::{Backbone, BackboneSpec, BindCtx, Delta, Error, Hooks, Result, SeqState};
use petune_lpt::{prompt_var, PromptInit};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Where the prompt enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PromptPosition {
    /// After the embedding block (the LPT authors' prompt tuning).
    #[default]
    EmbeddingOutput,
    /// Prepended to the word embeddings (PEFT).
    InputEmbeds,
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
        if self.position == PromptPosition::InputEmbeds && !spec.capabilities.input_embeds {
            return Err(Error::Incompatible {
                method: "prompt tuning (input_embeds)".into(),
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
        Ok(PromptTuningDelta { cfg: cfg.clone(), prompt })
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
        match self.0.cfg.position {
            PromptPosition::InputEmbeds => s.prepend(&self.0.prompt),
            PromptPosition::EmbeddingOutput => Ok(s),
        }
    }

    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        match self.0.cfg.position {
            PromptPosition::EmbeddingOutput if layer == 0 => s.prepend(&self.0.prompt),
            _ => Ok(s),
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
}
