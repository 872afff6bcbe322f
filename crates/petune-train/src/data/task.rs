//! The paper's ten tasks, and three more binary sentiment tasks: labels, metrics, file
//! layouts, templates and label words.
//!
//! The three extra tasks ([`TaskName::VADER`]: `tweets`, `amazon`, `nyt`) are not in the
//! paper. They are binarized from Hutto & Gilbert's (ICWSM 2014) human-rated snippets, which
//! ship with vaderSentiment next to the MR data (`crate::data::load::vader`, docs/tasks.md).
//! Being sentiment tasks, they take MR's template, label words and GPT-2 pattern, and MR's
//! layout (so the few-shot sampler treats them exactly as MR).
//!
//! For the paper's ten, everything here is read off the authors' code (github.com/xyltt/LPT @ 634c7b2,
//! lpt-reference §4 and §6): label order = `get_labels()`, label words = `get_label_map()`
//! (`encoder-only/data/process.py`), GPT-2 patterns and words = `get_templates()`
//! (`decoder-only/data/utils.py`), metric keys = `get_metric_key()`
//! (`encoder-only/run_roberta.py`). Two template styles exist:
//!
//! - [`TemplateStyle::AuthorsCode`] (default): the strings baked into `process.py`, e.g.
//!   `{S1} . It was <mask> .`; this is what produced the paper's numbers.
//! - [`TemplateStyle::Paper`]: the templates the paper's Table 8 lists after LM-BFF (Gao et al.
//!   2021), with LM-BFF's exact spacing and sentence edits from its `run_experiment.sh`
//!   (e.g. `*cls**sent_0*_It_was*mask*.*sep+*` → `{text} It was{mask}.`). Spacing follows
//!   LM-BFF's token sequence: with RoBERTa's left-stripping `<mask>`, `was{mask}.` yields
//!   `Ġwas <mask> .` exactly as LM-BFF's part-wise encoding does, whereas `was {mask} .`
//!   would yield `Ġ.`. Subj uses LM-BFF's `This is` [I: the authors' code uses `It was`].
//!
//! Label words are identical in both styles. They are returned *without* a leading space:
//! for byte-level BPE (RoBERTa, GPT-2) the caller must tokenize `" " + word` (the authors
//! assert `' ' + word` is one `Ġword` token); for WordPiece (BERT) tokenize `word` itself.

use std::fmt;
use std::str::FromStr;

use petune_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::metrics::Metric;
use super::template::{Slot, Template, TemplatePart};

/// The paper's tasks (Tables 1-3, 6), and the three VADER sentiment tasks (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskName {
    /// SST-2 (GLUE), binary sentiment.
    #[serde(alias = "sst-2", alias = "SST-2")]
    Sst2,
    /// MNLI (GLUE), 3-way entailment.
    #[serde(alias = "MNLI")]
    Mnli,
    /// MRPC (GLUE), paraphrase.
    #[serde(alias = "MRPC")]
    Mrpc,
    /// QNLI (GLUE), question-answer entailment.
    #[serde(alias = "QNLI")]
    Qnli,
    /// QQP (GLUE), duplicate questions.
    #[serde(alias = "QQP")]
    Qqp,
    /// RTE (GLUE), entailment.
    #[serde(alias = "RTE")]
    Rte,
    /// MR, movie-review polarity (LM-BFF layout).
    #[serde(alias = "MR")]
    Mr,
    /// MPQA, opinion polarity (LM-BFF layout).
    #[serde(alias = "MPQA")]
    Mpqa,
    /// Subj, subjectivity (LM-BFF layout).
    #[serde(alias = "SUBJ", alias = "Subj")]
    Subj,
    /// TREC, 6-way question type (LM-BFF layout).
    #[serde(alias = "TREC")]
    Trec,
    /// Tweet-like texts rated by humans (Hutto & Gilbert 2014), binarized (not in the paper).
    Tweets,
    /// Amazon review sentences rated by humans (Hutto & Gilbert 2014; reviews of Hu & Liu
    /// 2004), binarized (not in the paper).
    Amazon,
    /// New York Times editorial sentences rated by humans (Hutto & Gilbert 2014),
    /// binarized (not in the paper).
    #[serde(alias = "NYT")]
    Nyt,
}

