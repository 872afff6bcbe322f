//! The three VADER sentiment tasks (`tweets`, `amazon`, `nyt`): Hutto & Gilbert's
//! human-rated snippets, binarized, and petune's fixed split of each.
//!
//! Source: `hutto_ICWSM_2014.tar.gz` in the vaderSentiment 3.3.2 sdist (C. J. Hutto and
//! E. Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social Media
//! Text", ICWSM 2014; its `_README_.txt` describes the files). Each `*_GroundTruth.txt` is
//! tab-separated `id, mean_rating, text` with `\r\n` line ends, the rating being the mean of at
//! least 20 raters on a −4 … +4 scale:
//!
//! | task | file | sentences |
//! |---|---|---|
//! | `tweets` | `tweets_GroundTruth.txt` | 4,200 tweet-like texts |
//! | `amazon` | `amazonReviewSnippets_GroundTruth.txt` | 3,708 review sentences (Hu & Liu 2004) |
//! | `nyt` | `nytEditorialSnippets_GroundTruth.txt` | 5,190 editorial sentences |
//!
//! **Binarization** ([`binarize`]): positive (`"1"`, `great`) when the mean rating is at least
//! [`VADER_MARGIN`] = +0.5, negative (`"0"`, `terrible`) when it is at most −0.5, dropped in
//! between. The margin is read off the MR file of the same archive, the one corpus there with
//! independent labels: the sign of the mean rating agrees with Pang & Lee's label on 56 % of
//! the sentences with |rating| < 0.25 and 77 % of those in [0.25, 0.5), but on 89 % in
//! [0.5, 0.75) and 92–98 % above (docs/tasks.md has the table). Below 0.5 the raters' sign is
//! too close to a coin toss to be a label. The texts are kept verbatim (the tweets' `&amp;`
//! included).
//!
//! **Split** ([`vader_split`]): as MR's ([`super::mr_split`]): a [`VADER_TEST_SIZE`]-example
//! test set stratified by label ([`crate::data::fewshot::stratified_split`], numpy-seeded with
//! [`super::MR_SPLIT_SEED`]), the rest the pool the authors' few-shot sampler draws from. 1,000
//! is the largest round size that leaves every pool at least 1,500 examples, the paper's
//! largest k (500) plus the authors' 1,000 dev examples (the smallest pool, `nyt`'s, keeps
//! 1,970).

use std::collections::HashMap;
use std::path::Path;

use petune_core::{Error, Result};

use super::text::{line_error, rated_lines, read_text};
use crate::data::example::{Dataset, Example};
use crate::data::fewshot::stratified_split;
use crate::data::task::TaskName;

/// Mean ratings with |rating| below this are dropped (module docs).
pub const VADER_MARGIN: f64 = 0.5;
/// The raters' scale is −4 … +4; a mean outside it means the file is not the one meant.
pub const VADER_SCALE: f64 = 4.0;
/// Size of petune's test set of each VADER task (module docs).
pub const VADER_TEST_SIZE: usize = 1_000;

/// What a rated-snippets file holds, and what binarizing it kept.
#[derive(Debug, Clone, PartialEq)]
pub struct VaderData {
    /// The kept examples in file order, labels `"0"` (negative) and `"1"` (positive).
    pub dataset: Dataset,
    /// Lines read (examples before binarization).
    pub rated: usize,
    /// Examples dropped for a mean rating strictly between −[`VADER_MARGIN`] and +it.
    pub dropped: usize,
}

/// The label of a mean rating: `Some(1)` at or above +[`VADER_MARGIN`], `Some(0)` at or below
/// −[`VADER_MARGIN`], `None` (dropped) in between.
pub fn binarize(rating: f64) -> Option<usize> {
    if rating >= VADER_MARGIN {
        Some(1)
    } else if rating <= -VADER_MARGIN {
        Some(0)
    } else {
        None
    }
}

