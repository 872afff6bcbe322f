//! A run's output folder, kept consistent: one run at a time (an exclusive lock), one
//! run config per folder (a fingerprint that a resumed run must match), and a log that
//! holds every step once.
//!
//! - **Lock**: `.petune.lock`, held with `flock(LOCK_EX | LOCK_NB)` for the whole run and
//!   holding the holder's pid. The kernel drops the lock when its process dies however it
//!   dies, so a lock file left by a crashed run is stale by construction and simply taken
//!   over; the file itself is never deleted (deleting it would let two runs lock two
//!   different files).
//! - **Fingerprint**: `run-config.json`, the run config without the fields that cannot
//!   change the trained tensors (output folder, threads, checkpoint frequency, cache
//!   budget) plus a hash of the examples. A folder whose fingerprint differs is refused
//!   with the differing fields listed, unless the run restarts (then petune's own
//!   outputs are removed first; other files are left alone).
//! - **Log**: on resume `log.jsonl` is cut back to the checkpoint's step, so steps run
//!   after the checkpoint and before the crash are not logged twice.
//! - **Finished**: `metrics.json` is written last and atomically, so a folder whose
//!   fingerprint matches and that holds a readable `metrics.json` holds the run finished
//!   ([`finished_report`]; `petune train --skip-finished` and Slurm sweeps use it).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use petune_core::fsio::{read_json, write_atomic, write_json_atomic};
use petune_core::{Error, Result};
use serde_json::Value;

use crate::config::{RunConfig, TaskData};
use crate::data::Dataset;
use crate::trainer::TrainReport;

/// The report's name, written last when a run finishes.
pub const METRICS_FILE: &str = "metrics.json";
/// The lock file's name.
pub const LOCK_FILE: &str = ".petune.lock";
/// The fingerprint file's name.
pub const FINGERPRINT_FILE: &str = "run-config.json";
/// The training log's name.
pub const LOG_FILE: &str = "log.jsonl";
/// What `petune train` writes into an output folder (removed on restart).
pub const OUTPUTS: [&str; 7] = [
    FINGERPRINT_FILE,
    LOG_FILE,
    "checkpoint",
    "prefix-cache",
    "delta.safetensors",
    "delta.json",
    "metrics.json",
];

/// An exclusive lock on an output folder, released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Takes the lock of `dir` (created if needed). Held elsewhere: [`Error::Locked`]
    /// naming the holder's pid.
    pub fn acquire(dir: &Path) -> Result<OutputLock> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        // Opened without truncating: the holder's pid must stay readable until we hold it.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if !try_lock(&file).map_err(|e| Error::io(&path, e))? {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let pid = text.trim().parse().unwrap_or(0);
            return Err(Error::Locked { path, pid });
        }
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{}", std::process::id())?;
            f.flush()
        };
        write(&mut file).map_err(|e| Error::io(&path, e))?;
        Ok(OutputLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this process owns; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    // No advisory locks here: the folder is not protected against a second run.
    Ok(true)
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: as in `try_lock`; closing the file would release it too.
            unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

/// The fields of a run config that cannot change what is trained, left out of the
/// fingerprint (`section.field`).
pub const NOT_FINGERPRINTED: [&str; 4] =
    ["out_dir", "train.threads", "train.save_every", "train.cache_budget_mib"];

/// FNV-1a over bytes: a stable hash (unlike `DefaultHasher`, the same in every Rust).
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A hash of the examples of every split (texts, pairs, labels and class names).
pub fn data_hash(data: &TaskData) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let sets: [Option<&Dataset>; 4] =
        [Some(&data.train), Some(&data.dev), data.test.as_ref(), data.test_mismatched.as_ref()];
    for (i, set) in sets.iter().enumerate() {
        h = fnv1a(&[i as u8, 0xff], h);
        let Some(set) = set else { continue };
        for name in &set.label_names {
            h = fnv1a(name.as_bytes(), fnv1a(&[0], h));
        }
        for ex in &set.examples {
            h = fnv1a(ex.text_a.as_bytes(), fnv1a(&[1], h));
            if let Some(b) = &ex.text_b {
                h = fnv1a(b.as_bytes(), fnv1a(&[2], h));
            }
            h = fnv1a(&(ex.label as u64).to_le_bytes(), h);
        }
    }
    format!("{h:016x}")
}

/// The fingerprint of a run: the config without [`NOT_FINGERPRINTED`]
/// ([`config_fingerprint`]) and the data hash.
pub fn fingerprint(cfg: &RunConfig, data: &TaskData) -> Result<Value> {
    Ok(serde_json::json!({ "config": config_fingerprint(cfg)?, "data": data_hash(data) }))
}

/// The config part of a run's fingerprint: the config without [`NOT_FINGERPRINTED`], so
/// that a run folder can be checked against a config without loading its data.
pub fn config_fingerprint(cfg: &RunConfig) -> Result<Value> {
    let mut config = serde_json::to_value(cfg)
        .map_err(|source| Error::Json { path: "<run config>".into(), source })?;
    for field in NOT_FINGERPRINTED {
        let mut node = &mut config;
        let parts: Vec<&str> = field.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            node = &mut node[*p];
        }
        if let Some(obj) = node.as_object_mut() {
            obj.remove(parts[parts.len() - 1]);
        }
    }
    Ok(config)
}

