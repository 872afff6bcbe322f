//! PEFT's file format for LoRA and prompt tuning (PEFT 0.21 `save_pretrained` /
//! `PeftModel.from_pretrained`; ecosystem.md): a folder with `adapter_config.json` and
//! `adapter_model.safetensors` (`{"format": "pt"}` metadata).
//!
//! * LoRA keys are `base_model.model.<module>.lora_A.weight` (`[r, in]`) and
//!   `.lora_B.weight` (`[out, r]`), `<module>` the module path inside the bare Hugging
//!   Face model (`AutoModel`): `encoder.layer.3.attention.self.query` (BERT, RoBERTa),
//!   `h.3.attn.c_attn` (GPT-2, whose fused `c_attn` LoRA is petune's `fused_qkv`, rows
//!   of `B` = `[q | k | v]`). Stored shapes do not depend on `fan_in_fan_out`. Reading
//!   also accepts the `bert.` / `roberta.` / `deberta.` / `transformer.` prefix of task
//!   models and PEFT's `.default` adapter infix.
//! * Prompt tuning stores `prompt_embeddings` `[P, d]`; PEFT prepends it to the input
//!   embeddings ([`PromptPosition::Peft`]). PEFT needs a `task_type` for that
//!   (`FEATURE_EXTRACTION` is written), else its plain `PeftModel` ignores the prompt.
//!
//! Not expressible in PEFT (a typed error says so): LoRA on DeBERTa's fused `in_proj`
//! (its rows interleave q/k/v per head), separate LoRA on GPT-2's Q/K/V, prompts trained
//! in the LPT authors' convention. Unsupported PEFT options (rsLoRA, DoRA, bias
//! training, per-module rank or alpha patterns) are refused when reading.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use petune_core::fsio::{read_json, write_json_atomic};
use petune_core::tensor_io::{read_safetensors, write_safetensors};
use petune_core::{Backbone, BackboneSpec, Error, Family, LinearRole, LinearSite, Result};
use serde_json::{json, Value};
use tch::{nn, Tensor};

use crate::lora::{LoraConfig, LoraDelta};
use crate::prompt_tuning::{PromptPosition, PromptTuningConfig, PromptTuningDelta};

/// The adapter config file name.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter weights file name.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
const PREFIX: &str = "base_model.model.";

fn unsupported(what: impl Into<String>, spec: &BackboneSpec, reason: impl Into<String>) -> Error {
    Error::Incompatible { method: what.into(), backbone: spec.describe(), reason: reason.into() }
}

/// The PEFT module path of a LoRA site (`fused` = GPT-2's whole `c_attn`).
fn module_path(spec: &BackboneSpec, site: LinearSite, fused: bool) -> Result<String> {
    use LinearRole::*;
    let l = site.layer;
    let inside = match (spec.family, site.role) {
        (Family::Bert | Family::Roberta, Query) => "attention.self.query",
        (Family::Bert | Family::Roberta, Key) => "attention.self.key",
        (Family::Bert | Family::Roberta, Value) => "attention.self.value",
        (Family::Gpt2, Query | Key | Value) if fused => "attn.c_attn",
        (Family::Gpt2, AttnOut) => "attn.c_proj",
        (Family::Gpt2, FfnUp) => "mlp.c_fc",
        (Family::Gpt2, FfnDown) => "mlp.c_proj",
        (Family::Gpt2, _) => return Err(unsupported(
            "LoRA export",
            spec,
            "GPT-2 fuses q/k/v in c_attn: PEFT can only express a shared-A LoRA on it (fused_qkv)",
        )),
        (Family::Deberta, Query | Key | Value) => {
            return Err(unsupported(
                "LoRA export",
                spec,
                "DeBERTa's q/k/v live in one in_proj whose rows interleave per head",
            ))
        }
        (_, AttnOut) => "attention.output.dense",
        (_, FfnUp) => "intermediate.dense",
        (_, FfnDown) => "output.dense",
    };
    Ok(match spec.family {
        Family::Gpt2 => format!("h.{l}.{inside}"),
        _ => format!("encoder.layer.{l}.{inside}"),
    })
}