/// The ground-truth file name of a VADER task in the archive (module docs), `None` for
/// other tasks.
pub fn vader_file_name(task: TaskName) -> Option<&'static str> {
    match task {
        TaskName::Tweets => Some("tweets_GroundTruth.txt"),
        TaskName::Amazon => Some("amazonReviewSnippets_GroundTruth.txt"),
        TaskName::Nyt => Some("nytEditorialSnippets_GroundTruth.txt"),
        _ => None,
    }
}

/// Loads a `*_GroundTruth.txt` file (or any file in its format) in file order as `task`,
/// binarized with [`binarize`].
///
/// Errors ([`Error::Config`]) for a task that is not a VADER task; ([`Error::Input`] with file
/// and line): a line without exactly three tab-separated fields; an empty id, or one seen
/// before (the line of its first use named); a rating that is not a finite number in
/// −4 … +4; empty text; a file with no examples, or whose kept examples are all of one
/// class.
pub fn load_vader_snippets(task: TaskName, path: &Path) -> Result<VaderData> {
    if !task.is_vader() {
        return Err(Error::config(
            "task.data",
            format!(
                "`rated_snippets` data is for the tasks {}, not `{task}`",
                TaskName::VADER.map(|t| t.authors_name()).join(", ")
            ),
        ));
    }
    let text = read_text(path)?;
    let shown = path.display().to_string();
    let mut examples = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut rated = 0;
    for row in rated_lines(&text, &shown)? {
        let at = |msg: String| line_error(&shown, row.line_no, msg);
        let (id, rating) = (row.id, row.rating);
        if id.is_empty() {
            return Err(at("empty id".into()));
        }
        if let Some(first) = seen.insert(id, row.line_no) {
            return Err(at(format!("id `{id}` already used on line {first}")));
        }
        if !(rating.is_finite() && rating.abs() <= VADER_SCALE) {
            return Err(at(format!(
                "mean rating {rating} is outside the raters' scale −{VADER_SCALE} … +{VADER_SCALE}"
            )));
        }
        if row.text.trim().is_empty() {
            return Err(at("empty text".into()));
        }
        rated += 1;
        if let Some(label) = binarize(rating) {
            examples.push(Example::single(row.text, label));
        }
    }
    if rated == 0 {
        return Err(Error::input(format!("{shown}: empty file")));
    }
    let dataset = Dataset {
        task: task.authors_name().to_string(),
        label_names: task.label_names().iter().map(|s| s.to_string()).collect(),
        examples,
    };
    let counts = dataset.label_counts();
    if counts.contains(&0) {
        return Err(Error::input(format!(
            "{shown}: after dropping the {} ratings within ±{VADER_MARGIN} of 0, {} negative and \
             {} positive examples remain: a binary task needs both",
            rated - dataset.len(),
            counts[0],
            counts[1]
        )));
    }
    Ok(VaderData { dropped: rated - dataset.len(), dataset, rated })
}

/// petune's split of a VADER task: `(pool, test)` with [`VADER_TEST_SIZE`] test examples
/// stratified by label (module docs); both keep file order.
pub fn vader_split(all: &Dataset, seed: u32) -> Result<(Dataset, Dataset)> {
    stratified_split(all, VADER_TEST_SIZE, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_inclusive_on_both_sides() {
        assert_eq!(binarize(0.5), Some(1));
        assert_eq!(binarize(3.9), Some(1));
        assert_eq!(binarize(-0.5), Some(0));
        assert_eq!(binarize(-4.0), Some(0));
        for r in [0.0, 0.49999, -0.49999, 0.25, -0.3] {
            assert_eq!(binarize(r), None, "{r}");
        }
    }

    #[test]
    fn only_vader_tasks_have_files() {
        for t in TaskName::ALL {
            assert_eq!(vader_file_name(t).is_some(), t.is_vader(), "{t}");
        }
        let e = load_vader_snippets(TaskName::Mr, Path::new("x.txt")).unwrap_err();
        assert!(matches!(&e, Error::Config { field, .. } if field == "task.data"), "{e}");
    }
}
