//! `petune params`: counts from a `config.json` alone, as JSON and in PEFT's
//! `print_trainable_parameters` wording; methods given by name, inline JSON or file.

mod common;

use std::process::Command;

use common::fixture;

fn params(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_petune")).arg("params").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn params_prints_json_and_the_peft_line() {
    let config = fixture("configs/roberta-large.json");
    let config = config.to_str().unwrap();
    let (ok, out, err) = params(&["--config", config, "--method", "lora", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["trainable_params"], 788_482);
    assert_eq!(v["head_params"], 2_050);
    let (ok, out, err) = params(&[
        "--config",
        config,
        "--method",
        r#"{"method": "adapter_drop", "drop_lowest": 12}"#,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("trainable params: 811,392 || all params: "), "{out}");
    let (ok, _, err) = params(&["--config", config, "--method", "nonsense"]);
    assert!(!ok && err.contains("unknown method `nonsense`") && err.contains("npg"), "{err}");
    let dir = fixture("bert-mlm");
    let (ok, out, err) =
        params(&["--model", dir.to_str().unwrap(), "--method", "bitfit", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["trainable_percent"].as_f64().unwrap() > 0.0);
}
