//! `petune generate` through the CLI on the tiny decoder fixtures: greedy output as
//! JSON, the same seed giving the same sample, a delta from `petune train` applied
//! (its tokens differ from the plain model's), and bad flags exiting with status 1 and a
//! message naming the problem.

mod common;

use std::process::{Command, Output};

use common::fixture;
use common::tiny_task::{temp_dir, write_jsonl};
use serde_json::{json, Value};

fn petune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petune")).args(args).output().unwrap()
}

fn generate_json(args: &[&str]) -> Value {
    let mut all = vec!["generate", "--json"];
    all.extend_from_slice(args);
    let out = petune(&all);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn greedy_sampled_and_with_a_trained_delta() {
    for name in ["gpt2-lm", "llama-lm"] {
        let model = fixture(name).display().to_string();
        let base =
            ["--model", model.as_str(), "--prompt", "the movie was", "--max-new-tokens", "6"];
        let greedy = generate_json(&base);
        assert_eq!(greedy["tokens"].as_array().unwrap().len(), 6, "{name}: {greedy}");
        assert_eq!(greedy["stop"], "length");
        assert!(greedy["prompt_tokens"].as_u64().unwrap() >= 3);
        let sampled = |seed: &str| {
            let mut a = base.to_vec();
            a.extend_from_slice(&["--temperature", "1.3", "--top-p", "0.9", "--seed", seed]);
            generate_json(&a)["tokens"].clone()
        };
        assert_eq!(sampled("4"), sampled("4"), "{name}");
        assert_ne!(sampled("4"), sampled("5"), "{name}");
    }
    // A delta trained through the CLI (LPT, 4 steps of MR) drives generation.
    let dir = temp_dir("cli-generate-delta");
    for (split, n, off) in [("train", 16, 0), ("dev", 8, 3), ("test", 8, 1)] {
        write_jsonl(&dir.join(format!("{split}.jsonl")), n, off);
    }
    let file = |n: &str| dir.join(format!("{n}.jsonl")).display().to_string();
    let cfg = json!({
        "model": fixture("llama-lm"),
        "task": {"name": "mr", "data": {"kind": "files", "train": file("train"), "dev": file("dev"), "test": file("test")}},
        "method": {"method": "lpt", "prompt_layer": 2, "generator": {"kind": "naive", "len": 5, "bottleneck": 16}},
        "train": {"lr": 1e-2, "batch_size": 4, "max_steps": 4, "eval_every": 4, "max_len": 64, "seed": 1, "threads": 1},
    });
    let cfg_path = dir.join("run.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out_dir = dir.join("out");
    let (cfg_s, out_s) = (cfg_path.display().to_string(), out_dir.display().to_string());
    let run = petune(&["train", "--json", "--config", &cfg_s, "--out", &out_s]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let model = fixture("llama-lm").display().to_string();
    let base = ["--model", model.as_str(), "--prompt", "the movie was", "--max-new-tokens", "8"];
    let plain = generate_json(&base);
    let mut with = base.to_vec();
    with.extend_from_slice(&["--delta", &out_s]);
    let tuned = generate_json(&with);
    assert_eq!(tuned["tokens"].as_array().unwrap().len(), 8);
    assert_ne!(plain["tokens"], tuned["tokens"], "the late prompt changes nothing");
}

#[test]
fn causal_lm_tuning_through_petune_train_then_generate_from_the_delta() {
    // `petune train --train` on prompt/completion rows is causal-LM tuning; its delta
    // loads in `petune generate --delta`.
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/instruct");
    let (tr, dev) = (data.join("train.jsonl"), data.join("dev.jsonl"));
    let out = temp_dir("cli-generate-causal-lm").join("out");
    let model = fixture("llama-lm").display().to_string();
    let (tr, dev, out_s) =
        (tr.display().to_string(), dev.display().to_string(), out.display().to_string());
    let run = petune(&[
        "train", "--json", "--model", &model, "--train", &tr, "--dev", &dev, "--method", "npg",
        "--steps", "8", "--out", &out_s,
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["objective"], "causal_lm");
    let (before, after) =
        (report["dev"]["loss_before"].as_f64().unwrap(), report["dev"]["loss"].as_f64().unwrap());
    assert!(after < before, "{report}");
    assert!(out.join("delta.safetensors").is_file() && out.join("metrics.json").is_file());
    let base = [
        "--model",
        model.as_str(),
        "--prompt",
        "Question: What colour is snow?\nAnswer:",
        "--max-new-tokens",
        "6",
    ];
    let plain = generate_json(&base);
    let mut with = base.to_vec();
    with.extend_from_slice(&["--delta", &out_s]);
    let tuned = generate_json(&with);
    assert_ne!(plain["tokens"], tuned["tokens"], "the tuned late prompt changes nothing");
    // A delta of another model is refused, naming it.
    let gpt2 = fixture("gpt2-lm").display().to_string();
    let out = petune(&["generate", "--model", &gpt2, "--delta", &out_s, "--prompt", "hi"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains("trained on"), "{err}");
}

#[test]
fn bad_flags_exit_1_naming_the_problem() {
    let model = fixture("gpt2-lm").display().to_string();
    let m = model.as_str();
    let cases: [(&[&str], &str); 6] = [
        (&["--model", m, "--prompt", ""], "empty"),
        (&["--model", m, "--prompt", "hi", "--max-new-tokens", "0"], "max-new-tokens"),
        (&["--model", m, "--prompt", "hi", "--temperature", "0"], "temperature"),
        (&["--model", m, "--prompt", "hi", "--top-p", "1.5"], "top_p"),
        (&["--model", m, "--prompt", "hi", "--chat"], "chat template"),
        (&["--model", m, "--prompt", "hi", "--max-new-tokens", "100"], "positions"),
    ];
    for (args, want) in cases {
        let mut all = vec!["generate"];
        all.extend_from_slice(args);
        let out = petune(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = petune(&["generate", "--model", m]);
    assert_eq!(out.status.code(), Some(1), "no prompt");
    let bert = fixture("bert-mlm").display().to_string();
    let out = petune(&["generate", "--model", &bert, "--prompt", "hi"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains("causal decoder"), "{err}");
}