/// Parses a module path back into `(layer, roles)`: `c_attn` gives all three of Q/K/V.
fn parse_module(spec: &BackboneSpec, module: &str) -> Option<(usize, Vec<LinearRole>)> {
    use LinearRole::*;
    let rest = ["bert.", "roberta.", "deberta.", "transformer."]
        .iter()
        .find_map(|p| module.strip_prefix(p))
        .unwrap_or(module);
    let rest = match spec.family {
        Family::Gpt2 => rest.strip_prefix("h.")?,
        _ => rest.strip_prefix("encoder.layer.")?,
    };
    let (layer, inside) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let roles = match (spec.family, inside) {
        (Family::Gpt2, "attn.c_attn") => vec![Query, Key, Value],
        (Family::Gpt2, "attn.c_proj") => vec![AttnOut],
        (Family::Gpt2, "mlp.c_fc") => vec![FfnUp],
        (Family::Gpt2, "mlp.c_proj") => vec![FfnDown],
        (Family::Bert | Family::Roberta, "attention.self.query") => vec![Query],
        (Family::Bert | Family::Roberta, "attention.self.key") => vec![Key],
        (Family::Bert | Family::Roberta, "attention.self.value") => vec![Value],
        (Family::Gpt2, _) => return None,
        (_, "attention.output.dense") => vec![AttnOut],
        (_, "intermediate.dense") => vec![FfnUp],
        (_, "output.dense") => vec![FfnDown],
        _ => return None,
    };
    Some((layer, roles))
}

/// `target_modules` for PEFT: short names where they match only the intended modules
/// (PEFT matches `key == target` or `key.endswith("." + target)`), full paths otherwise.
fn target_modules(
    spec: &BackboneSpec,
    modules: &BTreeSet<String>,
    all_layers: bool,
) -> Vec<String> {
    let short = |m: &str| -> Option<&'static str> {
        let tail = m.split_once('.').and_then(|(_, r)| r.split_once('.')).map(|(_, r)| r)?;
        let tail = match spec.family {
            Family::Gpt2 => tail,
            _ => tail.split_once('.').map(|(_, r)| r)?,
        };
        [
            ("attention.self.query", "query"),
            ("attention.self.key", "key"),
            ("attention.self.value", "value"),
            ("attention.output.dense", "attention.output.dense"),
            ("intermediate.dense", "intermediate.dense"),
            ("attn.c_attn", "c_attn"),
            ("attn.c_proj", "attn.c_proj"),
            ("mlp.c_fc", "c_fc"),
            ("mlp.c_proj", "mlp.c_proj"),
        ]
        .iter()
        .find(|(full, _)| *full == tail)
        .map(|(_, s)| *s)
    };
    let mut out = BTreeSet::new();
    for m in modules {
        match short(m).filter(|_| all_layers) {
            Some(s) => out.insert(s.to_string()),
            None => out.insert(m.clone()),
        };
    }
    out.into_iter().collect()
}

fn number(alpha: f64) -> Value {
    if alpha.fract() == 0.0 && alpha.abs() < 1e15 {
        json!(alpha as i64)
    } else {
        json!(alpha)
    }
}

/// Writes `delta` as a PEFT LoRA adapter folder for the bare model of `spec`.
pub fn save_lora(
    delta: &LoraDelta,
    spec: &BackboneSpec,
    dir: &Path,
    base_model: Option<&str>,
) -> Result<()> {
    let cfg = delta.config();
    let mut tensors = Vec::new();
    let mut modules = BTreeSet::new();
    for (site, pair) in delta.pairs() {
        let m = module_path(spec, *site, false)?;
        tensors.push((format!("{PREFIX}{m}.lora_A.weight"), pair.a.detach()));
        tensors.push((format!("{PREFIX}{m}.lora_B.weight"), pair.b.detach()));
        modules.insert(m);
    }
    if !delta.fused_pairs().is_empty() && spec.family != Family::Gpt2 {
        return Err(unsupported(
            "LoRA export",
            spec,
            "a fused q/k/v LoRA has no PEFT module on this family (only GPT-2's c_attn)",
        ));
    }
    for (layer, pair) in delta.fused_pairs() {
        let m = module_path(spec, LinearSite { layer: *layer, role: LinearRole::Query }, true)?;
        tensors.push((format!("{PREFIX}{m}.lora_A.weight"), pair.a.detach()));
        tensors.push((format!("{PREFIX}{m}.lora_B.weight"), pair.b.detach()));
        modules.insert(m);
    }
    let config = json!({
        "peft_type": "LORA",
        "task_type": "FEATURE_EXTRACTION",
        "base_model_name_or_path": base_model,
        "r": cfg.r,
        "lora_alpha": number(cfg.alpha),
        "lora_dropout": cfg.dropout,
        "target_modules": target_modules(spec, &modules, cfg.layers.is_none()),
        "fan_in_fan_out": spec.family == Family::Gpt2,
        "bias": "none",
        "use_rslora": false,
        "use_dora": false,
        "init_lora_weights": true,
        "inference_mode": true,
        "modules_to_save": null,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": null,
    });
    write_weights(dir, tensors)?;
    write_json_atomic(&dir.join(CONFIG_FILE), &config)
}

