//! PEFT interoperability (issues #5 §4, #14 §5), against committed goldens that Python
//! PEFT 0.21.2 wrote from the tiny fixtures (scripts/export_peft_goldens.py):
//! - petune loads PEFT's LoRA (BERT, RoBERTa; GPT-2's fused `c_attn`; every projection of
//!   a `LlamaForCausalLM`, task `CAUSAL_LM`) and prompt-tuning folders and reproduces
//!   PEFT's hidden states (and, on Llama, its LM logits) within 1e-5, merged LoRA included;
//! - petune writes folders with PEFT's key names, shapes, metadata and config fields,
//!   bit-identical tensors, and reads them back to the same outputs. (That PEFT itself
//!   loads them is checked by `scripts/check_peft_load.py`, docs/methods/lora.md.)

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::tiny_task::temp_dir;
use common::*;
use petune::baselines::peft::{load_lora, load_prompt_tuning, save_lora, save_prompt_tuning};
use petune::core::tensor_io::read_safetensors;
use petune::core::BindCtx;
use petune::prelude::*;
use tch::nn::VarStore;
use tch::{Device, Tensor};

fn peft_dir(name: &str) -> std::path::PathBuf {
    fixture("peft").join(name)
}

/// Hidden states at real positions only (PEFT's prompt positions count as real).
fn masked(h: &Tensor, mask: &Tensor) -> Tensor {
    h * mask.unsqueeze(-1)
}

fn run(backbone: &dyn Backbone, delta: &dyn Delta, input: &BackboneInput) -> SeqState {
    let hooks = delta.bind(&BindCtx { backbone, input, train: false }).unwrap();
    backbone.forward_t(input, hooks.as_ref(), false).unwrap()
}

fn config(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap())
        .unwrap()
}

/// The written folder matches PEFT's: same keys, shapes, bit-identical tensors, metadata,
/// and the config fields PEFT reads.
fn assert_same_files(ours: &Path, theirs: &Path, fields: &[&str]) {
    let a = read_safetensors(&ours.join("adapter_model.safetensors"), Device::Cpu).unwrap();
    let b = read_safetensors(&theirs.join("adapter_model.safetensors"), Device::Cpu).unwrap();
    let keys =
        |f: &petune::core::tensor_io::TensorFile| f.tensors.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b), "key names");
    for (k, t) in &a.tensors {
        assert_eq!(max_diff(t, &b.tensors[k]), 0.0, "{k}");
    }
    assert_eq!(a.metadata.get("format").map(String::as_str), Some("pt"));
    let (ca, cb) = (config(ours), config(theirs));
    for f in fields {
        assert_eq!(ca[f], cb[f], "adapter_config.json field {f}");
    }
    let set = |v: &serde_json::Value| -> BTreeSet<String> {
        v["target_modules"]
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(set(&ca), set(&cb), "target_modules");
}

