//! `--model x.gguf` wherever a model is accepted ([`ModelSource`]), and the quantized frozen
//! base (`quantized_base`), on the tiny GGUF fixture (tests/fixtures/gguf/README.md):
//!
//! - `petune forward` on `tiny-llama.gguf` equals `petune forward` on the Hugging Face folder
//!   holding the same weights (`tiny-llama/` with its lossy tensors replaced by the reference
//!   dequantization, `tiny-llama.golden.safetensors`), tensor for tensor;
//! - `petune train` + `predict` on the GGUF through the CLI, with and without
//!   `--quantized-base` (the two deltas are bit-identical);
//! - the quantized base gives the dequantized load's outputs and the same gradients to a
//!   delta, and refuses what would change its weights (LoRA merge, model tuning);
//! - hostile paths (a folder with two `.gguf`, a truncated file, a file that is not GGUF) are
//!   typed errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tiny_task::{temp_dir, write_jsonl};
use common::*;
use petune::core::tensor_io::{read_safetensors, write_safetensors};
use petune::core::{BindCtx, LinearRole, LinearSite};
use petune::prelude::*;
use tch::{Device, Kind, Tensor};

fn tiny_gguf() -> PathBuf {
    fixture("gguf").join("tiny-llama.gguf")
}

fn petune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petune")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> Output {
    let out = petune(args);
    assert!(
        out.status.success(),
        "petune {}:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The Hugging Face folder of the GGUF's exact weights: `tiny-llama/` (config, tokenizer)
/// with every lossy tensor replaced by its reference dequantization.
fn hf_twin(dir: &Path) -> PathBuf {
    let src = fixture("gguf").join("tiny-llama");
    let twin = dir.join("tiny-llama-twin");
    std::fs::create_dir_all(&twin).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), twin.join(f)).unwrap();
    }
    let mut weights =
        read_safetensors(&src.join("model.safetensors"), Device::Cpu).unwrap().tensors;
    let golden = golden(&fixture("gguf").join("tiny-llama.golden.safetensors")).tensors;
    assert!(!golden.is_empty());
    for (name, t) in golden {
        assert!(weights.contains_key(&name), "{name}");
        weights.insert(name, t);
    }
    let tensors: Vec<(String, Tensor)> =
        weights.into_iter().map(|(k, t)| (k, t.to_kind(Kind::Float))).collect();
    write_safetensors(&twin.join("model.safetensors"), &tensors, None).unwrap();
    twin
}

fn texts(dir: &Path) -> PathBuf {
    let path = dir.join("in.jsonl");
    let lines = [
        r#"{"text": "The capital of France is"}"#,
        r#"{"text": "a good movie, 42 times better"}"#,
        r#"{"text": "<|im_start|>user\nhi<|im_end|>"}"#,
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn forward_on_the_gguf_equals_forward_on_its_hugging_face_twin() {
    let dir = temp_dir("gguf-forward");
    let input = texts(&dir);
    let twin = hf_twin(&dir);
    let run = |model: &Path, out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let (m, i, o) = (model.display().to_string(), input.display().to_string(), out.display());
        ok(&[&["forward", "--model", &m, "--input", &i, "--out", &o.to_string()], extra].concat());
        read_safetensors(&out, Device::Cpu).unwrap().tensors
    };
    let gguf = run(&tiny_gguf(), "gguf.safetensors", &[]);
    let hf = run(&twin, "hf.safetensors", &[]);
    // A folder holding the file is the file; the quantized base computes the same values.
    let folder = dir.join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(tiny_gguf(), folder.join("m.gguf")).unwrap();
    let in_folder = run(&folder, "folder.safetensors", &[]);
    let quantized = run(&tiny_gguf(), "quantized.safetensors", &["--quantized-base"]);
    assert_eq!(gguf.len(), 3 + 3 + 1, "hidden.0..2, ids, mask, types, logits");
    for (name, t) in &gguf {
        assert_eq!(t.size(), hf[name].size(), "{name}");
        assert!(t.equal(&hf[name]), "{name}: GGUF vs HF, max diff {:e}", max_diff(t, &hf[name]));
        assert!(t.equal(&in_folder[name]), "{name}: file vs folder");
        assert!(t.equal(&quantized[name]), "{name}: quantized base");
    }
    assert!(gguf["logits"].abs().max().double_value(&[]) > 0.0);
}

/// The tiny Llama, dequantized and with its projections kept quantized.
fn both_loads() -> (Box<dyn Backbone>, Box<dyn Backbone>) {
    let dense = load_backbone(tiny_gguf(), &LoadOptions::default()).unwrap();
    let opts = LoadOptions { quantized_base: true, ..LoadOptions::default() };
    let quantized = load_backbone(tiny_gguf(), &opts).unwrap();
    (dense, quantized)
}

fn tiny_input(backbone: &dyn Backbone) -> BackboneInput {
    let source = ModelSource::open(tiny_gguf()).unwrap();
    let tok = source.tokenizer(backbone.spec()).unwrap();
    let opts = EncodeOptions { max_len: 64, truncate: false, padding_side: PaddingSide::Right };
    let inputs =
        [TextInput::single("a good movie"), TextInput::single("the plot drags on for hours")];
    let batch = tok.encode_batch(&inputs, &opts, Device::Cpu).unwrap();
    BackboneInput::new(batch.input_ids).unwrap().with_attention_mask(batch.attention_mask).unwrap()
}

/// `Σ hidden²` of the text with `method`'s delta (built after seeding, so the same on both
/// backbones), backpropagated; the delta's gradients by name.
fn delta_grads(backbone: &dyn Backbone, method: &MethodConfig) -> (Tensor, Vec<(String, Tensor)>) {
    tch::manual_seed(7);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let delta = method.build(&(vs.root() / "delta"), backbone).unwrap().expect("a delta");
    // LoRA starts as the identity (B = 0), so A's gradient would be 0: move B.
    tch::no_grad(|| {
        // In name order: the store's map has none, and the draws must match.
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut t) in vars {
            if name.contains("lora_B") {
                t.copy_(&(Tensor::randn_like(&t) * 0.1));
            }
        }
    });
    let input = tiny_input(backbone);
    let hooks = delta.bind(&BindCtx { backbone, input: &input, train: false }).unwrap();
    let out = backbone.forward_t(&input, hooks.as_ref(), false).unwrap().text_hidden();
    let loss = (&out * &out).sum(Kind::Float);
    loss.backward();
    let mut grads: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(k, t)| (k, t.grad())).collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    (out.detach(), grads)
}