fn write_weights(dir: &Path, tensors: Vec<(String, Tensor)>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&dir.join(WEIGHTS_FILE), &tensors, Some(meta))
}

fn read_config(dir: &Path, want: &str) -> Result<Value> {
    let path = dir.join(CONFIG_FILE);
    let v: Value = read_json(&path)?;
    let found = v.get("peft_type").and_then(Value::as_str).unwrap_or("<missing>");
    if found != want {
        return Err(Error::config(
            format!("{}: peft_type", path.display()),
            format!("expected {want}, found {found}"),
        ));
    }
    Ok(v)
}

fn field_f64(v: &Value, key: &str, default: Option<f64>) -> Result<f64> {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| Error::config(key, "not a number")),
        None | Some(Value::Null) => {
            default.ok_or_else(|| Error::config(key, "missing in adapter_config.json"))
        }
        Some(other) => Err(Error::config(key, format!("expected a number, found {other}"))),
    }
}

/// Refuses PEFT LoRA options petune does not implement.
fn check_lora_options(v: &Value) -> Result<()> {
    let truthy = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    for k in ["use_rslora", "use_dora", "use_qalora"] {
        if truthy(k) {
            return Err(Error::config(k, "not supported by petune's LoRA"));
        }
    }
    if let Some(b) = v.get("bias").and_then(Value::as_str).filter(|b| *b != "none") {
        return Err(Error::config("bias", format!("`{b}`: only bias = \"none\" is supported")));
    }
    for k in ["rank_pattern", "alpha_pattern"] {
        if v.get(k).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
            return Err(Error::config(k, "per-module ranks or alphas are not supported"));
        }
    }
    Ok(())
}

fn copy_into(var: &Tensor, value: &Tensor, key: &str) -> Result<()> {
    if var.size() != value.size() {
        return Err(Error::Shape {
            ctx: key.into(),
            expected: format!("{:?}", var.size()),
            got: value.size(),
        });
    }
    let _no_grad = tch::no_grad_guard();
    let mut var = var.shallow_clone();
    var.f_copy_(&value.to_kind(var.kind()))?;
    Ok(())
}

/// Reads a PEFT LoRA folder onto `backbone`, allocating the delta under `p`.
pub fn load_lora(dir: &Path, p: &nn::Path, backbone: &dyn Backbone) -> Result<LoraDelta> {
    let spec = backbone.spec();
    let v = read_config(dir, "LORA")?;
    check_lora_options(&v)?;
    let r = field_f64(&v, "r", None)? as i64;
    let alpha = field_f64(&v, "lora_alpha", Some(8.0))?;
    let dropout = field_f64(&v, "lora_dropout", Some(0.0))?;
    let path = dir.join(WEIGHTS_FILE);
    let file = read_safetensors(&path, backbone.device())?;
    // (module, A or B) → tensor, every key accounted for.
    let mut by_module: BTreeMap<String, [Option<Tensor>; 2]> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for (key, t) in &file.tensors {
        let parsed = key.strip_prefix(PREFIX).and_then(|k| {
            let k = k.replace(".default.weight", ".weight");
            k.strip_suffix(".lora_A.weight")
                .map(|m| (m.to_string(), 0))
                .or_else(|| k.strip_suffix(".lora_B.weight").map(|m| (m.to_string(), 1)))
        });
        match parsed {
            Some((m, which)) => by_module.entry(m).or_default()[which] = Some(t.shallow_clone()),
            None => unexpected.push(key.clone()),
        }
    }
    if !unexpected.is_empty() {
        return Err(Error::Weights {
            path,
            report: petune_core::WeightReport { unexpected, ..Default::default() },
        });
    }
    let mut roles = BTreeSet::new();
    let mut layers_by_role: BTreeMap<LinearRole, BTreeSet<usize>> = BTreeMap::new();
    let mut fused = false;
    let mut pairs = Vec::new();
    for (module, [a, b]) in by_module {
        let (layer, rs) = parse_module(spec, &module).ok_or_else(|| {
            Error::config(
                format!("{}", path.display()),
                format!("no {} module `{module}`", spec.describe()),
            )
        })?;
        if layer >= spec.n_layers {
            return Err(Error::config(
                module,
                format!("layer beyond the backbone's {}", spec.n_layers),
            ));
        }
        let (Some(a), Some(b)) = (a, b) else {
            return Err(Error::config(module, "needs both lora_A and lora_B"));
        };
        fused |= rs.len() == 3;
        for role in &rs {
            roles.insert(*role);
            layers_by_role.entry(*role).or_default().insert(layer);
        }
        pairs.push((layer, rs, a, b));
    }
    if pairs.is_empty() {
        return Err(Error::input(format!("{}: no LoRA tensors", path.display())));
    }
    let layer_sets: BTreeSet<&BTreeSet<usize>> = layers_by_role.values().collect();
    if layer_sets.len() > 1 {
        return Err(Error::config(
            "target_modules",
            "roles adapted on different layer sets are not supported",
        ));
    }
    let layers = layer_sets.into_iter().next().cloned().unwrap_or_default();
    let cfg = LoraConfig {
        r,
        alpha,
        dropout,
        targets: roles.into_iter().collect(),
        fused_qkv: fused,
        layers: (layers.len() != spec.n_layers).then(|| layers.into_iter().collect()),
    };
    let delta = LoraDelta::new(p, &cfg, backbone)?;
    for (layer, rs, a, b) in pairs {
        let key = format!("{}: layer {layer} {rs:?}", path.display());
        let pair = if rs.len() == 3 {
            delta.fused_pairs().get(&layer)
        } else {
            delta.pairs().get(&LinearSite { layer, role: rs[0] })
        }
        .ok_or_else(|| Error::config(key.clone(), "no matching LoRA site"))?;
        copy_into(&pair.a, &a, &format!("{key} lora_A"))?;
        copy_into(&pair.b, &b, &format!("{key} lora_B"))?;
    }
    Ok(delta)
}

