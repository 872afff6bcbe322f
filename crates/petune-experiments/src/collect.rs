//! Collecting a job array emitted by [`slurm::emit`](crate::slurm::emit): the state of
//! every point (finished, running, failed, never started) read from its run folder
//! (`petune_train::run_dir`: `metrics.json` written last, the `flock`ed `.petune.lock`),
//! selection on dev per grid as a local run does ([`crate::grid::select`]), and the outputs of
//! the local run written by the same functions (`sweep::write_sweep_outputs`,
//! `reproduce::accuracy_report` / `curve_report`).

use std::fmt;
use std::path::{Path, PathBuf};

use petune_core::fsio::read_json;
use petune_train::run_dir::{
    config_fingerprint, differences, OutputLock, FINGERPRINT_FILE, LOCK_FILE, LOG_FILE,
    METRICS_FILE,
};
use petune_train::{RunConfig, TrainReport};

use crate::error::{ExperimentError, Result};
use crate::grid::select;
use crate::reproduce::{accuracy_report, curve_report, Cell};
use crate::runner::{read_losses, RunOutcome};
use crate::slurm::{read_manifest, ManifestPoint, Study, POINTS_DIR, RUN_CONFIG, STDERR_LOG};
use crate::sweep::{write_sweep_outputs, SweepPoint};

/// Where a point stands.
#[derive(Debug, Clone, PartialEq)]
pub enum PointState {
    /// `metrics.json` is there.
    Finished,
    /// Its folder is locked by a `petune train` (on this or another node).
    Running {
        /// The holder's pid as its lock file says (on the node that holds it).
        pid: u32,
    },
    /// Started but not finished and not running: it failed, was killed or timed out.
    Failed {
        /// The first `error:` line of its `stderr.log`, when it recorded one.
        error: Option<String>,
    },
    /// Never started (no trace in its folder).
    Missing,
    /// Finished, but with another config than its `run.json` now holds (the sweep was
    /// emitted again with `--force` over old runs): not collected.
    Stale {
        /// The fields that differ, as `field: ran → planned`.
        differences: String,
    },
}

impl fmt::Display for PointState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointState::Finished => write!(f, "finished"),
            PointState::Running { pid } => write!(f, "running (locked by pid {pid})"),
            PointState::Failed { error: Some(e) } => write!(f, "failed: {e}"),
            PointState::Failed { error: None } => {
                write!(f, "failed: stopped without recording an error (killed or timed out?)")
            }
            PointState::Missing => write!(f, "missing (never started)"),
            PointState::Stale { differences } => write!(
                f,
                "stale: it finished with another config ({differences}); delete its folder and run it again"
            ),
        }
    }
}

/// The state of the run folder `dir`. Probing a lock takes it for an instant, so it is
/// only done where a lock file exists and the run has not finished.
pub fn point_state(dir: &Path) -> Result<PointState> {
    if dir.join(METRICS_FILE).is_file() && read_json::<TrainReport>(&dir.join(METRICS_FILE)).is_ok()
    {
        return finished_state(dir);
    }
    if dir.join(LOCK_FILE).is_file() {
        match OutputLock::acquire(dir) {
            Err(petune_core::Error::Locked { pid, .. }) => return Ok(PointState::Running { pid }),
            Err(e) => return Err(e.into()),
            Ok(_lock) => {}
        }
    }
    let started = [FINGERPRINT_FILE, LOG_FILE, STDERR_LOG, LOCK_FILE, "checkpoint"]
        .iter()
        .any(|n| dir.join(n).exists());
    if !started {
        return Ok(PointState::Missing);
    }
    let error = std::fs::read_to_string(dir.join(STDERR_LOG)).ok().and_then(|text| {
        text.lines().find(|l| l.starts_with("error:")).map(|l| l.trim().to_string())
    });
    Ok(PointState::Failed { error })
}

/// A finished folder: [`PointState::Finished`] when what ran (its fingerprint) is its
/// `run.json`, else [`PointState::Stale`] naming the fields.
fn finished_state(dir: &Path) -> Result<PointState> {
    let planned: RunConfig = read_json(&dir.join(RUN_CONFIG))?;
    let ran: serde_json::Value = read_json(&dir.join(FINGERPRINT_FILE))?;
    let planned = config_fingerprint(&planned)?;
    let ran = ran.get("config").cloned().unwrap_or_default();
    let diff = differences(&ran, &planned);
    if diff.is_empty() {
        Ok(PointState::Finished)
    } else {
        Ok(PointState::Stale { differences: diff.join("; ") })
    }
}

/// What collecting found and wrote.
#[derive(Debug, Clone)]
pub struct Collected {
    /// Every point with its state, in array-task order.
    pub states: Vec<(String, PointState)>,
    /// The files written (relative to the output folder).
    pub written: Vec<String>,
    /// The paper item's markdown table, for paper items.
    pub markdown: Option<String>,
}

impl Collected {
    /// How many points are finished.
    pub fn finished(&self) -> usize {
        self.states.iter().filter(|(_, s)| *s == PointState::Finished).count()
    }

    /// One line per point that is not finished, then the counts.
    pub fn summary(&self) -> String {
        summary(&self.states)
    }
}

