//! The real MR data shipped with vaderSentiment, and petune's fixed split of it.
//!
//! `movieReviewSnippets_GroundTruth.txt` (docs/assets.md; Hutto & Gilbert, ICWSM 2014) holds
//! the 10,605 sentences of Pang & Lee's sentence polarity data set v1.0 (MR) as tab-separated
//! `id, mean_rating, text`, with `\r\n` line ends. Ids 1–5152 are the MR positive sentences,
//! 5153–10605 the negative ones; the label comes from the id range (the human mean rating
//! agrees about 95% of the time, so it is not used). Classes follow the authors' MR
//! processor: `"0"` = negative (`terrible`), `"1"` = positive (`great`).
//!
//! MR has no official split. The paper tests on 2,000 MR sentences (Table 6), so
//! [`mr_split`] fixes one: a 2,000-example test set stratified by label
//! ([`crate::data::fewshot::stratified_split`], numpy-seeded), the other 8,605 sentences
//! forming the pool from which the few-shot train and dev sets are sampled with the authors'
//! protocol ([`crate::data::fewshot::sample_few_shot`]). With [`MR_SPLIT_SEED`] this is
//! petune's canonical MR split.

use std::path::Path;

use petune_core::{Error, Result};

use super::text::{line_error, rated_lines, read_text};
use crate::data::example::{Dataset, Example};
use crate::data::fewshot::stratified_split;
use crate::data::task::TaskName;

/// Sentences in the MR file.
pub const MR_NUM_EXAMPLES: usize = 10_605;
/// Positive sentences (ids `1..=5152`).
pub const MR_NUM_POSITIVE: usize = 5_152;
/// Size of petune's MR test set (paper Table 6: 2,000).
pub const MR_TEST_SIZE: usize = 2_000;
/// The seed of petune's canonical MR split.
pub const MR_SPLIT_SEED: u32 = 42;

/// Loads `movieReviewSnippets_GroundTruth.txt` (or any file in its format) in file order as
/// task `mr`, labels from the ids.
///
/// Errors ([`Error::Input`] with file and line): empty file; a line without exactly three
/// tab-separated fields; an id that is not an integer in `1..=10605`; a rating that is not a
/// number (a cheap check that the file is the one meant).
pub fn load_mr_snippets(path: &Path) -> Result<Dataset> {
    let text = read_text(path)?;
    let shown = path.display().to_string();
    let mut examples = Vec::new();
    for row in rated_lines(&text, &shown)? {
        let at = |msg: String| line_error(&shown, row.line_no, msg);
        let id = row.id;
        let id: usize = id.parse().map_err(|_| at(format!("id `{id}` is not an integer")))?;
        if !(1..=MR_NUM_EXAMPLES).contains(&id) {
            return Err(at(format!("id {id} is outside 1..={MR_NUM_EXAMPLES}")));
        }
        let label = usize::from(id <= MR_NUM_POSITIVE);
        examples.push(Example::single(row.text, label));
    }
    if examples.is_empty() {
        return Err(Error::input(format!("{shown}: empty file")));
    }
    let task = TaskName::Mr;
    Ok(Dataset {
        task: task.authors_name().to_string(),
        label_names: task.label_names().iter().map(|s| s.to_string()).collect(),
        examples,
    })
}

/// petune's MR split: `(pool, test)` with [`MR_TEST_SIZE`] test examples stratified by label
/// (module docs); both keep file order. On the full file with any seed: pool 8,605, test
/// 2,000 (1,028 negative + 972 positive: `round(2000·5453/10605) = 1028`).
pub fn mr_split(all: &Dataset, seed: u32) -> Result<(Dataset, Dataset)> {
    stratified_split(all, MR_TEST_SIZE, seed)
}
