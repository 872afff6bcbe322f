//! Hyper-parameter grids with selection on dev, as the paper does per task and method
//! (lpt-reference.md §5: learning rate × batch size × warm-up, best dev metric; the test
//! metric is the chosen run's).

use std::path::Path;

use petune_train::RunConfig;
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::runner::{RunOutcome, Runner};

/// A grid of learning rates × batch sizes × warm-up rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Peak learning rates.
    pub lrs: Vec<f64>,
    /// Examples per forward pass.
    pub batch_sizes: Vec<usize>,
    /// Warm-up fractions.
    pub warmup_rates: Vec<f64>,
}

impl Grid {
    /// One point.
    pub fn single(lr: f64, batch_size: usize, warmup_rate: f64) -> Grid {
        Grid { lrs: vec![lr], batch_sizes: vec![batch_size], warmup_rates: vec![warmup_rate] }
    }

    /// Every point, learning rate outermost.
    ///
    /// ```
    /// use petune_experiments::grid::Grid;
    ///
    /// let g = Grid { lrs: vec![5e-4, 1e-3, 5e-3], batch_sizes: vec![8, 16], warmup_rates: vec![0.06] };
    /// let points = g.points();
    /// assert_eq!(points.len(), 6);
    /// assert_eq!((points[1].lr, points[1].batch_size), (5e-4, 16));
    /// ```
    pub fn points(&self) -> Vec<GridPoint> {
        let mut v = Vec::new();
        for &lr in &self.lrs {
            for &batch_size in &self.batch_sizes {
                for &warmup_rate in &self.warmup_rates {
                    v.push(GridPoint { lr, batch_size, warmup_rate });
                }
            }
        }
        v
    }
}

/// One point of a grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// Peak learning rate.
    pub lr: f64,
    /// Examples per forward pass.
    pub batch_size: usize,
    /// Warm-up fraction.
    pub warmup_rate: f64,
}

impl GridPoint {
    /// The point as a file-name-safe tag (`lr1e-3-bs16-wu0.06`), its run folder's name.
    pub fn tag(&self) -> String {
        format!("lr{:e}-bs{}-wu{}", self.lr, self.batch_size, self.warmup_rate)
    }
}

/// A grid point's run, summarised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GridRun {
    /// The point.
    pub point: GridPoint,
    /// Best dev headline metric.
    pub best_dev: f64,
    /// Test headline metric of the best dev tensors.
    pub test: f64,
}

/// The outcome of a search: every point, and the chosen one's full run.
#[derive(Debug, Clone)]
pub struct Selected {
    /// Every point tried.
    pub tried: Vec<GridRun>,
    /// The point with the best dev metric (the first on ties).
    pub best: GridPoint,
    /// Its run.
    pub outcome: RunOutcome,
}

/// `base` at every point of `grid`: the learning rate, batch size and warm-up set.
pub fn grid_configs(base: &RunConfig, grid: &Grid) -> Vec<(GridPoint, RunConfig)> {
    grid.points()
        .into_iter()
        .map(|point| {
            let mut cfg = base.clone();
            cfg.train.lr = point.lr;
            cfg.train.batch_size = point.batch_size;
            cfg.train.warmup_rate = point.warmup_rate;
            (point, cfg)
        })
        .collect()
}

/// Selects on dev among finished grid runs, in grid order: the best dev metric, the
/// first on ties.
pub fn select(runs: Vec<(GridPoint, RunOutcome)>) -> Result<Selected> {
    let mut tried = Vec::new();
    let mut best: Option<(GridPoint, RunOutcome)> = None;
    for (point, outcome) in runs {
        tried.push(GridRun { point, best_dev: outcome.best_dev(), test: outcome.test() });
        if best.as_ref().is_none_or(|(_, b)| outcome.best_dev() > b.best_dev()) {
            best = Some((point, outcome));
        }
    }
    let (best, outcome) =
        best.ok_or_else(|| ExperimentError::invalid("empty hyper-parameter grid"))?;
    Ok(Selected { tried, best, outcome })
}

/// Trains `base` at every point of `grid` (runs in `dir/<point>`) and selects on dev.
pub fn search(runner: &Runner, base: &RunConfig, grid: &Grid, dir: &Path) -> Result<Selected> {
    let mut runs = Vec::new();
    for (point, cfg) in grid_configs(base, grid) {
        runs.push((point, runner.run(&cfg, &dir.join(point.tag()))?));
    }
    select(runs)
}
