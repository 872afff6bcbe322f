//! Shared helpers of petune's integration tests: fixture paths, golden files,
//! tolerance checks, and the site-contract suite every backbone must pass.
#![allow(dead_code)]

pub mod contract;
pub mod tiny_task;

use std::path::{Path, PathBuf};
use std::sync::Once;

use petune::core::tensor_io::{read_safetensors, TensorFile};
use petune::prelude::*;
use tch::{Device, Tensor};

/// One thread per test process: `cargo test` runs tests in parallel on 2 cores.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tch::set_num_threads(1));
}

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

/// `.assets/<name>` (installed by scripts/setup.sh); panics with the fix if absent.
pub fn asset(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".assets").join(name);
    assert!(p.join(".ok").exists(), "{} is missing: run scripts/setup.sh first", p.display());
    p
}

/// Reads a golden file.
pub fn golden(path: &Path) -> TensorFile {
    read_safetensors(path, Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
}

/// Largest absolute difference.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape mismatch");
    (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double)).abs().max().double_value(&[])
}

/// Asserts `a ≈ b` within `tol` (absolute), naming `what`.
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    let d = max_diff(a, b);
    assert!(d <= tol, "{what}: max |diff| = {d:e} > {tol:e}");
}

/// The model input stored in a golden file under `prefix` (`""` or `"left."`).
pub fn golden_input(g: &TensorFile, prefix: &str) -> BackboneInput {
    let get = |k: &str| g.tensors.get(&format!("{prefix}{k}")).map(Tensor::shallow_clone);
    let mut input = BackboneInput::new(get("input_ids").expect("input_ids"))
        .unwrap()
        .with_attention_mask(get("attention_mask").expect("attention_mask"))
        .unwrap();
    if let Some(t) = get("token_type_ids") {
        input = input.with_token_types(t).unwrap();
    }
    if let Some(p) = get("position_ids") {
        input = input.with_positions(p).unwrap();
    }
    input
}

/// Reads `inputs.jsonl` of a fixture.
pub fn fixture_inputs(dir: &Path) -> Vec<TextInput> {
    let text = std::fs::read_to_string(dir.join("inputs.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Loads a fixture backbone on CPU in f32.
pub fn load(dir: &Path) -> Box<dyn Backbone> {
    load_backbone(dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts every hidden state (and the logits, when stored) of `golden` within `tol`,
/// comparing only the positions `mask` marks when `real_only` (left padding leaves
/// garbage at padded positions in every implementation).
pub fn assert_hidden_parity(
    backbone: &dyn Backbone,
    g: &TensorFile,
    prefix: &str,
    tol: f64,
    real_only: bool,
) {
    let input = golden_input(g, prefix);
    let _guard = tch::no_grad_guard();
    let (hidden, last) = all_hidden_states(backbone, &input, &NoHooks, false).unwrap();
    let keep = |t: &Tensor| -> Tensor {
        if real_only {
            let m = input.attention_mask.ne(0).unsqueeze(-1).expand_as(t);
            t.masked_select(&m)
        } else {
            t.shallow_clone()
        }
    };
    for (i, h) in hidden.iter().enumerate() {
        let want = &g.tensors[&format!("{prefix}hidden.{i}")];
        assert_close(&keep(h), &keep(want), tol, &format!("{prefix}hidden.{i}"));
    }
    if let Some(want) = g.tensors.get(&format!("{prefix}logits")) {
        let got = backbone.lm_logits(&last.hidden, false).unwrap();
        assert_close(&keep(&got), &keep(want), tol, &format!("{prefix}logits"));
    }
}
