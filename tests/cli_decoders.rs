//! `petune train --config` and `petune inspect` on the Llama-family fixtures: every
//! method trains a few steps through the CLI and writes its delta. One method per family
//! runs in CI; the whole method × family grid (13 methods × 3 fixtures, ~1 min on a
//! debug build) is `#[ignore]`d: `cargo test --test cli_decoders -- --ignored`.

mod common;

use std::path::Path;
use std::process::Command;

use common::fixture;
use common::tiny_task::{temp_dir, write_jsonl};
use serde_json::{json, Value};

const FAMILIES: [&str; 3] = ["llama-lm", "mistral-lm", "qwen2-lm"];

/// Every method, sized for the 2-layer, d = 32 fixtures (LoRA on all seven projections,
/// BitFit with added biases: Llama and Mistral have none).
fn methods() -> Vec<(&'static str, Value)> {
    vec![
        (
            "npg",
            json!({"method": "lpt", "prompt_layer": 2, "generator": {"kind": "naive", "len": 5, "bottleneck": 16}}),
        ),
        (
            "appg",
            json!({"method": "lpt", "prompt_layer": 2, "generator": {"kind": "pool", "pool": "avg", "len": 4, "bottleneck": 16}}),
        ),
        (
            "mppg",
            json!({"method": "lpt", "prompt_layer": 2, "generator": {"kind": "pool", "pool": "max", "len": 4, "bottleneck": 16}}),
        ),
        (
            "wo_pg",
            json!({"method": "lpt", "prompt_layer": 2, "generator": {"kind": "static", "len": 4}}),
        ),
        ("pt", json!({"method": "prompt_tuning", "len": 4})),
        ("pt_peft", json!({"method": "prompt_tuning", "len": 4, "position": "peft"})),
        ("ptv2", json!({"method": "ptuning_v2", "len": 4})),
        ("adapter", json!({"method": "adapter", "bottleneck": 8})),
        (
            "adapter_drop",
            json!({"method": "adapter_drop", "adapter": {"bottleneck": 8}, "drop_lowest": 1}),
        ),
        ("bitfit", json!({"method": "bitfit", "add_missing": true})),
        (
            "lora",
            json!({"method": "lora", "r": 4, "alpha": 8, "targets": ["query", "key", "value", "attn_out", "ffn_gate", "ffn_up", "ffn_down"]}),
        ),
        ("sidpg", json!({"method": "sidpg_phm", "len": 2, "bottleneck": 16, "phm_n": 4})),
        ("mt", json!({"method": "model_tuning"})),
    ]
}

/// Trains `method` for 4 steps on `family` through the CLI in a folder of its own
/// (`test` names the calling test: tests run in parallel); returns the delta manifest.
fn train(test: &str, family: &str, label: &str, method: &Value) -> Value {
    let dir = temp_dir(&format!("cli-{test}-{family}-{label}"));
    for (name, n, off) in [("train", 16, 0), ("dev", 8, 3), ("test", 8, 1)] {
        write_jsonl(&dir.join(format!("{name}.jsonl")), n, off);
    }
    let file = |n: &str| dir.join(format!("{n}.jsonl")).display().to_string();
    let cfg = json!({
        "model": fixture(family),
        "task": {"name": "mr", "data": {"kind": "files", "train": file("train"), "dev": file("dev"), "test": file("test")}},
        "method": method,
        "train": {"lr": 1e-2, "batch_size": 4, "max_steps": 4, "eval_every": 4, "max_len": 64, "seed": 1, "threads": 1},
    });
    let cfg_path = dir.join("run.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = dir.join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_petune"))
        .args(["train", "--json", "--config"])
        .arg(&cfg_path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let what = format!("{family} / {label}");
    assert!(run.status.success(), "{what}: {}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(report["test"]["headline"].as_f64().is_some(), "{what}: {report}");
    assert!(out.join("delta.safetensors").is_file(), "{what}: no delta written");
    read_json(&out.join("delta.json"))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn lpt_and_lora_train_on_every_llama_family_fixture_through_the_cli() {
    let all = methods();
    for family in FAMILIES {
        let npg = train("ci", family, "npg", &all[0].1);
        assert_eq!(npg["head"]["kind"], "lm_scoring", "{family}: LPT scores label words");
        let lora = train("ci", family, "lora", &all[10].1);
        assert_eq!(lora["head"], json!({"kind": "linear", "token": "last"}), "{family}");
    }
}

#[test]
#[ignore = "the whole grid: 39 CLI runs"]
fn every_method_trains_on_every_llama_family_fixture_through_the_cli() {
    for family in FAMILIES {
        for (label, method) in methods() {
            train("grid", family, label, &method);
        }
    }
}

#[test]
fn inspect_lists_the_llama_sites_and_modules() {
    let out = Command::new(env!("CARGO_BIN_EXE_petune"))
        .args(["inspect", "--json", "--model"])
        .arg(fixture("mistral-lm"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model_type"], "mistral");
    assert_eq!(v["heads"], json!({"query": 4, "key_value": 1, "head_dim": 16}));
    let gate = v["linear_sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"]["role"] == "ffn_gate" && s["site"]["layer"] == 1)
        .expect("a gate site");
    assert_eq!(gate["hf_module"]["path"], "layers.1.mlp.gate_proj");
    let key =
        v["linear_sites"].as_array().unwrap().iter().find(|s| s["site"]["role"] == "key").unwrap();
    assert_eq!((key["d_in"].clone(), key["d_out"].clone()), (json!(32), json!(16)));
    assert!(v["norm_sites"].as_array().unwrap().iter().all(|n| n["kind"] == "rms_norm"));
}
