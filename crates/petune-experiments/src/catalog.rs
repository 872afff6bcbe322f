//! The methods of the LPT paper by short name, configured as the paper sets them up on a
//! given backbone (lpt-reference.md §5 and §7): LPT at the middle prompt layer
//! (PL = L/2 + 1, paper PL 13 of 24), NPG l = 5 / m = 128, APPG and MPPG l = 10, LPT w/o
//! PG and prompt tuning l = 20, AdapterDrop without the lowest half of the layers, LoRA
//! r = 8, α = 16 on query and value (GPT-2: r = 4, α = 32 on the fused `c_attn`, as
//! OpenDelta maps it), S-IDPG-PHM l = 5, m = 256.
//!
//! One table serves the CLI (`--method npg`), the main job and every paper example.

use std::path::Path;

use petune_baselines::{
    AdapterConfig, AdapterDropConfig, BitFitConfig, LoraConfig, PTuningV2Config, PromptPosition,
    PromptTuningConfig, SidpgConfig,
};
use petune_core::{BackboneSpec, HfModule, LinearRole, LinearSite};
use petune_lpt::{LptConfig, PoolKind, PromptInit};
use petune_train::{MethodConfig, METHOD_NAMES};

use crate::error::{ExperimentError, Result};

/// Short names, in the order of the paper's tables.
pub const SHORT_NAMES: [&str; 13] = [
    "mt",
    "adapter",
    "adapter_drop",
    "bitfit",
    "lora",
    "pt",
    "pt_peft",
    "ptv2",
    "sidpg",
    "wo_pg",
    "appg",
    "mppg",
    "npg",
];

/// The methods of the paper's main tables (Tables 1–2), in its row order.
pub const PAPER_ROWS: [&str; 11] = [
    "mt",
    "adapter",
    "adapter_drop",
    "bitfit",
    "lora",
    "pt",
    "ptv2",
    "sidpg",
    "wo_pg",
    "mppg",
    "npg",
];

/// The middle prompt layer of a backbone in the paper's numbering (13 of 24, 4 of 6).
pub fn middle_prompt_layer(spec: &BackboneSpec) -> usize {
    spec.n_layers / 2 + 1
}

/// The paper's configuration of the method called `name` on `spec` (a short name of
/// [`SHORT_NAMES`] or a config name of `METHOD_NAMES` for its defaults).
///
/// ```
/// use petune_experiments::catalog::paper_method;
///
/// let config = std::path::Path::new("../../tests/fixtures/configs/roberta-large.json");
/// let spec = petune_backbones::spec_from_config(config).unwrap();
/// let npg = paper_method("npg", &spec).unwrap();
/// assert_eq!(npg.label(), "LPT NPG (PL 13)");
/// assert_eq!(npg.delta_params(&spec), 791_680); // paper Table 5: 792K
/// ```
pub fn paper_method(name: &str, spec: &BackboneSpec) -> Result<MethodConfig> {
    let pl = middle_prompt_layer(spec);
    // GPT-2 stores q/k/v in one `c_attn`; the Llama family keeps them apart.
    let fused_qkv = spec
        .linear_site(LinearSite { layer: 0, role: LinearRole::Query })
        .is_some_and(|s| matches!(s.hf_module, HfModule::FusedBlock { .. }));
    // Bias-free backbones (Llama, Mistral) get zero-initialised biases to tune.
    let biased =
        spec.linear_sites.iter().any(|s| s.has_bias) || spec.norm_sites.iter().any(|s| s.has_bias);
    Ok(match name {
        "mt" | "model_tuning" => MethodConfig::ModelTuning,
        "npg" | "lpt" => MethodConfig::Lpt(LptConfig::npg(pl)),
        "appg" => MethodConfig::Lpt(LptConfig::pooling(pl, PoolKind::Avg, 10)),
        "mppg" => MethodConfig::Lpt(LptConfig::pooling(pl, PoolKind::Max, 10)),
        "wo_pg" => MethodConfig::Lpt(LptConfig::static_prompt(pl)),
        "pt" | "prompt_tuning" => MethodConfig::PromptTuning(PromptTuningConfig::default()),
        "pt_peft" => MethodConfig::PromptTuning(PromptTuningConfig {
            init: PromptInit::Vocab { first_n: 5000.min(spec.vocab) },
            position: PromptPosition::Peft,
            ..PromptTuningConfig::default()
        }),
        "ptv2" | "ptuning_v2" => MethodConfig::PTuningV2(PTuningV2Config::default()),
        "adapter" => MethodConfig::Adapter(AdapterConfig::default()),
        "adapter_drop" => MethodConfig::AdapterDrop(AdapterDropConfig {
            adapter: AdapterConfig::default(),
            drop_lowest: spec.n_layers / 2,
            schedule: Default::default(),
        }),
        "bitfit" => {
            MethodConfig::BitFit(BitFitConfig { add_missing: !biased, ..BitFitConfig::default() })
        }
        // OpenDelta's `attn@.q@`, `attn@.v@` land on GPT-2's fused `c_attn`, so the
        // whole 1280 → 3840 projection gets one rank-4 update (paper: 740K).
        "lora" if fused_qkv => MethodConfig::Lora(LoraConfig {
            r: 4,
            alpha: 32.0,
            targets: vec![LinearRole::Query, LinearRole::Key, LinearRole::Value],
            fused_qkv: true,
            ..LoraConfig::default()
        }),
        "lora" => MethodConfig::Lora(LoraConfig::default()),
        "sidpg" | "sidpg_phm" => MethodConfig::SidpgPhm(SidpgConfig::default()),
        other => {
            return Err(ExperimentError::invalid(format!(
                "unknown method `{other}`: one of {}, or a config name ({})",
                SHORT_NAMES.join(", "),
                METHOD_NAMES.join(", ")
            )))
        }
    })
}

/// A method given as a JSON file, inline JSON (`{"method": "lora", "r": 4}`) or a name
/// for [`paper_method`].
pub fn parse_method(arg: &str, spec: &BackboneSpec) -> Result<MethodConfig> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).map_err(|e| ExperimentError::io(arg, e))?
    } else if arg.trim_start().starts_with('{') {
        arg.to_string()
    } else {
        return paper_method(arg, spec);
    };
    serde_json::from_str(&text)
        .map_err(|e| ExperimentError::invalid(format!("not a valid method config ({e}): {text}")))
}

/// `method` with its prompt layer set to `pl` (LPT only; other methods unchanged).
pub fn at_prompt_layer(method: &MethodConfig, pl: usize) -> MethodConfig {
    let mut m = method.clone();
    if let MethodConfig::Lpt(c) = &mut m {
        c.prompt_layer = pl;
    }
    m
}

/// The peak learning rate the scaled-down runs use (MiniLM-L6, few-shot MR, 80 steps):
/// prompt methods 5e-3, BitFit 5e-3, adapters / LoRA / S-IDPG 2e-3, model tuning 5e-5.
pub fn scaled_lr(method: &MethodConfig) -> f64 {
    match method {
        MethodConfig::ModelTuning => 5e-5,
        MethodConfig::Adapter(_)
        | MethodConfig::AdapterDrop(_)
        | MethodConfig::Lora(_)
        | MethodConfig::SidpgPhm(_) => 2e-3,
        _ => 5e-3,
    }
}