fn summary(states: &[(String, PointState)]) -> String {
    let mut s = String::new();
    let count = |f: fn(&PointState) -> bool| states.iter().filter(|(_, st)| f(st)).count();
    for (id, state) in states.iter().filter(|(_, st)| *st != PointState::Finished) {
        s += &format!("  {id}: {state}\n");
    }
    s += &format!(
        "{} points: {} finished, {} running, {} failed, {} missing, {} stale",
        states.len(),
        count(|s| *s == PointState::Finished),
        count(|s| matches!(s, PointState::Running { .. })),
        count(|s| matches!(s, PointState::Failed { .. })),
        count(|s| *s == PointState::Missing),
        count(|s| matches!(s, PointState::Stale { .. })),
    );
    s
}

/// Consecutive points of one task, method, x and seed: one grid search.
fn groups(points: &[ManifestPoint]) -> Vec<&[ManifestPoint]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].group() != points[start].group() {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out
}

/// The selected run of every group whose grid runs all finished.
fn selected(
    dir: &Path,
    points: &[ManifestPoint],
    states: &[(String, PointState)],
) -> Result<Vec<(ManifestPoint, crate::grid::Selected)>> {
    let finished = |id: &str| states.iter().any(|(i, s)| i == id && *s == PointState::Finished);
    let mut out = Vec::new();
    for group in groups(points) {
        // A partly finished grid is left out rather than selected among what ran: the
        // choice on dev would silently differ from the planned one.
        if !group.iter().all(|p| finished(&p.id)) {
            continue;
        }
        let mut runs = Vec::new();
        for p in group {
            let run = dir.join(POINTS_DIR).join(&p.id);
            let report: TrainReport = read_json(&run.join(METRICS_FILE))?;
            runs.push((p.grid, RunOutcome { report, losses: read_losses(&run) }));
        }
        out.push((group[0].clone(), select(runs)?));
    }
    Ok(out)
}

/// Reads the job array in `dir` and writes its outputs into `out` (`dir` when `None`):
/// `sweep.csv` and plots for sweeps, the table in the paper's layout for paper items.
/// Points not finished are named; unless `allow_missing` they are an
/// [`ExperimentError::Incomplete`] and nothing is written, else the grids they belong to
/// are left out of the outputs.
pub fn collect(dir: &Path, out: Option<&Path>, allow_missing: bool) -> Result<Collected> {
    let manifest = read_manifest(dir)?;
    let mut states = Vec::with_capacity(manifest.points.len());
    for p in &manifest.points {
        states.push((p.id.clone(), point_state(&dir.join(POINTS_DIR).join(&p.id))?));
    }
    let done = states.iter().filter(|(_, s)| *s == PointState::Finished).count();
    if done < states.len() && !allow_missing {
        return Err(ExperimentError::Incomplete {
            dir: dir.to_path_buf(),
            detail: summary(&states),
        });
    }
    let out: PathBuf = out.map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
    std::fs::create_dir_all(&out).map_err(|e| ExperimentError::io(&out, e))?;
    let chosen = selected(dir, &manifest.points, &states)?;
    let (written, markdown) = match &manifest.study {
        Study::Sweep { axis } => {
            let points: Vec<SweepPoint> = chosen
                .into_iter()
                .map(|(p, sel)| SweepPoint {
                    method: p.method,
                    x: p.x,
                    seed: p.seed,
                    outcome: sel.outcome,
                })
                .collect();
            let plots = write_sweep_outputs(&out, *axis, &points)?;
            let mut files = vec!["sweep.csv".to_string()];
            files.extend(plots.iter().flat_map(|p| [format!("{p}.png"), format!("{p}.svg")]));
            (files, None)
        }
        Study::Paper { setting, target, backbone, rows, values } => {
            let mut target = target.clone();
            target.out = out.clone();
            let md = match setting.study {
                crate::paper::Study::Curve(axis) => {
                    let mut per_task = Vec::new();
                    for &task in &setting.tasks {
                        let points: Vec<SweepPoint> = chosen
                            .iter()
                            .filter(|(p, _)| p.task == Some(task))
                            .map(|(p, sel)| SweepPoint {
                                method: p.method.clone(),
                                x: p.x,
                                seed: p.seed,
                                outcome: sel.outcome.clone(),
                            })
                            .collect();
                        per_task.push((task, points));
                    }
                    curve_report(setting, &target, backbone, axis, values, &per_task)?
                }
                _ => {
                    let mut cells = Vec::new();
                    for (p, sel) in chosen {
                        let task = p.task.ok_or_else(|| ExperimentError::Manifest {
                            path: dir.join(crate::slurm::MANIFEST),
                            msg: format!("point `{}` of a paper table has no task", p.id),
                        })?;
                        cells.push(Cell {
                            task,
                            method: p.method,
                            seed: p.seed as u32,
                            chosen: sel.best,
                            tried: sel.tried,
                            report: sel.outcome.report,
                        });
                    }
                    accuracy_report(setting, &target, backbone, &cells, rows)?
                }
            };
            let mut files = vec![format!("{}.md", setting.id), format!("{}.json", setting.id)];
            if matches!(setting.study, crate::paper::Study::Curve(_)) {
                files.extend(
                    setting.tasks.iter().map(|t| format!("{}/sweep.csv", t.data_dir_name())),
                );
            }
            (files, Some(md))
        }
    };
    Ok(Collected { states, written, markdown })
}
