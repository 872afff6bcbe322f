//! Running one training run for an experiment: through the `petune` CLI in a child
//! process (so that each run's peak memory is its own, as in the paper's Table 5), or in
//! this process when no CLI is at hand. Either way the run writes its folder
//! (`run.json`, `metrics.json`, `log.jsonl`, `delta.*`) and comes back as a report plus
//! its training-loss curve.

use std::path::{Path, PathBuf};
use std::process::Command;

use petune_train::{LoadedModel, LptTrainer, RunConfig, TrainReport};

use crate::error::{ExperimentError, Result};

/// How runs are executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// `petune train --json` at this path, one child process per run.
    Cli(PathBuf),
    /// In this process (memory figures then include earlier runs' high-water mark).
    InProcess,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The trainer's report.
    pub report: TrainReport,
    /// `(step, training loss)` from the run's `log.jsonl`.
    pub losses: Vec<(i64, f64)>,
}

impl RunOutcome {
    /// The test headline metric, NaN when the task has no test set.
    pub fn test(&self) -> f64 {
        self.report.test.as_ref().map(|t| t.headline).unwrap_or(f64::NAN)
    }

    /// The best dev headline metric, −∞ when there was no evaluation.
    pub fn best_dev(&self) -> f64 {
        self.report.best_dev.as_ref().map(|t| t.headline).unwrap_or(f64::NEG_INFINITY)
    }
}

impl Runner {
    /// The `petune` CLI when this executable is it, or when it is built next to this one
    /// (`target/release/petune` for `target/release/examples/NAME`); else in-process.
    pub fn detect() -> Runner {
        let Ok(exe) = std::env::current_exe() else {
            return Runner::InProcess;
        };
        if exe.file_stem().is_some_and(|s| s == "petune") {
            return Runner::Cli(exe);
        }
        let sibling = exe.parent().and_then(Path::parent).map(|d| d.join("petune"));
        match sibling.filter(|p| p.is_file()) {
            Some(cli) => Runner::Cli(cli),
            None => Runner::InProcess,
        }
    }

    /// Trains `cfg` with its output in `dir` (created; a previous run there is replaced).
    pub fn run(&self, cfg: &RunConfig, dir: &Path) -> Result<RunOutcome> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| ExperimentError::io(dir, e))?;
        let mut cfg = cfg.clone();
        cfg.out_dir = Some(dir.to_path_buf());
        let file = dir.join("run.json");
        std::fs::write(&file, serde_json::to_string_pretty(&cfg)?)
            .map_err(|e| ExperimentError::io(&file, e))?;
        let report = match self {
            Runner::Cli(cli) => {
                let out = Command::new(cli)
                    .args(["train", "--json", "--config"])
                    .arg(&file)
                    .output()
                    .map_err(|e| ExperimentError::io(cli, e))?;
                let run = dir.display().to_string();
                if !out.status.success() {
                    let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    return Err(ExperimentError::Run { run, msg });
                }
                serde_json::from_slice(&out.stdout).map_err(|e| ExperimentError::Run {
                    run,
                    msg: format!("unreadable report: {e}"),
                })?
            }
            Runner::InProcess => {
                let opts = cfg.train.load_options()?;
                let model = LoadedModel::from_dir(&cfg.model, &opts)?;
                LptTrainer::new(model, cfg).quiet(true).fit()?.report
            }
        };
        Ok(RunOutcome { report, losses: read_losses(dir) })
    }
}

/// `(step, loss)` of the training-log lines of a run folder (empty when there is none).
pub fn read_losses(dir: &Path) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(dir.join("log.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v.get("step")?.as_i64()?, v.get("loss")?.as_f64()?)))
        .collect()
}
