//! The main job's results: one split's dev-selected run, a method's row over splits,
//! and the two labelled tables (equal steps, equal training time) with the dev curves
//! that show where each method peaks.

use std::path::Path;

use petune::experiments::budget::TimePlan;
use petune::experiments::grid::Selected;
use petune::train::data::metrics::mean_std;

/// One split's result: the dev-selected run of the grid.
#[derive(Debug, Clone)]
pub struct SplitResult {
    /// Test accuracy of the best dev checkpoint, %.
    pub acc: f64,
    /// The learning rate dev chose (NaN: nothing trained).
    pub lr: f64,
    /// How many rates it was chosen from.
    pub grid_size: usize,
    /// Best dev accuracy, % (NaN: nothing trained).
    pub best_dev: f64,
    /// Its step.
    pub best_step: i64,
    /// Optimizer steps run.
    pub steps: i64,
    /// Seconds of optimizer steps (no evaluation).
    pub step_seconds: f64,
    /// Training tokens per ms.
    pub tokens_per_ms: Option<f64>,
    /// Peak RSS of the run's process, MiB.
    pub peak_rss: f64,
    /// RSS the training added to the loaded model, MiB.
    pub added: Option<f64>,
    /// Wall time per run of the split's grid, loading and dev evaluation included, s.
    pub wall: f64,
    /// `(step, dev accuracy %)` of the chosen run.
    pub dev_curve: Vec<(i64, f64)>,
}

impl SplitResult {
    /// A split of a method that trains nothing (the zero-shot floor).
    pub fn untrained(acc: f64, wall: f64) -> SplitResult {
        SplitResult {
            acc,
            lr: f64::NAN,
            grid_size: 0,
            best_dev: f64::NAN,
            best_step: 0,
            steps: 0,
            step_seconds: 0.0,
            tokens_per_ms: None,
            peak_rss: 0.0,
            added: None,
            wall,
            dev_curve: Vec::new(),
        }
    }

    /// The chosen run of a grid of `grid_size` rates, its test accuracy (%) and its dev
    /// curve.
    pub fn trained(
        chosen: &Selected,
        acc: f64,
        grid_size: usize,
        wall: f64,
        dev_curve: Vec<(i64, f64)>,
    ) -> SplitResult {
        let r = &chosen.outcome.report;
        SplitResult {
            acc,
            lr: chosen.best.lr,
            grid_size,
            best_dev: 100.0 * chosen.outcome.best_dev(),
            best_step: r.best_step,
            steps: r.steps,
            step_seconds: r.step_seconds,
            tokens_per_ms: Some(r.tokens_per_ms),
            peak_rss: r.peak_rss_mib,
            added: Some(r.peak_rss_mib - r.rss_start_mib),
            wall,
            dev_curve,
        }
    }
}

/// One method over the splits.
#[derive(Debug, Clone)]
pub struct Row {
    /// The method's label.
    pub label: String,
    /// Its short name.
    pub name: String,
    /// One result per split, in seed order.
    pub splits: Vec<SplitResult>,
    /// Trainable parameters (delta + head).
    pub trainable: i64,
    /// Backbone parameters.
    pub backbone: i64,
    /// Peak RSS, MiB: the largest over the chosen runs.
    pub peak_rss: f64,
}

impl Row {
    /// The row of `name` from its splits and its label.
    pub fn trained(
        name: &str,
        label: String,
        trainable: i64,
        backbone: i64,
        splits: Vec<SplitResult>,
    ) -> Row {
        let peak_rss = splits.iter().map(|s| s.peak_rss).fold(0.0, f64::max);
        Row { label, name: name.into(), splits, trainable, backbone, peak_rss }
    }

    fn mean(&self, f: impl Fn(&SplitResult) -> f64) -> f64 {
        let v: Vec<f64> = self.splits.iter().map(f).collect();
        mean_std(&v).0
    }

    /// The row as JSON (for `--json-out`).
    pub fn to_json(&self) -> serde_json::Value {
        let accs: Vec<f64> = self.splits.iter().map(|s| s.acc).collect();
        let (m, s) = mean_std(&accs);
        serde_json::json!({
            "method": self.name,
            "label": self.label,
            "test_acc_mean": m,
            "test_acc_std": s,
            "splits": self.splits.iter().map(|s| serde_json::json!({
                "test_acc": s.acc, "lr": s.lr, "best_dev": s.best_dev, "best_step": s.best_step,
                "steps": s.steps, "step_seconds": s.step_seconds, "tokens_per_ms": s.tokens_per_ms,
                "peak_rss_mib": s.peak_rss, "rss_added_mib": s.added, "wall_seconds": s.wall,
                "dev_curve": s.dev_curve,
            })).collect::<Vec<_>>(),
            "trainable_params": self.trainable,
            "backbone_params": self.backbone,
        })
    }
}

