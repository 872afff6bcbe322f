//! The real MR asset (`load_mr_snippets`, `mr_split`) and few-shot sampling on it.
//!
//! The normal tests use an eight-line sample of the asset's format. The `#[ignore]`d one reads
//! `.assets/mr/movieReviewSnippets_GroundTruth.txt` (docs/assets.md) and skips when it is
//! absent; run it with `cargo test -p petune-train --test data_mr -- --ignored`. Its goldens:
//!
//! - split: `scripts/numpy_shuffle_golden.py --mr <file>` (an independent Python version of
//!   the stratified split, numpy 2.4.6): test size, positives, sum and head of the test ids;
//! - few-shot: the LPT authors' unmodified `generate_low_resource_data.py` (634c7b2) run on
//!   the seed-42 pool written by that script (`--write-pool`), `--task mr --k {100,500}`, default
//!   seeds and `--k_for_dev 1000`; its train/dev rows mapped back to MR ids.

use std::path::PathBuf;

use petune_core::Error;
use petune_train::data::load::{
    load_mr_snippets, mr_split, MR_NUM_EXAMPLES, MR_NUM_POSITIVE, MR_SPLIT_SEED, MR_TEST_SIZE,
};
use petune_train::data::{
    authors_splits, stratified_split, Dataset, TaskName, AUTHORS_SEEDS, K_DEV,
};

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

#[test]
fn sample_file_loads_with_labels_from_ids() {
    let d =
        load_mr_snippets(&repo("tests/fixtures/data/mr/movieReviewSnippets_sample.txt")).unwrap();
    assert_eq!(d.task, "mr");
    assert_eq!(d.label_names, vec!["0", "1"]);
    // ids 1, 2, 3, 5151, 5152 are positive; 5153, 5154, 10605 negative.
    assert_eq!(
        d.examples.iter().map(|e| e.label).collect::<Vec<_>>(),
        vec![1, 1, 1, 1, 1, 0, 0, 0]
    );
    assert_eq!(d.examples[2].text_a, "Effective but too tepid biopic");
    // CRLF endings are not part of the text; the last line has no line end at all.
    assert!(d.examples.iter().all(|e| !e.text_a.contains('\r')));
    assert!(d.examples[7].text_a.ends_with("In this case zero."));
    // The label words of MR's classes.
    assert_eq!(TaskName::Mr.label_words(Default::default()), vec!["terrible", "great"]);
    let (rest, test) = stratified_split(&d, 3, MR_SPLIT_SEED).unwrap();
    assert_eq!((rest.len(), test.len()), (5, 3));
    // round(3·3/8) = 1 negative, remainder 2 positive.
    assert_eq!(test.label_counts(), vec![1, 2]);
    // The sample is too small for the 2,000-example MR test set.
    assert!(matches!(mr_split(&d, MR_SPLIT_SEED), Err(Error::Input(_))));
}

#[test]
fn malformed_snippet_files() {
    for (f, what) in [
        ("mr_bad_id.txt", "mr_bad_id.txt:2: id 10606 is outside"),
        ("mr_two_fields.txt", "mr_two_fields.txt:2: expected `id<TAB>mean_rating<TAB>text`"),
        ("mr_bad_rating.txt", "mr_bad_rating.txt:1: mean rating `great`"),
        ("empty.tsv", "empty.tsv: empty file"),
    ] {
        match load_mr_snippets(&repo(&format!("tests/fixtures/data/malformed/{f}"))) {
            Err(Error::Input(m)) => assert!(m.contains(what), "want `{what}` in: {m}"),
            other => panic!("{f}: expected Error::Input, got {other:?}"),
        }
    }
}

/// The MR data with each text replaced by its id: sampling depends only on labels and order,
/// so the ids of whatever is sampled can be compared with the goldens.
fn tagged_by_id(all: &Dataset) -> Dataset {
    let mut d = all.clone();
    for (i, e) in d.examples.iter_mut().enumerate() {
        e.text_a = (i + 1).to_string();
    }
    d
}

fn ids(d: &Dataset) -> Vec<usize> {
    d.examples.iter().map(|e| e.text_a.parse().unwrap()).collect()
}

