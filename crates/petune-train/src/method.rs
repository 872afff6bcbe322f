//! The methods the trainer runs, as one tagged config enum (design.md §6): LPT and its
//! variants, prompt tuning as the LPT authors define it (a static prompt on the
//! embedding output), and model tuning (every backbone weight trained).

use petune_core::{Backbone, Delta, Result};
use petune_lpt::{LptConfig, LptDelta, PromptInit};
use serde::{Deserialize, Serialize};
use tch::nn;

/// A method, as written in run configs (`{"method": "lpt", ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum MethodConfig {
    /// Late Prompt Tuning (NPG, APPG, MPPG or w/o PG).
    Lpt(LptConfig),
    /// Prompt tuning: a static prompt of `len` on the embedding output (LPT at PL 1).
    PromptTuning {
        /// Prompt length (paper: 20).
        #[serde(default = "default_pt_len")]
        len: i64,
        /// Initialisation (paper: N(0, 1)).
        #[serde(default)]
        init: PromptInit,
    },
    /// Model tuning: the whole backbone is trained with a linear head on `[CLS]`.
    ModelTuning,
}

fn default_pt_len() -> i64 {
    20
}

impl MethodConfig {
    /// A short label for tables (`LPT-NPG@4`, `prompt tuning`, ...).
    pub fn label(&self) -> String {
        match self {
            MethodConfig::Lpt(c) => {
                let g = match &c.generator {
                    petune_lpt::GeneratorConfig::Static { .. } => "w/o PG".to_string(),
                    petune_lpt::GeneratorConfig::Naive { .. } => "NPG".to_string(),
                    petune_lpt::GeneratorConfig::Pool {
                        pool: petune_lpt::PoolKind::Avg, ..
                    } => "APPG".to_string(),
                    petune_lpt::GeneratorConfig::Pool {
                        pool: petune_lpt::PoolKind::Max, ..
                    } => "MPPG".to_string(),
                };
                format!("LPT {g} (PL {})", c.prompt_layer)
            }
            MethodConfig::PromptTuning { .. } => "prompt tuning".into(),
            MethodConfig::ModelTuning => "model tuning".into(),
        }
    }

    /// Whether inputs get the task template (everything but model tuning).
    pub fn uses_template(&self) -> bool {
        !matches!(self, MethodConfig::ModelTuning)
    }

    /// Whether the backbone's own weights are trained.
    pub fn trains_backbone(&self) -> bool {
        matches!(self, MethodConfig::ModelTuning)
    }

    /// Builds the delta under `p` (none for model tuning).
    pub fn build(&self, p: &nn::Path, backbone: &dyn Backbone) -> Result<Option<Box<dyn Delta>>> {
        Ok(match self {
            MethodConfig::Lpt(c) => Some(Box::new(LptDelta::new(p, c, backbone)?)),
            MethodConfig::PromptTuning { len, init } => {
                let mut c = LptConfig::prompt_tuning();
                c.generator = petune_lpt::GeneratorConfig::Static { len: *len, init: init.clone() };
                Some(Box::new(LptDelta::new(p, &c, backbone)?))
            }
            MethodConfig::ModelTuning => None,
        })
    }
}
