//! PEFT's file format for LoRA and prompt tuning (PEFT 0.21 `save_pretrained` /
//! `PeftModel.from_pretrained`; ecosystem.md): a folder with `adapter_config.json` and
//! `adapter_model.safetensors` (`{"format": "pt"}` metadata).
//!
//! * LoRA keys are `base_model.model.<module>.lora_A.weight` (`[r, in]`) and
//!   `.lora_B.weight` (`[out, r]`). `<module>` comes from the backbone's own site →
//!   module mapping (`LinearSiteInfo::hf_module`, one function per family), read through
//!   the spec's `HfNames`: paths inside the bare model for `FEATURE_EXTRACTION` adapters
//!   (`encoder.layer.3.attention.self.query` on BERT/RoBERTa, `h.3.attn.c_attn` on GPT-2,
//!   whose fused `c_attn` LoRA is petune's `fused_qkv`, rows of `B` = `[q | k | v]`), and
//!   inside the `*ForCausalLM` model for `CAUSAL_LM` ones (the Llama family:
//!   `model.layers.3.self_attn.q_proj`). Stored shapes do not depend on `fan_in_fan_out`
//!   (true for `Conv1D` modules). Reading accepts module paths with or without the
//!   family's base prefix (`bert.`, `transformer.`, `model.`...) and PEFT's `.default`
//!   adapter infix. No method code here knows a family.
//! * Prompt tuning stores `prompt_embeddings` `[P, d]`; PEFT prepends it to the input
//!   embeddings ([`PromptPosition::Peft`]). PEFT needs a `task_type` for that (the
//!   spec's, `FEATURE_EXTRACTION` or `CAUSAL_LM`), else its plain `PeftModel` ignores the
//!   prompt.
//!
//! Not expressible in PEFT (a typed error says so): a site whose module has no name of
//! its own (DeBERTa's fused `in_proj`, rows interleaved per head), separate LoRA on one
//! block of a fused projection (GPT-2's Q/K/V), a fused LoRA where the backbone has no
//! fused module (the Llama family), prompts trained in the LPT authors' convention.
//! Unsupported PEFT options (rsLoRA, DoRA, bias training, per-module rank or alpha
//! patterns) are refused when reading.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use petune_core::fsio::{read_json, write_json_atomic};
use petune_core::tensor_io::{read_safetensors, write_safetensors};
use petune_core::{
    Backbone, BackboneSpec, Error, HfModule, LinearRole, LinearSite, LinearSiteInfo, Result,
};
use serde_json::{json, Value};
use tch::{nn, Tensor};

use crate::lora::{LoraConfig, LoraDelta};
use crate::prompt_tuning::{PromptPosition, PromptTuningConfig, PromptTuningDelta};

/// The adapter config file name.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter weights file name.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
const PREFIX: &str = "base_model.model.";
const QKV: [LinearRole; 3] = [LinearRole::Query, LinearRole::Key, LinearRole::Value];

fn unsupported(what: impl Into<String>, spec: &BackboneSpec, reason: impl Into<String>) -> Error {
    Error::Incompatible { method: what.into(), backbone: spec.describe(), reason: reason.into() }
}

/// The PEFT module path of a separately adapted site: its own module's path.
fn site_module(spec: &BackboneSpec, site: LinearSite) -> Result<(String, bool)> {
    match spec.hf_module(site).map_err(|e| unsupported("LoRA export", spec, e.to_string()))? {
        HfModule::Own { path, conv1d } => Ok((spec.hf_names.peft_path(path), *conv1d)),
        HfModule::FusedBlock { path, .. } => Err(unsupported(
            "LoRA export",
            spec,
            format!(
                "{site:?} is one block of the fused `{path}`: PEFT can only express a LoRA on \
                 the whole module (a shared-A LoRA, fused_qkv)"
            ),
        )),
        HfModule::Unaddressable { reason, .. } => Err(unsupported("LoRA export", spec, reason)),
    }
}

/// The PEFT module path of layer `layer`'s fused Q/K/V projection, when the backbone
/// stores Query, Key and Value as consecutive blocks `[q | k | v]` of one module.
fn fused_module(spec: &BackboneSpec, layer: usize) -> Result<(String, bool)> {
    let no_module = || {
        unsupported(
            "LoRA export",
            spec,
            "a fused q/k/v LoRA needs one projection holding [q | k | v] (GPT-2's c_attn); \
             this backbone has separate ones",
        )
    };
    let mut expected = 0;
    let mut module = None;
    for role in QKV {
        match spec.hf_module(LinearSite { layer, role }) {
            Ok(HfModule::FusedBlock { path, conv1d, offset, len }) if *offset == expected => {
                if module.as_ref().is_some_and(|(p, _): &(String, bool)| p != path) {
                    return Err(no_module());
                }
                module = Some((path.clone(), *conv1d));
                expected += len;
            }
            _ => return Err(no_module()),
        }
    }
    let (path, conv1d) = module.ok_or_else(no_module)?;
    Ok((spec.hf_names.peft_path(&path), conv1d))
}