/// Every leaf where `a` and `b` differ, as `path: a → b` (`data` names the examples).
pub fn differences(a: &Value, b: &Value) -> Vec<String> {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    walk(
                        &sub,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{path}: {a} → {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", a, b, &mut out);
    // `config.train.lr` reads better as `train.lr`; the data hash as what it means.
    out.into_iter()
        .map(|d| match d.strip_prefix("config.") {
            Some(rest) => rest.to_string(),
            None if d.starts_with("data:") => {
                format!("the examples (train / dev / test contents) differ ({})", &d[6..])
            }
            None => d,
        })
        .collect()
}

/// The output folder of a run: locked, checked against its fingerprint, restarted when
/// asked.
#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    _lock: OutputLock,
}

impl RunDir {
    /// Locks `dir`; with `restart` removes petune's outputs there first. A folder that
    /// holds another run (a different fingerprint, or outputs without one) is refused
    /// with [`Error::Config`] listing what differs. The fingerprint is then written.
    pub fn open(dir: &Path, fp: &Value, restart: bool) -> Result<RunDir> {
        let lock = OutputLock::acquire(dir)?;
        if restart {
            for name in OUTPUTS {
                let p = dir.join(name);
                let removed = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else if p.exists() {
                    std::fs::remove_file(&p)
                } else {
                    Ok(())
                };
                removed.map_err(|e| Error::io(&p, e))?;
            }
        }
        let fp_path = dir.join(FINGERPRINT_FILE);
        let refuse = |what: String| {
            Error::config(
                "out_dir",
                format!(
                    "{} holds {what}; resume only continues the same run: pass --restart \
                     (`Trainer::restart(true)`) to start over there, or choose another output folder",
                    dir.display()
                ),
            )
        };
        if fp_path.exists() {
            let old: Value = read_json(&fp_path)?;
            let diff = differences(&old, fp);
            if !diff.is_empty() {
                return Err(refuse(format!("a run with a different config ({})", diff.join("; "))));
            }
        } else if let Some(found) =
            ["checkpoint", "delta.json", "metrics.json"].iter().find(|n| dir.join(n).exists())
        {
            return Err(refuse(format!("`{found}` of a run whose config is not recorded")));
        }
        write_json_atomic(&fp_path, fp)?;
        Ok(RunDir { dir: dir.to_path_buf(), _lock: lock })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint folder.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// Forgets a previous attempt of the same run that left no resumable checkpoint:
    /// removes the log and the checkpoint folder.
    pub fn start_fresh(&self) -> Result<()> {
        let ck = self.checkpoint_dir();
        if ck.exists() {
            std::fs::remove_dir_all(&ck).map_err(|e| Error::io(&ck, e))?;
        }
        let log = self.dir.join(LOG_FILE);
        if log.exists() {
            std::fs::remove_file(&log).map_err(|e| Error::io(&log, e))?;
        }
        Ok(())
    }

    /// Cuts `log.jsonl` back to the lines of steps up to `step` (a resumed run logs
    /// the later ones again); a line that does not parse, as a crash can leave the
    /// last one, goes too.
    pub fn trim_log(&self, step: i64) -> Result<()> {
        let path = self.dir.join(LOG_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<Value>(l)
                    .ok()
                    .and_then(|v| v.get("step").and_then(Value::as_i64))
                    .is_some_and(|s| s <= step)
            })
            .collect();
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        write_atomic(&path, out.as_bytes())
    }

    /// Opens `log.jsonl` for appending.
    pub fn open_log(&self) -> Result<File> {
        let path = self.dir.join(LOG_FILE);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))
    }
}

/// The recorded report of the run fingerprinted `fp` when `dir` holds it finished (a
/// matching fingerprint and a readable `metrics.json`); `None` when the folder does not
/// exist, has not finished this run, or holds another run (which [`RunDir::open`] then
/// refuses with the differing fields). The folder's lock is held while it looks, so a
/// run in progress there is [`Error::Locked`]; nothing is written.
pub fn finished_report(dir: &Path, fp: &Value) -> Result<Option<TrainReport>> {
    let fp_path = dir.join(FINGERPRINT_FILE);
    let metrics = dir.join(METRICS_FILE);
    if !fp_path.is_file() || !metrics.is_file() {
        return Ok(None);
    }
    let _lock = OutputLock::acquire(dir)?;
    let old: Value = read_json(&fp_path)?;
    if !differences(&old, fp).is_empty() {
        return Ok(None);
    }
    // A report that does not parse (written by another petune version) is not trusted
    // as finished: the run is trained again (resumed) instead.
    Ok(read_json::<TrainReport>(&metrics).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_fields() {
        let a = serde_json::json!({"config": {"train": {"lr": 0.001, "seed": 1}, "method": {"method": "lpt"}}, "data": "aa"});
        let b = serde_json::json!({"config": {"train": {"lr": 0.005, "seed": 1}, "method": {"method": "lora"}}, "data": "bb"});
        let d = differences(&a, &b);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d.contains(&"train.lr: 0.001 → 0.005".to_string()), "{d:?}");
        assert!(d.iter().any(|x| x.starts_with("method.method")), "{d:?}");
        assert!(d.iter().any(|x| x.contains("examples")), "{d:?}");
        assert!(differences(&a, &a).is_empty());
    }

    #[test]
    fn lock_is_exclusive_and_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("petune-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let held = OutputLock::acquire(&dir).unwrap();
        let err = OutputLock::acquire(&dir).unwrap_err();
        assert!(matches!(&err, Error::Locked { pid, .. } if *pid == std::process::id()), "{err}");
        assert!(err.to_string().contains(&std::process::id().to_string()), "{err}");
        drop(held);
        let again = OutputLock::acquire(&dir).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
