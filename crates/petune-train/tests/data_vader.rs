//! The VADER tasks (`tweets`, `amazon`, `nyt`): parsing the rated-snippets format, the
//! binarization rule, petune's split and few-shot sampling on it, through the loader and
//! through a run config.
//!
//! The normal tests use `tests/fixtures/data/vader/rated_sample.txt` (ten hand-written lines
//! in the asset's format: ids `review_sentence`, CRLF, no final line end, ratings on both sides
//! of the margin), the malformed files of `tests/fixtures/data/malformed/vader_*.txt`, and a
//! synthetic 2,400-line file written by the test. The `#[ignore]`d one reads the real files
//! from `.assets/vader/` (scripts/setup.sh) and skips when they are absent; run it with
//! `cargo test -p petune-train --test data_vader -- --ignored --nocapture` (it prints the
//! counts docs/tasks.md records).

use std::path::{Path, PathBuf};

use petune_core::Error;
use petune_train::config::{DataSource, FewShotConfig, TaskConfig};
use petune_train::data::load::{
    load_vader_snippets, vader_file_name, vader_split, MR_SPLIT_SEED, VADER_TEST_SIZE,
};
use petune_train::data::{Dataset, TaskName, TemplateStyle};

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

#[test]
fn sample_file_binarizes_at_the_margin() {
    let d =
        load_vader_snippets(TaskName::Amazon, &repo("tests/fixtures/data/vader/rated_sample.txt"))
            .unwrap();
    assert_eq!(d.rated, 10);
    // 0.49, -0.49 and 0 are dropped; ±0.5 exactly are kept.
    assert_eq!(d.dropped, 3);
    let ds = &d.dataset;
    assert_eq!(ds.task, "amazon");
    assert_eq!(ds.label_names, vec!["0", "1"]);
    assert_eq!(ds.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![1, 0, 1, 0, 1, 0, 1]);
    assert_eq!(ds.label_counts(), vec![3, 4]);
    // Texts verbatim (entities kept), no line ends; the last line has no terminator.
    assert_eq!(ds.examples[2].text_a, "It does what it says &amp; nothing more.");
    assert!(ds.examples.iter().all(|e| !e.text_a.contains('\r') && e.text_b.is_none()));
    assert_eq!(ds.examples[6].text_a, "Picture quality is good for the price.");
    // Same file, another VADER task: same examples under that task's name.
    let t =
        load_vader_snippets(TaskName::Tweets, &repo("tests/fixtures/data/vader/rated_sample.txt"))
            .unwrap();
    assert_eq!(t.dataset.task, "tweets");
    assert_eq!(t.dataset.examples, ds.examples);
}

