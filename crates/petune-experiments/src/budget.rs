//! Equal training-time budgets: a method's measured seconds per optimizer step, and the
//! step count that fills a budget of training seconds with it (issue #13: LPT is cheaper
//! per step than model tuning, so in the same wall time it takes more steps — the
//! comparison a user who pays for time makes; the paper's Table 5 reports the per-step
//! costs this converts).
//!
//! Only the optimizer steps count (`TrainReport::step_seconds`: forward, backward,
//! update, and filling the frozen-prefix cache), not the dev evaluations, whose number
//! depends on the run's length rather than on the method.

use petune_train::TrainReport;

use crate::error::{ExperimentError, Result};

/// Seconds per optimizer step, pooled over `reports` (total step seconds ÷ total steps),
/// so a longer run weighs more than a short one.
///
/// ```
/// use petune_experiments::budget::pooled_seconds_per_step;
///
/// assert_eq!(pooled_seconds_per_step(&[(6.0, 20), (10.0, 20)]).unwrap(), 0.4);
/// assert!(pooled_seconds_per_step(&[]).is_err());
/// ```
pub fn pooled_seconds_per_step(runs: &[(f64, i64)]) -> Result<f64> {
    let secs: f64 = runs.iter().map(|r| r.0).sum();
    let steps: i64 = runs.iter().map(|r| r.1).sum();
    if steps <= 0 || !secs.is_finite() || secs <= 0.0 {
        return Err(ExperimentError::invalid(format!(
            "no measured optimizer steps to time ({steps} steps, {secs} s): the runs \
             predate `step_seconds` or did not train"
        )));
    }
    Ok(secs / steps as f64)
}

/// [`pooled_seconds_per_step`] of finished runs' reports.
pub fn seconds_per_step<'a>(reports: impl IntoIterator<Item = &'a TrainReport>) -> Result<f64> {
    let runs: Vec<(f64, i64)> = reports.into_iter().map(|r| (r.step_seconds, r.steps)).collect();
    pooled_seconds_per_step(&runs)
}

/// The optimizer steps a method at `secs_per_step` fits into `budget_secs`: the whole
/// steps that fit (rounded down, so no method gets more time than the budget), at least
/// one.
///
/// ```
/// use petune_experiments::budget::steps_for_budget;
///
/// // Model tuning's 60 steps at 0.8 s are a 48 s budget; LPT at 0.3 s/step gets 160.
/// assert_eq!(steps_for_budget(48.0, 0.3).unwrap(), 160);
/// assert_eq!(steps_for_budget(48.0, 0.8).unwrap(), 60);
/// ```
pub fn steps_for_budget(budget_secs: f64, secs_per_step: f64) -> Result<i64> {
    if !(budget_secs.is_finite() && budget_secs > 0.0) {
        return Err(ExperimentError::invalid(format!(
            "training-time budget {budget_secs} s: expected a positive number of seconds"
        )));
    }
    if !(secs_per_step.is_finite() && secs_per_step > 0.0) {
        return Err(ExperimentError::invalid(format!(
            "{secs_per_step} s per step: expected a positive measured time"
        )));
    }
    // A hair of slack so that a budget set as exactly n steps' time gives n, not n − 1,
    // after the division rounds.
    let steps = (budget_secs / secs_per_step * (1.0 + 1e-9)).floor();
    if steps > i64::MAX as f64 / 2.0 {
        return Err(ExperimentError::invalid(format!(
            "a {budget_secs} s budget at {secs_per_step} s per step is {steps} steps: too many"
        )));
    }
    Ok((steps as i64).max(1))
}

/// The equal-time view's plan: the budget, what set it, and each method's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct TimePlan {
    /// Training seconds (optimizer steps only) every method gets.
    pub budget_secs: f64,
    /// The method whose `steps` at its measured time set the budget, or `None` when the
    /// budget was given.
    pub set_by: Option<String>,
    /// `(method, seconds per step, steps in the budget)`, in the input's order.
    pub steps: Vec<(String, f64, i64)>,
}

