//! Sweeps and paper grids as Slurm job arrays: [`emit`] writes one run config per grid
//! run (`points/<id>/run.json`, the run's own output folder too), the manifest
//! (`sweep.json`: what was planned and what [`collect`](crate::collect) needs to rebuild
//! the tables), the list of ids (`points.txt`: line `i + 1` is array task `i`) and an
//! sbatch script (`sweep.sbatch`) whose body maps `SLURM_ARRAY_TASK_ID` to its point and
//! runs `petune train --skip-finished` on it.
//!
//! Follows Slurm's job arrays (<https://slurm.schedmd.com/job_array.html>) and `sbatch`
//! options (<https://slurm.schedmd.com/sbatch.html>): `#SBATCH` lines are comments to
//! bash, so the same script runs one point without Slurm
//! (`SLURM_ARRAY_TASK_ID=i bash sweep.sbatch`). Resuming is the run folder's business
//! (`petune_train::run_dir`): a finished point is skipped, a checkpointed one resumes, a
//! running one is locked.

use std::path::{Path, PathBuf};

use petune_core::fsio::{read_json, write_atomic, write_json_atomic};
use petune_train::data::TaskName;
use petune_train::RunConfig;
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::grid::GridPoint;
use crate::paper::PaperSetting;
use crate::reproduce::Target;
use crate::sweep::Axis;

/// The manifest's file name.
pub const MANIFEST: &str = "sweep.json";
/// The list of point ids, one per line, in array-task order.
pub const POINTS_LIST: &str = "points.txt";
/// The sbatch script's file name.
pub const SCRIPT: &str = "sweep.sbatch";
/// A point's run config, in its folder.
pub const RUN_CONFIG: &str = "run.json";
/// The folder holding one sub-folder per point.
pub const POINTS_DIR: &str = "points";
/// Where the script writes a point's `petune train` error output.
pub const STDERR_LOG: &str = "stderr.log";
/// The manifest format written here; another is refused.
pub const MANIFEST_FORMAT: u32 = 1;

/// What the points are, so that collecting can rebuild the outputs of a local run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Study {
    /// `petune sweep`: `sweep.csv` and plots.
    Sweep {
        /// The varied knob.
        axis: Axis,
    },
    /// A paper item (`examples/table*.rs`, `fig*.rs`): its table in the paper's layout.
    Paper {
        /// The setting as it ran (scaled, overridden, fitted to the model).
        setting: Box<PaperSetting>,
        /// Model, data and output folder.
        target: Target,
        /// The backbone as `BackboneSpec::describe` says it (the table's header).
        backbone: String,
        /// Table rows (accuracy: method labels in order) or curve values (axis).
        rows: Vec<String>,
        /// The axis values of a curve (prompt layers mapped to the model, or lengths).
        values: Vec<usize>,
    },
}

/// One grid run: an array task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPoint {
    /// Stable, file-name-safe id: the folder `points/<id>`.
    pub id: String,
    /// The task (paper items; `None` for `petune sweep`).
    pub task: Option<TaskName>,
    /// Method label (sweeps: without the prompt layer, which is `x`).
    pub method: String,
    /// The axis value, `None` for methods without the knob or for accuracy tables.
    pub x: Option<usize>,
    /// The seed.
    pub seed: u64,
    /// The grid point; consecutive points of one task, method, x and seed are selected on
    /// dev together.
    pub grid: GridPoint,
}

impl ManifestPoint {
    /// The points selected on dev together share this.
    pub fn group(&self) -> (Option<TaskName>, &str, Option<usize>, u64) {
        (self.task, &self.method, self.x, self.seed)
    }
}

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The petune that emitted it.
    pub petune_version: String,
    /// What to build from the points.
    pub study: Study,
    /// Every array task, in order.
    pub points: Vec<ManifestPoint>,
    /// FNV-1a of `study` and `points` as JSON: a hand-edited manifest is refused.
    pub digest: String,
}

/// A point to emit: its manifest entry and run config.
#[derive(Debug, Clone)]
pub struct EmitJob {
    /// The manifest entry.
    pub point: ManifestPoint,
    /// The run config (its `out_dir` is set to the point's folder).
    pub cfg: RunConfig,
}

