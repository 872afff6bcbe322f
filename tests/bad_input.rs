//! Bad input gets a typed error that names the problem: corrupt or truncated
//! safetensors, missing / unexpected keys, wrong shapes, malformed or unsupported
//! `config.json`, empty or malformed input files, over-long inputs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use petune::core::tensor_io::{read_safetensors, write_safetensors};
use petune::prelude::*;
use tch::{Device, Kind, Tensor};

/// A private copy of a fixture folder to break.
fn scratch_copy(name: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("petune-bad-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    dst
}

fn load_err(dir: &Path) -> Error {
    load_backbone(dir, &LoadOptions::default()).err().expect("loading must fail")
}

fn rewrite_weights(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) {
    let path = dir.join("model.safetensors");
    let file = read_safetensors(&path, Device::Cpu).unwrap();
    let mut tensors: Vec<(String, Tensor)> = file.tensors.into_iter().collect();
    edit(&mut tensors);
    write_safetensors(&path, &tensors, None).unwrap();
}

#[test]
fn truncated_safetensors_names_the_file() {
    init();
    let dir = scratch_copy("bert-mlm", "trunc");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&dir);
    assert!(matches!(err, Error::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn corrupt_safetensors_header_is_an_error() {
    init();
    let dir = scratch_copy("bert-mlm", "corrupt");
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(8).take(64) {
        *b = b'#';
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = load_err(&dir);
    assert!(matches!(err, Error::Safetensors { .. }), "{err}");
}

#[test]
fn missing_and_unexpected_keys_are_all_reported() {
    init();
    let dir = scratch_copy("bert-mlm", "keys");
    rewrite_weights(&dir, |t| {
        t.retain(|(k, _)| {
            !k.ends_with("layer.1.attention.self.key.weight")
                && !k.ends_with("layer.0.output.dense.bias")
        });
        t.push((
            "bert.encoder.layer.7.extra.weight".into(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        ));
    });
    let err = load_err(&dir);
    let Error::Weights { report, .. } = &err else { panic!("expected Error::Weights, got {err}") };
    assert_eq!(
        report.missing,
        vec![
            "bert.encoder.layer.0.output.dense.bias".to_string(),
            "bert.encoder.layer.1.attention.self.key.weight".to_string()
        ]
    );
    assert_eq!(report.unexpected, vec!["bert.encoder.layer.7.extra.weight".to_string()]);
    let msg = err.to_string();
    assert!(
        msg.contains("layer.1.attention.self.key.weight") && msg.contains("extra.weight"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_names_key_and_shapes() {
    init();
    let dir = scratch_copy("roberta-mlm", "shape");
    rewrite_weights(&dir, |t| {
        for (k, v) in t.iter_mut() {
            if k.ends_with("layer.0.intermediate.dense.weight") {
                *v = Tensor::zeros([3, 5], (Kind::Float, Device::Cpu));
            }
        }
    });
    let err = load_err(&dir);
    let msg = err.to_string();
    assert!(
        msg.contains("roberta.encoder.layer.0.intermediate.dense.weight") && msg.contains("[3, 5]"),
        "{msg}"
    );
}

#[test]
fn malformed_config_json_is_a_json_error() {
    init();
    let dir = scratch_copy("bert-mlm", "json");
    std::fs::write(dir.join("config.json"), "{\"model_type\": \"bert\", \"hidden_size\": ")
        .unwrap();
    let err = load_err(&dir);
    assert!(matches!(err, Error::Json { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn unsupported_or_invalid_config_values_are_typed_errors() {
    init();
    let dir = scratch_copy("bert-mlm", "cfg");
    edit_config(&dir, |v| v["model_type"] = "t5".into());
    assert!(matches!(load_err(&dir), Error::Unsupported { .. }));

    let dir = scratch_copy("bert-mlm", "cfg2");
    edit_config(&dir, |v| v["position_embedding_type"] = "relative_key".into());
    let err = load_err(&dir);
    assert!(
        matches!(err, Error::Unsupported { .. }) && err.to_string().contains("relative_key"),
        "{err}"
    );

    let dir = scratch_copy("bert-mlm", "cfg3");
    edit_config(&dir, |v| v["num_attention_heads"] = 5.into());
    let err = load_err(&dir);
    assert!(matches!(&err, Error::Config { field, .. } if field == "hidden_size"), "{err}");

    let dir = scratch_copy("bert-mlm", "cfg4");
    edit_config(&dir, |v| v["hidden_act"] = "mish2".into());
    assert!(load_err(&dir).to_string().contains("mish2"));

    let dir = scratch_copy("bert-mlm", "cfg5");
    edit_config(&dir, |v| {
        v.as_object_mut().unwrap().remove("vocab_size");
    });
    assert!(matches!(load_err(&dir), Error::Json { .. }));
}

#[test]
fn folder_without_config_is_an_input_error() {
    init();
    let err = load_err(Path::new("/nonexistent/petune/model"));
    assert!(matches!(err, Error::Input(_)) && err.to_string().contains("config.json"), "{err}");
}

#[test]
fn over_long_and_empty_inputs_are_typed_errors() {
    init();
    let dir = fixture("bert-mlm");
    let tok = TextTokenizer::from_file(&dir.join("tokenizer.json"), 0).unwrap();
    let opts = EncodeOptions { max_len: 8, truncate: false, padding_side: PaddingSide::Right };
    let long = TextInput::single("the movie was great and the acting was superb and it was fun");
    let err = tok
        .encode_batch(&[TextInput::single("short"), long.clone()], &opts, Device::Cpu)
        .unwrap_err();
    assert!(matches!(err, Error::Input(_)) && err.to_string().contains("example 1"), "{err}");
    let cut =
        tok.encode_batch(&[long], &EncodeOptions { truncate: true, ..opts }, Device::Cpu).unwrap();
    assert_eq!(cut.input_ids.size(), [1, 8]);
    assert!(matches!(tok.encode_batch(&[], &opts, Device::Cpu), Err(Error::Input(_))));
    // Past the position table, the backbone refuses rather than index out of range.
    let backbone = load(&dir);
    let n = backbone.spec().max_positions + 1;
    let input = BackboneInput::new(Tensor::full([1, n], 5, (Kind::Int64, Device::Cpu))).unwrap();
    assert!(matches!(backbone.forward_t(&input, &NoHooks, false), Err(Error::Input(_))));
    // Shapes are validated when the input is built.
    let ids = Tensor::zeros([2, 3], (Kind::Int64, Device::Cpu));
    let bad = BackboneInput::new(ids)
        .unwrap()
        .with_attention_mask(Tensor::ones([2, 4], (Kind::Int64, Device::Cpu)));
    assert!(matches!(bad, Err(Error::Shape { .. })));
    let missing =
        TextTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"), 0).unwrap_err();
    assert!(matches!(missing, Error::Tokenizer { .. }));
}

fn petune(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_petune")).args(args).output().unwrap()
}

#[test]
fn cli_forward_rejects_empty_and_malformed_input_files() {
    init();
    let dir = std::env::temp_dir().join(format!("petune-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = fixture("bert-mlm");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let out = dir.join("out.safetensors");
    let o = petune(&[
        "forward",
        "--model",
        model.to_str().unwrap(),
        "--input",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("empty"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"fine\"}\n{\"txt\": \"typo\"}\n").unwrap();
    let o = petune(&[
        "forward",
        "--model",
        model.to_str().unwrap(),
        "--input",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.jsonl:2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists(), "no output may be written on error");
}
