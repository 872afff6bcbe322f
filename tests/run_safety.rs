//! Nothing lost, nothing mixed (issue #12 §5), on the tiny BERT:
//! - a run killed after a checkpoint and resumed by `petune train` ends with the same
//!   `delta.safetensors`, bit for bit, as an uninterrupted run, and its `log.jsonl` holds
//!   every step once (the steps after the checkpoint are cut and run again);
//! - a second run into a locked output folder is refused naming the holder's pid; a lock
//!   left by a dead process is taken over;
//! - a folder holding another run config is refused listing the differing fields;
//!   `--restart` starts over;
//! - a non-finite loss stops the run with a typed error and nothing is saved as a result,
//!   or, under `on_non_finite: skip`, skips exactly the steps that diverged.
//!
//! The crash is simulated here, not in the library: this test binary runs itself again
//! (`crash_helper`), training in-process with an event handler that aborts the process
//! right after a chosen step.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tiny_task::*;
use common::*;
use petune::core::fsio::read_json;
use petune::core::tensor_io::{read_safetensors, write_safetensors};
use petune::prelude::*;
use petune::train::{HeadToken, NonFinitePolicy, OptimizerKind, OutputLock, TrainEvent};
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

fn npg() -> MethodConfig {
    MethodConfig::Lpt(LptConfig::npg(2))
}

/// Writes train / dev / test JSONL files and a run config (`RUN.json`, no output folder)
/// of LPT on the tiny BERT into `root`.
fn write_run(root: &Path, edit: impl FnOnce(&mut RunConfig)) -> (PathBuf, RunConfig) {
    let mut run = jsonl_run_config(root, npg(), 12, 4);
    run.train.lr = 5e-3;
    run.train.seed = 7;
    edit(&mut run);
    let config = root.join("RUN.json");
    std::fs::write(&config, serde_json::to_string_pretty(&run).unwrap()).unwrap();
    (config, run)
}

fn petune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petune")).args(args).output().unwrap()
}

