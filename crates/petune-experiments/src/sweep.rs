//! Sweeps: one run config trained over methods × values of one axis (the prompt layer,
//! paper Figures 2-left and 4, or the prompt length, Figure 5) × seeds; a CSV of every
//! run, the test metric against the axis as mean ± std over seeds, and the training-loss
//! curves averaged over seeds (Figure 2-middle), drawn as PNG and SVG.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use petune_lpt::GeneratorConfig;
use petune_train::data::metrics::mean_std;
use petune_train::{MethodConfig, RunConfig};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::grid::{search, Grid};
use crate::plot::{line_plot, Labels, Series};
use crate::runner::{RunOutcome, Runner};

/// What a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// The LPT prompt layer (paper numbering, 1-based); other methods run once.
    PromptLayer,
    /// The prompt / prefix length of LPT, prompt tuning, P-tuning v2 and S-IDPG; other
    /// methods run once.
    PromptLength,
}

impl Axis {
    /// Axis label of the plots and the CSV column.
    pub fn label(self) -> &'static str {
        match self {
            Axis::PromptLayer => "prompt layer (PL)",
            Axis::PromptLength => "prompt length",
        }
    }

    /// The CSV column (and file-name tag) of the axis.
    pub fn column(self) -> &'static str {
        match self {
            Axis::PromptLayer => "prompt_layer",
            Axis::PromptLength => "prompt_len",
        }
    }

    /// `method` at `value` of this axis, or `None` when the method has no such knob.
    pub fn apply(self, method: &MethodConfig, value: usize) -> Option<MethodConfig> {
        let mut m = method.clone();
        let v = value as i64;
        match (self, &mut m) {
            (Axis::PromptLayer, MethodConfig::Lpt(c)) => c.prompt_layer = value,
            (Axis::PromptLength, MethodConfig::Lpt(c)) => match &mut c.generator {
                GeneratorConfig::Static { len, .. }
                | GeneratorConfig::Naive { len, .. }
                | GeneratorConfig::Pool { len, .. } => *len = v,
            },
            (Axis::PromptLength, MethodConfig::PromptTuning(c)) => c.len = v,
            (Axis::PromptLength, MethodConfig::PTuningV2(c)) => c.len = v,
            (Axis::PromptLength, MethodConfig::SidpgPhm(c)) => c.len = v,
            _ => return None,
        }
        Some(m)
    }
}

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// The run every point starts from.
    pub base: RunConfig,
    /// Methods, each with its hyper-parameter grid (selected on dev at every point).
    pub methods: Vec<(MethodConfig, Grid)>,
    /// The varied knob.
    pub axis: Axis,
    /// Its values.
    pub values: Vec<usize>,
    /// Few-shot split seeds when the task samples a few-shot split, else training seeds.
    pub seeds: Vec<u64>,
}

/// One finished run of a sweep.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// Method label without the prompt layer ("LPT NPG").
    pub method: String,
    /// The axis value, `None` for methods without the knob.
    pub x: Option<usize>,
    /// The seed.
    pub seed: u64,
    /// The run.
    pub outcome: RunOutcome,
}

/// "LPT NPG (PL 4)" → "LPT NPG": the layer has its own column.
fn base_label(method: &MethodConfig) -> String {
    method.label().split(" (PL").next().unwrap_or_default().to_string()
}

/// One point of a sweep before its grid search: a method at one axis value and seed.
#[derive(Debug, Clone)]
pub struct PlannedPoint {
    /// Method label without the prompt layer ("LPT NPG").
    pub method: String,
    /// The axis value, `None` for methods without the knob.
    pub x: Option<usize>,
    /// The seed.
    pub seed: u64,
    /// A stable, file-name-safe name of the point (`LPTNPG-prompt_layer2-seed13`).
    pub tag: String,
    /// Its run config (the grid's values are filled in per grid point).
    pub cfg: RunConfig,
    /// The hyper-parameter grid selected on dev.
    pub grid: Grid,
}

/// Every point of `plan`, methods outermost, then axis values, then seeds: the order of
/// the CSV rows.
pub fn plan_points(plan: &SweepPlan) -> Result<Vec<PlannedPoint>> {
    if plan.seeds.is_empty() {
        return Err(ExperimentError::invalid("a sweep needs at least one seed"));
    }
    let mut points = Vec::new();
    for (method, grid) in &plan.methods {
        let variants: Vec<(Option<usize>, MethodConfig)> = {
            let v: Vec<_> = plan
                .values
                .iter()
                .filter_map(|&x| plan.axis.apply(method, x).map(|m| (Some(x), m)))
                .collect();
            if v.is_empty() {
                vec![(None, method.clone())]
            } else {
                v
            }
        };
        for (x, m) in variants {
            for &seed in &plan.seeds {
                let mut cfg = plan.base.clone();
                cfg.method = m.clone();
                match &mut cfg.task.fewshot {
                    Some(f) => f.seed = seed as u32,
                    None => cfg.train.seed = seed,
                }
                let name = base_label(&m);
                let tag = format!(
                    "{}-{}{}-seed{seed}",
                    name.replace([' ', '(', ')', '/', '='], ""),
                    plan.axis.column(),
                    x.unwrap_or(0)
                );
                points.push(PlannedPoint { method: name, x, seed, tag, cfg, grid: grid.clone() });
            }
        }
    }
    Ok(points)
}

