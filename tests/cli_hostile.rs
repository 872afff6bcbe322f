//! Every `petune` subcommand over a corpus of hostile inputs: truncated, garbage and
//! mis-typed safetensors, a tokenizer from another model, sentence pairs on a model with
//! one segment type, malformed configs, empty, non-UTF-8, nested-to-death and binary
//! files, BOM + CRLF, one-class data, duplicated keys and columns, over-long inputs and
//! absurd numbers. Each must end with exit code 1 and a message that names the problem
//! (or 0 where the input is valid after all), never a panic (101), an abort (134), a
//! signal or a stack overflow.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use common::tiny_task::temp_dir;
use common::*;
use petune::core::tensor_io::{read_safetensors, write_safetensors};
use tch::{Device, Kind, Tensor};

/// A case: what it is, the arguments, the exit code wanted, a fragment the output
/// (stderr, or stdout for successes) must contain.
struct Case {
    what: &'static str,
    args: Vec<String>,
    code: i32,
    says: &'static str,
}

/// Runs every case; reports all failures at once.
fn check(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_petune")).args(&c.args).output().unwrap();
        let code = out.status.code();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        if code != Some(c.code) || !text.to_lowercase().contains(&c.says.to_lowercase()) {
            failures.push(format!(
                "{} (petune {}): exit {:?}, wanted {} with `{}`:\n{}",
                c.what,
                c.args.join(" "),
                code,
                c.code,
                c.says,
                text.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The corpus, built once per test binary.
struct Corpus {
    root: PathBuf,
}

impl Corpus {
    fn p(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn edit_weights(dir: &Path, edit: impl Fn(&str, Tensor) -> Tensor) {
    let path = dir.join("model.safetensors");
    let tensors: Vec<(String, Tensor)> = read_safetensors(&path, Device::Cpu)
        .unwrap()
        .tensors
        .into_iter()
        .map(|(n, t)| {
            let t = edit(&n, t);
            (n, t)
        })
        .collect();
    write_safetensors(&path, &tensors, None).unwrap();
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, v.to_string()).unwrap();
}

/// Tiny labelled rows `text,label` (two classes, string labels).
fn rows(n: usize) -> Vec<(String, &'static str)> {
    let pos = ["a charming and funny story", "the acting is superb", "a great film"];
    let neg = ["a dull and boring mess", "the plot drags on", "a waste of time"];
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                (pos[i / 2 % 3].to_string(), "pos")
            } else {
                (neg[i / 2 % 3].to_string(), "neg")
            }
        })
        .collect()
}

fn csv_of(rows: &[(String, &str)]) -> String {
    let mut s = "text,label\n".to_string();
    for (t, l) in rows {
        s.push_str(&format!("{t},{l}\n"));
    }
    s
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        init();
        let root = temp_dir("cli-hostile");
        let bert = fixture("bert-mlm");
        // ---- models
        let m = root.join("models");
        copy_dir(&bert, &m.join("tiny"));
        copy_dir(&bert, &m.join("trunc"));
        let w = m.join("trunc/model.safetensors");
        let bytes = std::fs::read(&w).unwrap();
        std::fs::write(&w, &bytes[..bytes.len() / 3]).unwrap();
        copy_dir(&bert, &m.join("garbage"));
        std::fs::write(m.join("garbage/model.safetensors"), b"\x10\0\0\0\0\0\0\0{\"a\":1}garbage")
            .unwrap();
        copy_dir(&bert, &m.join("int_weights"));
        edit_weights(&m.join("int_weights"), |n, t| {
            if n.ends_with("word_embeddings.weight") {
                t.to_kind(Kind::Int64)
            } else {
                t
            }
        });
        copy_dir(&bert, &m.join("nan"));
        edit_weights(&m.join("nan"), |n, t| {
            if n.ends_with("word_embeddings.weight") {
                t.full_like(f64::NAN)
            } else {
                t
            }
        });
        // A RoBERTa checkpoint (512 ids) with the tiny BERT's tokenizer (595 ids).
        copy_dir(&fixture("roberta-mlm"), &m.join("foreign_tok"));
        std::fs::copy(bert.join("tokenizer.json"), m.join("foreign_tok/tokenizer.json")).unwrap();
        // BERT with a single segment type: a sentence pair's second segment has no row.
        copy_dir(&bert, &m.join("one_type"));
        edit_config(&m.join("one_type"), |v| v["type_vocab_size"] = 1.into());
        edit_weights(&m.join("one_type"), |n, t| {
            if n.ends_with("token_type_embeddings.weight") {
                t.narrow(0, 0, 1).copy()
            } else {
                t
            }
        });
        copy_dir(&bert, &m.join("bad_json"));
        std::fs::write(m.join("bad_json/config.json"), "{\"model_type\": \"bert\", \"hidden")
            .unwrap();
        copy_dir(&bert, &m.join("t5"));
        edit_config(&m.join("t5"), |v| v["model_type"] = "t5".into());
        // A config (no weights needed) of a model with 65,536 positions.
        copy_dir(&bert, &m.join("wide"));
        edit_config(&m.join("wide"), |v| v["max_position_embeddings"] = 65_536.into());
        copy_dir(&bert, &m.join("huge_types"));
        edit_config(&m.join("huge_types"), |v| v["type_vocab_size"] = (1i64 << 62).into());
        copy_dir(&bert, &m.join("huge_vocab"));
        edit_config(&m.join("huge_vocab"), |v| v["vocab_size"] = (1i64 << 40).into());
        // ---- data
        let d = root.join("data");
        std::fs::create_dir_all(&d).unwrap();
        let write = |name: &str, body: &[u8]| std::fs::write(d.join(name), body).unwrap();
        write("good.csv", csv_of(&rows(24)).as_bytes());
        write("empty.csv", b"");
        write("empty.jsonl", b"\n\n");
        write("header.csv", b"text,label\n");
        write("latin1.csv", b"text,label\ncaf\xe9 au lait,pos\nfine,neg\n");
        write("latin1.jsonl", b"{\"text\": \"caf\xe9\"}\n");
        let bom = csv_of(&rows(24)).replace('\n', "\r\n");
        write("bom.csv", format!("\u{feff}{bom}").as_bytes());
        let one: Vec<(String, &str)> = rows(12).into_iter().map(|(t, _)| (t, "pos")).collect();
        write("one_class.csv", csv_of(&one).as_bytes());
        write("dup_cols.csv", b"text,label,label\na,pos,neg\nb,neg,pos\n");
        write("dup_keys.jsonl", b"{\"text\": \"a\", \"label\": \"pos\", \"text\": \"b\"}\n");
        write("no_label.csv", b"text\na charming story\na dull mess\n");
        write("unknown_label.csv", b"text,label\na charming story,pos\na dull mess,meh\n");
        write(
            "mixed.jsonl",
            b"{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": \"pos\"}\n",
        );
        write(
            "negative.jsonl",
            b"{\"text\": \"a\", \"label\": -1}\n{\"text\": \"b\", \"label\": 0}\n",
        );
        write("huge_label.jsonl", b"{\"text\": \"a\", \"label\": 1e300}\n");
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        write("nested.jsonl", format!("{{\"text\": \"a\", \"label\": {deep}}}\n").as_bytes());
        write("binary.csv", &(0..=255u8).cycle().take(4096).collect::<Vec<u8>>());
        write("data.txt", b"text,label\na,pos\n");
        let long = "the movie was long ".repeat(60);
        let mut long_rows = rows(24);
        long_rows[0].0 = long.clone();
        write("long.csv", csv_of(&long_rows).as_bytes());
        write("long.jsonl", format!("{{\"text\": \"{long}\"}}\n").as_bytes());
        // Words whose ids are past the RoBERTa fixture's 512 (the BERT vocabulary's tail).
        let foreign: Vec<(String, &str)> =
            rows(12).into_iter().map(|(t, l)| (format!("{t} ght pecial eed"), l)).collect();
        write("foreign.csv", csv_of(&foreign).as_bytes());
        write("foreign.jsonl", b"{\"text\": \"ght pecial eed ear ething\"}\n");
        let mut pairs = "text,text_pair,label\n".to_string();
        for (i, (t, l)) in rows(12).into_iter().enumerate() {
            pairs.push_str(&format!("{t},second part {i},{l}\n"));
        }
        write("pairs.csv", pairs.as_bytes());
        write("pairs.jsonl", b"{\"text\": \"first\", \"text_pair\": \"second\"}\n");
        write("inputs.jsonl", b"{\"text\": \"a charming story\"}\n");
        // ---- run configs
        let c = root.join("configs");
        std::fs::create_dir_all(&c).unwrap();
        let base = serde_json::json!({
            "model": m.join("tiny"),
            "task": {"custom": {}, "data": {"kind": "files", "train": d.join("good.csv")}},
            "method": {"method": "lpt", "prompt_layer": 2,
                       "generator": {"kind": "naive", "len": 5, "bottleneck": 16}},
            "train": {"max_steps": 1, "device": "cpu", "threads": 1}
        });
        let cfg = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base.clone();
            edit(&mut v);
            std::fs::write(c.join(name), v.to_string()).unwrap();
        };
        cfg("ok.json", &|_| {});
        cfg("threads.json", &|v| v["train"]["threads"] = 100_000.into());
        cfg("batch0.json", &|v| v["train"]["batch_size"] = 0.into());
        cfg("epochs.json", &|v| v["train"]["epochs"] = 1_000_000_000_000i64.into());
        cfg("steps_huge.json", &|v| v["train"]["max_steps"] = i64::MAX.into());
        cfg("warmup.json", &|v| v["train"]["warmup_rate"] = 1.5.into());
        cfg("device.json", &|v| v["train"]["device"] = "tpu".into());
        cfg("optimizer.json", &|v| v["train"]["optimizer"] = "sgd".into());
        cfg("fp16_cpu.json", &|v| {
            v["train"]["device"] = "cpu".into();
            v["train"]["precision"] = "fp16".into();
        });
        cfg("cache.json", &|v| v["train"]["cache_budget_mib"] = (-1.0).into());
        cfg("unknown_field.json", &|v| v["train"]["learning_rate"] = 0.1.into());
        cfg("unknown_task.json", &|v| {
            v["task"] = serde_json::json!({"name": "sst3", "data": v["task"]["data"].clone()})
        });
        cfg("no_mask.json", &|v| v["task"]["custom"]["template"] = "{text} is it".into());
        cfg("pair_template.json", &|v| {
            v["task"]["custom"]["template"] = "{text} {mask} {text_pair}".into()
        });
        cfg("words.json", &|v| {
            v["task"]["custom"]["label_words"] = serde_json::json!(["cinematographically", "fine"]);
            v["head"] = serde_json::json!({"kind": "verbalizer"});
        });
        cfg("prompt_layer.json", &|v| v["method"]["prompt_layer"] = 99.into());
        cfg("seed_max.json", &|v| v["train"]["seed"] = u64::MAX.into());
        std::fs::write(c.join("nested.json"), format!("{{\"model\": {}", "[".repeat(100_000)))
            .unwrap();
        std::fs::write(c.join("not_json.json"), b"\xff\xfe garbage").unwrap();
        // ---- a trained delta for predict / eval / probe, and broken copies of it
        let delta = root.join("delta");
        let out = Command::new(env!("CARGO_BIN_EXE_petune"))
            .args(["train", "--json", "--config", &c.join("ok.json").display().to_string()])
            .args(["--out", &delta.display().to_string(), "--steps", "2"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        copy_dir(&delta, &root.join("delta_trunc"));
        let f = root.join("delta_trunc/delta.safetensors");
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
        copy_dir(&delta, &root.join("delta_json"));
        std::fs::write(root.join("delta_json/delta.json"), "{\"method\": 3}").unwrap();
        Corpus { root }
    })
}

#[test]
fn generate_refuses_hostile_models_and_deltas() {
    let c = corpus();
    let gen = |model: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["generate", "--model", &c.p(model), "--prompt", "hello"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mk = |what, v: Vec<String>, code, says| Case { what, args: v, code, says };
    check(vec![
        mk("truncated weights", gen("models/trunc", &[]), 1, "model.safetensors"),
        mk("garbage weights", gen("models/garbage", &[]), 1, "not a valid safetensors"),
        mk("malformed config.json", gen("models/bad_json", &[]), 1, "config.json"),
        mk("unsupported model type", gen("models/t5", &[]), 1, "t5"),
        mk("missing model", gen("models/none_such", &[]), 1, "none_such"),
        mk("missing prompt file", gen_file(c), 1, "prompt file"),
        mk("NaN temperature", gen("models/trunc", &["--temperature", "NaN"]), 1, "temperature"),
        mk(
            "delta folder without delta.json",
            gen("models/trunc", &["--delta", "/nonexistent"]),
            1,
            "delta.json",
        ),
    ]);
}

/// `generate --prompt-file` naming a file that does not exist.
fn gen_file(c: &Corpus) -> Vec<String> {
    ["generate", "--model", &c.p("models/trunc"), "--prompt-file", &c.p("data/none_such.txt")]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn forward_refuses_hostile_models_and_inputs() {
    let c = corpus();
    let out = c.p("out.safetensors");
    let fwd = |model: &str, input: &str| -> Vec<String> {
        ["forward", "--model", &c.p(model), "--input", &c.p(input), "--out", &out]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let a = |v: Vec<String>| v;
    let mk = |what, v: Vec<String>, code, says| Case { what, args: v, code, says };
    check(vec![
        mk(
            "truncated weights",
            a(fwd("models/trunc", "data/inputs.jsonl")),
            1,
            "model.safetensors",
        ),
        mk(
            "garbage weights",
            a(fwd("models/garbage", "data/inputs.jsonl")),
            1,
            "not a valid safetensors",
        ),
        mk(
            "integer weights",
            a(fwd("models/int_weights", "data/inputs.jsonl")),
            1,
            "floating-point",
        ),
        mk(
            "foreign tokenizer",
            a(fwd("models/foreign_tok", "data/foreign.jsonl")),
            1,
            "does not belong",
        ),
        mk("pair on one segment type", a(fwd("models/one_type", "data/pairs.jsonl")), 1, "segment"),
        mk(
            "malformed config.json",
            a(fwd("models/bad_json", "data/inputs.jsonl")),
            1,
            "config.json",
        ),
        mk("unsupported model type", a(fwd("models/t5", "data/inputs.jsonl")), 1, "t5"),
        mk("absurd vocab size", a(fwd("models/huge_vocab", "data/inputs.jsonl")), 1, "vocab"),
        mk(
            "absurd segment types",
            a(fwd("models/huge_types", "data/inputs.jsonl")),
            1,
            "type_vocab_size",
        ),
        mk("missing model", a(fwd("models/nope", "data/inputs.jsonl")), 1, "config.json"),
        mk("empty input", a(fwd("models/tiny", "data/empty.jsonl")), 1, "empty"),
        mk("non-UTF-8 input", a(fwd("models/tiny", "data/latin1.jsonl")), 1, "UTF-8"),
        mk("nested JSON", a(fwd("models/tiny", "data/nested.jsonl")), 1, "nested.jsonl:1"),
        mk("binary input", a(fwd("models/tiny", "data/binary.csv")), 1, "binary.csv:1"),
        mk("over-long input", a(fwd("models/tiny", "data/long.jsonl")), 1, "truncation"),
        {
            let mut v = fwd("models/tiny", "data/inputs.jsonl");
            v.extend(["--device".to_string(), "cuda:7".to_string()]);
            mk("absent GPU", v, 1, "cuda")
        },
    ]);
}

fn quick(c: &Corpus, train: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["train", "--model", &c.p("models/tiny"), "--train", &c.p(train)]
        .iter()
        .map(|s| s.to_string())
        .collect();
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    v.extend(["--out".to_string(), c.p(&format!("runs/quick-{n}"))]);
    if !extra.iter().any(|a| a.starts_with("--steps") || a.starts_with("--epochs")) {
        v.extend(["--steps".to_string(), "1".to_string()]);
    }
    if !extra.contains(&"--device") {
        v.extend(["--device".to_string(), "cpu".to_string()]);
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[test]
fn train_quickstart_refuses_hostile_data_and_numbers() {
    let c = corpus();
    let mk = |what, args: Vec<String>, code, says| Case { what, args, code, says };
    let q = |train: &str, extra: &[&str]| quick(c, train, extra);
    check(vec![
        mk("empty file", q("data/empty.csv", &[]), 1, "empty"),
        mk("header only", q("data/header.csv", &[]), 1, "empty"),
        mk("non-UTF-8", q("data/latin1.csv", &[]), 1, "UTF-8"),
        mk("binary file", q("data/binary.csv", &[]), 1, "UTF-8"),
        mk("one class", q("data/one_class.csv", &[]), 1, "one class"),
        mk("duplicate columns", q("data/dup_cols.csv", &[]), 1, "appears twice"),
        mk("duplicate keys", q("data/dup_keys.jsonl", &[]), 1, "appears twice"),
        mk("no label column", q("data/no_label.csv", &[]), 1, "`label`"),
        mk("mixed label types", q("data/mixed.jsonl", &[]), 1, "mix"),
        mk("negative label", q("data/negative.jsonl", &[]), 1, "non-negative"),
        mk("absurd label", q("data/huge_label.jsonl", &[]), 1, "non-negative"),
        mk("nested JSON", q("data/nested.jsonl", &[]), 1, "recursion"),
        mk("unknown extension", q("data/data.txt", &[]), 1, "unknown data file type"),
        mk("missing file", q("data/nope.csv", &[]), 1, "nope.csv"),
        mk("over-long text", q("data/long.csv", &[]), 1, "truncation"),
        mk("zero steps", q("data/good.csv", &["--steps", "0"]), 1, "max_steps"),
        mk("negative steps", q("data/good.csv", &["--steps=-3"]), 1, "max_steps"),
        mk("negative lr", q("data/good.csv", &["--lr=-1"]), 1, "lr"),
        mk("NaN lr", q("data/good.csv", &["--lr", "nan"]), 1, "lr"),
        mk("infinite lr", q("data/good.csv", &["--lr", "1e999"]), 1, "lr"),
        mk("absurd epochs", q("data/good.csv", &["--epochs", "1000000000000"]), 1, "epochs"),
        mk("max_len 1", q("data/good.csv", &["--max-len", "1"]), 1, "max_len"),
        mk("unknown device", q("data/good.csv", &["--device", "tpu"]), 1, "device"),
        mk("unknown method", q("data/good.csv", &["--method", "bogus"]), 1, "unknown method"),
        mk(
            "bad method JSON",
            q("data/good.csv", &["--method", "{\"method\": \"lora\", \"r\": 0}"]),
            1,
            "r",
        ),
        mk(
            "prompt layer past the model",
            q("data/good.csv", &["--method", "{\"method\": \"lpt\", \"prompt_layer\": 9}"]),
            1,
            "prompt_layer",
        ),
        mk("unknown head", q("data/good.csv", &["--head", "bogus"]), 1, "head"),
        mk("not a number", q("data/good.csv", &["--steps", "many"]), 1, "many"),
        mk(
            "u64::MAX seed trains",
            q("data/good.csv", &["--seed", "18446744073709551615"]),
            0,
            "predict with",
        ),
        mk("BOM and CRLF train", q("data/bom.csv", &[]), 0, "predict with"),
    ]);
}

#[test]
fn train_refuses_hostile_models() {
    let c = corpus();
    let mut cases = Vec::new();
    for (what, model, data, extra, says) in [
        ("truncated weights", "models/trunc", "data/good.csv", "", "model.safetensors"),
        ("integer weights", "models/int_weights", "data/good.csv", "", "floating-point"),
        ("NaN weights", "models/nan", "data/good.csv", "", "diverged"),
        ("foreign tokenizer", "models/foreign_tok", "data/foreign.csv", "", "does not belong"),
        ("pairs on one segment type", "models/one_type", "data/pairs.csv", "mt", "segment"),
        ("malformed config.json", "models/bad_json", "data/good.csv", "", "config.json"),
    ] {
        let mut args: Vec<String> = ["train", "--model", &c.p(model), "--train", &c.p(data)]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend([
            "--out".into(),
            c.p(&format!("runs/model-{what}")),
            "--steps".into(),
            "2".into(),
        ]);
        if !extra.is_empty() {
            args.extend(["--method".into(), extra.into()]);
        }
        cases.push(Case { what, args, code: 1, says });
    }
    check(cases);
}

#[test]
fn train_config_refuses_hostile_configs() {
    let c = corpus();
    let t = |name: &str| -> Vec<String> {
        let out = c.p(&format!("runs/cfg-{name}"));
        ["train", "--config", &c.p(&format!("configs/{name}")), "--out", &out]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let mk = |what, args: Vec<String>, code, says| Case { what, args, code, says };
    check(vec![
        mk("threads out of range", t("threads.json"), 1, "threads"),
        mk("batch size 0", t("batch0.json"), 1, "batch_size"),
        mk("absurd epochs", t("epochs.json"), 1, "epochs"),
        mk("absurd steps", t("steps_huge.json"), 1, "max_steps"),
        mk("warm-up over 1", t("warmup.json"), 1, "warmup_rate"),
        mk("unknown device", t("device.json"), 1, "device"),
        mk("unknown optimizer", t("optimizer.json"), 1, "adamw_fused"),
        mk("fp16 on a CPU device", t("fp16_cpu.json"), 1, "bf16"),
        mk("negative cache budget", t("cache.json"), 1, "cache_budget_mib"),
        mk("unknown field", t("unknown_field.json"), 1, "learning_rate"),
        mk("unknown task", t("unknown_task.json"), 1, "sst3"),
        mk("template without mask", t("no_mask.json"), 1, "mask"),
        mk("pair template on single texts", t("pair_template.json"), 1, "text_pair"),
        mk("multi-token label word", t("words.json"), 1, "cinematographically"),
        mk("prompt layer past the model", t("prompt_layer.json"), 1, "prompt_layer"),
        mk("nested JSON", t("nested.json"), 1, "invalid JSON"),
        mk("not JSON", t("not_json.json"), 1, "JSON"),
        mk("missing config", t("nope.json"), 1, "nope.json"),
        mk("u64::MAX seed", t("seed_max.json"), 0, "predict with"),
        mk(
            "print-config",
            vec![
                "train".into(),
                "--config".into(),
                c.p("configs/ok.json"),
                "--print-config".into(),
            ],
            0,
            "\"custom\"",
        ),
        mk("no arguments", vec!["train".into()], 1, "--model"),
        mk("unknown flag", vec!["train".into(), "--frobnicate".into()], 1, "frobnicate"),
    ]);
}

#[test]
fn predict_and_eval_refuse_hostile_deltas_and_inputs() {
    let c = corpus();
    let run = |cmd: &str, delta: &str, model: &str, input: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> =
            [cmd, "--delta", &c.p(delta), "--model", &c.p(model), "--input", &c.p(input)]
                .iter()
                .map(|s| s.to_string())
                .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let p = |delta: &str, model: &str, input: &str, extra: &[&str]| {
        run("predict", delta, model, input, extra)
    };
    let e = |input: &str| run("eval", "delta", "models/tiny", input, &[]);
    let mk = |what, args: Vec<String>, code, says| Case { what, args, code, says };
    check(vec![
        mk("no delta folder", p("nope", "models/tiny", "data/good.csv", &[]), 1, "delta.json"),
        mk(
            "truncated delta",
            p("delta_trunc", "models/tiny", "data/good.csv", &[]),
            1,
            "safetensors",
        ),
        mk(
            "malformed delta.json",
            p("delta_json", "models/tiny", "data/good.csv", &[]),
            1,
            "delta.json",
        ),
        mk(
            "delta of another backbone",
            p("delta", "models/foreign_tok", "data/good.csv", &[]),
            1,
            "trained on",
        ),
        mk(
            "truncated model",
            p("delta", "models/trunc", "data/good.csv", &[]),
            1,
            "model.safetensors",
        ),
        mk("empty input", p("delta", "models/tiny", "data/empty.csv", &[]), 1, "empty"),
        mk("non-UTF-8 input", p("delta", "models/tiny", "data/latin1.csv", &[]), 1, "UTF-8"),
        mk(
            "duplicate columns",
            p("delta", "models/tiny", "data/dup_cols.csv", &[]),
            1,
            "appears twice",
        ),
        mk("nested JSON", p("delta", "models/tiny", "data/nested.jsonl", &[]), 1, "recursion"),
        mk("over-long input", p("delta", "models/tiny", "data/long.csv", &[]), 1, "truncation"),
        mk(
            "batch size 0",
            p("delta", "models/tiny", "data/good.csv", &["--batch-size", "0"]),
            1,
            "batch-size",
        ),
        mk(
            "absurd batch size",
            p("delta", "models/tiny", "data/good.csv", &["--batch-size", "99999999999"]),
            1,
            "batch-size",
        ),
        mk(
            "unknown format",
            p("delta", "models/tiny", "data/good.csv", &["--format", "xml"]),
            1,
            "xml",
        ),
        mk(
            "over-long input, truncated",
            p("delta", "models/tiny", "data/long.csv", &["--truncate"]),
            0,
            "\"label\"",
        ),
        mk(
            "BOM and CRLF",
            p("delta", "models/tiny", "data/bom.csv", &["--format", "csv"]),
            0,
            "p_neg",
        ),
        mk(
            "CSV without labels",
            p("delta", "models/tiny", "data/no_label.csv", &["--batch-size", "1"]),
            0,
            "probs",
        ),
        mk("eval without labels", e("data/no_label.csv"), 1, "`label`"),
        mk("eval with an unknown label", e("data/unknown_label.csv"), 1, "unknown label `meh`"),
        mk("eval on an empty file", e("data/empty.csv"), 1, "empty"),
        mk("eval: integer labels as class indices", e("data/mixed.jsonl"), 0, "confusion matrix"),
        mk("eval with BOM", e("data/bom.csv"), 0, "confusion matrix"),
    ]);
}

#[test]
fn params_inspect_bench_sweep_probe_refuse_hostile_arguments() {
    let c = corpus();
    let s = |v: &[&str]| -> Vec<String> { v.iter().map(|x| x.to_string()).collect() };
    let (tiny, trunc) = (c.p("models/tiny"), c.p("models/trunc"));
    let (delta, good) = (c.p("delta"), c.p("data/good.csv"));
    let cfg = c.p("configs/ok.json");
    let sweep_out = c.p("sweep");
    let mk = |what, args: Vec<String>, code, says| Case { what, args, code, says };
    check(vec![
        mk(
            "params: unknown method",
            s(&["params", "--model", &tiny, "--method", "bogus"]),
            1,
            "unknown method",
        ),
        mk(
            "params: bad head",
            s(&["params", "--model", &tiny, "--method", "lora", "--head", "{"]),
            1,
            "head",
        ),
        mk(
            "params: zero classes",
            s(&["params", "--model", &tiny, "--method", "lora", "--classes", "0"]),
            1,
            "classes",
        ),
        mk(
            "params: absurd classes",
            s(&["params", "--model", &tiny, "--method", "lora", "--classes", "99999999999999"]),
            1,
            "classes",
        ),
        mk(
            "params: malformed config",
            s(&["params", "--model", &c.p("models/bad_json"), "--method", "lora"]),
            1,
            "config.json",
        ),
        mk(
            "inspect: truncated weights",
            s(&["inspect", "--model", &trunc]),
            1,
            "model.safetensors",
        ),
        mk(
            "inspect: bad prompt layer",
            s(&[
                "inspect",
                "--model",
                &tiny,
                "--method",
                "{\"method\": \"lpt\", \"prompt_layer\": 99}",
            ]),
            1,
            "prompt_layer",
        ),
        mk(
            "bench: zero batch",
            s(&["bench", "--model", &tiny, "--methods", "npg", "--batch", "0"]),
            1,
            "batch",
        ),
        mk(
            "bench: absurd batch",
            s(&["bench", "--model", &tiny, "--methods", "npg", "--batch", "100000000"]),
            1,
            "batch",
        ),
        mk(
            "bench: sequence past the positions",
            s(&["bench", "--model", &tiny, "--methods", "npg", "--seq", "100000"]),
            1,
            "seq",
        ),
        mk(
            "bench: zero steps",
            s(&["bench", "--model", &tiny, "--methods", "npg", "--seq", "16", "--steps", "0"]),
            1,
            "steps",
        ),
        mk(
            "bench: unknown optimizer",
            s(&["bench", "--model", &tiny, "--methods", "npg", "--optimizer", "sgd"]),
            1,
            "adamw_fused or hf_adamw",
        ),
        mk(
            "bench: unknown precision",
            s(&["bench", "--model", &tiny, "--methods", "npg", "--precision", "fp8"]),
            1,
            "f32, fp16 or bf16",
        ),
        mk(
            "bench: absurd threads",
            s(&[
                "bench",
                "--model",
                &tiny,
                "--methods",
                "npg",
                "--seq",
                "16",
                "--threads",
                "100000",
            ]),
            1,
            "threads",
        ),
        mk(
            "bench: activations past the memory",
            s(&[
                "bench",
                "--model",
                &c.p("models/wide"),
                "--methods",
                "npg",
                "--batch",
                "4096",
                "--seq",
                "65536",
            ]),
            1,
            "GiB",
        ),
        mk(
            "bench: truncated weights",
            s(&[
                "bench",
                "--model",
                &trunc,
                "--methods",
                "npg",
                "--seq",
                "16",
                "--steps",
                "1",
                "--warmup",
                "0",
                "--device",
                "cpu",
            ]),
            1,
            "model.safetensors",
        ),
        mk(
            "bench: unknown device",
            s(&["bench", "--model", &tiny, "--methods", "npg", "--device", "tpu"]),
            1,
            "device",
        ),
        mk(
            "sweep: missing config",
            s(&["sweep", "--config", &c.p("configs/nope.json"), "--out", &sweep_out]),
            1,
            "nope.json",
        ),
        mk(
            "sweep: prompt layer 0",
            s(&[
                "sweep",
                "--config",
                &cfg,
                "--prompt-layers",
                "0",
                "--seeds",
                "1",
                "--out",
                &sweep_out,
            ]),
            1,
            "prompt",
        ),
        mk(
            "sweep: prompt layer past the model",
            s(&[
                "sweep",
                "--config",
                &cfg,
                "--prompt-layers",
                "99",
                "--seeds",
                "1",
                "--out",
                &sweep_out,
            ]),
            1,
            "prompt",
        ),
        mk(
            "sweep: empty seed",
            s(&["sweep", "--config", &cfg, "--seeds", "", "--out", &sweep_out]),
            1,
            "seed",
        ),
        mk(
            "probe: holdout over 1",
            s(&[
                "probe",
                "--delta",
                &delta,
                "--model",
                &tiny,
                "--input",
                &good,
                "--holdout",
                "1.5",
            ]),
            1,
            "holdout",
        ),
        mk(
            "probe: zero steps",
            s(&["probe", "--delta", &delta, "--model", &tiny, "--input", &good, "--steps", "0"]),
            1,
            "step",
        ),
        mk(
            "probe: zero examples",
            s(&["probe", "--delta", &delta, "--model", &tiny, "--input", &good, "--limit", "0"]),
            1,
            "0 examples",
        ),
        mk(
            "probe: unknown token",
            s(&[
                "probe", "--delta", &delta, "--model", &tiny, "--input", &good, "--token", "bogus",
            ]),
            1,
            "token",
        ),
        mk(
            "probe: one class",
            s(&[
                "probe",
                "--delta",
                &delta,
                "--model",
                &tiny,
                "--input",
                &c.p("data/one_class.csv"),
                "--steps",
                "5",
            ]),
            1,
            "class",
        ),
        mk("unknown subcommand", s(&["frobnicate"]), 1, "frobnicate"),
        mk("help", s(&["--help"]), 0, "Usage"),
    ]);
}

/// `petune ... | head`: a reader that has gone is not a panic, for every subcommand family
/// that prints results (train's config, params, inspect, eval's tables, predict's JSON). The
/// pipe's read end is closed before each process starts, so the first write always meets a
/// broken pipe; the command then ends quietly with status 0.
#[test]
fn output_into_a_closed_pipe_is_not_a_panic() {
    let c = corpus();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/mr-minilm-npg.json");
    let (tiny, delta, good) = (c.p("models/tiny"), c.p("delta"), c.p("data/good.csv"));
    let cases: Vec<Vec<&str>> = vec![
        vec!["train", "--config", config.to_str().unwrap(), "--print-config"],
        vec!["params", "--model", &tiny, "--method", "lora"],
        vec!["params", "--model", &tiny, "--method", "lora", "--json"],
        vec!["inspect", "--model", &tiny],
        vec!["eval", "--delta", &delta, "--model", &tiny, "--input", &good],
        vec!["predict", "--delta", &delta, "--model", &tiny, "--input", &good, "--json"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out =
            Command::new(env!("CARGO_BIN_EXE_petune")).args(&args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
