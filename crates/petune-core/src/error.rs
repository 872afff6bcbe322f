//! The one error type of petune's library crates (design.md §7).
//!
//! Every fallible boundary (files, configs, weights, tokenizers, user input, method
//! construction) returns [`Error`], carrying enough context (file, key, shape, field)
//! that the message alone says what was wrong.

use std::fmt;
use std::path::PathBuf;

/// `Result` with petune's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A weight whose shape differs between the checkpoint and the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// Canonical key of the weight.
    pub key: String,
    /// Shape the model expects.
    pub expected: Vec<i64>,
    /// Shape found in the file.
    pub found: Vec<i64>,
}

/// A weight stored with a dtype the model cannot use (integers where floats belong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindMismatch {
    /// Canonical key of the weight.
    pub key: String,
    /// The dtype found in the file (libtorch's name, e.g. `Int64`).
    pub found: String,
}

/// Everything strict loading found wrong with a checkpoint, reported at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightReport {
    /// Keys the model needs that the file lacks.
    pub missing: Vec<String>,
    /// Keys in the file that the model does not use.
    pub unexpected: Vec<String>,
    /// Keys present in both with different shapes.
    pub mismatched: Vec<ShapeMismatch>,
    /// Keys whose values are not floating point where the model needs floats.
    pub mistyped: Vec<KindMismatch>,
}

impl WeightReport {
    /// True when the checkpoint matched the model exactly.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.mismatched.is_empty()
            && self.mistyped.is_empty()
    }
}

impl fmt::Display for WeightReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing keys [{}]", self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected keys [{}]", self.unexpected.join(", ")));
        }
        for m in &self.mismatched {
            parts.push(format!(
                "`{}` has shape {:?}, the model expects {:?}",
                m.key, m.found, m.expected
            ));
        }
        for m in &self.mistyped {
            parts.push(format!(
                "`{}` holds {} values, the model needs floating-point weights",
                m.key, m.found
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// petune's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error raised by libtorch, kept with its source.
    #[error("libtorch: {0}")]
    Tch(#[from] tch::TchError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or does not have the expected fields.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file (or a description of the JSON source).
        path: PathBuf,
        /// What serde said.
        source: serde_json::Error,
    },
    /// A configuration value is invalid.
    #[error("invalid config `{field}`: {msg}")]
    Config {
        /// The offending field.
        field: String,
        /// Why it is invalid.
        msg: String,
    },
    /// Something valid but not supported by petune (yet).
    #[error("unsupported {what}: {msg}")]
    Unsupported {
        /// What is unsupported (a model type, an option...).
        what: String,
        /// Details.
        msg: String,
    },
    /// A safetensors file that cannot be parsed (corrupt, truncated, bad dtype).
    #[error("{path}: not a valid safetensors file: {msg}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A GGUF file that cannot be parsed (bad magic, truncated, corrupt lengths or offsets).
    #[error("{path}: not a valid GGUF file: {msg}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (with the byte offset where that helps).
        msg: String,
    },
    /// A checkpoint whose keys or shapes do not match the model.
    #[error("{path}: {report}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// Every missing, unexpected and mismatched key.
        report: WeightReport,
    },
    /// A tensor with the wrong shape.
    #[error("{ctx}: expected shape {expected}, got {got:?}")]
    Shape {
        /// Where.
        ctx: String,
        /// The expected shape, in words (e.g. `[B, T]`).
        expected: String,
        /// The shape found.
        got: Vec<i64>,
    },
    /// A tokenizer file that cannot be loaded or used.
    #[error("tokenizer {path}: {msg}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// Bad user input (an empty file, an over-long text, an unknown label...).
    #[error("{0}")]
    Input(String),
    /// Another process holds the output folder (its lock file names the holder).
    #[error("{path} is in use by another petune run (pid {pid}); wait for it to finish or use another output folder")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process holding it.
        pid: u32,
    },
    /// Training produced a NaN or infinite loss (or gradient norm).
    #[error("training diverged at step {step}: the {what} is {value} — lower the learning rate, check the data and weights, or set `\"on_non_finite\": \"skip\"` in `train` to skip such steps")]
    NonFinite {
        /// The optimizer step (1-based) at which it happened.
        step: i64,
        /// What was not finite (`loss`, `gradient norm`).
        what: String,
        /// The value (`NaN`, `inf`).
        value: f64,
    },
    /// A libtorch call made through petune's C++ extension (`petune-ext`) failed; the
    /// message is libtorch's (or the extension's own check's).
    #[error("libtorch ({op}): {msg}")]
    Extension {
        /// The extension function that failed.
        op: String,
        /// What libtorch said.
        msg: String,
    },
    /// A method that cannot apply to a backbone.
    #[error("{method} cannot be used with {backbone}: {reason}")]
    Incompatible {
        /// The method.
        method: String,
        /// The backbone.
        backbone: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Builds [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Builds [`Error::Config`].
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config { field: field.into(), msg: msg.into() }
    }

    /// Builds [`Error::Input`].
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
}

/// Returns early with an [`Error`] built from the arguments.
#[macro_export]
macro_rules! bail {
    ($err:expr) => {
        return Err($err.into())
    };
}