/// `(step, dev headline %)` from a run folder's `log.jsonl` (the evaluation lines).
pub fn read_dev_curve(dir: &Path) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(dir.join("log.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let step = v.get("step")?.as_i64()?;
            let dev = v.get("dev")?.as_object()?;
            // MR's headline is accuracy; another task's first metric otherwise.
            let x = dev.get("acc").or_else(|| dev.values().next())?.as_f64()?;
            Some((step, 100.0 * x))
        })
        .collect()
}

fn fmt_lr(lr: f64) -> String {
    if lr.is_nan() {
        "—".into()
    } else {
        format!("{lr:e}")
    }
}

fn or_dash(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".to_string(), |x| format!("{x:.digits$}"))
}

/// One labelled table.
fn print_table(title: &str, seeds: &[u32], rows: &[&Row]) {
    println!("{title}");
    println!();
    let per: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    println!(
        "| method | test acc (mean ± std) | per split ({}) | lr chosen on dev | steps | s of steps per run | trainable params | % of backbone | tokens/ms | peak RSS (MiB) | RSS added by training (MiB) |",
        per.join(" / ")
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let accs: Vec<f64> = r.splits.iter().map(|s| s.acc).collect();
        let (m, sd) = mean_std(&accs);
        let per: Vec<String> = accs.iter().map(|a| format!("{a:.2}")).collect();
        let lrs: Vec<String> = r.splits.iter().map(|s| fmt_lr(s.lr)).collect();
        let steps: Vec<i64> = r.splits.iter().map(|s| s.steps).collect();
        let steps = if steps.windows(2).all(|w| w[0] == w[1]) {
            steps.first().map_or("0".into(), |s| s.to_string())
        } else {
            steps.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" / ")
        };
        let trained = r.splits.iter().any(|s| s.tokens_per_ms.is_some());
        let tpm = trained.then(|| r.mean(|s| s.tokens_per_ms.unwrap_or(f64::NAN)));
        let added = trained.then(|| r.mean(|s| s.added.unwrap_or(f64::NAN)));
        println!(
            "| {} | {m:.2} ± {sd:.2} | {} | {} | {steps} | {} | {} | {:.3} % | {} | {:.0} | {} |",
            r.label,
            per.join(" / "),
            lrs.join(" / "),
            or_dash(trained.then(|| r.mean(|s| s.step_seconds)), 1),
            r.trainable,
            100.0 * r.trainable as f64 / r.backbone as f64,
            or_dash(tpm, 2),
            r.peak_rss,
            or_dash(added, 0),
        );
    }
    println!();
}

/// Both views, each labelled with how it was set.
pub fn print_views(
    seeds: &[u32],
    steps: i64,
    floor: Option<&Row>,
    view_a: &[Row],
    view_b: &[Row],
    plan: Option<&TimePlan>,
    time_grid: bool,
) {
    let grid_note = "each split's lr chosen on dev (best dev checkpoint scored on test)";
    let mut rows_a: Vec<&Row> = floor.into_iter().collect();
    rows_a.extend(view_a);
    print_table(
        &format!("(a) EQUAL STEPS: every method {steps} optimizer steps; {grid_note}."),
        seeds,
        &rows_a,
    );
    let Some(plan) = plan else { return };
    let times: Vec<String> =
        plan.steps.iter().map(|(m, s, n)| format!("{m} {s:.3} s/step → {n} steps")).collect();
    let set_by = match &plan.set_by {
        Some(m) => format!("{m}'s {steps} steps at its measured time per step"),
        None => "given with --budget-secs".into(),
    };
    let lr_note = if time_grid {
        "each split's lr chosen on dev again at these steps".to_string()
    } else {
        "each split keeps the lr dev chose for it in (a)".to_string()
    };
    print_table(
        &format!(
            "(b) EQUAL TRAINING TIME: every method {:.1} s of optimizer steps per run (the budget: {set_by}); \
             seconds per step measured in (a) of this run, pooled over each method's runs (evaluation excluded): {}; \
             steps = ⌊budget ÷ s/step⌋; {lr_note}.",
            plan.budget_secs,
            times.join(", ")
        ),
        seeds,
        &view_b.iter().collect::<Vec<_>>(),
    );
}

/// Mean dev accuracy over splits at each evaluation of the chosen runs.
pub fn print_dev_curves(rows: &[Row]) {
    println!("dev accuracy of the chosen runs by step (mean over splits, %):");
    println!();
    for r in rows {
        let n = r.splits.iter().map(|s| s.dev_curve.len()).min().unwrap_or(0);
        if n == 0 {
            continue;
        }
        let points: Vec<String> = (0..n)
            .map(|i| {
                let v: Vec<f64> = r.splits.iter().map(|s| s.dev_curve[i].1).collect();
                format!("{}: {:.1}", r.splits[0].dev_curve[i].0, mean_std(&v).0)
            })
            .collect();
        println!("- {}: {}", r.label, points.join(", "));
    }
}