/// Which template variant to use (module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateStyle {
    /// The templates in the authors' `process.py` (lpt-reference §4.1 table).
    #[default]
    AuthorsCode,
    /// Paper Table 8 / LM-BFF manual templates.
    Paper,
    /// No template: prompt methods read the raw text (pair), as model tuning does, and
    /// an `auto` head is a linear head on `[CLS]` (issue #13: the plain re-creation's
    /// choice; docs/results.md). [`TaskName::template`] gives the authors' template.
    Raw,
}

/// How a task's files are laid out on disk (lpt-reference §6 "Formats").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileLayout {
    /// GLUE TSV with a header row, task-specific columns.
    GlueTsv,
    /// LM-BFF data for MR/MPQA/Subj/TREC: `label\ttext` TSV without header in the authors'
    /// code, `label,"text"` CSV without header in LM-BFF's own release.
    LmBff,
}

/// A data split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training data.
    Train,
    /// Development (model-selection) data.
    Dev,
    /// Test data.
    Test,
}

/// GPT-2's direct LM scoring verbalizer (lpt-reference §4.2, `get_templates()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LmVerbalizer {
    /// The authors' pattern with `%s` for the label word (`"It was %s ."`).
    pub pattern: String,
    /// One word per class, in label order.
    pub label_words: Vec<String>,
}

impl LmVerbalizer {
    /// The per-class label descriptions GPT-2 scores: the pattern stripped, with the word
    /// substituted and one leading space (`" It was great ."`), as `prepare_data` builds them.
    /// The caller tokenizes each, finds the first token where they differ, and treats the
    /// tokens before it as context and the rest (plus EOS) as the target.
    pub fn descriptions(&self) -> Vec<String> {
        self.label_words
            .iter()
            .map(|w| format!(" {}", self.pattern.replace("%s", w).trim()))
            .collect()
    }
}

/// A task's complete prompt-learning description, for built-in and custom tasks alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Task name (becomes `Dataset::task`).
    pub name: String,
    /// Class names; class index = position.
    pub label_names: Vec<String>,
    /// One verbalizer word per class, no leading space (module docs).
    pub label_words: Vec<String>,
    /// The MLM template.
    pub template: Template,
    /// The evaluation / selection metric.
    pub metric: Metric,
    /// GPT-2 LM-scoring pattern with `%s` for the label word (`"It was %s ."`), when the
    /// task has one (lpt-reference.md §4.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm_pattern: Option<String>,
    /// The label words are the class names because none were given (a custom task). An
    /// `auto` head then uses the MLM verbalizer only when every name is one token for
    /// the tokenizer, and a linear head at the mask otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub label_words_from_names: bool,
    /// Inputs are the raw text even for methods that use a template
    /// ([`TemplateStyle::Raw`]); heads then read `[CLS]` (or the last token), not a mask.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw_text: bool,
}

