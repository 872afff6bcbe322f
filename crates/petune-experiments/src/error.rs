//! The error type of `petune-experiments`: what went wrong while running, collecting
//! or drawing an experiment, with the run or file it concerns.

use std::path::PathBuf;

/// `Result` with [`ExperimentError`].
pub type Result<T, E = ExperimentError> = std::result::Result<T, E>;

/// An experiment failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The library below (loading, training, configs) failed.
    #[error(transparent)]
    Core(#[from] petune_core::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A run in a child process failed or printed no report.
    #[error("run `{run}` failed: {msg}")]
    Run {
        /// Which run.
        run: String,
        /// Its error output, or why its report could not be read.
        msg: String,
    },
    /// A method name, setting or argument is not valid.
    #[error("{0}")]
    Invalid(String),
    /// A job-array manifest (`sweep.json`, `points.txt`) is unreadable, of another
    /// format, or was edited after it was emitted.
    #[error("{path}: {msg}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A folder to emit into exists and is not empty.
    #[error(
        "{path} exists and is not empty: choose another folder, or pass --force to write over it"
    )]
    OutputExists {
        /// The folder.
        path: PathBuf,
    },
    /// Collecting found points that have not finished.
    #[error("{dir}: not every point has finished (pass --allow-missing to build the outputs from the finished ones):\n{detail}")]
    Incomplete {
        /// The job-array folder.
        dir: PathBuf,
        /// One line per point that is not finished, then the counts.
        detail: String,
    },
    /// Drawing a plot failed.
    #[error("plot {path}: {msg}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// What the plotting backend said.
        msg: String,
    },
}

impl ExperimentError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExperimentError::Io { path: path.into(), source }
    }

    /// An invalid name, setting or argument.
    pub fn invalid(msg: impl Into<String>) -> Self {
        ExperimentError::Invalid(msg.into())
    }
}

impl From<serde_json::Error> for ExperimentError {
    fn from(e: serde_json::Error) -> Self {
        ExperimentError::Invalid(format!("JSON: {e}"))
    }
}