/// The sites a module path of a PEFT file names (its base prefix optional): one site of
/// its own, or the three Q/K/V blocks of a fused projection.
fn sites_of<'s>(spec: &'s BackboneSpec, module: &str) -> Option<Vec<&'s LinearSiteInfo>> {
    let bare = module.strip_prefix(spec.hf_names.base_prefix.as_str()).unwrap_or(module);
    let sites: Vec<&LinearSiteInfo> = spec
        .linear_sites
        .iter()
        .filter(|s| !matches!(s.hf_module, HfModule::Unaddressable { .. }))
        .filter(|s| s.hf_module.path() == bare)
        .collect();
    match sites.as_slice() {
        [one] if matches!(one.hf_module, HfModule::Own { .. }) => Some(sites),
        three if three.len() == 3 && three.iter().zip(QKV).all(|(s, r)| s.site.role == r) => {
            Some(sites)
        }
        _ => None,
    }
}

/// `target_modules` for PEFT: for each adapted role, the shortest dotted suffix of its
/// module paths that matches (PEFT: `key == target` or `key.endswith("." + target)`)
/// exactly the modules of that role in every layer, when every layer is adapted; full
/// paths otherwise.
fn target_modules(
    spec: &BackboneSpec,
    modules: &BTreeSet<String>,
    all_layers: bool,
) -> Vec<String> {
    let all: BTreeSet<String> =
        spec.linear_sites.iter().map(|s| spec.hf_names.peft_path(s.hf_module.path())).collect();
    let matches =
        |path: &str, target: &str| path == target || path.ends_with(&format!(".{target}"));
    // Modules with the same in-layer role: the same path once the layer index is masked.
    let role_of = |path: &str| -> String {
        path.split('.')
            .map(|c| if c.parse::<usize>().is_ok() { "*" } else { c })
            .collect::<Vec<_>>()
            .join(".")
    };
    let mut out = BTreeSet::new();
    for m in modules {
        let group: BTreeSet<&String> = all.iter().filter(|p| role_of(p) == role_of(m)).collect();
        let parts: Vec<&str> = m.split('.').collect();
        let short = (1..=parts.len())
            .map(|n| parts[parts.len() - n..].join("."))
            .take_while(|s| !s.split('.').any(|c| c.parse::<usize>().is_ok()))
            .find(|s| all.iter().filter(|p| matches(p, s)).collect::<BTreeSet<_>>() == group);
        match short.filter(|_| all_layers) {
            Some(s) => out.insert(s),
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

/// Writes `delta` as a PEFT LoRA adapter folder for `spec`'s model (module paths and
/// task type from its `HfNames`).
pub fn save_lora(
    delta: &LoraDelta,
    spec: &BackboneSpec,
    dir: &Path,
    base_model: Option<&str>,
) -> Result<()> {
    let cfg = delta.config();
    let mut tensors = Vec::new();
    let mut modules = BTreeSet::new();
    let mut conv1d = BTreeSet::new();
    let mut add = |(m, c): (String, bool), a: &Tensor, b: &Tensor| {
        tensors.push((format!("{PREFIX}{m}.lora_A.weight"), a.detach()));
        tensors.push((format!("{PREFIX}{m}.lora_B.weight"), b.detach()));
        modules.insert(m);
        conv1d.insert(c);
    };
    for (site, pair) in delta.pairs() {
        add(site_module(spec, *site)?, &pair.a, &pair.b);
    }
    for (layer, pair) in delta.fused_pairs() {
        add(fused_module(spec, *layer)?, &pair.a, &pair.b);
    }
    if conv1d.len() > 1 {
        return Err(unsupported(
            "LoRA export",
            spec,
            "PEFT's fan_in_fan_out is one flag: the adapted modules mix Linear and Conv1D",
        ));
    }
    let config = json!({
        "peft_type": "LORA",
        "task_type": spec.hf_names.peft_task_type,
        "base_model_name_or_path": base_model,
        "r": cfg.r,
        "lora_alpha": number(cfg.alpha),
        "lora_dropout": cfg.dropout,
        "target_modules": target_modules(spec, &modules, cfg.layers.is_none()),
        "fan_in_fan_out": conv1d.contains(&true),
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
        let sites = sites_of(spec, &module).ok_or_else(|| {
            Error::config(
                format!("{}", path.display()),
                format!("no {} module `{module}` that LoRA can adapt", spec.describe()),
            )
        })?;
        let layer = sites[0].site.layer;
        let rs: Vec<LinearRole> = sites.iter().map(|s| s.site.role).collect();
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
        "task_type": spec.hf_names.peft_task_type,
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
