//! The real SmolLM2-135M-Instruct Q4_1 GGUF (scripts/setup.sh puts it in `.assets/smollm2/`):
//! every tensor dequantized against gguf-py's checksums, the tokenizer against transformers'
//! ids, the HF mapping against transformers' GGUF load. `#[ignore]`d for CI time; run with
//!
//! ```sh
//! cargo test --test gguf_real -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Goldens: tests/fixtures/gguf/smollm2.checksums.json and tokens.json
//! (scripts/export_gguf_fixtures.py); smollm2.forward.{json,safetensors}, transformers' float32
//! forward and greedy tokens (scripts/export_smollm2_forward.py).

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::*;
use petune::backbones::gguf::{GgufFile, GgufModel};
use petune::prelude::*;
use serde_json::Value;
use tch::{Kind, Tensor};

fn smollm2() -> std::path::PathBuf {
    asset("smollm2").join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture("gguf").join(name)).unwrap()).unwrap()
}

/// Checks `t` against the script's checksums: the exact sum of the f32 bit patterns, the
/// sampled values exactly, the f64 sums to rounding.
fn check(name: &str, t: &Tensor, want: &Value) {
    let shape: Vec<i64> = serde_json::from_value(want["shape"].clone()).unwrap();
    assert_eq!(t.size(), shape, "{name}: shape");
    let flat = t.reshape([-1]);
    let bits = flat.view_dtype(Kind::Int).to_kind(Kind::Int64).bitwise_and(0xffff_ffffi64);
    assert_eq!(
        bits.sum(Kind::Int64).int64_value(&[]) as u64,
        want["bits_sum"].as_u64().unwrap(),
        "{name}: bits"
    );
    for s in want["samples"].as_array().unwrap() {
        let (i, v) = (s[0].as_i64().unwrap(), s[1].as_f64().unwrap() as f32);
        assert_eq!(flat.double_value(&[i]) as f32, v, "{name}[{i}]");
    }
    let d = flat.to_kind(Kind::Double);
    let (sum, sum_sq) =
        (d.sum(Kind::Double).double_value(&[]), (&d * &d).sum(Kind::Double).double_value(&[]));
    for (what, got, want) in [("sum", sum, &want["sum"]), ("sum_sq", sum_sq, &want["sum_sq"])] {
        let want = want.as_f64().unwrap();
        assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{name}: {what} {got} vs {want}");
    }
}

#[test]
#[ignore = "needs .assets/smollm2 (scripts/setup.sh)"]
fn every_smollm2_tensor_dequantizes_as_gguf_py_does() {
    init();
    let sums = json("smollm2.checksums.json");
    let t0 = Instant::now();
    let f = GgufFile::open(smollm2()).unwrap();
    let parsed = t0.elapsed();
    assert_eq!((f.version(), f.tensors().len()), (3, 272));
    let mut counts = BTreeMap::new();
    let t1 = Instant::now();
    let mut tensors = Vec::new();
    for info in f.tensors() {
        *counts.entry(info.ggml_type.name()).or_insert(0) += 1;
        tensors.push((info.name.clone(), f.dequantize(&info.name).unwrap()));
    }
    let dequantized = t1.elapsed();
    assert_eq!(counts, BTreeMap::from([("F32", 61), ("Q4_1", 210), ("Q8_0", 1)]));
    let want = sums["tensors"].as_object().unwrap();
    assert_eq!(want.len(), 272);
    for (name, t) in &tensors {
        assert_eq!(f.tensor(name).unwrap().ggml_type.name(), want[name]["type"], "{name}");
        check(name, t, &want[name]);
    }
    let elements: i64 = tensors.iter().map(|(_, t)| t.numel() as i64).sum();
    println!(
        "SmolLM2 Q4_1: read + parse {parsed:.2?}, dequantize {} tensors ({elements} values) {dequantized:.2?} on {} thread(s)",
        tensors.len(),
        tch::get_num_threads()
    );
}

