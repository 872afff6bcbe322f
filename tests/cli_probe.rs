//! `petune probe` on a delta trained by `petune train` on the tiny BERT: one estimate
//! per layer (embeddings + each layer), a plot, and with `--compare-base` the plain
//! backbone's curve, which equals the LPT model's below the prompt layer (the prompt
//! enters there) and differs from it at and above.

mod common;

use std::process::Command;

use common::tiny_task::*;
use common::*;
use petune::prelude::*;

fn petune(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_petune")).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn probe_reports_every_layer_and_matches_the_base_below_the_prompt() {
    init();
    let dir = temp_dir("cli-probe");
    let cfg = jsonl_run_config(&dir, MethodConfig::Lpt(LptConfig::npg(2)), 24, 4);
    let run = dir.join("run.json");
    std::fs::write(&run, serde_json::to_string(&cfg).unwrap()).unwrap();
    let delta = dir.join("delta");
    petune(&[
        "train",
        "--json",
        "--config",
        run.to_str().unwrap(),
        "--out",
        delta.to_str().unwrap(),
    ]);
    let out = dir.join("probe");
    let model = fixture("bert-mlm");
    let json = petune(&[
        "probe",
        "--delta",
        delta.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--input",
        dir.join("test.jsonl").to_str().unwrap(),
        "--seeds",
        "1,2",
        "--steps",
        "60",
        "--compare-base",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let reports: serde_json::Value = serde_json::from_str(&json).unwrap();
    let (lpt, base) = (&reports[0], &reports[1]);
    assert_eq!(lpt["token"], "mask");
    assert!(lpt["model"].as_str().unwrap().starts_with("LPT NPG"));
    assert!(base["model"].as_str().unwrap().starts_with("backbone"));
    let mi = |r: &serde_json::Value| -> Vec<f64> {
        r["layers"].as_array().unwrap().iter().map(|l| l["mi_bits"].as_f64().unwrap()).collect()
    };
    let (a, b) = (mi(lpt), mi(base));
    assert_eq!(a.len(), 3, "embeddings + 2 layers");
    assert!(a.iter().chain(&b).all(|v| v.is_finite()));
    let ceiling = lpt["label_entropy_bits"].as_f64().unwrap();
    assert!(a.iter().all(|&v| v <= ceiling + 1e-9), "{a:?} vs {ceiling}");
    // Layers 0 and 1 run before the prompt (PL 2): same features, same splits, same probe.
    assert_eq!(a[..2], b[..2]);
    assert_ne!(a[2], b[2]);
    for ext in ["png", "svg"] {
        assert!(out.join(format!("mi_by_layer.{ext}")).is_file());
    }
    assert!(out.join("probe.json").is_file());
}
