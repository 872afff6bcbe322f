//! Direct LM scoring of label words (lpt-reference.md §4.2) with LPT on the tiny decoder
//! fixtures (GPT-2 and the Llama family): the layout `[bos] + text + " It was" |
//! " great ." + eos` (bos / eos: the model's, from config.json), length-normalised NLL
//! of the label span, argmin over classes; the late prompt is generated from the context
//! only (the label span never reaches the generator), so every candidate of an example
//! gets the same prompt.

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

const DECODERS: [&str; 4] = ["gpt2-lm", "llama-lm", "mistral-lm", "qwen2-lm"];

fn loaded(name: &str) -> LoadedModel {
    LoadedModel::from_dir(&fixture(name), &LoadOptions::default()).unwrap()
}

#[test]
fn lm_scoring_layout_splits_shared_context_from_class_targets() {
    init();
    // The model's own specials: GPT-2 `<|endoftext|>` twice, Llama 3-style
    // `<|begin_of_text|>` … `<|end_of_text|>`, Mistral `<s>` … `</s>`, Qwen2
    // `<|endoftext|>` twice.
    let specials = [
        ("gpt2-lm", "<|endoftext|>", "<|endoftext|>"),
        ("llama-lm", "<|begin_of_text|>", "<|end_of_text|>"),
        ("mistral-lm", "<s>", "</s>"),
        ("qwen2-lm", "<|endoftext|>", "<|endoftext|>"),
    ];
    for (name, bos, eos) in specials {
        lm_layout(name, bos, eos);
    }
}

fn lm_layout(name: &str, bos: &str, eos: &str) {
    let m = loaded(name);
    let lm =
        LmScoring::new(&m.tokenizer, "It was %s .", &["terrible".into(), "great".into()]).unwrap();
    assert_eq!(lm.bos, m.tokenizer.token_id(bos).unwrap(), "{name}: bos");
    let eos = m.tokenizer.token_id(eos).unwrap();
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
fn lpt_with_lm_scoring_trains_and_evaluates_on_every_decoder() {
    init();
    for name in DECODERS {
        lpt_with_lm_scoring(name);
    }
}

fn lpt_with_lm_scoring(name: &str) {
    let cfg = RunConfig {
        model: fixture(name),
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
    let r = LptTrainer::new(loaded(name), cfg).with_data(data()).quiet(true).fit().unwrap();
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
    for name in DECODERS {
        late_prompt_from_the_context(name);
    }
}

fn late_prompt_from_the_context(name: &str) {
    let m = loaded(name);
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
        let batch = collate(&[&fc], m.tokenizer.pad_id(), tch::Device::Cpu).unwrap();
        let s = petune::train::model::forward(m.backbone.as_ref(), Some(&delta), &batch, false)
            .unwrap();
        s.hidden.narrow(1, 0, 5) // the 5 prompt positions after the last layer (causal: they see only themselves)
    };
    assert!(prompt_of(0).equal(&prompt_of(1)), "the prompt depends on the label span");
}

/// The zero-shot floor is the plain backbone with LPT's LM-scoring head: the same
/// answers as a trained LPT model with its delta switched off, and different ones from
/// the model with the (random) late prompt on. A method without a template, whose head
/// would be an untrained linear layer, is refused.
#[test]
fn zero_shot_floor_is_the_untuned_model_with_lm_scoring() {
    init();
    for name in DECODERS {
        let cfg = RunConfig {
            model: fixture(name),
            task: TaskConfig {
                kind: TaskName::Mr.into(),
                data: DataSource::Files { train: "unused".into(), dev: None, test: None },
                fewshot: None,
                template_style: Default::default(),
            },
            method: MethodConfig::Lpt(LptConfig::npg(2)),
            head: HeadConfig::Auto,
            train: TrainConfig {
                max_steps: 1,
                batch_size: 4,
                eval_every: 1,
                device: "cpu".into(),
                max_len: 64,
                ..Default::default()
            },
            out_dir: None,
        };
        let method = cfg.method.clone();
        let mut tuned =
            LptTrainer::new(loaded(name), cfg).with_data(data()).quiet(true).fit().unwrap().model;
        let spec = data().spec;
        let zs =
            petune::train::zero_shot::zero_shot(loaded(name), &method, HeadConfig::Auto, &spec, 64)
                .unwrap();
        assert_eq!(zs.manifest().head, HeadConfig::LmScoring, "{name}");
        let texts = [("a fine film".to_string(), None), ("it dragged on".to_string(), None)];
        let with_prompt = tuned.predict(&texts).unwrap();
        tuned.set_delta_enabled(false).unwrap();
        let base = tuned.predict(&texts).unwrap();
        let floor = zs.predict(&texts).unwrap();
        let mut moved = 0.0f64;
        for ((b, f), p) in base.iter().zip(&floor).zip(&with_prompt) {
            for ((x, y), z) in b.probs.iter().zip(&f.probs).zip(&p.probs) {
                assert!((x - y).abs() < 1e-6, "{name}: {x} vs {y}");
                moved = moved.max((x - z).abs());
            }
        }
        assert!(moved > 1e-9, "{name}: the late prompt changes the scores, so the delta is off");
        let acc = zs.evaluate(data().test.as_ref().unwrap(), 4).unwrap().headline;
        assert!((0.0..=1.0).contains(&acc));
        let lora = MethodConfig::Lora(Default::default());
        let Err(err) =
            petune::train::zero_shot::zero_shot(loaded(name), &lora, HeadConfig::Auto, &spec, 64)
        else {
            panic!("{name}: LoRA's linear head is not a zero-shot floor");
        };
        let err = err.to_string();
        assert!(err.contains("template"), "{name}: {err}");
    }
}