fn lora_case(name: &str, base: &str) {
    init();
    let backbone = load(&fixture(base));
    let dir = peft_dir(name);
    let g = golden(&dir.join("golden.safetensors"));
    let input = golden_input(&g, "");
    let mask = input.attention_mask.shallow_clone();
    let plain = backbone.forward_t(&input, &NoHooks, false).unwrap().hidden;
    assert_close(
        &masked(&plain, &mask),
        &masked(&g.tensors["base_hidden"], &mask),
        1e-5,
        "base model",
    );

    let vs = VarStore::new(Device::Cpu);
    let delta = load_lora(&dir, &(vs.root() / "delta"), backbone.as_ref()).unwrap();
    let ours = run(backbone.as_ref(), &delta, &input).hidden;
    assert_close(
        &masked(&ours, &mask),
        &masked(&g.tensors["peft_hidden"], &mask),
        1e-5,
        &format!("{name}: LoRA"),
    );
    if let Some(want) = g.tensors.get("peft_logits") {
        let logits = backbone.lm_logits(&ours, false).unwrap();
        assert_close(
            &masked(&logits, &mask),
            &masked(want, &mask),
            1e-5,
            &format!("{name}: logits"),
        );
    }

    // Written the way PEFT writes it, and read back to the same outputs.
    let out = temp_dir(&format!("peft-{name}"));
    save_lora(&delta, backbone.spec(), &out, Some(&format!("tests/fixtures/{base}"))).unwrap();
    let fields = [
        "peft_type",
        "r",
        "lora_alpha",
        "lora_dropout",
        "fan_in_fan_out",
        "bias",
        "task_type",
        "base_model_name_or_path",
        "use_rslora",
        "use_dora",
    ];
    assert_same_files(&out, &dir, &fields);
    let vs2 = VarStore::new(Device::Cpu);
    let again = load_lora(&out, &(vs2.root() / "delta"), backbone.as_ref()).unwrap();
    assert_eq!(
        max_diff(&run(backbone.as_ref(), &again, &input).hidden, &ours),
        0.0,
        "{name}: round trip"
    );

    // Merged into the weights, as PEFT's merge_and_unload.
    delta.merge(backbone.as_ref()).unwrap();
    let merged = backbone.forward_t(&input, &NoHooks, false).unwrap().hidden;
    assert_close(
        &masked(&merged, &mask),
        &masked(&g.tensors["merged_hidden"], &mask),
        1e-5,
        &format!("{name}: merged"),
    );
    delta.unmerge(backbone.as_ref()).unwrap();
}

fn prompt_case(name: &str, base: &str) {
    init();
    let backbone = load(&fixture(base));
    let dir = peft_dir(name);
    let g = golden(&dir.join("golden.safetensors"));
    let mut input = golden_input(&g, "");
    input.token_type_ids = None; // PEFT drops them for prompt learning (all type 0)
    let vs = VarStore::new(Device::Cpu);
    let delta = load_prompt_tuning(&dir, &(vs.root() / "delta"), backbone.as_ref()).unwrap();
    let out = run(backbone.as_ref(), &delta, &input);
    // Hidden states (encoders, GPT-2) or LM logits (Llama), prompt positions first.
    let (got, want) = match g.tensors.get("peft_hidden") {
        Some(want) => (out.hidden.shallow_clone(), want),
        None => (backbone.lm_logits(&out.hidden, false).unwrap(), &g.tensors["peft_logits"]),
    };
    assert_eq!(got.size(), want.size(), "{name}: prompt first, then the text");
    assert_close(
        &masked(&got, &out.pad_mask),
        &masked(want, &out.pad_mask),
        1e-5,
        &format!("{name}: prompt tuning"),
    );

    let written = temp_dir(&format!("peft-{name}"));
    save_prompt_tuning(&delta, backbone.spec(), &written, Some(&format!("tests/fixtures/{base}")))
        .unwrap();
    let fields = [
        "peft_type",
        "task_type",
        "num_virtual_tokens",
        "token_dim",
        "num_transformer_submodules",
        "num_attention_heads",
        "num_layers",
        "prompt_tuning_init",
        "base_model_name_or_path",
    ];
    assert_same_files(&written, &dir, &fields);
}

#[test]
fn bert_lora_matches_peft() {
    lora_case("bert-lora", "bert-mlm");
}

#[test]
fn roberta_lora_matches_peft() {
    lora_case("roberta-lora", "roberta-mlm");
}

#[test]
fn gpt2_fused_c_attn_lora_matches_peft() {
    lora_case("gpt2-lora", "gpt2-lm");
}

#[test]
fn llama_lora_on_every_projection_matches_peft() {
    // q/k/v/o/gate/up/down, grouped-query k/v (B: [16, r]), keys
    // `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`, task CAUSAL_LM.
    lora_case("llama-lora", "llama-lm");
    let dir = peft_dir("llama-lora");
    let file = read_safetensors(&dir.join("adapter_model.safetensors"), Device::Cpu).unwrap();
    let key = "base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight";
    assert_eq!(file.tensors[key].size(), [16, 4]);
}

