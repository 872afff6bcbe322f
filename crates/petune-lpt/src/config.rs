//! LPT configuration (paper §3, Table 7; lpt-reference.md §3 and §5).
//!
//! Layer numbering follows the paper: `prompt_layer` = PL, 1-based, and the prompt is
//! prepended before layer PL runs, i.e. after PL − 1 layers — the authors'
//! `--add_prompt_layer K` is `K = PL − 1` (PL 13 = `--add_prompt_layer 12` on
//! RoBERTa-large). PL = 1 puts the prompt on the embedding output, which is the
//! authors' prompt tuning.

use petune_core::{BackboneSpec, Error, Result};
use serde::{Deserialize, Serialize};

/// How a static prompt is initialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PromptInit {
    /// N(0, std²); the authors' `nn.Embedding` default is std = 1.
    Random {
        /// Standard deviation.
        std: f64,
    },
    /// Rows of the word-embedding matrix, sampled uniformly among the first `first_n`.
    Vocab {
        /// Sample among these many first vocabulary rows (the authors' unused option: 5,000).
        first_n: i64,
    },
}

impl Default for PromptInit {
    fn default() -> Self {
        PromptInit::Random { std: 1.0 }
    }
}

/// How generator linears are initialised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LinearInit {
    /// PyTorch's `nn.Linear` default, U(±1/√fan_in) for weights and biases (the
    /// authors' generators are built after `from_pretrained`, so they get this).
    #[default]
    TorchDefault,
    /// N(0, 0.02²) weights, zero biases (HF's `_init_weights`).
    HfNormal,
}

/// Pooling of a pooling prompt generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// Adaptive average pooling (APPG).
    Avg,
    /// Adaptive max pooling (MPPG).
    Max,
}

/// Which prompt the late layer receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GeneratorConfig {
    /// LPT w/o PG: one trained prompt shared by every input (paper default length 20).
    Static {
        /// Prompt length l.
        #[serde(default = "default_static_len")]
        len: i64,
        /// Initialisation.
        #[serde(default)]
        init: PromptInit,
    },
    /// NPG: `Dropout(reshape(W2·ReLU(W1·h + b1) + b2, [l, d]))` from one token's hidden
    /// state (paper Eq. 2; l = 5, m = 128).
    Naive {
        /// Prompt length l.
        #[serde(default = "default_npg_len")]
        len: i64,
        /// Bottleneck m.
        #[serde(default = "default_bottleneck")]
        bottleneck: i64,
        /// Initialisation of the two linears.
        #[serde(default)]
        init: LinearInit,
    },
    /// APPG / MPPG: `Dropout(W2·ReLU(AdaptivePool_l(W1·H + b1)) + b2)` over the valid
    /// tokens (paper Eq. 3; l ∈ {10, 15, 20}, m = 128).
    Pool {
        /// Average (APPG) or max (MPPG).
        pool: PoolKind,
        /// Prompt length l.
        #[serde(default = "default_pool_len")]
        len: i64,
        /// Bottleneck m.
        #[serde(default = "default_bottleneck")]
        bottleneck: i64,
        /// Initialisation of the two linears.
        #[serde(default)]
        init: LinearInit,
    },
}

fn default_static_len() -> i64 {
    20
}
fn default_npg_len() -> i64 {
    5
}
fn default_pool_len() -> i64 {
    10
}
fn default_bottleneck() -> i64 {
    128
}
fn default_dropout() -> f64 {
    0.1
}

/// A Late Prompt Tuning method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LptConfig {
    /// Paper PL (1-based): the prompt enters before layer PL, after PL − 1 layers.
    pub prompt_layer: usize,
    /// The prompt generator.
    pub generator: GeneratorConfig,
    /// Output dropout of generated prompts (the authors use the model's hidden dropout,
    /// 0.1). Static prompts get none, as in the authors' code.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

impl LptConfig {
    /// NPG at `prompt_layer` with the paper's l = 5, m = 128.
    pub fn npg(prompt_layer: usize) -> Self {
        LptConfig {
            prompt_layer,
            generator: GeneratorConfig::Naive {
                len: 5,
                bottleneck: 128,
                init: LinearInit::TorchDefault,
            },
            dropout: 0.1,
        }
    }

    /// LPT w/o PG (a static prompt of 20) at `prompt_layer`.
    pub fn static_prompt(prompt_layer: usize) -> Self {
        LptConfig {
            prompt_layer,
            generator: GeneratorConfig::Static { len: 20, init: PromptInit::default() },
            dropout: 0.1,
        }
    }

    /// Prompt tuning as the LPT authors run it: a static prompt of 20 on the embedding output.
    pub fn prompt_tuning() -> Self {
        Self::static_prompt(1)
    }

    /// APPG or MPPG at `prompt_layer` with l = `len`, m = 128.
    pub fn pooling(prompt_layer: usize, pool: PoolKind, len: i64) -> Self {
        LptConfig {
            prompt_layer,
            generator: GeneratorConfig::Pool {
                pool,
                len,
                bottleneck: 128,
                init: LinearInit::TorchDefault,
            },
            dropout: 0.1,
        }
    }

    /// The authors' `add_prompt_layer`: layers that run before the prompt (PL − 1).
    pub fn insert_before_layer(&self) -> usize {
        self.prompt_layer.saturating_sub(1)
    }

    /// Prompt length l.
    pub fn prompt_len(&self) -> i64 {
        match self.generator {
            GeneratorConfig::Static { len, .. }
            | GeneratorConfig::Naive { len, .. }
            | GeneratorConfig::Pool { len, .. } => len,
        }
    }

    /// Checks the config against a backbone.
    pub fn validate(&self, spec: &BackboneSpec) -> Result<()> {
        if self.prompt_layer == 0 || self.prompt_layer > spec.n_layers {
            return Err(Error::config(
                "prompt_layer",
                format!(
                    "must be in 1..={} (paper numbering) for this {}-layer backbone, got {}",
                    spec.n_layers, spec.n_layers, self.prompt_layer
                ),
            ));
        }
        if self.prompt_len() <= 0 {
            return Err(Error::config("generator.len", "the prompt length must be positive"));
        }
        if let GeneratorConfig::Naive { bottleneck, .. }
        | GeneratorConfig::Pool { bottleneck, .. } = self.generator
        {
            if bottleneck <= 0 {
                return Err(Error::config("generator.bottleneck", "must be positive"));
            }
        }
        if let GeneratorConfig::Static { init: PromptInit::Vocab { first_n }, .. } = self.generator
        {
            if first_n <= 0 || first_n > spec.vocab {
                return Err(Error::config(
                    "generator.init.first_n",
                    format!("must be in 1..={}", spec.vocab),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", "must be in [0, 1)"));
        }
        Ok(())
    }

    /// Trainable parameters of the generator alone (the closed forms of
    /// lpt-reference.md §7): static `l·d`; NPG `d·m + m + m·l·d + l·d`; APPG/MPPG
    /// `2·d·m + m + d` (independent of l).
    pub fn trainable_params(&self, hidden: i64) -> i64 {
        let d = hidden;
        match self.generator {
            GeneratorConfig::Static { len, .. } => len * d,
            GeneratorConfig::Naive { len, bottleneck: m, .. } => d * m + m + m * len * d + len * d,
            GeneratorConfig::Pool { bottleneck: m, .. } => 2 * d * m + m + d,
        }
    }
}
