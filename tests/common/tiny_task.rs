//! A tiny sentiment task (MR's spec, 24 / 12 / 12 hand-written examples) and a run
//! config for the tiny fixtures: what trainer-level tests share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use petune::prelude::*;
use petune::train::data::{Dataset, Example, TaskSpec};
use petune::train::TaskData;

pub const POSITIVE: [&str; 6] = [
    "a charming and funny story",
    "the acting is superb",
    "a great film with a fine cast",
    "the lead actress is wonderful",
    "funny , warm and smart",
    "the best movie of the year",
];
pub const NEGATIVE: [&str; 6] = [
    "a dull and boring mess",
    "the plot drags on for hours",
    "the ending was a waste of time",
    "bad acting and worse writing",
    "it was not good at all",
    "a terrible script with no point",
];

/// `n` examples alternating positive (label 1) and negative (label 0).
pub fn examples(n: usize, offset: usize) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let j = (i / 2 + offset) % 6;
            if i % 2 == 0 {
                Example::single(POSITIVE[j], 1)
            } else {
                Example::single(NEGATIVE[j], 0)
            }
        })
        .collect()
}

pub fn dataset(spec: &TaskSpec, examples: Vec<Example>) -> Dataset {
    Dataset { task: spec.name.clone(), label_names: spec.label_names.clone(), examples }
}

/// MR's spec (template `{S1} . It was [MASK] .`, words terrible / great — one token
/// each in the fixture vocabulary) with 24 / 12 / 12 examples.
pub fn task_data(spec: TaskSpec) -> TaskData {
    TaskData {
        train: dataset(&spec, examples(24, 0)),
        dev: dataset(&spec, examples(12, 3)),
        test: Some(dataset(&spec, examples(12, 1))),
        test_mismatched: None,
        spec,
    }
}

pub fn mr() -> TaskSpec {
    TaskName::Mr.spec(Default::default())
}

/// A 4-step CPU run of `method` on the fixture at `model`.
pub fn run_config_for(
    model: &Path,
    method: MethodConfig,
    head: HeadConfig,
    seed: u64,
) -> RunConfig {
    RunConfig {
        model: model.to_path_buf(),
        task: TaskConfig {
            kind: TaskName::Mr.into(),
            data: DataSource::Files { train: "unused.jsonl".into(), dev: None, test: None },
            fewshot: None,
            template_style: Default::default(),
        },
        method,
        head,
        train: TrainConfig {
            lr: 1e-2,
            batch_size: 4,
            eval_batch_size: 8,
            max_steps: 4,
            warmup_rate: 0.0,
            eval_every: 100,
            seed,
            max_len: 64,
            device: "cpu".into(),
            threads: 1,
            ..Default::default()
        },
        out_dir: None,
    }
}

/// Loads a fixture as a trainer input.
pub fn loaded_from(dir: &Path) -> LoadedModel {
    LoadedModel::from_dir(dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh temporary directory under the target dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Tests that seed and draw from libtorch's global generator run one at a time: `fit`
/// seeds it, and a concurrent test would shift its draws.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `n` tiny examples (from `offset`) as JSONL `{"text", "label"}` lines.
pub fn write_jsonl(path: &Path, n: usize, offset: usize) {
    let lines: Vec<String> = examples(n, offset)
        .iter()
        .map(|e| serde_json::json!({"text": e.text_a, "label": e.label}).to_string())
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

/// A run config of `method` on the tiny BERT reading `train.jsonl`, `dev.jsonl` and,
/// with `test`, `test.jsonl` from `dir` (written with `n_test` examples), for `steps`
/// steps with one evaluation at the end.
pub fn jsonl_run_config(dir: &Path, method: MethodConfig, n_test: usize, steps: i64) -> RunConfig {
    for (name, n, off) in [("train", 16, 0), ("dev", 8, 3), ("test", n_test, 1)] {
        write_jsonl(&dir.join(format!("{name}.jsonl")), n, off);
    }
    let mut cfg = run_config_for(&super::fixture("bert-mlm"), method, HeadConfig::Auto, 1);
    cfg.task.data = DataSource::Files {
        train: dir.join("train.jsonl"),
        dev: Some(dir.join("dev.jsonl")),
        test: Some(dir.join("test.jsonl")),
    };
    cfg.train.max_steps = steps;
    cfg.train.eval_every = steps;
    cfg
}

/// The BERT fixture with every dropout probability at 0, copied once per test process.
pub fn no_dropout_fixture() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("bert-mlm-no-dropout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(super::fixture("bert-mlm")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        let cfg_path = dir.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
        for key in ["attention_probs_dropout_prob", "hidden_dropout_prob"] {
            cfg[key] = serde_json::json!(0.0);
        }
        std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
        dir
    })
    .clone()
}