/// Plans the equal-time view from each method's measured seconds per step: the budget
/// is `budget_secs` when given, else what the slowest method needs for `steps` steps
/// (so it keeps exactly its equal-steps runs), and every method gets the steps that fit.
///
/// ```
/// use petune_experiments::budget::plan_equal_time;
///
/// let measured = [("npg".to_string(), 0.2), ("mt".to_string(), 0.8)];
/// let plan = plan_equal_time(&measured, 50, None).unwrap();
/// assert_eq!((plan.budget_secs, plan.set_by.as_deref()), (40.0, Some("mt")));
/// assert_eq!(plan.steps[0].2, 200);
/// assert_eq!(plan.steps[1].2, 50);
/// ```
pub fn plan_equal_time(
    secs_per_step: &[(String, f64)],
    steps: i64,
    budget_secs: Option<f64>,
) -> Result<TimePlan> {
    if steps < 1 {
        return Err(ExperimentError::invalid(format!("{steps} steps: expected at least 1")));
    }
    let slowest = secs_per_step
        .iter()
        .filter(|(_, s)| s.is_finite())
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| ExperimentError::invalid("no method was timed"))?;
    let (budget_secs, set_by) = match budget_secs {
        Some(b) => (b, None),
        None => (slowest.1 * steps as f64, Some(slowest.0.clone())),
    };
    let steps = secs_per_step
        .iter()
        .map(|(m, s)| Ok((m.clone(), *s, steps_for_budget(budget_secs, *s)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(TimePlan { budget_secs, set_by, steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_of_the_slowest_method_gives_it_its_own_steps_and_others_more() {
        // Measured: model tuning 0.75 s/step, prompt tuning 0.5, LPT 0.2; 60 steps of
        // model tuning set the budget.
        let budget = 60.0 * 0.75;
        assert_eq!(steps_for_budget(budget, 0.75).unwrap(), 60);
        assert_eq!(steps_for_budget(budget, 0.5).unwrap(), 90);
        assert_eq!(steps_for_budget(budget, 0.2).unwrap(), 225);
        // Rounded down: 45 / 0.7 = 64.3 steps.
        assert_eq!(steps_for_budget(budget, 0.7).unwrap(), 64);
        // Never fewer than one step.
        assert_eq!(steps_for_budget(0.1, 5.0).unwrap(), 1);
    }

    #[test]
    fn pooled_time_weighs_runs_by_their_steps() {
        // 2 s over 10 steps (0.2 s/step) and 30 s over 100 (0.3): pooled 32 / 110,
        // not the unweighted mean 0.25.
        let s = pooled_seconds_per_step(&[(2.0, 10), (30.0, 100)]).unwrap();
        assert!((s - 32.0 / 110.0).abs() < 1e-12, "{s}");
    }

    #[test]
    fn bad_measurements_and_budgets_are_errors() {
        assert!(pooled_seconds_per_step(&[(0.0, 40)]).is_err());
        assert!(pooled_seconds_per_step(&[(f64::NAN, 40)]).is_err());
        assert!(pooled_seconds_per_step(&[(1.0, 0)]).is_err());
        for (b, s) in [(0.0, 0.5), (-1.0, 0.5), (f64::INFINITY, 0.5), (10.0, 0.0), (10.0, f64::NAN)]
        {
            assert!(steps_for_budget(b, s).is_err(), "{b} / {s}");
        }
        assert!(steps_for_budget(1e300, 1e-300).is_err());
    }

    #[test]
    fn plan_sets_the_budget_by_the_slowest_method_or_takes_it_given() {
        let m = |n: &str, s: f64| (n.to_string(), s);
        let measured = [m("npg", 0.25), m("pt", 0.6), m("mt", 0.75)];
        let plan = plan_equal_time(&measured, 60, None).unwrap();
        assert_eq!(plan.set_by.as_deref(), Some("mt"));
        assert!((plan.budget_secs - 45.0).abs() < 1e-12);
        let steps: Vec<i64> = plan.steps.iter().map(|s| s.2).collect();
        assert_eq!(steps, vec![180, 75, 60]);
        // A given budget: 30 s.
        let plan = plan_equal_time(&measured, 60, Some(30.0)).unwrap();
        assert_eq!(plan.set_by, None);
        let steps: Vec<i64> = plan.steps.iter().map(|s| s.2).collect();
        assert_eq!(steps, vec![120, 50, 40]);
        assert!(plan_equal_time(&[], 60, None).is_err());
        assert!(plan_equal_time(&measured, 0, None).is_err());
        assert!(plan_equal_time(&measured, 60, Some(-1.0)).is_err());
    }
}