/// The job array's resources and command.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmOptions {
    /// The `petune` binary the tasks run (overridable at run time with `PETUNE=...`).
    pub petune: PathBuf,
    /// `--job-name`.
    pub job_name: String,
    /// `--time` (`HH:MM:SS`, `D-HH:MM:SS`, minutes, ...).
    pub time: String,
    /// `--cpus-per-task`; also each run's libtorch threads.
    pub cpus: usize,
    /// `--partition`, when given.
    pub partition: Option<String>,
    /// `--gpus` per task (0: no line).
    pub gpus: usize,
    /// Further `#SBATCH` options, one per line (`--mem=16G`, `--account=x`).
    pub extra: Vec<String>,
    /// `petune train --nproc N` (data-parallel ranks per point, each with
    /// `SLURM_CPUS_PER_TASK / N` threads): only written when given.
    pub nproc: Option<usize>,
    /// Write into a folder that exists and is not empty.
    pub force: bool,
    /// The command that collects the array (`petune sweep --collect`, or the paper
    /// example's `--collect`), named in the script's header.
    pub collect_command: String,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            petune: PathBuf::from("petune"),
            job_name: "petune-sweep".into(),
            time: "04:00:00".into(),
            cpus: 4,
            partition: None,
            gpus: 0,
            extra: Vec::new(),
            nproc: None,
            force: false,
            collect_command: "petune sweep --collect".into(),
        }
    }
}

/// FNV-1a over bytes (stable across Rust versions, unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn digest(study: &Study, points: &[ManifestPoint]) -> Result<String> {
    Ok(fnv1a(serde_json::to_string(&(study, points))?.as_bytes()))
}

/// `s` as one file name: ASCII letters, digits and `._+-`, not starting with a dot.
pub fn check_id(id: &str) -> std::result::Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
    if id.is_empty() || id.starts_with('.') || !id.chars().all(ok) {
        return Err(format!(
            "point id `{id}` is not a plain file name (letters, digits, `._+-`, no leading dot)"
        ));
    }
    Ok(())
}

/// `s` with every character outside `[A-Za-z0-9._+-]` removed: a point id part.
pub fn id_part(s: &str) -> String {
    s.chars().filter(|&c| c.is_ascii_alphanumeric() || "._+-".contains(c)).collect()
}

fn manifest_error(path: &Path, msg: impl Into<String>) -> ExperimentError {
    ExperimentError::Manifest { path: path.to_path_buf(), msg: msg.into() }
}

/// A single-quoted bash word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// An `#SBATCH` value must stay on its line.
fn one_line(what: &str, v: &str) -> Result<()> {
    if v.contains(['\n', '\r']) || v.trim().is_empty() {
        return Err(ExperimentError::invalid(format!("{what}: `{v}` must be one non-empty line")));
    }
    Ok(())
}

/// The sbatch script of `n` points in `dir`, run from `cwd` (relative paths in the run
/// configs mean what they meant where the sweep was emitted).
pub fn sbatch_script(dir: &Path, cwd: &Path, n: usize, opts: &SlurmOptions) -> Result<String> {
    one_line("--slurm-time", &opts.time)?;
    one_line("--slurm-job-name", &opts.job_name)?;
    if let Some(p) = &opts.partition {
        one_line("--slurm-partition", p)?;
    }
    if opts.cpus == 0 {
        return Err(ExperimentError::invalid("--slurm-cpus must be at least 1"));
    }
    if n == 0 {
        return Err(ExperimentError::invalid("nothing to emit: the plan has no points"));
    }
    let last = n - 1;
    let dir_s = dir.display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# petune {} job array: array task i trains the point on line i+1 of points.txt,\n\
         # each in its own folder points/<id> (run.json there is its config).\n\
         # Submit:  sbatch {dir_s}/{SCRIPT}\n\
         # Collect: {collect} {dir_s}\n\
         # Without Slurm, task i runs as: SLURM_ARRAY_TASK_ID=i bash {SCRIPT}\n\
         # A finished point is skipped, a checkpointed one resumes: resubmitting is safe.\n",
        env!("CARGO_PKG_VERSION"),
        collect = opts.collect_command.replace(['\n', '\r'], " "),
    );
    s += &format!("#SBATCH --job-name={}\n", opts.job_name.trim());
    s += &format!("#SBATCH --array=0-{last}\n");
    s += &format!("#SBATCH --time={}\n", opts.time.trim());
    s += "#SBATCH --ntasks=1\n";
    s += &format!("#SBATCH --cpus-per-task={}\n", opts.cpus);
    if let Some(p) = &opts.partition {
        s += &format!("#SBATCH --partition={}\n", p.trim());
    }
    if opts.gpus > 0 {
        s += &format!("#SBATCH --gpus={}\n", opts.gpus);
    }
    s += &format!("#SBATCH --output={dir_s}/logs/%A_%a.out\n");
    for line in &opts.extra {
        one_line("--slurm-extra", line)?;
        let opt = line.trim().trim_start_matches("#SBATCH").trim();
        s += &format!("#SBATCH {opt}\n");
    }
    let (nproc, per_rank) = match opts.nproc {
        // Each rank gets its share of the task's CPUs, at least one.
        Some(n) => (
            format!(" --nproc {n}"),
            format!("$(( SLURM_CPUS_PER_TASK / {n} > 0 ? SLURM_CPUS_PER_TASK / {n} : 1 ))"),
        ),
        None => (String::new(), "$SLURM_CPUS_PER_TASK".to_string()),
    };
    s += &format!(
        r#"
set -euo pipefail
DIR={dir}
petune_default={petune}
PETUNE="${{PETUNE:-$petune_default}}"
cd {cwd}
task="${{SLURM_ARRAY_TASK_ID:?set SLURM_ARRAY_TASK_ID to the array task to run (0-{last})}}"
case "$task" in
  ''|*[!0-9]*) echo "SLURM_ARRAY_TASK_ID=$task is not an array task (0-{last})" >&2; exit 1 ;;