/// (k, seed, train positives, train id head, train id sum, dev positives, dev id head, dev id sum).
type FewShotGolden = (usize, u32, usize, [usize; 6], usize, usize, [usize; 4], usize);
const FEW_SHOT: &[FewShotGolden] = &[
    (
        100,
        100,
        49,
        [429, 4060, 4424, 4352, 212, 4911],
        536300,
        486,
        [1314, 3954, 1899, 3106],
        5282838,
    ),
    (
        100,
        13,
        49,
        [3730, 4845, 349, 2812, 1266, 4042],
        520009,
        486,
        [1421, 2177, 4160, 949],
        5340430,
    ),
    (100, 21, 49, [1289, 660, 2955, 4865, 54, 3157], 516860, 486, [1070, 3630, 3580, 138], 5320772),
    (
        100,
        42,
        49,
        [9291, 5887, 7666, 5259, 8920, 9047],
        515727,
        486,
        [6328, 7042, 6584, 6802],
        5243698,
    ),
    (
        100,
        87,
        49,
        [3423, 4055, 2933, 899, 4728, 3939],
        521343,
        486,
        [4029, 112, 1277, 2178],
        5336174,
    ),
    (
        500,
        100,
        243,
        [429, 4060, 4424, 4352, 212, 4911],
        2700571,
        486,
        [4810, 3825, 3485, 4422],
        5224056,
    ),
    (
        500,
        13,
        243,
        [3730, 4845, 349, 2812, 1266, 4042],
        2636998,
        486,
        [1115, 999, 3259, 2991],
        5346002,
    ),
    (
        500,
        21,
        243,
        [1289, 660, 2955, 4865, 54, 3157],
        2664309,
        486,
        [3494, 225, 4785, 653],
        5239624,
    ),
    (
        500,
        42,
        243,
        [9291, 5887, 7666, 5259, 8920, 9047],
        2589169,
        486,
        [10371, 6190, 8747, 9632],
        5282265,
    ),
    (
        500,
        87,
        243,
        [3423, 4055, 2933, 899, 4728, 3939],
        2633615,
        486,
        [2672, 2786, 4868, 2839],
        5371982,
    ),
];

#[test]
#[ignore = "reads the real MR asset from .assets/ (scripts/setup.sh); skips if absent"]
fn real_mr_file_split_and_authors_few_shot() {
    let path = repo(".assets/mr/movieReviewSnippets_GroundTruth.txt");
    if !path.exists() {
        eprintln!("skipping: {} is absent", path.display());
        return;
    }
    let all = load_mr_snippets(&path).unwrap();
    assert_eq!(all.len(), MR_NUM_EXAMPLES);
    assert_eq!(all.label_counts(), vec![MR_NUM_EXAMPLES - MR_NUM_POSITIVE, MR_NUM_POSITIVE]);
    assert_eq!(all.examples[2].text_a, "Effective but too tepid biopic");

    let tagged = tagged_by_id(&all);
    // (seed, test id sum, first 8 test ids) from scripts/numpy_shuffle_golden.py --mr.
    for (seed, sum, head) in [
        (42u32, 10_610_404usize, [1, 4, 9, 11, 15, 20, 24, 30]),
        (0, 10_672_044, [10, 16, 19, 24, 32, 33, 34, 37]),
    ] {
        let (pool, test) = mr_split(&tagged, seed).unwrap();
        assert_eq!((pool.len(), test.len()), (MR_NUM_EXAMPLES - MR_TEST_SIZE, MR_TEST_SIZE));
        assert_eq!(test.label_counts(), vec![1028, 972]);
        let t = ids(&test);
        assert_eq!(t.iter().sum::<usize>(), sum, "seed {seed}");
        assert_eq!(t[..8], head, "seed {seed}");
    }

    let (pool, _) = mr_split(&tagged, MR_SPLIT_SEED).unwrap();
    for k in [100, 500] {
        let run = authors_splits(TaskName::Mr, &pool, k, K_DEV, &AUTHORS_SEEDS).unwrap();
        for (seed, split) in AUTHORS_SEEDS.into_iter().zip(run) {
            let g = FEW_SHOT.iter().find(|g| g.0 == k && g.1 == seed).unwrap();
            let (tr, dv) = (ids(&split.train), ids(&split.dev));
            assert_eq!(tr.len(), k);
            assert_eq!(split.train.label_counts()[1], g.2, "k {k} seed {seed}");
            assert_eq!(tr[..6], g.3, "k {k} seed {seed}");
            assert_eq!(tr.iter().sum::<usize>(), g.4, "k {k} seed {seed}");
            assert_eq!(dv.len(), K_DEV);
            assert_eq!(split.dev.label_counts()[1], g.5, "k {k} seed {seed}");
            assert_eq!(dv[..4], g.6, "k {k} seed {seed}");
            assert_eq!(dv.iter().sum::<usize>(), g.7, "k {k} seed {seed}");
        }
    }
}
