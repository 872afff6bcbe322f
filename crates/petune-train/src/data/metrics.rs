//! The paper's evaluation metrics and the model-selection key (lpt-reference §6 "Metrics").
//!
//! The authors score with HF `glue_compute_metrics` (transformers 4.6.1): `acc` = simple
//! accuracy; MRPC/QQP `acc_and_f1` = (acc + F1)/2 with sklearn's binary F1 of class 1;
//! MNLI evaluates matched and mismatched dev sets and selects on their mean, `avg_acc`
//! (`get_metric_key` and `train()` in `encoder-only/run_roberta.py`). MR/MPQA/Subj/TREC use
//! the SST-2 metric, plain accuracy.
//!
//! For the user's own tasks there are also macro-F1 and Matthews' correlation, both as
//! scikit-learn computes them (`f1_score(average="macro")`, `matthews_corrcoef`), and a
//! per-class report (precision, recall, F1, support) with the confusion matrix, as
//! `classification_report` and `confusion_matrix` print them.

use std::collections::BTreeMap;

use petune_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which metric a task reports and selects on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Accuracy; key `acc`.
    #[serde(alias = "acc")]
    Accuracy,
    /// (accuracy + binary F1 of class 1) / 2; key `acc_and_f1`.
    AccAndF1,
    /// Mean of MNLI matched and mismatched accuracy; key `avg_acc`.
    MnliAvg,
    /// Unweighted mean of the per-class F1 over the classes that occur in the gold labels
    /// or the predictions (scikit-learn's `average="macro"`); key `macro_f1`.
    #[serde(alias = "f1_macro")]
    MacroF1,
    /// Matthews' correlation coefficient, multi-class form (scikit-learn's
    /// `matthews_corrcoef`; 0 when undefined); key `mcc`.
    #[serde(alias = "mcc")]
    Matthews,
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Class name.
    pub label: String,
    /// Of the examples predicted as this class, the fraction that are (0 when none is).
    pub precision: f64,
    /// Of the examples of this class, the fraction predicted as it (0 when none exists).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Gold examples of this class.
    pub support: usize,
}

/// A per-class evaluation: what `petune eval` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// One entry per class, in class order.
    pub classes: Vec<ClassScores>,
    /// `confusion[gold][predicted]`: example counts.
    pub confusion: Vec<Vec<usize>>,
    /// Accuracy.
    pub accuracy: f64,
    /// Macro-F1 ([`Metric::MacroF1`]).
    pub macro_f1: f64,
}