esac
id="$(sed -n "$((10#$task + 1))p" "$DIR/{list}")"
if [ -z "$id" ]; then
  echo "array task $task: no such point (0-{last})" >&2
  exit 1
fi
point="$DIR/{points}/$id"
threads=()
if [ -n "${{SLURM_CPUS_PER_TASK:-}}" ]; then
  threads=(--threads "{per_rank}")
fi
echo "array task $task: $id" >&2
status=0
"$PETUNE" train --config "$point/run.json" --out "$point" --json --skip-finished{nproc} \
  ${{threads[@]+"${{threads[@]}}"}} 2> "$point/{stderr}" || status=$?
cat "$point/{stderr}" >&2
exit "$status"
"#,
        dir = sh_quote(&dir_s),
        petune = sh_quote(&opts.petune.display().to_string()),
        cwd = sh_quote(&cwd.display().to_string()),
        list = POINTS_LIST,
        points = POINTS_DIR,
        stderr = STDERR_LOG,
    );
    Ok(s)
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    let mut it = std::fs::read_dir(dir).map_err(|e| ExperimentError::io(dir, e))?;
    Ok(it.next().is_none())
}

/// Writes `jobs` as a job array into `dir` (created; one that exists and is not empty
/// is refused unless `opts.force`). Returns the absolute folder.
///
/// With `force`, the manifest, list, script and run configs are rewritten; run outputs
/// already there stay, so a point whose config changed is refused by its folder's
/// fingerprint when it runs (delete that folder to retrain it).
pub fn emit(dir: &Path, study: Study, jobs: Vec<EmitJob>, opts: &SlurmOptions) -> Result<PathBuf> {
    if dir.exists() && !opts.force && (!dir.is_dir() || !is_empty_dir(dir)?) {
        return Err(ExperimentError::OutputExists { path: dir.to_path_buf() });
    }
    let mut seen = std::collections::BTreeSet::new();
    for j in &jobs {
        check_id(&j.point.id).map_err(ExperimentError::invalid)?;
        if !seen.insert(j.point.id.as_str()) {
            return Err(ExperimentError::invalid(format!(
                "two points share the id `{}`: give distinct methods, values and seeds",
                j.point.id
            )));
        }
    }
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| ExperimentError::io(dir, e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| ExperimentError::io(dir, e))?;
    let cwd = std::env::current_dir().map_err(|e| ExperimentError::io(".", e))?;
    let script = sbatch_script(&dir, &cwd, jobs.len(), opts)?;
    let mut points = Vec::with_capacity(jobs.len());
    for EmitJob { point, mut cfg } in jobs {
        let folder = dir.join(POINTS_DIR).join(&point.id);
        cfg.out_dir = Some(folder.clone());
        write_json_atomic(&folder.join(RUN_CONFIG), &cfg)?;
        points.push(point);
    }
    let list: String = points.iter().map(|p| format!("{}\n", p.id)).collect();
    write_atomic(&dir.join(POINTS_LIST), list.as_bytes())?;
    let digest = digest(&study, &points)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        petune_version: env!("CARGO_PKG_VERSION").into(),
        study,
        points,
        digest,
    };
    write_json_atomic(&dir.join(MANIFEST), &manifest)?;
    write_atomic(&dir.join(SCRIPT), script.as_bytes())?;
    Ok(dir)
}

