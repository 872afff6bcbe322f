//! GPT-2 direct LM scoring (lpt-reference.md §4.2) with LPT on the tiny GPT-2 fixture:
//! the layout `[bos] + text + " It was" | " great ." + eos`, length-normalised NLL of the
//! label span, argmin over classes; the late prompt is generated from the context only
//! (the label span never reaches the generator), so every candidate of an example gets
//! the same prompt.

mod common;

use common::*;
use petune::prelude::*;
use petune::train::data::{Dataset, Example, TaskName};
use petune::train::features::{collate, Feature, LmScoring};
use petune::train::{HeadConfig, TaskData};

fn data() -> TaskData {
    let spec = TaskName::Mr.spec(Default::default());
    let texts = [
        "the movie was fun",
        "a dull and boring film",
        "great acting and a fine story",
        "it dragged on",
    ];
    let ex = |i: usize| Example::single(texts[i % 4], usize::from(i % 4 != 1 && i % 4 != 3));
    let ds = |n: usize| Dataset {
        task: "mr".into(),
        label_names: spec.label_names.clone(),
        examples: (0..n).map(ex).collect(),
    };
    let (train, dev, test) = (ds(8), ds(4), ds(4));
    TaskData { spec, train, dev, test: Some(test), test_mismatched: None }
}

fn loaded() -> LoadedModel {
    LoadedModel::from_dir(&fixture("gpt2-lm"), &LoadOptions::default()).unwrap()
}

#[test]
fn lm_scoring_layout_splits_shared_context_from_class_targets() {
    init();
    let m = loaded();
    let lm =
        LmScoring::new(&m.tokenizer, "It was %s .", &["terrible".into(), "great".into()]).unwrap();
    let eos = m.tokenizer.token_id("<|endoftext|>").unwrap();
    assert_eq!(m.tokenizer.ids_without_special(" It was").unwrap(), lm.context);
    for (t, w) in lm.targets.iter().zip(["terrible", "great"]) {
        assert_eq!(*t.last().unwrap(), eos);
        let mut want = m.tokenizer.ids_without_special(&format!(" {w} .")).unwrap();
        want.push(eos);
        assert_eq!(*t, want);
    }
    assert!(LmScoring::new(&m.tokenizer, "It was %s .", &["great".into(), "great".into()]).is_err());
}

#[test]
fn lpt_with_lm_scoring_trains_and_evaluates_on_gpt2() {
    init();
    let cfg = RunConfig {
        model: fixture("gpt2-lm"),
        task: TaskConfig {
            kind: TaskName::Mr.into(),
            data: DataSource::Files { train: "unused".into(), dev: None, test: None },
            fewshot: None,
            template_style: Default::default(),
        },
        method: MethodConfig::Lpt(LptConfig::npg(2)),
        head: HeadConfig::Auto,
        train: TrainConfig {
            max_steps: 3,
            batch_size: 4,
            eval_every: 3,
            device: "cpu".into(),
            max_len: 64,
            ..Default::default()
        },
        out_dir: None,
    };
    let r = LptTrainer::new(loaded(), cfg).with_data(data()).quiet(true).fit().unwrap();
    assert_eq!(r.model.manifest().head, HeadConfig::LmScoring);
    let test = r.report.test.as_ref().unwrap();
    assert!((0.0..=1.0).contains(&test.headline));
    let preds = r.model.predict(&[("a fine film".into(), None)]).unwrap();
    assert_eq!(preds[0].probs.len(), 2);
    assert!((preds[0].probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

/// The generator reads only the context: both candidates of an example get the same
/// prompt, and the scores differ only through the label span.
#[test]
fn late_prompt_never_sees_the_label_span() {
    init();
    let m = loaded();
    let spec = TaskName::Mr.spec(Default::default());
    let lm = LmScoring::new(&m.tokenizer, spec.lm_pattern.as_deref().unwrap(), &spec.label_words)
        .unwrap();
    let enc = petune::train::features::FeatureEncoder {
        tokenizer: m.tokenizer.clone(),
        template: None,
        max_len: 64,
        truncate: false,
        lm: Some(lm),
    };
    let ds = Dataset {
        task: "mr".into(),
        label_names: spec.label_names.clone(),
        examples: vec![Example::single("the movie was fun", 1)],
    };
    let f: Vec<Feature> = enc.encode(&ds).unwrap();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let delta =
        LptDelta::new(&(vs.root() / "delta"), &LptConfig::npg(2), m.backbone.as_ref()).unwrap();
    let prompt_of = |c: usize| {
        let fc = f[0].with_candidate(c);
        let batch = collate(&[&fc], 0, tch::Device::Cpu).unwrap();
        let s = petune::train::model::forward(m.backbone.as_ref(), Some(&delta), &batch, false)
            .unwrap();
        s.hidden.narrow(1, 0, 5) // the 5 prompt positions after the last layer (causal: they see only themselves)
    };
    assert!(prompt_of(0).equal(&prompt_of(1)), "the prompt depends on the label span");
}