#[test]
fn the_quantized_base_gives_the_dequantized_outputs_and_gradients() {
    init();
    let (dense, quantized) = both_loads();
    assert_eq!(dense.spec(), quantized.spec());
    let input = tiny_input(dense.as_ref());
    let a = dense.forward_t(&input, &NoHooks, false).unwrap();
    let b = quantized.forward_t(&input, &NoHooks, false).unwrap();
    assert!(a.hidden.equal(&b.hidden), "max diff {:e}", max_diff(&a.hidden, &b.hidden));
    let (la, lb) = (
        dense.lm_logits(&a.hidden, false).unwrap(),
        quantized.lm_logits(&b.hidden, false).unwrap(),
    );
    assert!(la.equal(&lb));
    // The projections are not variables of the quantized backbone's store: nothing to train.
    let names = |b: &dyn Backbone| b.var_store().variables().into_keys().collect::<Vec<_>>();
    assert!(names(dense.as_ref()).iter().any(|k| k.ends_with("q_proj.weight")));
    assert!(!names(quantized.as_ref()).iter().any(|k| k.ends_with("_proj.weight")));

    let lora: MethodConfig = serde_json::from_value(serde_json::json!({
        "method": "lora", "r": 4, "alpha": 8,
        "targets": ["query", "key", "value", "attn_out", "ffn_gate", "ffn_up", "ffn_down"]
    }))
    .unwrap();
    // The late prompt's gradient flows back through layer 1's quantized projections.
    let npg: MethodConfig = serde_json::from_value(serde_json::json!({
        "method": "lpt", "prompt_layer": 1, "generator": {"kind": "naive", "len": 3, "bottleneck": 8}
    }))
    .unwrap();
    for method in [lora, npg] {
        let (out_a, grads_a) = delta_grads(dense.as_ref(), &method);
        let (out_b, grads_b) = delta_grads(quantized.as_ref(), &method);
        assert!(out_a.equal(&out_b), "{}: outputs", method.label());
        assert_eq!(grads_a.len(), grads_b.len());
        assert!(!grads_a.is_empty());
        for ((name, ga), (_, gb)) in grads_a.iter().zip(&grads_b) {
            assert!(ga.defined() && ga.abs().max().double_value(&[]) > 0.0, "{name}: no gradient");
            assert!(ga.equal(gb), "{}: {name}, max diff {:e}", method.label(), max_diff(ga, gb));
        }
    }
}

#[test]
fn the_quantized_base_refuses_what_would_change_its_weights() {
    init();
    let (dense, quantized) = both_loads();
    let site = LinearSite { layer: 0, role: LinearRole::Query };
    let delta = Tensor::zeros([32, 32], (Kind::Float, Device::Cpu));
    dense.add_to_linear_weight(site, &delta).unwrap();
    let err = quantized.add_to_linear_weight(site, &delta).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("quantized_base"), "{err}");

    // Only a GGUF has blocks to keep.
    let opts = LoadOptions { quantized_base: true, ..LoadOptions::default() };
    let err = load_backbone(fixture("gguf").join("tiny-llama"), &opts).err().unwrap();
    assert!(matches!(err, Error::Unsupported { .. }) && err.to_string().contains(".gguf"), "{err}");

    // Model tuning trains the base: refused before anything loads.
    let mut cfg = common::tiny_task::run_config_for(
        &tiny_gguf(),
        MethodConfig::ModelTuning,
        HeadConfig::Auto,
        1,
    );
    cfg.train.quantized_base = true;
    let err = Trainer::from_config(cfg).err().unwrap();
    assert!(matches!(err, Error::Incompatible { .. }), "{err:?}");
    assert!(err.to_string().contains("quantized_base"), "{err}");
}