/// Reads and checks `dir/sweep.json`: its format, its digest, safe and unique ids, and
/// `points.txt` listing exactly those ids in order. Anything else is
/// [`ExperimentError::Manifest`].
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        return Err(manifest_error(
            &path,
            "no manifest: is this a folder written by `--emit-slurm`?",
        ));
    }
    let m: Manifest = read_json(&path).map_err(|e| manifest_error(&path, e.to_string()))?;
    if m.format != MANIFEST_FORMAT {
        return Err(manifest_error(
            &path,
            format!("format {} (this petune reads format {MANIFEST_FORMAT})", m.format),
        ));
    }
    if digest(&m.study, &m.points)? != m.digest {
        return Err(manifest_error(
            &path,
            "its digest does not match its contents: it was edited after it was emitted; \
             emit the sweep again (--force) instead",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &m.points {
        check_id(&p.id).map_err(|msg| manifest_error(&path, msg))?;
        if !seen.insert(p.id.as_str()) {
            return Err(manifest_error(&path, format!("point id `{}` appears twice", p.id)));
        }
    }
    let list_path = dir.join(POINTS_LIST);
    let list =
        std::fs::read_to_string(&list_path).map_err(|e| ExperimentError::io(&list_path, e))?;
    let ids: Vec<&str> = list.lines().collect();
    let expected: Vec<&str> = m.points.iter().map(|p| p.id.as_str()).collect();
    if ids != expected {
        return Err(manifest_error(
            &list_path,
            format!(
                "lists {} ids that differ from the manifest's {} (array task i must be point i)",
                ids.len(),
                expected.len()
            ),
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_file_names() {
        assert!(check_id("LPTNPG-prompt_layer2-seed13-lr1e-3-bs16-wu0.06").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "a\nb"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(id_part("LPT w/o PG (PL 4)"), "LPTwoPGPL4");
    }

    #[test]
    fn script_quotes_paths_and_keeps_options_on_their_lines() {
        let opts = SlurmOptions {
            petune: "/opt/it's/petune".into(),
            partition: Some("gpu".into()),
            gpus: 1,
            extra: vec!["--mem=16G".into(), "#SBATCH --account=lab".into()],
            ..SlurmOptions::default()
        };
        let s = sbatch_script(Path::new("/data/sw eep"), Path::new("/home/me"), 4, &opts).unwrap();
        assert!(s.contains("#SBATCH --array=0-3\n"), "{s}");
        assert!(s.contains("#SBATCH --partition=gpu\n#SBATCH --gpus=1\n"), "{s}");
        assert!(s.contains("#SBATCH --mem=16G\n#SBATCH --account=lab\n"), "{s}");
        assert!(s.contains(r"petune_default='/opt/it'\''s/petune'"), "{s}");
        assert!(s.contains("DIR='/data/sw eep'"), "{s}");
        assert!(!s.contains("--nproc"), "{s}");
        let with = SlurmOptions { nproc: Some(2), ..SlurmOptions::default() };
        let s = sbatch_script(Path::new("/d"), Path::new("/"), 1, &with).unwrap();
        assert!(s.contains("--skip-finished --nproc 2"), "{s}");
        // Each of the two ranks gets half the task's CPUs, at least one.
        let per_rank =
            r#"--threads "$(( SLURM_CPUS_PER_TASK / 2 > 0 ? SLURM_CPUS_PER_TASK / 2 : 1 ))""#;
        assert!(s.contains(per_rank), "{s}");
        let bad = SlurmOptions { partition: Some("gpu\n#SBATCH --qos=x".into()), ..opts };
        assert!(sbatch_script(Path::new("/d"), Path::new("/"), 1, &bad).is_err());
    }
}