#[test]
#[ignore = "needs .assets/smollm2 (scripts/setup.sh)"]
fn smollm2_loads_as_its_hugging_face_model_with_transformers_tokens() {
    init();
    let t0 = Instant::now();
    let model = GgufModel::open(asset("smollm2")).unwrap();
    println!(
        "GgufModel::open (parse, map, un-permute, dequantize, tokenizer): {:.2?}, peak RSS {:.0} MiB",
        t0.elapsed(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let c = &model.hf_config;
    let expect = serde_json::json!({
        "model_type": "llama", "num_hidden_layers": 30, "hidden_size": 576, "intermediate_size": 1536,
        "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "rope_theta": 100000.0,
        "max_position_embeddings": 8192, "vocab_size": 49152, "tie_word_embeddings": true,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "rope_scaling": null,
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&c[k], v, "{k}");
    }
    assert_eq!(c["rms_norm_eps"].as_f64().unwrap() as f32, 1e-5f32);
    assert_eq!(model.tensors.len(), 1 + 30 * 9 + 1);
    assert!(model.chat_template.as_deref().is_some_and(|t| t.contains("<|im_start|>")));

    // HF names and layout as transformers' GGUF loader gives them (Q/K un-permuted)
    let sums = json("smollm2.checksums.json");
    let by_name: BTreeMap<&str, &Tensor> =
        model.tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    for (name, want) in sums["transformers"].as_object().unwrap() {
        check(name, by_name[name.as_str()], want);
    }

    // tokenizer: transformers' ids from the same file
    let tokens = json("tokens.json");
    let ids: Vec<Vec<i64>> = serde_json::from_value(tokens["ids"]["smollm2"].clone()).unwrap();
    for (text, want) in tokens["sentences"].as_array().unwrap().iter().zip(ids) {
        let text = text.as_str().unwrap();
        let got = model.tokenizer.encode_ids(&TextInput::single(text), 100_000, false).unwrap().0;
        assert_eq!(got, want, "{text:?}");
    }
}

/// `petune`'s forward on the real file against transformers' float32 forward of the same GGUF
/// (tests/fixtures/gguf/smollm2.forward.*, scripts/export_smollm2_forward.py): token ids equal,
/// the last hidden state, the last position's logits and a vocabulary slice of every position's
/// logits within 1e-4, every position's argmax equal; with the dequantized load and with the
/// quantized base (which must give the same values bit for bit).
#[test]
#[ignore = "needs .assets/smollm2 (scripts/setup.sh)"]
fn smollm2_forward_matches_transformers() {
    init();
    let golden_json = json("smollm2.forward.json");
    let g = golden(&fixture("gguf").join("smollm2.forward.safetensors")).tensors;
    let source = ModelSource::open(smollm2()).unwrap();
    let dense = source.load(&LoadOptions::default()).unwrap();
    let quantized = source
        .load_backbone(&LoadOptions { quantized_base: true, ..LoadOptions::default() })
        .unwrap();
    let slice = golden_json["logits_slice"][1].as_i64().unwrap();
    let mut worst = [0f64; 3];
    let cases = golden_json["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for (i, case) in cases.iter().enumerate() {
        let text = case["text"].as_str().unwrap();
        let want_ids: Vec<i64> = serde_json::from_value(case["ids"].clone()).unwrap();
        let ids = dense.tokenizer.encode_ids(&TextInput::single(text), 100_000, false).unwrap().0;
        assert_eq!(ids, want_ids, "{text:?}: token ids");
        let input = BackboneInput::new(Tensor::from_slice(&ids).unsqueeze(0)).unwrap();
        let _guard = tch::no_grad_guard();
        let out = dense.backbone.forward_t(&input, &NoHooks, false).unwrap();
        let hidden = out.hidden.squeeze_dim(0); // [T, H]
        let logits = dense.backbone.lm_logits(&hidden, false).unwrap(); // [T, V]
        let q = quantized.forward_t(&input, &NoHooks, false).unwrap();
        assert!(q.hidden.squeeze_dim(0).equal(&hidden), "{text:?}: quantized base");
        let diffs = [
            max_diff(&hidden, &g[&format!("hidden.{i}")]),
            max_diff(&logits.get(-1), &g[&format!("logits_last.{i}")]),
            max_diff(&logits.narrow(1, 0, slice), &g[&format!("logits_slice.{i}")]),
        ];
        for (w, d) in worst.iter_mut().zip(diffs) {
            *w = w.max(d);
        }
        let argmax: Vec<i64> = Vec::try_from(logits.argmax(-1, false)).unwrap();
        let want_argmax: Vec<i64> = serde_json::from_value(case["argmax"].clone()).unwrap();
        assert_eq!(argmax, want_argmax, "{text:?}: argmax");
        println!("{i}: {} tokens, max |diff| hidden {:.2e} logits(last) {:.2e} logits(0..{slice}) {:.2e}", ids.len(), diffs[0], diffs[1], diffs[2]);
    }
    println!("SmolLM2 vs transformers, worst over {} prompts: hidden {:.2e}, last logits {:.2e}, logit slice {:.2e}", cases.len(), worst[0], worst[1], worst[2]);
    assert!(worst.iter().all(|&d| d <= 1e-4), "{worst:?}");
}