impl TaskSpec {
    /// A custom task: `template` in the text form of [`Template::parse`] (`{text}`,
    /// `{text_pair}`, `{mask}`), accuracy as metric (see [`TaskSpec::with_metric`]).
    ///
    /// Errors ([`Error::Config`]): unparsable template, fewer than two or duplicate label
    /// names, a label-word count that differs from the label count, empty or duplicate words.
    pub fn new(
        name: impl Into<String>,
        label_names: Vec<String>,
        template: &str,
        label_words: Vec<String>,
    ) -> Result<TaskSpec> {
        let spec = TaskSpec {
            name: name.into(),
            label_names,
            label_words,
            template: Template::parse(template)?,
            metric: Metric::Accuracy,
            lm_pattern: None,
            label_words_from_names: false,
            raw_text: false,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Replaces the metric. [`Metric::AccAndF1`] needs exactly two classes (binary F1).
    pub fn with_metric(mut self, metric: Metric) -> Result<TaskSpec> {
        self.metric = metric;
        self.validate()?;
        Ok(self)
    }

    /// Checks the invariants [`TaskSpec::new`] documents (useful after deserializing).
    pub fn validate(&self) -> Result<()> {
        let n = self.label_names.len();
        if n < 2 {
            return Err(Error::config("label_names", format!("need at least 2 classes, got {n}")));
        }
        if let Some(d) = first_duplicate(&self.label_names) {
            return Err(Error::config("label_names", format!("duplicate class `{d}`")));
        }
        if self.label_words.len() != n {
            return Err(Error::config(
                "label_words",
                format!("{} words for {n} classes", self.label_words.len()),
            ));
        }
        if let Some(w) = self.label_words.iter().find(|w| w.trim().is_empty()) {
            return Err(Error::config("label_words", format!("empty label word `{w}`")));
        }
        if let Some(d) = first_duplicate(&self.label_words) {
            return Err(Error::config(
                "label_words",
                format!("`{d}` verbalizes two classes, which could never be told apart"),
            ));
        }
        if self.metric == Metric::AccAndF1 && n != 2 {
            return Err(Error::config(
                "metric",
                format!("acc_and_f1 is binary, task has {n} classes"),
            ));
        }
        Ok(())
    }

    /// Index of a class name.
    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.label_names.iter().position(|l| l == name)
    }
}

fn first_duplicate(xs: &[String]) -> Option<&String> {
    xs.iter().enumerate().find(|(i, x)| xs[..*i].contains(x)).map(|(_, x)| x)
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

impl TaskName {
    /// Every task: the paper's ten, then the three VADER tasks.
    pub const ALL: [TaskName; 13] = {
        let (paper, vader) = (Self::PAPER, Self::VADER);
        let mut all = [TaskName::Sst2; 13];
        let mut i = 0;
        while i < all.len() {
            all[i] = if i < paper.len() { paper[i] } else { vader[i - paper.len()] };
            i += 1;
        }
        all
    };

    /// The three binary sentiment tasks made from vaderSentiment's human-rated snippets
    /// (module docs; not in the paper).
    pub const VADER: [TaskName; 3] = [TaskName::Tweets, TaskName::Amazon, TaskName::Nyt];

    /// The paper's ten tasks.
    pub const PAPER: [TaskName; 10] = [
        TaskName::Sst2,
        TaskName::Mnli,
        TaskName::Mrpc,
        TaskName::Qnli,
        TaskName::Qqp,
        TaskName::Rte,
        TaskName::Mr,
        TaskName::Mpqa,
        TaskName::Subj,
        TaskName::Trec,
    ];

    /// The authors' `--task_name` spelling (`sst-2`, `mnli`, `mr`, ...), also the few-shot
    /// output directory name.
    pub fn authors_name(&self) -> &'static str {
        match self {
            TaskName::Sst2 => "sst-2",
            TaskName::Mnli => "mnli",
            TaskName::Mrpc => "mrpc",
            TaskName::Qnli => "qnli",
            TaskName::Qqp => "qqp",
            TaskName::Rte => "rte",
            TaskName::Mr => "mr",
            TaskName::Mpqa => "mpqa",
            TaskName::Subj => "subj",
            TaskName::Trec => "trec",
            TaskName::Tweets => "tweets",
            TaskName::Amazon => "amazon",
            TaskName::Nyt => "nyt",
        }
    }

    /// True for the VADER tasks ([`TaskName::VADER`]), whose data is a rated-snippets file.
    pub fn is_vader(&self) -> bool {
        TaskName::VADER.contains(self)
    }

    /// The directory name in the original data (`glue_data/SST-2`, `MNLI`, ...; lowercase
    /// `mr`, `mpqa`, `subj`, `trec`), as `generate_low_resource_data.py --task` expects.
    pub fn data_dir_name(&self) -> &'static str {
        match self {
            TaskName::Sst2 => "sst-2",
            TaskName::Mnli => "MNLI",
            TaskName::Mrpc => "MRPC",
            TaskName::Qnli => "QNLI",
            TaskName::Qqp => "QQP",
            TaskName::Rte => "RTE",
            other => other.authors_name(),
        }
    }

