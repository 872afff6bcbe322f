//! # petune-experiments
//!
//! The experiment layer of petune: the LPT paper's methods by short name
//! ([`catalog`]), the settings of its tables and figures ([`paper`]), hyper-parameter
//! grids with selection on dev ([`grid`]), runs in child processes ([`runner`]),
//! sweeps with plots ([`sweep`], [`plot`]), equal training-time budgets ([`budget`]), benchmark jobs ([`bench_suite`]) and the
//! result tables in the paper's layout ([`tables`], run by [`reproduce`]), and sweeps and
//! paper grids as Slurm job arrays ([`slurm`], gathered by [`collect`]). The `petune` CLI
//! and the examples under `examples/` are thin layers over it.

pub mod args;
pub mod bench_suite;
pub mod budget;
pub mod catalog;
pub mod collect;
pub mod error;
pub mod grid;
pub mod paper;
pub mod plot;
pub mod reproduce;
pub mod runner;
pub mod slurm;
pub mod sweep;
pub mod tables;

pub use error::{ExperimentError, Result};
