//! Loaders on the hand-written fixtures in `tests/fixtures/data/` (see its README), and one
//! malformed file per typed error.

use std::path::PathBuf;

use petune_core::Error;
use petune_train::data::load::{
    load_csv, load_glue_tsv, load_jsonl, load_lmbff_csv, load_lmbff_tsv, load_split, load_task_file,
};
use petune_train::data::{Dataset, Example, Split, TaskName};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data").join(rel)
}

/// The error message of an expected [`Error::Input`].
fn input_err(r: petune_core::Result<Dataset>) -> String {
    match r {
        Err(Error::Input(m)) => m,
        Err(e) => panic!("expected Error::Input, got {e:?}"),
        Ok(d) => panic!("expected an error, loaded {} examples: {d:?}", d.len()),
    }
}

#[test]
fn glue_sst2() {
    let d = load_glue_tsv(TaskName::Sst2, &fixture("glue/SST-2/train.tsv")).unwrap();
    assert_eq!(d.task, "sst-2");
    assert_eq!(d.label_names, vec!["0", "1"]);
    assert_eq!(d.len(), 5);
    assert_eq!(d.label_counts(), vec![2, 3]);
    // Texts are kept verbatim, trailing space included (GLUE SST-2 has them).
    assert_eq!(d.examples[1], Example::single("unflinchingly bleak and desperate ", 0));
    assert!(d.examples.iter().all(|e| e.text_b.is_none()));
}

#[test]
fn glue_mrpc_columns_and_literal_quotes() {
    let d = load_glue_tsv(TaskName::Mrpc, &fixture("glue/MRPC/train.tsv")).unwrap();
    assert_eq!(d.len(), 3);
    assert_eq!(d.label_counts(), vec![1, 2]);
    let e = &d.examples[0];
    assert_eq!(e.label, 1);
    // quotechar=None: the `"` are text, not CSV quoting.
    assert!(e.text_a.starts_with("Amrozi accused his brother , whom he called \" the witness \""));
    assert!(e.text_b.as_deref().unwrap().starts_with("Referring to him as only \" the witness \""));
}

#[test]
fn glue_mnli_label_is_last_column_in_train_and_dev() {
    let dev = load_glue_tsv(TaskName::Mnli, &fixture("glue/MNLI/dev_matched.tsv")).unwrap();
    assert_eq!(dev.label_names, vec!["contradiction", "entailment", "neutral"]);
    assert_eq!(dev.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![2, 0, 1]);
    assert_eq!(dev.examples[0].text_a, "The new rights are nice enough");
    assert_eq!(
        dev.examples[0].text_b.as_deref(),
        Some("Everyone really likes the newest benefits ")
    );
    let train = load_glue_tsv(TaskName::Mnli, &fixture("glue/MNLI/train.tsv")).unwrap();
    assert_eq!(train.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![2, 1]);
    // load_split gives matched then mismatched.
    let dev = load_split(TaskName::Mnli, &fixture("glue/MNLI"), Split::Dev).unwrap();
    assert_eq!(dev.iter().map(Dataset::len).collect::<Vec<_>>(), vec![3, 1]);
    assert_eq!(dev[1].examples[0].label, 0);
}

#[test]
fn glue_qqp_qnli_rte() {
    let d = load_glue_tsv(TaskName::Qqp, &fixture("glue/QQP/train.tsv")).unwrap();
    assert_eq!(d.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![0, 1, 0]);
    assert_eq!(d.examples[1].text_a, "How do I control my horny emotions?");
    assert_eq!(d.examples[1].text_b.as_deref(), Some("How do you control your horniness?"));
    // The QNLI fixture ends with CRLF; the label must not keep the `\r`.
    let d = load_glue_tsv(TaskName::Qnli, &fixture("glue/QNLI/dev.tsv")).unwrap();
    assert_eq!(d.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![0, 1]);
    let d = load_task_file(TaskName::Rte, &fixture("glue/RTE/train.tsv")).unwrap();
    assert_eq!(d.label_names, vec!["entailment", "not_entailment"]);
    assert_eq!(d.examples[0].label, 1);
    assert_eq!(d.examples[0].text_b.as_deref(), Some("Weapons of Mass Destruction Found in Iraq."));
}