#[test]
fn a_gguf_source_gives_spec_tokenizer_and_chat_template() {
    init();
    let source = ModelSource::open(tiny_gguf()).unwrap();
    assert!(source.is_gguf());
    let backbone = source.load_backbone(&LoadOptions::default()).unwrap();
    assert_eq!(&source.spec().unwrap(), backbone.spec());
    assert_eq!(&model_spec(tiny_gguf()).unwrap(), backbone.spec());
    let tok = source.tokenizer(backbone.spec()).unwrap();
    assert_eq!((tok.bos_id(), tok.eos_id(), tok.pad_id()), (Some(1), Some(2), 2));
    let hf = ModelSource::open(fixture("gguf").join("tiny-llama")).unwrap();
    assert!(!hf.is_gguf());
    // The same ChatML template in the GGUF metadata and in the folder's chat_template.jinja.
    let (t_gguf, t_hf) = (source.chat_template().unwrap(), hf.chat_template().unwrap());
    assert!(t_gguf.as_deref().is_some_and(|t| t.contains("<|im_start|>")), "{t_gguf:?}");
    assert_eq!(t_gguf, t_hf);
    let parts = source.load(&LoadOptions::default()).unwrap();
    assert_eq!(parts.backbone.spec(), backbone.spec());
    assert_eq!(parts.chat_template, t_gguf);
}

#[test]
fn train_and_predict_on_the_gguf_through_the_cli() {
    let dir = temp_dir("gguf-train");
    for (name, n, off) in [("train", 16, 0), ("test", 8, 1)] {
        write_jsonl(&dir.join(format!("{name}.jsonl")), n, off);
    }
    let file = |n: &str| dir.join(n).display().to_string();
    let model = tiny_gguf().display().to_string();
    let train = |out: &str, extra: &[&str]| {
        let args = [
            "train",
            "--model",
            &model,
            "--train",
            &file("train.jsonl"),
            "--test",
            &file("test.jsonl"),
            "--out",
            &file(out),
            "--steps",
            "4",
            "--method",
            "lora",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--json",
        ];
        let run = ok(&[&args[..], extra].concat());
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert!(report["test"].is_object(), "{report}");
        report
    };
    let dense = train("dense", &[]);
    let quantized = train("quantized", &["--quantized-base"]);
    assert_eq!(dense["test"], quantized["test"]);
    let delta = |out: &str| {
        read_safetensors(&dir.join(out).join("delta.safetensors"), Device::Cpu).unwrap().tensors
    };
    let (a, b) = (delta("dense"), delta("quantized"));
    assert!(!a.is_empty() && a.len() == b.len());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name}: the quantized base trained another delta");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("dense").join("delta.json")).unwrap())
            .unwrap();
    assert!(manifest["backbone"].as_str().unwrap().contains("llama"), "{manifest}");

    for extra in [&[][..], &["--quantized-base"][..]] {
        let args = [
            "predict",
            "--model",
            &model,
            "--delta",
            &file("dense"),
            "--input",
            &file("test.jsonl"),
        ];
        let out = ok(&[&args[..], extra].concat());
        let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 8);
        assert!(rows.iter().all(|r| r["label"].is_string()), "{rows:?}");
    }
}

#[test]
fn hostile_gguf_paths_are_typed_errors() {
    init();
    let dir = temp_dir("gguf-hostile");
    // Two .gguf files and no config.json: which one is meant?
    let two = dir.join("two");
    std::fs::create_dir_all(&two).unwrap();
    std::fs::copy(tiny_gguf(), two.join("a.gguf")).unwrap();
    std::fs::copy(tiny_gguf(), two.join("b.gguf")).unwrap();
    let err = load_backbone(&two, &LoadOptions::default()).err().unwrap();
    assert!(matches!(err, Error::Input(_)), "{err:?}");
    assert!(err.to_string().contains("a.gguf") && err.to_string().contains("b.gguf"), "{err}");
    let err = model_spec(&two).unwrap_err();
    assert!(matches!(err, Error::Input(_)), "{err:?}");

    // A truncated file, and a file that is not GGUF at all.
    let bytes = std::fs::read(tiny_gguf()).unwrap();
    let cut = dir.join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let not_gguf = fixture("gguf").join("tiny-llama").join("config.json");
    for path in [&cut, &not_gguf] {
        let err = load_backbone(path, &LoadOptions::default()).err().unwrap();
        assert!(matches!(err, Error::Gguf { .. }), "{}: {err:?}", path.display());
        let err = ModelSource::open(path).unwrap().spec().unwrap_err();
        assert!(matches!(err, Error::Gguf { .. }), "{}: {err:?}", path.display());
    }

    // Through the CLI: a clean failure naming the problem, never a panic.
    let input = texts(&dir);
    for (model, says) in [(&two, "2 .gguf files"), (&cut, "past the end of the file")] {
        let (m, i, o) = (
            model.display().to_string(),
            input.display().to_string(),
            dir.join("o").display().to_string(),
        );
        let out = petune(&["forward", "--model", &m, "--input", &i, "--out", &o]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{}: {err}", model.display());
        assert!(!err.contains("panicked"), "{err}");
    }
}
