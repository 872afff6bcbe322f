//! Labelled examples and data sets, the unit every loader returns and every sampler takes.
//!
//! An example keeps its raw text (one or two segments) and its class *index*; templates
//! (lpt-reference §4) are applied later, by [`crate::data::template::Template::render`], so the
//! same data can be rendered for either template style or a different mask token. The class
//! index refers to `Dataset::label_names`, which for the paper's tasks is the authors'
//! `get_labels()` order (`encoder-only/data/process.py`), the order their verbalizer uses.

use petune_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// One labelled example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The first (or only) text segment, `{S1}` in the templates.
    pub text_a: String,
    /// The second segment of pair tasks (`{S2}`), `None` for single-sentence tasks.
    pub text_b: Option<String>,
    /// The class index into [`Dataset::label_names`].
    pub label: usize,
}

impl Example {
    /// A single-segment example.
    pub fn single(text_a: impl Into<String>, label: usize) -> Self {
        Example { text_a: text_a.into(), text_b: None, label }
    }

    /// A two-segment example.
    pub fn pair(text_a: impl Into<String>, text_b: impl Into<String>, label: usize) -> Self {
        Example { text_a: text_a.into(), text_b: Some(text_b.into()), label }
    }
}

/// A labelled data set: the examples of one file (or one sampled split) of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// The task name (the authors' spelling for built-in tasks, e.g. `sst-2`, `mr`).
    pub task: String,
    /// Class names; `Example::label` indexes this list.
    pub label_names: Vec<String>,
    /// The examples, in file (or sampling) order.
    pub examples: Vec<Example>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Number of classes.
    pub fn num_labels(&self) -> usize {
        self.label_names.len()
    }

    /// Examples per class, indexed like `label_names`.
    ///
    /// Labels outside `label_names` (only possible in a hand-built data set; see
    /// [`Dataset::validate`]) are not counted.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.label_names.len()];
        for ex in &self.examples {
            if let Some(c) = counts.get_mut(ex.label) {
                *c += 1;
            }
        }
        counts
    }

    /// Checks that every label indexes `label_names` (loaders guarantee it; hand-built or
    /// deserialized data sets may not).
    pub fn validate(&self) -> Result<()> {
        for (i, ex) in self.examples.iter().enumerate() {
            if ex.label >= self.label_names.len() {
                return Err(Error::input(format!(
                    "data set `{}`: example {i} has label {} but there are only {} classes",
                    self.task,
                    ex.label,
                    self.label_names.len()
                )));
            }
        }
        Ok(())
    }

    /// A data set of the same task and classes holding `examples`.
    pub fn with_examples(&self, examples: Vec<Example>) -> Dataset {
        Dataset { task: self.task.clone(), label_names: self.label_names.clone(), examples }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds() -> Dataset {
        Dataset {
            task: "t".into(),
            label_names: vec!["a".into(), "b".into(), "c".into()],
            examples: vec![
                Example::single("x", 0),
                Example::single("y", 2),
                Example::pair("z", "w", 2),
            ],
        }
    }

    #[test]
    fn counts_and_len() {
        let d = ds();
        assert_eq!(d.len(), 3);
        assert!(!d.is_empty());
        assert_eq!(d.num_labels(), 3);
        assert_eq!(d.label_counts(), vec![1, 0, 2]);
        assert!(d.validate().is_ok());
        assert!(d.with_examples(vec![]).is_empty());
    }

    #[test]
    fn validate_rejects_out_of_range_label() {
        let mut d = ds();
        d.examples.push(Example::single("bad", 3));
        assert!(matches!(d.validate(), Err(Error::Input(m)) if m.contains("label 3")));
        assert_eq!(d.label_counts(), vec![1, 0, 2]);
    }

    #[test]
    fn serde_round_trip() {
        let d = ds();
        let s = serde_json::to_string(&d).unwrap();
        assert!(s.contains("\"text_b\":null"));
        let back: Dataset = serde_json::from_str(&s).unwrap();
        assert_eq!(back, d);
    }
}