    /// Class names in `get_labels()` order: raw label strings as they appear in the files.
    pub fn label_names(&self) -> &'static [&'static str] {
        match self {
            TaskName::Mnli => &["contradiction", "entailment", "neutral"],
            TaskName::Qnli | TaskName::Rte => &["entailment", "not_entailment"],
            TaskName::Trec => &["0", "1", "2", "3", "4", "5"],
            _ => &["0", "1"],
        }
    }

    /// Number of classes.
    pub fn num_labels(&self) -> usize {
        self.label_names().len()
    }

    /// The metric (`get_metric_key`): MRPC/QQP acc_and_f1, MNLI avg of m/mm, else accuracy.
    pub fn metric(&self) -> Metric {
        match self {
            TaskName::Mrpc | TaskName::Qqp => Metric::AccAndF1,
            TaskName::Mnli => Metric::MnliAvg,
            _ => Metric::Accuracy,
        }
    }

    /// The on-disk layout.
    pub fn layout(&self) -> FileLayout {
        match self {
            // The VADER tasks are handled as MR (their pools are header-less lists).
            TaskName::Mr
            | TaskName::Mpqa
            | TaskName::Subj
            | TaskName::Trec
            | TaskName::Tweets
            | TaskName::Amazon
            | TaskName::Nyt => FileLayout::LmBff,
            _ => FileLayout::GlueTsv,
        }
    }

    /// True for sentence-pair tasks.
    pub fn is_pair(&self) -> bool {
        matches!(
            self,
            TaskName::Mnli | TaskName::Mrpc | TaskName::Qnli | TaskName::Qqp | TaskName::Rte
        )
    }

    /// File names of a split in `<data_dir>/<task>/` (the authors' processors): MNLI's dev and
    /// test come as a matched and a mismatched file.
    pub fn file_names(&self, split: Split) -> &'static [&'static str] {
        match (self, split) {
            (_, Split::Train) => &["train.tsv"],
            (TaskName::Mnli, Split::Dev) => &["dev_matched.tsv", "dev_mismatched.tsv"],
            (TaskName::Mnli, Split::Test) => &["test_matched.tsv", "test_mismatched.tsv"],
            (_, Split::Dev) => &["dev.tsv"],
            (_, Split::Test) => &["test.tsv"],
        }
    }

    /// The MLM template of `style` (module docs).
    pub fn template(&self, style: TemplateStyle) -> Template {
        use TemplatePart as P;
        let parts = match (style, self) {
            // '{} . It was <mask> .'
            (
                TemplateStyle::AuthorsCode | TemplateStyle::Raw,
                TaskName::Sst2
                | TaskName::Mr
                | TaskName::Mpqa
                | TaskName::Subj
                | TaskName::Tweets
                | TaskName::Amazon
                | TaskName::Nyt,
            ) => vec![P::a(), P::lit(" . It was "), P::Mask, P::lit(" .")],
            // '<mask> : {}'
            (TemplateStyle::AuthorsCode | TemplateStyle::Raw, TaskName::Trec) => {
                vec![P::Mask, P::lit(" : "), P::a()]
            }
            // '{} <mask> , {}'
            (TemplateStyle::AuthorsCode | TemplateStyle::Raw, TaskName::Qqp) => {
                vec![P::a(), P::lit(" "), P::Mask, P::lit(" , "), P::b()]
            }
            // '{} ? <mask> , {}' (MNLI, QNLI, RTE, MRPC)
            (TemplateStyle::AuthorsCode | TemplateStyle::Raw, _) => {
                vec![P::a(), P::lit(" ? "), P::Mask, P::lit(" , "), P::b()]
            }
            // *cls**sent_0*_It_was*mask*.*sep+*
            (
                TemplateStyle::Paper,
                TaskName::Sst2
                | TaskName::Mr
                | TaskName::Mpqa
                | TaskName::Tweets
                | TaskName::Amazon
                | TaskName::Nyt,
            ) => {
                vec![P::a(), P::lit(" It was"), P::Mask, P::lit(".")]
            }
            // *cls**sent_0*_This_is*mask*.*sep+*
            (TemplateStyle::Paper, TaskName::Subj) => {
                vec![P::a(), P::lit(" This is"), P::Mask, P::lit(".")]
            }
            // *cls**mask*:*+sent_0**sep+*
            (TemplateStyle::Paper, TaskName::Trec) => vec![P::Mask, P::lit(": "), P::a()],
            // *cls**sent_0**mask*,*+sentl_1**sep+*
            (TemplateStyle::Paper, TaskName::Mrpc | TaskName::Qqp) => {
                vec![P::a(), P::Mask, P::lit(", "), P::text(Slot::B, true, false)]
            }
            // *cls**sent-_0*?*mask*,*+sentl_1**sep+* (MNLI, QNLI, RTE)
            (TemplateStyle::Paper, _) => vec![
                P::text(Slot::A, false, true),
                P::lit("?"),
                P::Mask,
                P::lit(", "),
                P::text(Slot::B, true, false),
            ],
        };
        // Each list has one mask, one {text} and no adjacent literals; the test
        // `builtin_templates_are_canonical` re-checks them through `Template::new`.
        Template::from_trusted_parts(parts)
    }

    /// Verbalizer words in label order, without the leading space (module docs). The same
    /// for both styles: LM-BFF's mappings equal the authors' `get_label_map()`.
    pub fn label_words(&self, _style: TemplateStyle) -> Vec<String> {
        strings(match self {
            TaskName::Sst2
            | TaskName::Mr
            | TaskName::Mpqa
            | TaskName::Tweets
            | TaskName::Amazon
            | TaskName::Nyt => &["terrible", "great"],
            TaskName::Subj => &["subjective", "objective"],
            TaskName::Trec => {
                &["Description", "Entity", "Expression", "Human", "Location", "Number"]
            }
            TaskName::Mnli => &["No", "Yes", "Maybe"],
            TaskName::Qnli | TaskName::Rte => &["Yes", "No"],
            TaskName::Mrpc | TaskName::Qqp => &["No", "Yes"],
        })
    }

    /// GPT-2's verbalizer (`get_templates()`), `None` for MNLI and QQP, which the authors'
    /// decoder code does not support (`NotImplementedError`).
    pub fn gpt2_verbalizer(&self) -> Option<LmVerbalizer> {
        let pattern = match self {
            TaskName::Mnli | TaskName::Qqp => return None,
            t if t.is_pair() => "They are %s .",
            _ => "It was %s .",
        };
        // Same words and order as the MLM verbalizer: rte/qnli [Yes, No], mrpc [No, Yes].
        Some(LmVerbalizer {
            pattern: pattern.to_string(),
            label_words: self.label_words(TemplateStyle::AuthorsCode),
        })
    }

    /// The task as a [`TaskSpec`].
    pub fn spec(&self, style: TemplateStyle) -> TaskSpec {
        TaskSpec {
            name: self.authors_name().to_string(),
            label_names: strings(self.label_names()),
            label_words: self.label_words(style),
            template: self.template(style),
            metric: self.metric(),
            lm_pattern: self.gpt2_verbalizer().map(|v| v.pattern),
            label_words_from_names: false,
            raw_text: style == TemplateStyle::Raw,
        }
    }

    /// Index of a raw label string in [`TaskName::label_names`].
    pub fn label_index(&self, raw: &str) -> Option<usize> {
        self.label_names().iter().position(|l| *l == raw)
    }
}

