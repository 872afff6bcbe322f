//! `petune forward` end to end on the tiny fixtures: its output equals the goldens of
//! transformers (the tool other implementations are checked with).

mod common;

use std::process::Command;

use common::*;

fn forward_matches_golden(name: &str) {
    forward_matches_golden_where(name, false)
}

/// `real_only`: compare only real positions (the GPT-2 goldens pad with id 511, petune
/// with 0, so padded rows legitimately differ).
fn forward_matches_golden_where(name: &str, real_only: bool) {
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
    let mask = want.tensors["attention_mask"].shallow_clone();
    assert!(got.tensors["attention_mask"].equal(&mask));
    let real = mask.ne(0);
    let keep = |t: &tch::Tensor| {
        if real_only {
            t.masked_select(&real.unsqueeze(-1).expand_as(t))
        } else {
            t.shallow_clone()
        }
    };
    let ids = |t: &tch::Tensor| if real_only { t.masked_select(&real) } else { t.shallow_clone() };
    assert!(ids(&got.tensors["input_ids"]).equal(&ids(&want.tensors["input_ids"])));
    let n_hidden = want.tensors.keys().filter(|k| k.starts_with("hidden.")).count();
    for i in 0..n_hidden {
        let k = format!("hidden.{i}");
        assert_close(&keep(&got.tensors[&k]), &keep(&want.tensors[&k]), 1e-4, &k);
    }
    assert_close(&keep(&got.tensors["logits"]), &keep(&want.tensors["logits"]), 1e-4, "logits");
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

#[test]
fn forward_deberta_fixture() {
    forward_matches_golden("deberta-mlm");
}

#[test]
fn forward_gpt2_fixture() {
    forward_matches_golden_where("gpt2-lm", true);
}
