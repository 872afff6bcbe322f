//! `petune train --nproc 2` on the tiny BERT (dropout off, LoRA with a linear head):
//! - writes the same delta as one process, within 1e-5, and a `metrics.json` that says
//!   two ranks trained; stdout holds rank 0's report only;
//! - a rank that fails (rank 0, its output folder held by another run) makes the
//!   command fail at once, naming the rank, with the other rank stopped (not left
//!   waiting for its timeout);
//! - `--nproc` inside a process that already is one rank of a group is refused.
//!
//! Run with `cargo test --test cli_data_parallel -- --test-threads 1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::tiny_task::*;
use common::*;
use petune::core::tensor_io::read_safetensors;
use petune::prelude::*;
use petune::train::{HeadToken, OutputLock};
use tch::Device;

fn petune(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_petune"));
    c.args(args).env_remove("RANK").env_remove("SLURM_PROCID");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A run config (LoRA, linear head, no dropout anywhere) in `dir/run.json`.
fn setup(tag: &str) -> (PathBuf, PathBuf) {
    init();
    let dir = temp_dir(tag);
    let lora = serde_json::from_value(serde_json::json!({"method": "lora", "r": 4})).unwrap();
    let mut cfg = jsonl_run_config(&dir, lora, 8, 4);
    cfg.model = no_dropout_fixture();
    cfg.head = HeadConfig::Linear { token: HeadToken::Cls };
    cfg.train.lr = 1e-3;
    cfg.train.head_dropout = Some(0.0);
    let run = dir.join("run.json");
    std::fs::write(&run, serde_json::to_string(&cfg).unwrap()).unwrap();
    (dir, run)
}

fn train(run: &Path, out: &Path, extra: &[&str]) -> Output {
    let (run, out) = (run.to_str().unwrap(), out.to_str().unwrap());
    let args = [&["train", "--config", run, "--out", out, "--json"][..], extra].concat();
    petune(&args).output().unwrap()
}

#[test]
fn two_local_ranks_write_the_one_process_delta() {
    let (dir, run) = setup("cli-dp");
    let one = train(&run, &dir.join("one"), &["--threads", "1"]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    let two = train(&run, &dir.join("two"), &["--nproc", "2"]);
    assert!(two.status.success(), "{}", text(&two.stderr));
    // Exactly one JSON report on stdout: rank 1 printed nothing there.
    let report: serde_json::Value = serde_json::from_slice(&two.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one report ({e}): {}", text(&two.stdout)));
    assert_eq!(report["world_size"], 2);
    assert!(report["comm_ms"].as_f64().unwrap() > 0.0, "{report}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("two/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["world_size"], 2);
    let load = |d: &str| {
        read_safetensors(&dir.join(d).join("delta.safetensors"), Device::Cpu).unwrap().tensors
    };
    let (a, b) = (load("one"), load("two"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let mut worst: f64 = 0.0;
    for (k, t) in &a {
        worst = worst.max(max_diff(t, &b[k]));
    }
    assert!(worst < 1e-5, "delta of 2 ranks vs 1 process: max |diff| {worst}");
    assert!(a.values().any(|t| t.abs().max().double_value(&[]) > 1e-4), "nothing trained");
}

#[test]
fn a_failing_rank_is_named_and_the_others_are_stopped() {
    let (dir, run) = setup("cli-dp-fail");
    let out = dir.join("held");
    std::fs::create_dir_all(&out).unwrap();
    let _lock = OutputLock::acquire(&out).unwrap();
    let t0 = Instant::now();
    let o = train(&run, &out, &["--nproc", "2", "--dist-timeout", "120"]);
    let took = t0.elapsed();
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("rank 0 of 2 failed"), "{err}");
    assert!(err.contains("in use"), "rank 0's own error is shown: {err}");
    assert!(took < Duration::from_secs(60), "the other rank was not stopped: {took:?}");
}

#[test]
fn nproc_inside_a_group_is_refused() {
    let (dir, run) = setup("cli-dp-nested");
    let o = petune(&["train", "--config", run.to_str().unwrap(), "--nproc", "2"])
        .arg("--out")
        .arg(dir.join("x"))
        .env("RANK", "0")
        .env("WORLD_SIZE", "2")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("already one rank of 2") && err.contains("WORLD_SIZE"), "{err}");
}