#[test]
fn llama_prompt_tuning_matches_peft() {
    // PEFT's CAUSAL_LM prompt: the first P inputs_embeds, rotary positions 0..P+T — what
    // petune's state positions give a prompt prepended at input_embeds.
    prompt_case("llama-prompt", "llama-lm");
}

#[test]
fn bert_prompt_tuning_matches_peft() {
    prompt_case("bert-prompt", "bert-mlm");
}

#[test]
fn roberta_prompt_tuning_matches_peft() {
    prompt_case("roberta-prompt", "roberta-mlm");
}

#[test]
fn gpt2_prompt_tuning_matches_peft() {
    prompt_case("gpt2-prompt", "gpt2-lm");
}

#[test]
fn what_peft_cannot_express_is_a_typed_error() {
    init();
    // DeBERTa's fused in_proj, and a prompt trained in the authors' convention.
    let deberta = load(&fixture("deberta-mlm"));
    let vs = VarStore::new(Device::Cpu);
    let lora =
        petune::baselines::LoraDelta::new(&vs.root(), &LoraConfig::default(), deberta.as_ref())
            .unwrap();
    let err = save_lora(&lora, deberta.spec(), &temp_dir("peft-deberta"), None).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    let bert = load(&fixture("bert-mlm"));
    let pt = petune::baselines::PromptTuningDelta::new(
        &vs.root(),
        &PromptTuningConfig::default(),
        bert.as_ref(),
    )
    .unwrap();
    let err = save_prompt_tuning(&pt, bert.spec(), &temp_dir("peft-authors"), None).unwrap_err();
    assert!(err.to_string().contains("authors' convention"), "{err}");
    // A LoRA folder read as prompt tuning, and unsupported options.
    let err = load_prompt_tuning(&peft_dir("bert-lora"), &vs.root(), bert.as_ref()).unwrap_err();
    assert!(err.to_string().contains("PROMPT_TUNING"), "{err}");
    let dora = temp_dir("peft-dora");
    std::fs::copy(
        peft_dir("bert-lora").join("adapter_model.safetensors"),
        dora.join("adapter_model.safetensors"),
    )
    .unwrap();
    let mut cfg = config(&peft_dir("bert-lora"));
    cfg["use_dora"] = serde_json::json!(true);
    std::fs::write(dora.join("adapter_config.json"), cfg.to_string()).unwrap();
    let err = load_lora(&dora, &vs.root(), bert.as_ref()).unwrap_err();
    assert!(err.to_string().contains("use_dora"), "{err}");
    // Llama keeps q/k/v apart: a fused LoRA has no PEFT module there; a GPT-2 LoRA on one
    // block of c_attn neither; another family's adapter is refused on load.
    let llama = load(&fixture("llama-lm"));
    let fused = LoraConfig {
        targets: vec![LinearRole::Query, LinearRole::Key, LinearRole::Value],
        fused_qkv: true,
        ..Default::default()
    };
    let lora = petune::baselines::LoraDelta::new(&vs.root(), &fused, llama.as_ref()).unwrap();
    let err = save_lora(&lora, llama.spec(), &temp_dir("peft-llama-fused"), None).unwrap_err();
    assert!(err.to_string().contains("fused"), "{err}");
    let gpt2 = load(&fixture("gpt2-lm"));
    let q_only =
        petune::baselines::LoraDelta::new(&vs.root(), &LoraConfig::default(), gpt2.as_ref())
            .unwrap();
    let err = save_lora(&q_only, gpt2.spec(), &temp_dir("peft-gpt2-q"), None).unwrap_err();
    assert!(err.to_string().contains("c_attn"), "{err}");
    let err = load_lora(&peft_dir("bert-lora"), &vs.root(), llama.as_ref()).unwrap_err();
    assert!(err.to_string().contains("encoder.layer.0.attention.self.query"), "{err}");
}
