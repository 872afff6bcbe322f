//! Sweeps as Slurm job arrays on the tiny BERT, without Slurm: `petune sweep
//! --emit-slurm` for a 2 × 2 sweep, the emitted `sweep.sbatch` run by bash once per
//! `SLURM_ARRAY_TASK_ID` (its `#SBATCH` lines are comments there), `--collect` against
//! a local `petune sweep` of the same plan, a finished point re-run as a no-op, points
//! deleted, failed and running named, and the hostile cases (an emit folder in use, a
//! hand-edited manifest).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tiny_task::*;
use common::*;
use petune::experiments::collect::{point_state, PointState};
use petune::experiments::slurm::{read_manifest, MANIFEST, POINTS_LIST, SCRIPT};
use petune::experiments::ExperimentError;
use petune::prelude::*;
use petune::train::OutputLock;

fn petune(args: &[&str], extra: &[&Path]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_petune"));
    c.args(args);
    for p in extra {
        c.arg(p);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Array task `i` of the script, run by bash as a Slurm node would (minus Slurm).
fn array_task(dir: &Path, i: usize) -> Output {
    Command::new("bash")
        .arg(dir.join(SCRIPT))
        .env("SLURM_ARRAY_TASK_ID", i.to_string())
        .env_remove("SLURM_CPUS_PER_TASK")
        .output()
        .unwrap()
}

/// The CSV without the columns that measure this machine (speed, memory).
fn results(csv: &Path) -> Vec<String> {
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
        .collect()
}

const SWEEP: [&str; 5] = ["sweep", "--prompt-layers", "1,2", "--seeds", "1,2"];

fn setup(tag: &str) -> (PathBuf, PathBuf) {
    init();
    let dir = temp_dir(tag);
    let cfg = jsonl_run_config(&dir, MethodConfig::Lpt(LptConfig::npg(2)), 8, 3);
    let run = dir.join("run.json");
    std::fs::write(&run, serde_json::to_string(&cfg).unwrap()).unwrap();
    (dir, run)
}

#[test]
fn emitted_array_run_task_by_task_collects_to_the_local_sweep() {
    let (dir, run) = setup("slurm-roundtrip");
    let arr = dir.join("array");
    let o = petune(&[&SWEEP[..], &["--slurm-time", "00:10:00", "--config"]].concat(), &[&run]);
    assert!(!o.status.success(), "--emit-slurm or --out is required");
    let mut args = SWEEP.to_vec();
    args.extend(["--slurm-time", "00:10:00", "--slurm-extra=--mem=2G", "--config"]);
    let o = petune(&args, &[&run, Path::new("--emit-slurm"), &arr]);
    assert!(o.status.success(), "{}", stderr(&o));

    let script = std::fs::read_to_string(arr.join(SCRIPT)).unwrap();
    for line in ["#SBATCH --array=0-3", "#SBATCH --time=00:10:00", "#SBATCH --mem=2G"] {
        assert!(script.contains(&format!("{line}\n")), "{line} missing:\n{script}");
    }
    assert!(!script.contains("--nproc"), "--nproc only when asked:\n{script}");
    assert!(script.contains(env!("CARGO_BIN_EXE_petune")), "{script}");
    let ids: Vec<String> =
        std::fs::read_to_string(arr.join(POINTS_LIST)).unwrap().lines().map(String::from).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids[0], "LPTNPG-prompt_layer1-seed1-lr1e-2-bs4-wu0", "{ids:?}");
    let m = read_manifest(&arr).unwrap();
    assert_eq!(m.points.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), ids);
    for id in &ids {
        let cfg: RunConfig =
            petune::core::fsio::read_json(&arr.join("points").join(id).join("run.json")).unwrap();
        assert_eq!(cfg.out_dir.as_deref(), Some(arr.join("points").join(id).as_path()));
    }

    // Nothing ran yet: collecting names every point and fails.
    let o = petune(&["sweep", "--collect"], &[&arr]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("4 missing") && stderr(&o).contains(&ids[3]), "{}", stderr(&o));
    assert!(!arr.join("sweep.csv").exists(), "an incomplete collect writes nothing");

    for i in 0..4 {
        let o = array_task(&arr, i);
        assert!(o.status.success(), "task {i}: {}", stderr(&o));
    }
    let o = array_task(&arr, 4);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no such point"), "{}", stderr(&o));

    let local = dir.join("local");
    let mut args = SWEEP.to_vec();
    args.push("--config");
    let o = petune(&args, &[&run, Path::new("--out"), &local]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = petune(&["sweep", "--collect"], &[&arr]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("4 points: 4 finished"), "{}", stderr(&o));
    let collected = results(&arr.join("sweep.csv"));
    assert_eq!(collected.len(), 5);
    assert_eq!(collected, results(&local.join("sweep.csv")));
    for f in ["prompt_layers.png", "prompt_layers.svg", "convergence.png", "convergence.svg"] {
        assert!(arr.join(f).is_file(), "{f}");
    }

    // A finished point run again is a no-op: same outputs, nothing trained.
    let point = arr.join("points").join(&ids[0]);
    let metrics = std::fs::read(point.join("metrics.json")).unwrap();
    let log = std::fs::read(point.join("log.jsonl")).unwrap();
    let o = array_task(&arr, 0);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
    assert_eq!(std::fs::read(point.join("metrics.json")).unwrap(), metrics);
    assert_eq!(std::fs::read(point.join("log.jsonl")).unwrap(), log);

    // A running point (its folder locked) is named with the holder.
    let lock = OutputLock::acquire(&point).unwrap();
    std::fs::remove_file(point.join("metrics.json")).unwrap();
    assert_eq!(point_state(&point).unwrap(), PointState::Running { pid: std::process::id() });
    drop(lock);
    std::fs::write(point.join("metrics.json"), &metrics).unwrap();

    // One point deleted, one failed: both named, the exit status says so.
    std::fs::remove_dir_all(arr.join("points").join(&ids[1])).unwrap();
    std::fs::create_dir_all(arr.join("points").join(&ids[1])).unwrap();
    let failed = arr.join("points").join(&ids[2]);
    std::fs::remove_file(failed.join("metrics.json")).unwrap();
    let mut cfg: RunConfig = petune::core::fsio::read_json(&failed.join("run.json")).unwrap();
    cfg.train.lr = -1.0;
    std::fs::write(failed.join("run.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let o = array_task(&arr, 2);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // A finished point whose run.json changed since (emitted again over old runs) is stale.
    let stale = arr.join("points").join(&ids[3]).join("run.json");
    let mut cfg: RunConfig = petune::core::fsio::read_json(&stale).unwrap();
    cfg.train.lr = 2e-2;
    cfg.train.threads = 2; // not part of what is trained: not named
    std::fs::write(&stale, serde_json::to_string(&cfg).unwrap()).unwrap();
    let o = petune(&["sweep", "--collect"], &[&arr]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let msg = stderr(&o);
    assert!(msg.contains(&format!("{}: missing (never started)", ids[1])), "{msg}");
    assert!(msg.contains(&format!("{}: failed: error:", ids[2])) && msg.contains("lr"), "{msg}");
    assert!(
        msg.contains(&format!(
            "{}: stale: it finished with another config (train.lr: 0.01 → 0.02)",
            ids[3]
        )),
        "{msg}"
    );
    assert!(msg.contains("1 finished, 0 running, 1 failed, 1 missing, 1 stale"), "{msg}");
    let out = dir.join("partial");
    let o = petune(&["sweep", "--allow-missing", "--collect"], &[&arr, Path::new("--out"), &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let partial = results(&out.join("sweep.csv"));
    assert_eq!(partial, vec![collected[0].clone(), collected[1].clone()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_emit_folder_in_use_and_an_edited_manifest_are_refused() {
    let (dir, run) = setup("slurm-hostile");
    let arr = dir.join("array");
    std::fs::create_dir_all(&arr).unwrap();
    std::fs::write(arr.join("notes.txt"), "mine").unwrap();
    let emit = |extra: &[&str]| {
        let mut args = SWEEP.to_vec();
        args.extend(extra);
        args.push("--config");
        petune(&args, &[&run, Path::new("--emit-slurm"), &arr])
    };
    let o = emit(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not empty") && stderr(&o).contains("--force"), "{}", stderr(&o));
    assert!(!arr.join(MANIFEST).exists());
    let o = emit(&["--force", "--slurm-partition", "gpu\n#SBATCH --qos=high"]);
    assert_eq!(o.status.code(), Some(1), "a newline in an #SBATCH value: {}", stderr(&o));
    let o = emit(&["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(arr.join("notes.txt")).unwrap(), "mine");

    let path = arr.join(MANIFEST);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"seed\": 2", "\"seed\": 3", 1)).unwrap();
    let err = read_manifest(&arr).unwrap_err();
    assert!(matches!(&err, ExperimentError::Manifest { .. }), "{err}");
    assert!(err.to_string().contains("edited"), "{err}");
    let o = petune(&["sweep", "--collect"], &[&arr]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("edited"), "{}", stderr(&o));
    std::fs::write(&path, "{ not json").unwrap();
    assert!(matches!(read_manifest(&arr), Err(ExperimentError::Manifest { .. })));
    // The list the script reads must be the manifest's.
    std::fs::write(&path, text).unwrap();
    std::fs::write(arr.join(POINTS_LIST), "x\n").unwrap();
    assert!(matches!(read_manifest(&arr), Err(ExperimentError::Manifest { .. })));
    let o = petune(&["sweep", "--collect"], &[&dir]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--emit-slurm"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