#[test]
fn malformed_rated_files() {
    for (f, what) in [
        ("vader_two_fields.txt", "vader_two_fields.txt:2: expected `id<TAB>mean_rating<TAB>text`"),
        ("vader_bad_rating.txt", "vader_bad_rating.txt:1: mean rating `good` is not a number"),
        ("vader_out_of_scale.txt", "vader_out_of_scale.txt:3: mean rating 4.5 is outside"),
        ("vader_nan_rating.txt", "vader_nan_rating.txt:1: mean rating NaN is outside"),
        ("vader_dup_id.txt", "vader_dup_id.txt:3: id `1_1` already used on line 1"),
        ("vader_empty_text.txt", "vader_empty_text.txt:2: empty text"),
        ("vader_empty_id.txt", "vader_empty_id.txt:1: empty id"),
        ("vader_one_class.txt", "0 negative and 2 positive examples remain"),
        ("empty.tsv", "empty.tsv: empty file"),
    ] {
        match load_vader_snippets(
            TaskName::Nyt,
            &repo(&format!("tests/fixtures/data/malformed/{f}")),
        ) {
            Err(Error::Input(m)) => assert!(m.contains(what), "want `{what}` in: {m}"),
            other => panic!("{f}: expected Error::Input, got {other:?}"),
        }
    }
    match load_vader_snippets(TaskName::Tweets, Path::new("/nonexistent/tweets.txt")) {
        Err(Error::Io { .. }) => {}
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

/// A synthetic rated file of 2,400 lines, the text of line `i` being `i`: per ten lines five
/// positive ratings, three negative, two inside the margin. So 1,200 positive, 720 negative,
/// 480 dropped.
fn synthetic(dir: &Path) -> PathBuf {
    const RATINGS: [&str; 10] =
        ["2.0", "-1.5", "0.2", "1.0", "3.0", "-0.5", "0.5", "-0.3", "1.5", "-2.2"];
    let lines: Vec<String> =
        (1..=2400).map(|i| format!("{i}\t{}\t{i}", RATINGS[(i - 1) % 10])).collect();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("synthetic_GroundTruth.txt");
    std::fs::write(&path, lines.join("\r\n")).unwrap();
    path
}

fn ids(d: &Dataset) -> Vec<usize> {
    d.examples.iter().map(|e| e.text_a.parse().unwrap()).collect()
}

fn task(path: &Path, seed: u32, style: TemplateStyle) -> TaskConfig {
    TaskConfig {
        kind: TaskName::Tweets.into(),
        data: DataSource::RatedSnippets { path: path.to_path_buf() },
        fewshot: Some(FewShotConfig { k: 100, seed, k_dev: 200 }),
        template_style: style,
    }
}

#[test]
fn split_sizes_stratification_and_determinism() {
    let dir = std::env::temp_dir().join(format!("petune-vader-{}", std::process::id()));
    let path = synthetic(&dir);
    let all = load_vader_snippets(TaskName::Tweets, &path).unwrap();
    assert_eq!((all.rated, all.dropped), (2400, 480));
    assert_eq!(all.dataset.label_counts(), vec![720, 1200]);

    let (pool, test) = vader_split(&all.dataset, MR_SPLIT_SEED).unwrap();
    assert_eq!((pool.len(), test.len()), (920, VADER_TEST_SIZE));
    // round(1000 · 720 / 1920) = 375 negative, the remaining 625 positive.
    assert_eq!(test.label_counts(), vec![375, 625]);
    let (p, t) = (ids(&pool), ids(&test));
    assert!(t.iter().all(|i| !p.contains(i)), "test and pool overlap");
    // Both keep file order.
    assert!(p.windows(2).all(|w| w[0] < w[1]) && t.windows(2).all(|w| w[0] < w[1]));
    // Seeded: the same seed gives the same split, another seed another one.
    assert_eq!(vader_split(&all.dataset, MR_SPLIT_SEED).unwrap().1, test);
    assert_ne!(vader_split(&all.dataset, 0).unwrap().1, test);

    // Through a run config: the test set is that split's, whatever the few-shot seed; train
    // and dev come from the pool, disjoint, k = 100 and k_dev = 200, stratified.
    let mut trains = Vec::new();
    for seed in [13, 42, 100] {
        let data = task(&path, seed, TemplateStyle::AuthorsCode).load().unwrap();
        assert_eq!(data.test.as_ref().unwrap(), &test, "seed {seed}");
        let (tr, dv) = (ids(&data.train), ids(&data.dev));
        assert_eq!((tr.len(), dv.len()), (100, 200));
        assert!(tr.iter().chain(&dv).all(|i| p.contains(i)), "seed {seed}: outside the pool");
        assert!(tr.iter().all(|i| !dv.contains(i)), "seed {seed}: train and dev overlap");
        // Pool: 345 negative, 575 positive. Whichever class the shuffle meets first gets
        // its rounded share: round(100 · 345 / 920) = round(37.5) = 38, or round(62.5) = 62
        // (half to even); the other the remainder. Dev from the 307 / 513 left:
        // round(200 · 307 / 820) = 75 or round(200 · 513 / 820) = 125.
        assert_eq!(data.train.label_counts(), vec![38, 62], "seed {seed}");
        assert_eq!(data.dev.label_counts(), vec![75, 125], "seed {seed}");
        // Deterministic: loading again gives the same split.
        let again = task(&path, seed, TemplateStyle::AuthorsCode).load().unwrap();
        assert_eq!((again.train, again.dev), (data.train.clone(), data.dev));
        trains.push(tr);
    }
    assert!(trains[0] != trains[1] && trains[1] != trains[2]);

    // MR's template and label words; raw-text mode reads the text alone.
    let data = task(&path, 13, TemplateStyle::AuthorsCode).load().unwrap();
    assert_eq!(data.spec.label_words, vec!["terrible", "great"]);
    assert_eq!(data.spec.template, TaskName::Mr.template(TemplateStyle::AuthorsCode));
    assert!(!data.spec.raw_text);
    let raw = task(&path, 13, TemplateStyle::Raw).load().unwrap();
    assert!(raw.spec.raw_text);
    assert_eq!(raw.train, data.train);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_configs_name_the_tasks_and_their_data() {
    let json = r#"{"name": "tweets", "data": {"kind": "rated_snippets", "path": "t.txt"},
                   "fewshot": {"k": 100, "seed": 13, "k_dev": 200}, "template_style": "raw"}"#;
    let t: TaskConfig = serde_json::from_str(json).unwrap();
    assert_eq!(t.builtin_name(), Some(TaskName::Tweets));
    assert_eq!(t.template_style, TemplateStyle::Raw);
    assert_eq!(serde_json::from_value::<TaskConfig>(serde_json::to_value(&t).unwrap()).unwrap(), t);
    for (name, task) in
        [("amazon", TaskName::Amazon), ("NYT", TaskName::Nyt), ("nyt", TaskName::Nyt)]
    {
        assert_eq!(name.parse::<TaskName>().unwrap(), task);
    }
    // A VADER task on the MR file, or MR on a rated file, is refused with the fix named.
    let wrong = TaskConfig {
        kind: TaskName::Nyt.into(),
        data: DataSource::MrSnippets { path: "mr.txt".into() },
        fewshot: None,
        template_style: Default::default(),
    };
    let e = wrong.load().unwrap_err().to_string();
    assert!(
        e.contains("rated_snippets") && e.contains(vader_file_name(TaskName::Nyt).unwrap()),
        "{e}"
    );
    let wrong = TaskConfig {
        kind: TaskName::Mr.into(),
        data: DataSource::RatedSnippets {
            path: repo("tests/fixtures/data/vader/rated_sample.txt"),
        },
        fewshot: None,
        template_style: Default::default(),
    };
    let e = wrong.load().unwrap_err().to_string();
    assert!(e.contains("tweets, amazon, nyt") && e.contains("not `mr`"), "{e}");
}

#[test]
#[ignore = "reads the real VADER files from .assets/vader (scripts/setup.sh); skips if absent"]
fn real_vader_files() {
    // (task, rated, dropped, negative, positive) of the files scripts/setup.sh installs.
    let want = [
        (TaskName::Tweets, 4200, 768, 1087, 2345),
        (TaskName::Amazon, 3708, 723, 1235, 1750),
        (TaskName::Nyt, 5190, 2220, 1783, 1187),
    ];
    for (task, rated, dropped, neg, pos) in want {
        let path = repo(&format!(".assets/vader/{}", vader_file_name(task).unwrap()));
        if !path.exists() {
            eprintln!("skipping: {} is absent", path.display());
            return;
        }
        let d = load_vader_snippets(task, &path).unwrap();
        let (pool, test) = vader_split(&d.dataset, MR_SPLIT_SEED).unwrap();
        println!(
            "{task}: {} rated, {} dropped, kept {} (negative {}, positive {}); test {} ({:?}), pool {} ({:?})",
            d.rated,
            d.dropped,
            d.dataset.len(),
            d.dataset.label_counts()[0],
            d.dataset.label_counts()[1],
            test.len(),
            test.label_counts(),
            pool.len(),
            pool.label_counts()
        );
        assert_eq!((d.rated, d.dropped), (rated, dropped), "{task}");
        assert_eq!(d.dataset.label_counts(), vec![neg, pos], "{task}");
        assert_eq!(test.len(), VADER_TEST_SIZE);
        // The authors' largest protocol fits in every pool: k = 500 plus 1,000 dev.
        let cfg = TaskConfig {
            kind: task.into(),
            data: DataSource::RatedSnippets { path },
            fewshot: Some(FewShotConfig { k: 500, seed: 87, k_dev: 1000 }),
            template_style: Default::default(),
        };
        let data = cfg.load().unwrap();
        assert_eq!((data.train.len(), data.dev.len()), (500, 1000), "{task}");
    }
}