fn petune_train(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let (c, o) = (config.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["train", "--json", "--config", c, "--out", o];
    args.extend_from_slice(extra);
    petune(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Not a test: run by [`crash_after`] in a child process. Trains `PETUNE_TEST_CONFIG`
/// into `PETUNE_TEST_OUT` and aborts the process right after step
/// `PETUNE_TEST_ABORT_STEP` (its log line written, before any later checkpoint).
#[test]
#[ignore = "helper of the resume tests, run by them in a child process"]
fn crash_helper() {
    let (Ok(config), Ok(out), Ok(step)) = (
        std::env::var("PETUNE_TEST_CONFIG"),
        std::env::var("PETUNE_TEST_OUT"),
        std::env::var("PETUNE_TEST_ABORT_STEP"),
    ) else {
        return;
    };
    let mut cfg: RunConfig = read_json(Path::new(&config)).unwrap();
    cfg.out_dir = Some(out.into());
    let abort_at: i64 = step.parse().unwrap();
    let trainer = Trainer::from_config(cfg).unwrap().quiet(true).on_event(move |e| {
        if let TrainEvent::Step { step, .. } = e {
            if *step == abort_at {
                std::process::abort();
            }
        }
    });
    trainer.fit().unwrap();
}

/// Trains `config` into `out` in a child process that dies right after step `step`.
fn crash_after(config: &Path, out: &Path, step: i64) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["crash_helper", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("PETUNE_TEST_CONFIG", config)
        .env("PETUNE_TEST_OUT", out)
        .env("PETUNE_TEST_ABORT_STEP", step.to_string())
        .output()
        .unwrap()
}

fn delta_file(dir: &Path) -> HashMap<String, Tensor> {
    read_safetensors(&dir.join("delta.safetensors"), CPU)
        .unwrap_or_else(|e| panic!("{e}"))
        .tensors
        .into_iter()
        .collect()
}

/// The steps of `log.jsonl`'s training lines (those with a loss), in file order.
fn logged_steps(dir: &Path) -> Vec<i64> {
    std::fs::read_to_string(dir.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .map(|v| v["step"].as_i64().unwrap())
        .collect()
}

/// Kills a run right after step `ckpt + 1` (a checkpoint is written at `ckpt`), resumes it
/// with `petune train`, and runs it once more straight through: bit-identical deltas,
/// equal reports, and a log that holds every step once.
fn resume_matches_straight_run(tag: &str, edit: impl FnOnce(&mut RunConfig), ckpt: i64) {
    let root = temp_dir(&format!("resume-{tag}"));
    let (config, run) = write_run(&root, edit);
    let killed = root.join("killed");
    let out = crash_after(&config, &killed, ckpt + 1);
    assert!(!out.status.success(), "{tag}: the helper must die: {}", stderr(&out));
    let progress_path = killed.join("checkpoint").join("progress.json");
    assert!(progress_path.is_file(), "{tag}: no checkpoint written: {}", stderr(&out));
    assert!(!killed.join("delta.safetensors").exists(), "{tag}: the killed run must not finish");
    let progress: serde_json::Value = read_json(&progress_path).unwrap();
    assert_eq!(progress["progress"]["step"], ckpt, "{tag}: {progress}");
    // The step after the checkpoint was logged before the crash.
    assert_eq!(logged_steps(&killed), (1..=ckpt + 1).collect::<Vec<_>>(), "{tag}");
    // The fused optimizer's per-tensor float32 step counters are in the checkpoint.
    let state = killed.join("checkpoint").join(progress["tensors"].as_str().unwrap());
    let state = read_safetensors(&state, CPU).unwrap().tensors;
    let steps: Vec<&Tensor> =
        state.iter().filter(|(k, _)| k.starts_with("adam_step.")).map(|(_, t)| t).collect();
    match run.train.optimizer {
        OptimizerKind::AdamwFused => {
            assert_eq!(steps.len(), state.keys().filter(|k| k.starts_with("param.")).count());
            for t in steps {
                assert_eq!((t.kind(), t.double_value(&[])), (Kind::Float, ckpt as f64), "{tag}");
            }
        }
        OptimizerKind::HfAdamw => assert!(steps.is_empty(), "{tag}: HF AdamW counts globally"),
    }

    // The dead process's lock file is still there; the resumed run takes it over.
    assert!(killed.join(".petune.lock").is_file());
    let out = petune_train(&config, &killed, &[]);
    assert!(out.status.success(), "{tag}: resume failed: {}", stderr(&out));
    let straight = root.join("straight");
    let out = petune_train(&config, &straight, &[]);
    assert!(out.status.success(), "{tag}: run failed: {}", stderr(&out));

    let (a, b) = (delta_file(&killed), delta_file(&straight));
    assert_eq!(a.len(), b.len(), "{tag}");
    for (name, t) in &b {
        assert!(a[name].equal(t), "{tag}: {name}: resumed run differs from the uninterrupted one");
    }
    let (ma, mb): (serde_json::Value, serde_json::Value) = (
        read_json(&killed.join("metrics.json")).unwrap(),
        read_json(&straight.join("metrics.json")).unwrap(),
    );
    for key in ["best_dev", "best_step", "test", "test_classes", "steps"] {
        assert_eq!(ma[key], mb[key], "{tag}: metrics.json `{key}` differs");
    }
    assert_eq!(ma["steps"], run.train.max_steps, "{tag}");
    let all: Vec<i64> = (1..=run.train.max_steps).collect();
    assert_eq!(logged_steps(&killed), all, "{tag}: every step once in the resumed log");
    assert_eq!(logged_steps(&straight), all, "{tag}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn resumed_run_equals_an_uninterrupted_one() {
    init();
    // Verbalizer head; 4 steps per epoch (the resumed part crosses into epoch 2),
    // evaluations at 3, 6 and 8 (the best-so-far of step 3 is carried over the kill),
    // dropout on in the generator and the frozen layers.
    resume_matches_straight_run(
        "verbalizer",
        |c| {
            c.train.max_steps = 8;
            c.train.save_every = Some(2);
            c.train.eval_every = 3;
        },
        4,
    );
}

#[test]
fn resumed_run_equals_an_uninterrupted_one_with_hf_adamw() {
    init();
    // The authors' recurrence (per-tensor path, one global step count) resumes exactly too.
    resume_matches_straight_run(
        "hf-adamw",
        |c| {
            c.train.optimizer = OptimizerKind::HfAdamw;
            c.train.max_steps = 6;
            c.train.save_every = Some(2);
            c.train.eval_every = 3;
        },
        2,
    );
}

#[test]
fn resumed_run_equals_an_uninterrupted_one_with_accumulation() {
    init();
    // Trainable linear head (in the checkpoint too), 2 micro-batches of 5 per step (the
    // last 6 examples of each epoch are left over), killed at an epoch boundary.
    resume_matches_straight_run(
        "accum",
        |c| {
            c.head = HeadConfig::Linear { token: HeadToken::Mask };
            c.train.batch_size = 5;
            c.train.grad_accum = 2;
            c.train.max_steps = 7;
            c.train.save_every = Some(2);
            c.train.eval_every = 2;
            c.train.warmup_rate = 0.3;
        },
        2,
    );
}

#[test]
fn a_locked_output_folder_is_refused_and_a_stale_lock_taken_over() {
    init();
    let root = temp_dir("lock");
    let (config, _) = write_run(&root, |_| {});
    let out = root.join("out");
    let held = OutputLock::acquire(&out).unwrap();
    let o = petune_train(&config, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let pid = std::process::id().to_string();
    assert!(stderr(&o).contains("in use") && stderr(&o).contains(&pid), "{}", stderr(&o));
    assert!(!out.join("run-config.json").exists(), "a refused run must not write");
    drop(held);
    // A lock file naming a process that is gone (a crash) does not block.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(out.join(".petune.lock"), format!("{dead}\n")).unwrap();
    let o = petune_train(&config, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn another_config_is_refused_listing_the_fields_and_restart_starts_over() {
    init();
    let root = temp_dir("fingerprint");
    let (config, _) = write_run(&root, |c| c.train.save_every = Some(2));
    let out = root.join("out");
    assert!(petune_train(&config, &out, &[]).status.success());
    // The same config again is the same run (resumed at its end): accepted.
    assert!(petune_train(&config, &out, &[]).status.success());
    assert_eq!(logged_steps(&out), vec![1, 2, 3, 4]);
    // Threads and the checkpoint frequency do not change what is trained.
    let (config, _) = write_run(&root, |c| {
        c.train.save_every = Some(1);
        c.train.threads = 2;
    });
    assert!(petune_train(&config, &out, &[]).status.success());
    // A different learning rate and method do.
    let (other, _) = write_run(&root, |c| {
        c.train.lr = 1e-2;
        c.method = MethodConfig::Lpt(LptConfig::npg(1));
    });
    let o = petune_train(&other, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let msg = stderr(&o);
    assert!(msg.contains("train.lr: 0.005 → 0.01"), "{msg}");
    assert!(msg.contains("method.prompt_layer: 2 → 1"), "{msg}");
    assert!(msg.contains("--restart"), "{msg}");
    // The refused run changed nothing; --restart replaces the old run.
    assert_eq!(logged_steps(&out), vec![1, 2, 3, 4]);
    let o = petune_train(&other, &out, &["--restart"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fp: serde_json::Value = read_json(&out.join("run-config.json")).unwrap();
    assert_eq!(fp["config"]["train"]["lr"], 1e-2);
    assert_eq!(logged_steps(&out), vec![1, 2, 3, 4], "the log holds the new run only");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn skip_finished_leaves_a_finished_run_alone_and_refuses_another_config() {
    init();
    let root = temp_dir("skip-finished");
    let (config, _) = write_run(&root, |_| {});
    let out = root.join("out");
    // Nothing there yet: it trains.
    let o = petune_train(&config, &out, &["--skip-finished"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = std::fs::read(out.join("metrics.json")).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["steps"], 4);
    // Finished: the recorded report, nothing trained or rewritten.
    let o = petune_train(&config, &out, &["--skip-finished"]);
    assert!(o.status.success() && stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again, serde_json::from_slice::<serde_json::Value>(&metrics).unwrap());
    assert_eq!(std::fs::read(out.join("metrics.json")).unwrap(), metrics);
    assert_eq!(logged_steps(&out), vec![1, 2, 3, 4]);
    // Another config is not "finished": the folder refuses it as without the flag.
    let (other, _) = write_run(&root, |c| c.train.lr = 1e-2);
    let o = petune_train(&other, &out, &["--skip-finished"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("train.lr: 0.005 → 0.01"), "{}", stderr(&o));
    // Running elsewhere: locked.
    let held = OutputLock::acquire(&out).unwrap();
    let o = petune_train(&config, &out, &["--skip-finished"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    drop(held);
    let o =
        petune(&["train", "--skip-finished", "--restart", "--config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "the two flags contradict each other");
    let _ = std::fs::remove_dir_all(&root);
}

/// A copy of the tiny BERT whose word embedding `row` (every row when `None`) is NaN.
fn nan_model(tag: &str, row: Option<i64>) -> PathBuf {
    let dir = temp_dir(&format!("nan-{tag}"));
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(fixture("bert-mlm").join(f), dir.join(f)).unwrap();
    }
    let path = dir.join("model.safetensors");
    let mut tensors: Vec<(String, Tensor)> =
        read_safetensors(&path, CPU).unwrap().tensors.into_iter().collect();
    for (name, t) in tensors.iter_mut() {
        if name.ends_with("word_embeddings.weight") {
            let mut w = t.copy();
            match row {
                Some(r) => {
                    let _ = w.get(r).fill_(f64::NAN);
                }
                None => {
                    let _ = w.fill_(f64::NAN);
                }
            }
            *t = w;
        }
    }
    write_safetensors(&path, &tensors, None).unwrap();
    dir
}

#[test]
fn a_non_finite_loss_is_a_typed_error_and_nothing_is_saved() {
    init();
    let _serial = serial();
    let model = nan_model("all", None);
    let out = temp_dir("nan-out");
    let mut cfg = run_config_for(&model, npg(), HeadConfig::Auto, 1);
    cfg.out_dir = Some(out.clone());
    let err = Trainer::new(loaded_from(&model), cfg)
        .with_data(task_data(mr()))
        .quiet(true)
        .fit()
        .err()
        .expect("a NaN loss must stop the run");
    assert!(matches!(&err, Error::NonFinite { step: 1, .. }), "{err}");
    assert!(err.to_string().contains("on_non_finite"), "{err}");
    assert!(!out.join("delta.safetensors").exists() && !out.join("metrics.json").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn non_finite_steps_are_skipped_under_the_skip_policy() {
    init();
    let _serial = serial();
    // A token only "a dull and boring mess" has: the two steps whose batch holds one of
    // its two copies diverge, the others train.
    let tok = loaded_from(&fixture("bert-mlm")).tokenizer;
    let ids = |t: &str| tok.ids_without_special(t).unwrap();
    let others: Vec<i64> = POSITIVE.iter().chain(&NEGATIVE[1..]).flat_map(|t| ids(t)).collect();
    let row = ids(NEGATIVE[0]).into_iter().find(|i| !others.contains(i)).unwrap();
    let model = nan_model("row", Some(row));
    let mut cfg = run_config_for(&model, npg(), HeadConfig::Linear { token: HeadToken::Mask }, 1);
    cfg.train.max_steps = 6; // one epoch: both copies are seen
    cfg.train.on_non_finite = NonFinitePolicy::Skip;
    let result = Trainer::new(loaded_from(&model), cfg)
        .with_data(task_data(mr()))
        .quiet(true)
        .fit()
        .unwrap_or_else(|e| panic!("{e}"));
    let skipped = result.report.skipped_steps;
    assert!((1..=2).contains(&skipped), "skipped {skipped} of 6 steps");
    assert_eq!(result.report.steps, 6);
    for (name, t) in result.model.trainable_tensors() {
        let finite = t.isfinite().all().int64_value(&[]) == 1;
        assert!(finite, "{name} is not finite after skipping the diverged steps");
        assert_eq!(t.kind(), Kind::Float);
    }
    let _ = std::fs::remove_dir_all(&model);
}