#[test]
fn glue_test_files_are_refused_clearly() {
    for (task, f) in [(TaskName::Sst2, "glue/SST-2/test.tsv"), (TaskName::Qqp, "glue/QQP/test.tsv")]
    {
        let m = input_err(load_glue_tsv(task, &fixture(f)));
        assert!(m.contains("unlabelled") && m.contains(":1:"), "{m}");
    }
}

#[test]
fn lmbff_tsv_and_csv_agree() {
    let tsv = load_lmbff_tsv(TaskName::Mr, &fixture("lmbff/mr/train.tsv")).unwrap();
    let csv = load_lmbff_csv(TaskName::Mr, &fixture("lmbff/mr/train.csv")).unwrap();
    assert_eq!(tsv, csv);
    assert_eq!(tsv.len(), 4);
    assert_eq!(tsv.label_counts(), vec![2, 2]);
    assert!(tsv.examples[0].text_a.contains("new \" conan \" and"));
    assert_eq!(tsv.examples[1], Example::single("simplistic , silly and tedious .", 0));
    // load_task_file picks the reader by extension.
    assert_eq!(load_task_file(TaskName::Mr, &fixture("lmbff/mr/train.csv")).unwrap(), tsv);
    let trec = load_task_file(TaskName::Trec, &fixture("lmbff/trec/train.tsv")).unwrap();
    assert_eq!(trec.label_counts(), vec![1; 6]);
    assert_eq!(trec.examples[2], Example::single("Who was Galileo ?", 3));
}

#[test]
fn layout_mismatch_is_a_config_error() {
    let r = load_glue_tsv(TaskName::Mr, &fixture("lmbff/mr/train.tsv"));
    assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
    let r = load_lmbff_tsv(TaskName::Sst2, &fixture("glue/SST-2/train.tsv"));
    assert!(matches!(r, Err(Error::Config { .. })), "{r:?}");
}

#[test]
fn generic_csv() {
    let d = load_csv(&fixture("generic/train.csv"), "custom", None).unwrap();
    assert_eq!(d.task, "custom");
    // Without names, the classes are the sorted distinct labels.
    assert_eq!(d.label_names, vec!["neg", "pos"]);
    assert_eq!(d.examples[0], Example::single("A warm, funny film.", 1));
    assert_eq!(d.examples[1], Example::single("Dull from start to end.", 0));
    assert_eq!(
        d.examples[2],
        Example::pair("He said \"wow\",\nthen left.", "Was he impressed?", 1)
    );
    // Given names fix the numbering.
    let names = vec!["pos".to_string(), "neg".to_string()];
    let d = load_csv(&fixture("generic/train.csv"), "custom", Some(&names)).unwrap();
    assert_eq!(d.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![0, 1, 0]);
    // Integer labels: sorted numerically, each a class of its own.
    let d = load_csv(&fixture("generic/int_labels.csv"), "ints", None).unwrap();
    assert_eq!(d.label_names, vec!["0", "2"]);
    assert_eq!(d.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![1, 0]);
}

/// The examples of `generic/train.jsonl` and `generic/train.parquet` (class 1 = `pos`).
fn generic_examples() -> Vec<Example> {
    vec![
        Example::single("A warm, funny film.", 1),
        Example::pair("Is it raining?", "The sky is grey.", 0),
        Example::single("Dull.", 0),
    ]
}

