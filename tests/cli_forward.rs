//! `petune forward` end to end on the tiny fixtures: its output equals the goldens of
//! transformers (the tool other implementations are checked with).

mod common;

use std::process::Command;

use common::*;

fn forward_matches_golden(name: &str) {
    init();
    let dir = fixture(name);
    let out = std::env::temp_dir()
        .join(format!("petune-forward-{name}-{}.safetensors", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_petune"))
        .args(["forward", "--model", dir.to_str().unwrap(), "--input"])
        .arg(dir.join("inputs.jsonl"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = golden(&out);
    let want = golden(&dir.join("golden.safetensors"));
    assert!(got.tensors["input_ids"].equal(&want.tensors["input_ids"]));
    assert!(got.tensors["attention_mask"].equal(&want.tensors["attention_mask"]));
    let n_hidden = want.tensors.keys().filter(|k| k.starts_with("hidden.")).count();
    for i in 0..n_hidden {
        let k = format!("hidden.{i}");
        assert_close(&got.tensors[&k], &want.tensors[&k], 1e-4, &k);
    }
    assert_close(&got.tensors["logits"], &want.tensors["logits"], 1e-4, "logits");
    assert_eq!(got.metadata["format"], "pt");
    std::fs::remove_file(out).unwrap();
}

#[test]
fn forward_bert_fixture() {
    forward_matches_golden("bert-mlm");
}

#[test]
fn forward_roberta_fixture() {
    forward_matches_golden("roberta-mlm");
}
