//! The paper's evaluation metrics and the model-selection key (lpt-reference §6 "Metrics").
//!
//! The authors score with HF `glue_compute_metrics` (transformers 4.6.1): `acc` = simple
//! accuracy; MRPC/QQP `acc_and_f1` = (acc + F1)/2 with sklearn's binary F1 of class 1;
//! MNLI evaluates matched and mismatched dev sets and selects on their mean, `avg_acc`
//! (`get_metric_key` and `train()` in `encoder-only/run_roberta.py`). MR/MPQA/Subj/TREC use
//! the SST-2 metric, plain accuracy.

use std::collections::BTreeMap;

use petune_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which metric a task reports and selects on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Accuracy; key `acc`.
    Accuracy,
    /// (accuracy + binary F1 of class 1) / 2; key `acc_and_f1`.
    AccAndF1,
    /// Mean of MNLI matched and mismatched accuracy; key `avg_acc`.
    MnliAvg,
}

/// What [`Metric::compute`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    /// The metric.
    pub metric: Metric,
    /// Every named value, with HF's names (`acc`, `f1`, `acc_and_f1`, `mnli/acc`,
    /// `mnli-mm/acc`, `avg_acc`).
    pub values: BTreeMap<String, f64>,
    /// The name of the model-selection value (`get_metric_key`).
    pub key: String,
    /// The model-selection value itself; higher is better.
    pub headline: f64,
}

fn check(preds: &[usize], golds: &[usize]) -> Result<()> {
    if preds.len() != golds.len() {
        return Err(Error::input(format!(
            "metric: {} predictions but {} gold labels",
            preds.len(),
            golds.len()
        )));
    }
    if preds.is_empty() {
        return Err(Error::input("metric: no predictions to score"));
    }
    Ok(())
}

/// Fraction of predictions equal to the gold label.
pub fn accuracy(preds: &[usize], golds: &[usize]) -> Result<f64> {
    check(preds, golds)?;
    let hits = preds.iter().zip(golds).filter(|(p, g)| p == g).count();
    Ok(hits as f64 / preds.len() as f64)
}

/// Binary F1 of the positive class 1, as sklearn's `f1_score(y_true, y_pred)`.
///
/// F1 = 2·TP / (2·TP + FP + FN). When there is neither a predicted nor a gold positive the
/// ratio is 0/0; sklearn then warns and returns 0.0, and so does this. Labels other than 0
/// and 1 are an error (sklearn refuses multiclass input for the binary average).
pub fn f1(preds: &[usize], golds: &[usize]) -> Result<f64> {
    check(preds, golds)?;
    if let Some(bad) = preds.iter().chain(golds).find(|&&l| l > 1) {
        return Err(Error::input(format!("binary F1: label {bad} is neither 0 nor 1")));
    }
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (&p, &g) in preds.iter().zip(golds) {
        match (p, g) {
            (1, 1) => tp += 1,
            (1, _) => fp += 1,
            (_, 1) => fneg += 1,
            _ => {}
        }
    }
    let denom = 2 * tp + fp + fneg;
    Ok(if denom == 0 { 0.0 } else { (2 * tp) as f64 / denom as f64 })
}

/// Mean and sample standard deviation (n − 1) of results over seeds, as the paper's
/// "mean ± std" tables; std 0 for a single value.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// HF's `acc_and_f1`: the mean of [`accuracy`] and [`f1`].
pub fn acc_and_f1(preds: &[usize], golds: &[usize]) -> Result<f64> {
    Ok((accuracy(preds, golds)? + f1(preds, golds)?) / 2.0)
}