/// `confusion[gold][predicted]` over `n` classes; labels at or past `n` are an error.
pub fn confusion_matrix(preds: &[usize], golds: &[usize], n: usize) -> Result<Vec<Vec<usize>>> {
    check(preds, golds)?;
    let mut m = vec![vec![0usize; n]; n];
    for (&p, &g) in preds.iter().zip(golds) {
        if p >= n || g >= n {
            return Err(Error::input(format!("metric: label {} but only {n} classes", p.max(g))));
        }
        m[g][p] += 1;
    }
    Ok(m)
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Per-class precision / recall / F1, the confusion matrix, accuracy and macro-F1 of
/// `preds` against `golds` for the classes `labels` (index = position).
pub fn classification_report(
    preds: &[usize],
    golds: &[usize],
    labels: &[String],
) -> Result<ClassificationReport> {
    let n = labels.len();
    let confusion = confusion_matrix(preds, golds, n)?;
    let classes: Vec<ClassScores> = (0..n)
        .map(|c| {
            let tp = confusion[c][c];
            let predicted: usize = (0..n).map(|g| confusion[g][c]).sum();
            let support: usize = confusion[c].iter().sum();
            let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
            let f1 = ratio(2 * tp, predicted + support);
            ClassScores { label: labels[c].clone(), precision, recall, f1, support }
        })
        .collect();
    let occurring: Vec<usize> =
        (0..n).filter(|&c| classes[c].support > 0 || (0..n).any(|g| confusion[g][c] > 0)).collect();
    let macro_f1 =
        occurring.iter().map(|&c| classes[c].f1).sum::<f64>() / occurring.len().max(1) as f64;
    Ok(ClassificationReport { accuracy: accuracy(preds, golds)?, macro_f1, classes, confusion })
}

/// Macro-F1 ([`Metric::MacroF1`]).
pub fn macro_f1(preds: &[usize], golds: &[usize]) -> Result<f64> {
    let n = preds.iter().chain(golds).max().map_or(0, |m| m + 1);
    let names: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    Ok(classification_report(preds, golds, &names)?.macro_f1)
}

/// Matthews' correlation coefficient for any number of classes, as scikit-learn:
/// `(c·s − Σ p_k t_k) / √((s² − Σ p_k²)(s² − Σ t_k²))`, 0 when the denominator is.
pub fn matthews(preds: &[usize], golds: &[usize]) -> Result<f64> {
    check(preds, golds)?;
    let n = preds.iter().chain(golds).max().map_or(0, |m| m + 1);
    let (mut t, mut p) = (vec![0f64; n], vec![0f64; n]);
    let mut correct = 0f64;
    for (&pr, &g) in preds.iter().zip(golds) {
        t[g] += 1.0;
        p[pr] += 1.0;
        if pr == g {
            correct += 1.0;
        }
    }
    let s = preds.len() as f64;
    let pt: f64 = p.iter().zip(&t).map(|(a, b)| a * b).sum();
    let pp: f64 = p.iter().map(|a| a * a).sum();
    let tt: f64 = t.iter().map(|a| a * a).sum();
    let denom = ((s * s - pp) * (s * s - tt)).sqrt();
    Ok(if denom == 0.0 { 0.0 } else { (correct * s - pt) / denom })
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
            Metric::MacroF1 => "macro_f1",
            Metric::Matthews => "mcc",
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
            Metric::MacroF1 => {
                values.insert("acc".to_string(), accuracy(preds, golds)?);
                values.insert("macro_f1".to_string(), macro_f1(preds, golds)?);
            }
            Metric::Matthews => {
                values.insert("acc".to_string(), accuracy(preds, golds)?);
                values.insert("mcc".to_string(), matthews(preds, golds)?);
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
    fn macro_f1_mcc_and_per_class_match_sklearn() {
        // Hand-computed with scikit-learn's formulas (macro over classes in golds ∪ preds;
        // the multi-class MCC of `matthews_corrcoef`).
        let g = [0, 0, 1, 1, 2, 2, 2, 0];
        let p = [0, 1, 1, 1, 2, 0, 1, 0];
        // class 0: tp 2, pred 3, gold 3 → F1 2/3; class 1: tp 2, pred 4, gold 2 → 2/3;
        // class 2: tp 1, pred 1, gold 3 → 1/2.
        let r = classification_report(&p, &g, &["a".into(), "b".into(), "c".into()]).unwrap();
        assert!(close(r.classes[0].f1, 2.0 / 3.0) && close(r.classes[1].f1, 2.0 / 3.0));
        assert!(close(r.classes[2].f1, 0.5) && close(r.classes[2].precision, 1.0));
        assert!(close(r.classes[1].recall, 1.0) && r.classes[2].support == 3);
        assert_eq!(r.confusion, vec![vec![2, 1, 0], vec![0, 2, 0], vec![1, 1, 1]]);
        assert!(close(r.macro_f1, (2.0 / 3.0 + 2.0 / 3.0 + 0.5) / 3.0));
        assert!(close(macro_f1(&p, &g).unwrap(), r.macro_f1));
        // c = 5, s = 8, p = (3, 4, 1), t = (3, 2, 3): (40 − 20) / √((64 − 26)(64 − 22)).
        let mcc = 20.0 / ((38.0f64) * 42.0).sqrt();
        assert!(close(matthews(&p, &g).unwrap(), mcc));
        let m = Metric::Matthews.compute(&p, &g).unwrap();
        assert_eq!(m.key, "mcc");
        assert!(close(m.headline, mcc));
        // A class absent from golds and predictions does not count in the macro average.
        let r =
            classification_report(&[0, 1], &[0, 1], &["a".into(), "b".into(), "c".into()]).unwrap();
        assert!(close(r.macro_f1, 1.0));
        assert_eq!(matthews(&[0, 0], &[0, 0]).unwrap(), 0.0);
        assert_eq!(serde_json::from_str::<Metric>("\"mcc\"").unwrap(), Metric::Matthews);
        assert_eq!(serde_json::from_str::<Metric>("\"macro_f1\"").unwrap(), Metric::MacroF1);
    }

    #[test]
    fn empty_and_mismatched_are_errors() {
        assert!(matches!(accuracy(&[], &[]), Err(Error::Input(_))));
        assert!(matches!(accuracy(&[1], &[1, 0]), Err(Error::Input(_))));
        assert!(Metric::Accuracy.compute(&[], &[]).is_err());
        assert!(Metric::compute_mnli(&[0], &[0], &[], &[]).is_err());
    }
}