#[test]
fn generic_jsonl() {
    let d = load_jsonl(&fixture("generic/train.jsonl"), "custom", None).unwrap();
    assert_eq!(d.label_names, vec!["neg", "pos"]);
    assert_eq!(d.examples, generic_examples());
    let d = load_jsonl(&fixture("generic/int_labels.jsonl"), "ints", None).unwrap();
    assert_eq!(d.label_names, vec!["0", "2"]);
    assert_eq!(d.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![1, 0]);
    // With word names, an integer label is the class index.
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let d = load_jsonl(&fixture("generic/int_labels.jsonl"), "ints", Some(&names)).unwrap();
    assert_eq!(d.label_names, names);
    assert_eq!(d.examples[0].label, 2);
    let two: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    let m = input_err(load_jsonl(&fixture("generic/int_labels.jsonl"), "ints", Some(&two)));
    assert!(m.contains(":1:") && m.contains("out of range"), "{m}");
}

#[test]
fn bom_crlf_and_unlabelled_files_read_alike() {
    let dir = std::env::temp_dir().join(format!("petune-data-bom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("plain.csv");
    let excel = dir.join("excel.csv");
    std::fs::write(&plain, "text,label\nfirst,a\nsecond,b\n").unwrap();
    std::fs::write(&excel, "\u{feff}text,label\r\nfirst,a\r\n\r\nsecond,b\r\n").unwrap();
    assert_eq!(load_csv(&plain, "t", None).unwrap(), load_csv(&excel, "t", None).unwrap());
    let texts = dir.join("texts.csv");
    std::fs::write(&texts, "id,text\n1,first\n2,second\n").unwrap();
    let got = petune_train::data::load::load_texts(&texts).unwrap();
    assert_eq!(got, vec![("first".to_string(), None), ("second".to_string(), None)]);
    let m = input_err(load_csv(&texts, "t", None));
    assert!(m.contains("texts.csv:1") && m.contains("`label`"), "{m}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn duplicate_columns_keys_and_empty_cells_are_errors() {
    let dir = std::env::temp_dir().join(format!("petune-data-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("dup.csv", "text,label,text\na,1,b\n", "dup.csv:1", "column `text` appears twice"),
        (
            "dup.jsonl",
            "{\"text\": \"a\", \"label\": 1, \"label\": 2}\n",
            "dup.jsonl:1",
            "key `label` appears twice",
        ),
        ("blank.csv", "text,label\nok,1\n  ,0\n", "blank.csv:3", "empty `text`"),
        (
            "nolabel.jsonl",
            "{\"text\": \"a\", \"label\": \"\"}\n",
            "nolabel.jsonl:1",
            "empty `label`",
        ),
        ("arr.jsonl", "[1, 2]\n", "arr.jsonl:1", "expected a JSON object"),
        ("ext.txt", "text,label\n", "ext.txt", "unknown data file type"),
    ];
    for (name, body, file, what) in cases {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        let m = input_err(petune_train::data::load::load_file(&path, "t", None));
        assert!(m.contains(file) && m.contains(what), "want `{file}` and `{what}` in: {m}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_files_name_file_and_line() {
    let cases: Vec<(petune_core::Result<Dataset>, &str, &str)> = vec![
        (load_glue_tsv(TaskName::Sst2, &fixture("malformed/empty.tsv")), "empty.tsv", "empty file"),
        (load_lmbff_tsv(TaskName::Mr, &fixture("malformed/empty.tsv")), "empty.tsv", "empty file"),
        (load_csv(&fixture("malformed/empty.tsv"), "x", None), "empty.tsv", "empty file"),
        (load_jsonl(&fixture("malformed/empty.tsv"), "x", None), "empty.tsv", "empty file"),
        (
            load_glue_tsv(TaskName::Sst2, &fixture("malformed/glue_header_only.tsv")),
            "header_only.tsv",
            "no examples",
        ),
        (
            load_glue_tsv(TaskName::Rte, &fixture("malformed/glue_missing_column.tsv")),
            "glue_missing_column.tsv:3",
            "at least 4 tab-separated columns, found 3",
        ),
        (
            load_glue_tsv(TaskName::Sst2, &fixture("malformed/glue_unknown_label.tsv")),
            "glue_unknown_label.tsv:3",
            "unknown sst-2 label `negative`",
        ),
        (
            load_lmbff_tsv(TaskName::Mr, &fixture("malformed/lmbff_no_tab.tsv")),
            "lmbff_no_tab.tsv:2",
            "no tab",
        ),
        (
            load_lmbff_csv(TaskName::Mr, &fixture("malformed/lmbff_unknown_label.csv")),
            "lmbff_unknown_label.csv:2",
            "unknown mr label `2`",
        ),
        (
            load_lmbff_csv(TaskName::Mr, &fixture("malformed/lmbff_one_field.csv")),
            "lmbff_one_field.csv:2",
            "1 field",
        ),
        (
            load_lmbff_csv(TaskName::Mr, &fixture("malformed/lmbff_unclosed_quote.csv")),
            "lmbff_unclosed_quote.csv:2",
            "never closed",
        ),
        (
            load_csv(&fixture("malformed/csv_no_label_column.csv"), "x", None),
            "csv_no_label_column.csv:1",
            "`label`",
        ),
        (
            load_csv(&fixture("malformed/csv_field_count.csv"), "x", None),
            "csv_field_count.csv:3",
            "3 field",
        ),
        (
            load_csv(
                &fixture("malformed/csv_unknown_label.csv"),
                "x",
                Some(&["pos".to_string(), "neg".to_string()]),
            ),
            "csv_unknown_label.csv:3",
            "unknown label `meh`",
        ),
        (
            load_jsonl(&fixture("malformed/jsonl_bad_json.jsonl"), "x", None),
            "jsonl_bad_json.jsonl:2",
            "invalid JSON",
        ),
        (
            load_jsonl(&fixture("malformed/jsonl_missing_text.jsonl"), "x", None),
            "jsonl_missing_text.jsonl:2",
            "missing `text`",
        ),
        (
            load_jsonl(&fixture("malformed/jsonl_mixed_labels.jsonl"), "x", None),
            "jsonl_mixed_labels.jsonl:2",
            "mix integers and strings",
        ),
        (
            load_jsonl(&fixture("malformed/jsonl_negative_label.jsonl"), "x", None),
            "jsonl_negative_label.jsonl:1",
            "non-negative",
        ),
    ];
    for (r, file, what) in cases {
        let m = input_err(r);
        assert!(m.contains(file) && m.contains(what), "want `{file}` and `{what}` in: {m}");
    }
}

#[test]
fn missing_file_is_io_error() {
    let r = load_glue_tsv(TaskName::Sst2, &fixture("glue/SST-2/nope.tsv"));
    assert!(matches!(r, Err(Error::Io { ref path, .. }) if path.ends_with("nope.tsv")), "{r:?}");
}

/// Parquet as pyarrow 26.0.1 writes it (`tests/fixtures/data/README.md`): int64 labels with
/// a null `text_pair` (snappy), and string labels (uncompressed).
#[cfg(feature = "parquet")]
#[test]
fn parquet_files_read_like_jsonl() {
    use petune_train::data::load::load_file;
    let d = load_file(&fixture("generic/train.parquet"), "pq", None).unwrap();
    assert_eq!(d.label_names, vec!["0", "1"]);
    assert_eq!(d.examples, generic_examples());
    let d = load_file(&fixture("generic/string_labels.parquet"), "pq", None).unwrap();
    assert_eq!(d.label_names, vec!["neg", "pos"]);
    assert_eq!(d.examples.iter().map(|e| e.label).collect::<Vec<_>>(), vec![1, 0]);
    let names = vec!["neg".to_string()];
    let m = input_err(load_file(&fixture("generic/string_labels.parquet"), "pq", Some(&names)));
    assert!(m.contains("row 1") && m.contains("unknown label `pos`"), "{m}");
}

/// Without the feature a Parquet file is an error that says how to enable it.
#[cfg(not(feature = "parquet"))]
#[test]
fn parquet_without_the_feature_says_how_to_enable_it() {
    let r = petune_train::data::load::load_file(&fixture("generic/train.parquet"), "pq", None);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("--features parquet") && e.contains("train.parquet"), "{e}");
}
