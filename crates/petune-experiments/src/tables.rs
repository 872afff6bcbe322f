//! The result tables in the paper's layout (markdown): one row per method with its
//! trainable parameters and a column per task plus the average (Tables 1–4), speed and
//! memory with the ratios to model tuning (Table 5), one row per prompt layer with
//! accuracy and cost (Table 10), and one column per axis value for the curves
//! (Figures 2, 4, 5).

use petune_train::bench::BenchReport;
use petune_train::data::metrics::mean_std;
use petune_train::data::TaskName;
use petune_train::MethodConfig;

use crate::bench_suite::added_mib;
use crate::paper::PaperSetting;
use crate::reproduce::Cell;
use crate::sweep::{Axis, SweepPoint};

/// A task as the paper's column headers spell it (SST-2, MPQA, MR, Subj, TREC, ...).
pub fn paper_task_name(task: TaskName) -> String {
    match task {
        TaskName::Subj => "Subj".into(),
        other => other.to_string().to_uppercase(),
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

pub(crate) fn task_columns(tasks: &[TaskName]) -> String {
    tasks.iter().map(|&t| format!(" {} ", paper_task_name(t))).collect::<Vec<_>>().join("|")
}

/// `mean ± std` of the test metric (%) of `cells` for `task` and `method`.
fn task_mean(cells: &[Cell], task: TaskName, method: &str) -> Option<(f64, String)> {
    let v: Vec<f64> = cells
        .iter()
        .filter(|c| c.task == task && c.method == method)
        .filter_map(|c| c.report.test.as_ref().map(|t| 100.0 * t.headline))
        .collect();
    (!v.is_empty()).then(|| (mean_std(&v).0, mean_cell(&v)))
}

/// `mean ± std` over seeds, or the value alone for a single run (a std of one run says
/// nothing).
pub fn mean_cell(values: &[f64]) -> String {
    let (m, sd) = mean_std(values);
    if values.len() > 1 {
        format!("{m:.1} ± {sd:.1}")
    } else {
        format!("{m:.1}")
    }
}

/// The paper's layout: one row per method (trainable parameters, one column per task,
/// the average of the task means).
pub fn accuracy_table(setting: &PaperSetting, cells: &[Cell], rows: &[String]) -> String {
    let mut s = format!("| Method | Params |{}| Avg |\n", task_columns(&setting.tasks));
    s += &format!("|---|---|{}---|\n", "---|".repeat(setting.tasks.len()));
    for method in rows {
        let params = cells.iter().find(|c| &c.method == method).map(|c| c.report.trainable_params);
        let mut means = Vec::new();
        let mut line =
            format!("| {method} | {} |", params.map(thousands).unwrap_or_else(|| "-".into()));
        for &task in &setting.tasks {
            match task_mean(cells, task, method) {
                Some((m, cell)) => {
                    means.push(m);
                    line += &format!(" {cell} |");
                }
                None => line += " - |",
            }
        }
        let avg = if means.len() == setting.tasks.len() {
            format!("{:.1}", means.iter().sum::<f64>() / means.len() as f64)
        } else {
            "-".into()
        };
        s += &format!("{line} {avg} |\n");
    }
    s
}

/// Table 5's layout: parameters, speed, memory and the ratios to model tuning.
pub fn efficiency_table(reports: &[BenchReport]) -> String {
    let mt = reports.iter().find(|r| r.method == "model tuning");
    let mut s = String::from(
        "| Method | Params | Speed (tokens/ms) | × MT | Memory added (MiB) | × MT |\n|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let (sx, mx) = match mt {
            Some(m) => (
                format!("{:.2}", r.tokens_per_ms / m.tokens_per_ms),
                format!("{:.2}", added_mib(r) / added_mib(m)),
            ),
            None => ("-".into(), "-".into()),
        };
        s += &format!(
            "| {} | {} | {:.2} | {sx} | {:.0} | {mx} |\n",
            r.method,
            thousands(r.trainable_params),
            r.tokens_per_ms,
            added_mib(r)
        );
    }
    s
}

/// Rows: methods; columns: the axis values; cells: test metric mean ± std.
pub fn curve_table(axis: Axis, values: &[usize], points: &[SweepPoint]) -> String {
    let name = match axis {
        Axis::PromptLayer => "PL",
        Axis::PromptLength => "l",
    };
    let mut s = format!(
        "| Method |{}|\n|---|{}\n",
        values.iter().map(|v| format!(" {name} {v} ")).collect::<Vec<_>>().join("|"),
        "---|".repeat(values.len())
    );
    let mut methods: Vec<&str> = points.iter().map(|p| p.method.as_str()).collect();
    methods.dedup();
    for m in methods {
        s += &format!("| {m} |");
        for &v in values {
            let xs: Vec<f64> = points
                .iter()
                .filter(|p| p.method == m && (p.x == Some(v) || p.x.is_none()))
                .map(|p| 100.0 * p.outcome.test())
                .collect();
            s += &if xs.is_empty() { " - |".to_string() } else { format!(" {} |", mean_cell(&xs)) };
        }
        s += "\n";
    }
    s
}

/// Table 10's layout: one row per prompt layer with parameters, each task's metric, the
/// average, speed and memory.
pub fn tradeoff_table(
    setting: &PaperSetting,
    cells: &[Cell],
    reports: &[BenchReport],
    methods: &[MethodConfig],
) -> String {
    let mut s = format!(
        "| Method | Params |{}| Avg | Speed (tokens/ms) | Memory added (MiB) |\n|---|---|{}---|---|---|\n",
        task_columns(&setting.tasks),
        "---|".repeat(setting.tasks.len())
    );
    for (method, bench) in methods.iter().zip(reports) {
        let label = method.label();
        // The trained runs' count (their head has the task's classes).
        let params = cells
            .iter()
            .find(|c| c.method == label)
            .map(|c| c.report.trainable_params)
            .unwrap_or(bench.trainable_params);
        let means: Vec<(f64, String)> =
            setting.tasks.iter().filter_map(|&t| task_mean(cells, t, &label)).collect();
        let cols: String = means.iter().map(|(_, cell)| format!(" {cell} |")).collect();
        let avg = means.iter().map(|x| x.0).sum::<f64>() / means.len().max(1) as f64;
        s += &format!(
            "| {label} | {} |{cols} {avg:.1} | {:.2} | {:.0} |\n",
            thousands(params),
            bench.tokens_per_ms,
            added_mib(bench)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_task_names_print_as_in_the_paper() {
        assert_eq!(thousands(791_680), "791,680");
        assert_eq!(thousands(985), "985");
        assert_eq!(thousands(1_622_784), "1,622,784");
        assert_eq!(paper_task_name(TaskName::Sst2), "SST-2");
        assert_eq!(paper_task_name(TaskName::Subj), "Subj");
        assert_eq!(paper_task_name(TaskName::Mr), "MR");
    }
}
