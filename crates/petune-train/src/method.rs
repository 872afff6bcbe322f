//! The methods the trainer runs, as one tagged config enum (design.md §6): LPT and its
//! variants, every baseline of the LPT paper (petune-baselines), and model tuning
//! (every backbone weight trained).
//!
//! Which input layout a method gets follows the paper's set-ups and its reported
//! parameter counts (lpt-reference.md §7): the prompt-style methods that the paper
//! counts without a classifier (LPT, prompt tuning, Adapter, AdapterDrop) read the task
//! template and feed a verbalizer (or a linear head at the mask on checkpoints without
//! an MLM head); the methods counted "+ 2-class head" (P-tuning v2, LoRA, BitFit,
//! S-IDPG-PHM) and model tuning read the raw text and classify from the first token.

use petune_baselines::{
    AdapterConfig, AdapterDelta, AdapterDropConfig, BitFitConfig, BitFitDelta, LoraConfig,
    LoraDelta, PTuningV2Config, PTuningV2Delta, PromptTuningConfig, PromptTuningDelta, SidpgConfig,
    SidpgDelta,
};
use petune_core::{Backbone, BackboneSpec, Delta, Result};
use petune_lpt::{GeneratorConfig, LptConfig, LptDelta, PoolKind};
use serde::{Deserialize, Serialize};
use tch::nn;

/// A method, as written in run configs (`{"method": "lora", "r": 8, ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum MethodConfig {
    /// Late Prompt Tuning (NPG, APPG, MPPG or w/o PG).
    Lpt(LptConfig),
    /// Prompt tuning (the LPT code's convention by default, PEFT's with
    /// `"position": "peft"`).
    PromptTuning(PromptTuningConfig),
    /// P-tuning v2: per-layer prefix keys and values.
    #[serde(rename = "ptuning_v2", alias = "p_tuning_v2")]
    PTuningV2(PTuningV2Config),
    /// Bottleneck adapters after attention and FFN.
    Adapter(AdapterConfig),
    /// Adapters with the lowest layers dropped.
    AdapterDrop(AdapterDropConfig),
    /// Bias deltas on every biased linear and LayerNorm.
    #[serde(rename = "bitfit")]
    BitFit(BitFitConfig),
    /// Low-rank updates of chosen projections.
    Lora(LoraConfig),
    /// S-IDPG-PHM: instance-dependent input prompts from a frozen first pass.
    SidpgPhm(SidpgConfig),
    /// Model tuning: the whole backbone is trained with a linear head on `[CLS]`.
    ModelTuning,
}

/// Every method name accepted in configs, for help texts.
pub const METHOD_NAMES: [&str; 9] = [
    "lpt",
    "prompt_tuning",
    "ptuning_v2",
    "adapter",
    "adapter_drop",
    "bitfit",
    "lora",
    "sidpg_phm",
    "model_tuning",
];

impl MethodConfig {
    /// A short label for tables (`LPT NPG (PL 4)`, `prompt tuning`, ...).
    pub fn label(&self) -> String {
        match self {
            MethodConfig::Lpt(c) => {
                let g = match &c.generator {
                    GeneratorConfig::Static { .. } => "w/o PG",
                    GeneratorConfig::Naive { .. } => "NPG",
                    GeneratorConfig::Pool { pool: PoolKind::Avg, .. } => "APPG",
                    GeneratorConfig::Pool { pool: PoolKind::Max, .. } => "MPPG",
                };
                format!("LPT {g} (PL {})", c.prompt_layer)
            }
            MethodConfig::PromptTuning(c) => match c.position {
                petune_baselines::PromptPosition::Authors => "prompt tuning".into(),
                petune_baselines::PromptPosition::Peft => "prompt tuning (PEFT)".into(),
            },
            MethodConfig::PTuningV2(_) => "P-tuning v2".into(),
            MethodConfig::Adapter(_) => "Adapter".into(),
            MethodConfig::AdapterDrop(c) => format!("AdapterDrop (lowest {})", c.drop_lowest),
            MethodConfig::BitFit(_) => "BitFit".into(),
            MethodConfig::Lora(c) => format!("LoRA (r={})", c.r),
            MethodConfig::SidpgPhm(_) => "S-IDPG-PHM".into(),
            MethodConfig::ModelTuning => "model tuning".into(),
        }
    }

    /// Whether inputs get the task template (see the module docs).
    pub fn uses_template(&self) -> bool {
        matches!(
            self,
            MethodConfig::Lpt(_)
                | MethodConfig::PromptTuning(_)
                | MethodConfig::Adapter(_)
                | MethodConfig::AdapterDrop(_)
        )
    }

    /// Whether the backbone's own weights are trained.
    pub fn trains_backbone(&self) -> bool {
        matches!(self, MethodConfig::ModelTuning)
    }

    /// Parameters the method itself trains (the head excluded; the whole backbone for
    /// model tuning), from the spec alone.
    pub fn delta_params(&self, spec: &BackboneSpec) -> i64 {
        match self {
            MethodConfig::Lpt(c) => c.trainable_params(spec.hidden),
            MethodConfig::PromptTuning(c) => c.trainable_params(spec),
            MethodConfig::PTuningV2(c) => c.trainable_params(spec),
            MethodConfig::Adapter(c) => c.trainable_params(spec),
            MethodConfig::AdapterDrop(c) => c.trainable_params(spec),
            MethodConfig::BitFit(c) => c.trainable_params(spec),
            MethodConfig::Lora(c) => c.trainable_params(spec),
            MethodConfig::SidpgPhm(c) => c.trainable_params(spec),
            MethodConfig::ModelTuning => spec.total_params,
        }
    }

    /// Builds the delta under `p` (none for model tuning). Configs that cannot apply to
    /// `backbone` fail here with a typed error, never at forward time.
    pub fn build(&self, p: &nn::Path, backbone: &dyn Backbone) -> Result<Option<Box<dyn Delta>>> {
        Ok(match self {
            MethodConfig::Lpt(c) => Some(Box::new(LptDelta::new(p, c, backbone)?)),
            MethodConfig::PromptTuning(c) => {
                Some(Box::new(PromptTuningDelta::new(p, c, backbone)?))
            }
            MethodConfig::PTuningV2(c) => Some(Box::new(PTuningV2Delta::new(p, c, backbone)?)),
            MethodConfig::Adapter(c) => Some(Box::new(AdapterDelta::new(p, c, backbone)?)),
            MethodConfig::AdapterDrop(c) => {
                Some(Box::new(AdapterDelta::with_drop(p, c, backbone)?))
            }
            MethodConfig::BitFit(c) => Some(Box::new(BitFitDelta::new(p, c, backbone)?)),
            MethodConfig::Lora(c) => Some(Box::new(LoraDelta::new(p, c, backbone)?)),
            MethodConfig::SidpgPhm(c) => Some(Box::new(SidpgDelta::new(p, c, backbone)?)),
            MethodConfig::ModelTuning => None,
        })
    }
}