/// Runs every point of `plan`, each in `out/runs/<tag>/<grid point>`, printing one line
/// per point on stderr.
pub fn run_sweep(runner: &Runner, plan: &SweepPlan, out: &Path) -> Result<Vec<SweepPoint>> {
    let mut points = Vec::new();
    for p in plan_points(plan)? {
        eprint!(
            "  {:<24} {} {:>3} seed {:>3} ... ",
            p.method,
            plan.axis.column(),
            p.x.map(|v| v.to_string()).unwrap_or("-".into()),
            p.seed
        );
        let outcome = search(runner, &p.cfg, &p.grid, &out.join("runs").join(&p.tag))?.outcome;
        eprintln!("test {:.4}", outcome.test());
        points.push(SweepPoint { method: p.method, x: p.x, seed: p.seed, outcome });
    }
    Ok(points)
}

/// What a sweep writes from its finished points, whether they ran here or as Slurm
/// array tasks (`slurm::collect`): `out/sweep.csv` and the plots of [`plot_sweep`].
/// Returns the plots' stems.
pub fn write_sweep_outputs(out: &Path, axis: Axis, points: &[SweepPoint]) -> Result<Vec<String>> {
    write_sweep_csv(&out.join("sweep.csv"), axis, points)?;
    plot_sweep(out, axis, points)
}

/// Writes one CSV row per run.
pub fn write_sweep_csv(path: &Path, axis: Axis, points: &[SweepPoint]) -> Result<()> {
    let io = |e| ExperimentError::io(path, e);
    let mut f = std::fs::File::create(path).map_err(io)?;
    writeln!(
        f,
        "method,{},seed,test,best_dev,best_step,trainable_params,tokens_per_ms,peak_rss_mib",
        axis.column()
    )
    .map_err(io)?;
    for p in points {
        let r = &p.outcome.report;
        writeln!(
            f,
            "\"{}\",{},{},{},{},{},{},{:.4},{:.1}",
            p.method,
            p.x.map(|v| v.to_string()).unwrap_or_default(),
            p.seed,
            r.test.as_ref().map(|t| t.headline.to_string()).unwrap_or_default(),
            r.best_dev.as_ref().map(|t| t.headline.to_string()).unwrap_or_default(),
            r.best_step,
            r.trainable_params,
            r.tokens_per_ms,
            r.peak_rss_mib
        )
        .map_err(io)?;
    }
    Ok(())
}

/// One series per name: `(x, mean, std)` of the values collected at each x.
pub fn summarise<X>(
    groups: BTreeMap<String, BTreeMap<X, Vec<f64>>>,
    to_f64: impl Fn(X) -> f64,
) -> Vec<Series> {
    groups
        .into_iter()
        .map(|(name, by_x)| Series {
            name,
            points: by_x
                .into_iter()
                .map(|(x, values)| {
                    let (mean, std) = mean_std(&values);
                    (to_f64(x), mean, std)
                })
                .collect(),
        })
        .collect()
}

/// The test metric (%) by axis value, one series per method, mean ± std over seeds.
pub fn metric_series(points: &[SweepPoint]) -> Vec<Series> {
    let mut by_x: BTreeMap<String, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
    for p in points {
        if let (Some(x), Some(t)) = (p.x, &p.outcome.report.test) {
            by_x.entry(p.method.clone())
                .or_default()
                .entry(x)
                .or_default()
                .push(100.0 * t.headline);
        }
    }
    summarise(by_x, |x| x as f64)
}

/// Draws `<stem>_metric.{png,svg}` (test metric by axis value; skipped when no method
/// has the knob) and `<stem>_convergence.{png,svg}` (training loss by step, one line per
/// method and axis value, mean ± std over seeds). Returns the files' stems.
pub fn plot_sweep(out: &Path, axis: Axis, points: &[SweepPoint]) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let series = metric_series(points);
    if series.iter().any(|s| !s.points.is_empty()) {
        let stem = match axis {
            Axis::PromptLayer => "prompt_layers",
            Axis::PromptLength => "prompt_lengths",
        };
        let title = format!("Test metric by {} (mean ± std over seeds)", axis.label());
        let labels = Labels { title: &title, x: axis.label(), y: "test metric (%)" };
        line_plot(&out.join(stem), &series, &labels)?;
        written.push(stem.to_string());
    }
    let mut curves: BTreeMap<String, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for p in points {
        let name = match (p.x, axis) {
            (Some(x), Axis::PromptLayer) => format!("{} PL {x}", p.method),
            (Some(x), Axis::PromptLength) => format!("{} l = {x}", p.method),
            (None, _) => p.method.clone(),
        };
        for &(step, loss) in &p.outcome.losses {
            curves.entry(name.clone()).or_default().entry(step).or_default().push(loss);
        }
    }
    let series = summarise(curves, |step| step as f64);
    if series.iter().any(|s| !s.points.is_empty()) {
        let labels =
            Labels { title: "Training loss (mean ± std over seeds)", x: "step", y: "loss" };
        line_plot(&out.join("convergence"), &series, &labels)?;
        written.push("convergence".into());
    }
    Ok(written)
}