/// Displays the authors' spelling ([`TaskName::authors_name`]).
impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.authors_name())
    }
}

/// Case-insensitive; `-` and `_` are ignored, so `sst-2`, `SST-2`, `sst2`, `MNLI`, `mr` all
/// parse. Unknown names are [`Error::Config`] with field `task`.
impl FromStr for TaskName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        TaskName::ALL.into_iter().find(|t| t.authors_name().replace('-', "") == norm).ok_or_else(
            || {
                Error::config(
                    "task",
                    format!(
                        "unknown task `{s}` (known: {})",
                        TaskName::ALL.map(|t| t.authors_name()).join(", ")
                    ),
                )
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        for (s, t) in [
            ("sst-2", TaskName::Sst2),
            ("SST-2", TaskName::Sst2),
            ("sst2", TaskName::Sst2),
            ("MNLI", TaskName::Mnli),
            ("mr", TaskName::Mr),
            ("Subj", TaskName::Subj),
            (" qqp ", TaskName::Qqp),
            ("tweets", TaskName::Tweets),
            ("Amazon", TaskName::Amazon),
            ("NYT", TaskName::Nyt),
        ] {
            assert_eq!(s.parse::<TaskName>().unwrap(), t, "{s}");
        }
        assert!(matches!("mnli-mm".parse::<TaskName>(), Err(Error::Config { .. })));
        assert!("cola".parse::<TaskName>().is_err());
        for t in TaskName::ALL {
            assert_eq!(t.to_string().parse::<TaskName>().unwrap(), t);
        }
    }

    #[test]
    fn serde_snake_case_with_aliases() {
        assert_eq!(serde_json::to_string(&TaskName::Sst2).unwrap(), "\"sst2\"");
        assert_eq!(serde_json::from_str::<TaskName>("\"sst-2\"").unwrap(), TaskName::Sst2);
        assert_eq!(serde_json::from_str::<TaskName>("\"MNLI\"").unwrap(), TaskName::Mnli);
        assert_eq!(serde_json::from_str::<TaskName>("\"trec\"").unwrap(), TaskName::Trec);
    }

    #[test]
    fn metrics_and_layouts() {
        assert_eq!(TaskName::Mrpc.metric(), Metric::AccAndF1);
        assert_eq!(TaskName::Qqp.metric(), Metric::AccAndF1);
        assert_eq!(TaskName::Mnli.metric(), Metric::MnliAvg);
        assert_eq!(TaskName::Trec.metric(), Metric::Accuracy);
        assert_eq!(TaskName::Mr.layout(), FileLayout::LmBff);
        assert_eq!(TaskName::Rte.layout(), FileLayout::GlueTsv);
        for t in TaskName::VADER {
            // Sampled as MR is (accumulated shuffles), scored by accuracy.
            assert_eq!(t.layout(), FileLayout::LmBff);
            assert_eq!(t.metric(), Metric::Accuracy);
            assert!(t.is_vader() && !TaskName::PAPER.contains(&t));
        }
        assert_eq!(TaskName::PAPER.len() + TaskName::VADER.len(), TaskName::ALL.len());
        assert_eq!(
            TaskName::Mnli.file_names(Split::Dev),
            &["dev_matched.tsv", "dev_mismatched.tsv"]
        );
        assert_eq!(TaskName::Sst2.data_dir_name(), "sst-2");
        assert_eq!(TaskName::Rte.data_dir_name(), "RTE");
    }

    #[test]
    fn every_spec_is_valid() {
        for t in TaskName::ALL {
            for style in [TemplateStyle::AuthorsCode, TemplateStyle::Paper] {
                let spec = t.spec(style);
                spec.validate().unwrap();
                assert_eq!(spec.label_words.len(), t.num_labels());
                assert_eq!(spec.template.uses_text_pair(), t.is_pair(), "{t} {style:?}");
            }
        }
    }

    #[test]
    fn builtin_templates_are_canonical() {
        for t in TaskName::ALL {
            for style in [TemplateStyle::AuthorsCode, TemplateStyle::Paper] {
                let tpl = t.template(style);
                assert_eq!(Template::new(tpl.parts().to_vec()).unwrap(), tpl, "{t} {style:?}");
                assert_eq!(Template::parse(&tpl.to_string()).unwrap(), tpl, "{t} {style:?}");
            }
        }
    }

    #[test]
    fn gpt2_descriptions() {
        let v = TaskName::Sst2.gpt2_verbalizer().unwrap();
        assert_eq!(v.descriptions(), vec![" It was terrible .", " It was great ."]);
        let v = TaskName::Rte.gpt2_verbalizer().unwrap();
        assert_eq!(v.descriptions(), vec![" They are Yes .", " They are No ."]);
        let v = TaskName::Mrpc.gpt2_verbalizer().unwrap();
        assert_eq!(v.label_words, vec!["No", "Yes"]);
        assert!(TaskName::Mnli.gpt2_verbalizer().is_none());
        assert!(TaskName::Qqp.gpt2_verbalizer().is_none());
    }

    #[test]
    fn custom_spec_errors() {
        let ok = TaskSpec::new(
            "sent",
            strings(&["neg", "pos"]),
            "Review: {text} All in all, it was {mask}.",
            strings(&["bad", "good"]),
        )
        .unwrap();
        assert_eq!(ok.label_index("pos"), Some(1));
        assert_eq!(
            ok.template.render("Nice.", None, "<mask>").unwrap(),
            "Review: Nice. All in all, it was <mask>."
        );
        let e = TaskSpec::new("x", strings(&["a", "b"]), "{text} {answer}", strings(&["y", "n"]))
            .unwrap_err();
        assert!(matches!(&e, Error::Config { field, .. } if field == "template"), "{e}");
        let e =
            TaskSpec::new("x", strings(&["a", "b"]), "{text} {mask}", strings(&["y"])).unwrap_err();
        assert!(matches!(&e, Error::Config { field, .. } if field == "label_words"), "{e}");
        let e = TaskSpec::new("x", strings(&["a", "a"]), "{text} {mask}", strings(&["y", "n"]))
            .unwrap_err();
        assert!(matches!(&e, Error::Config { field, .. } if field == "label_names"), "{e}");
        let e = TaskSpec::new("x", strings(&["a", "b"]), "{text} {mask}", strings(&["y", "y"]))
            .unwrap_err();
        assert!(matches!(&e, Error::Config { field, .. } if field == "label_words"), "{e}");
        let three = TaskSpec::new(
            "x",
            strings(&["a", "b", "c"]),
            "{text} {mask}",
            strings(&["1", "2", "3"]),
        )
        .unwrap();
        assert!(three.with_metric(Metric::AccAndF1).is_err());
    }
}