impl Metric {
    /// The model-selection key (`get_metric_key`; MNLI's `avg_acc` from `train()`).
    pub fn key(&self) -> &'static str {
        match self {
            Metric::Accuracy => "acc",
            Metric::AccAndF1 => "acc_and_f1",
            Metric::MnliAvg => "avg_acc",
        }
    }

    /// Scores one evaluation set.
    ///
    /// [`Metric::MnliAvg`] needs two sets; it is an error here, use [`Metric::compute_mnli`]
    /// (in the authors' few-shot data both MNLI dev files are the same sample, so pass it
    /// twice).
    pub fn compute(&self, preds: &[usize], golds: &[usize]) -> Result<MetricReport> {
        let mut values = BTreeMap::new();
        match self {
            Metric::Accuracy => {
                values.insert("acc".to_string(), accuracy(preds, golds)?);
            }
            Metric::AccAndF1 => {
                let acc = accuracy(preds, golds)?;
                let f = f1(preds, golds)?;
                values.insert("acc".to_string(), acc);
                values.insert("f1".to_string(), f);
                values.insert("acc_and_f1".to_string(), (acc + f) / 2.0);
            }
            Metric::MnliAvg => return Err(Error::input(
                "MNLI's metric averages matched and mismatched accuracy: use Metric::compute_mnli",
            )),
        }
        Ok(self.report(values))
    }

    /// Scores MNLI's matched and mismatched dev sets: `mnli/acc`, `mnli-mm/acc` and their
    /// mean `avg_acc`, the headline.
    pub fn compute_mnli(
        matched_preds: &[usize],
        matched_golds: &[usize],
        mismatched_preds: &[usize],
        mismatched_golds: &[usize],
    ) -> Result<MetricReport> {
        let m = accuracy(matched_preds, matched_golds)?;
        let mm = accuracy(mismatched_preds, mismatched_golds)?;
        let mut values = BTreeMap::new();
        values.insert("mnli/acc".to_string(), m);
        values.insert("mnli-mm/acc".to_string(), mm);
        values.insert("avg_acc".to_string(), (m + mm) / 2.0);
        Ok(Metric::MnliAvg.report(values))
    }

    fn report(&self, values: BTreeMap<String, f64>) -> MetricReport {
        let key = self.key().to_string();
        // Every branch above inserts its key, so the fallback is unreachable.
        let headline = values.get(&key).copied().unwrap_or(f64::NAN);
        MetricReport { metric: *self, values, key, headline }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_accuracy_and_f1() {
        // golds 1 1 1 0 0 0 1 0, preds 1 0 1 1 0 0 1 1:
        // hits at 0,2,4,5,6 → acc 5/8; TP 3 (0,2,6), FP 2 (3,7), FN 1 (1) → F1 6/9.
        let g = [1, 1, 1, 0, 0, 0, 1, 0];
        let p = [1, 0, 1, 1, 0, 0, 1, 1];
        assert!(close(accuracy(&p, &g).unwrap(), 0.625));
        assert!(close(f1(&p, &g).unwrap(), 2.0 / 3.0));
        assert!(close(acc_and_f1(&p, &g).unwrap(), (0.625 + 2.0 / 3.0) / 2.0));
        let r = Metric::AccAndF1.compute(&p, &g).unwrap();
        assert_eq!(r.key, "acc_and_f1");
        assert!(close(r.headline, (0.625 + 2.0 / 3.0) / 2.0));
        assert!(close(r.values["f1"], 2.0 / 3.0));
    }

    #[test]
    fn f1_without_positives_is_zero() {
        assert_eq!(f1(&[0, 0], &[0, 0]).unwrap(), 0.0);
        assert!(matches!(f1(&[2], &[1]), Err(Error::Input(_))));
    }

    #[test]
    fn accuracy_multiclass_and_report() {
        let r = Metric::Accuracy.compute(&[0, 5, 3, 3], &[0, 5, 2, 3]).unwrap();
        assert_eq!(r.key, "acc");
        assert!(close(r.headline, 0.75));
        assert_eq!(r.values.len(), 1);
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"metric\":\"accuracy\""), "{j}");
    }

    #[test]
    fn mnli_average() {
        let r = Metric::compute_mnli(&[0, 1, 2, 2], &[0, 1, 2, 0], &[1, 1], &[1, 0]).unwrap();
        assert!(close(r.values["mnli/acc"], 0.75));
        assert!(close(r.values["mnli-mm/acc"], 0.5));
        assert!(close(r.headline, 0.625));
        assert_eq!(r.key, "avg_acc");
        assert_eq!(r.metric, Metric::MnliAvg);
        assert!(Metric::MnliAvg.compute(&[0], &[0]).is_err());
    }

    #[test]
    fn empty_and_mismatched_are_errors() {
        assert!(matches!(accuracy(&[], &[]), Err(Error::Input(_))));
        assert!(matches!(accuracy(&[1], &[1, 0]), Err(Error::Input(_))));
        assert!(Metric::Accuracy.compute(&[], &[]).is_err());
        assert!(Metric::compute_mnli(&[0], &[0], &[], &[]).is_err());
    }
}