/// Writes a prompt-tuning delta as a PEFT adapter folder. Only prompts trained in PEFT's
/// convention give PEFT's outputs; others are refused.
pub fn save_prompt_tuning(
    delta: &PromptTuningDelta,
    spec: &BackboneSpec,
    dir: &Path,
    base_model: Option<&str>,
) -> Result<()> {
    if delta.config().position != PromptPosition::Peft {
        return Err(unsupported(
            "PEFT export of prompt tuning",
            spec,
            "the prompt was trained in the LPT authors' convention; PEFT prepends it to the \
             input embeddings (train with \"position\": \"peft\")",
        ));
    }
    let config = json!({
        "peft_type": "PROMPT_TUNING",
        "task_type": "FEATURE_EXTRACTION",
        "base_model_name_or_path": base_model,
        "num_virtual_tokens": delta.config().len,
        "token_dim": spec.hidden,
        "num_transformer_submodules": 1,
        "num_attention_heads": spec.n_heads,
        "num_layers": spec.n_layers,
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": null,
        "tokenizer_name_or_path": null,
        "tokenizer_kwargs": null,
        "inference_mode": true,
        "modules_to_save": null,
        "revision": null,
    });
    write_weights(dir, vec![("prompt_embeddings".to_string(), delta.prompt().detach())])?;
    write_json_atomic(&dir.join(CONFIG_FILE), &config)
}

/// Reads a PEFT prompt-tuning folder onto `backbone` (PEFT's convention).
pub fn load_prompt_tuning(
    dir: &Path,
    p: &nn::Path,
    backbone: &dyn Backbone,
) -> Result<PromptTuningDelta> {
    let spec = backbone.spec();
    let v = read_config(dir, "PROMPT_TUNING")?;
    let len = field_f64(&v, "num_virtual_tokens", None)? as i64;
    let dim = field_f64(&v, "token_dim", Some(spec.hidden as f64))? as i64;
    let subs = field_f64(&v, "num_transformer_submodules", Some(1.0))? as i64;
    if dim != spec.hidden || subs != 1 {
        return Err(unsupported(
            "PEFT prompt tuning",
            spec,
            format!("token_dim {dim} × {subs} submodule(s) (need {} × 1)", spec.hidden),
        ));
    }
    let path = dir.join(WEIGHTS_FILE);
    let file = read_safetensors(&path, backbone.device())?;
    let prompt = file.tensors.get("prompt_embeddings").ok_or_else(|| Error::Weights {
        path: path.clone(),
        report: petune_core::WeightReport {
            missing: vec!["prompt_embeddings".into()],
            ..Default::default()
        },
    })?;
    let cfg = PromptTuningConfig { len, position: PromptPosition::Peft, ..Default::default() };
    let delta = PromptTuningDelta::new(p, &cfg, backbone)?;
    copy_into(delta.prompt(), prompt, &format!("{}: prompt_embeddings", path.display()))?;
    Ok(delta)
}
