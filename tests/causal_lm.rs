//! The causal-LM loss on instruction-style rows (tiny GPT-2 and Llama fixtures):
//! - it equals a cross-entropy computed by hand, one unpadded example at a time, over
//!   the completion tokens only (so neither padding nor prompt tokens count);
//! - the padding id does not change it;
//! - a few steps of LPT and LoRA lower the dev loss, and `generate` runs from the tuned
//!   delta; LPT's generator reads the prompt part only (context mask);
//! - the example data (examples/data/instruct/) reads and encodes.

mod common;

use common::*;
use petune::core::BindCtx;
use petune::prelude::*;
use petune::train::causal_lm::{
    causal_lm_loss, collate, completion_nll, encode, evaluate, read_instruct_jsonl, train,
    InstructExample, LmFeature, LmTrainConfig,
};
use petune::train::generate::{generate, GenerateOptions};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn instruct_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/instruct")
}

fn features(m: &LoadedModel, rows: &[InstructExample]) -> Vec<LmFeature> {
    let eos = m.backbone.spec().eos_id.unwrap();
    rows.iter().map(|r| encode(&m.tokenizer, r, eos, 64).unwrap()).collect()
}

fn rows() -> Vec<InstructExample> {
    let row = |p: &str, c: &str| InstructExample { prompt: p.into(), completion: c.into() };
    vec![
        row("Question: What colour is snow?\nAnswer:", " White."),
        row("Question: How many legs does a spider have?\nAnswer:", " Eight, as every spider."),
        row("Q: 2+2?\nA:", " 4"),
    ]
}

/// The completion tokens' mean cross-entropy, one example at a time without padding.
fn by_hand(m: &LoadedModel, delta: Option<&dyn Delta>, feats: &[LmFeature]) -> f64 {
    let _no_grad = tch::no_grad_guard();
    let (mut sum, mut n) = (0.0, 0);
    for f in feats {
        let t = f.ids.len() as i64;
        let context: Vec<i64> = (0..f.ids.len()).map(|i| i64::from(i < f.prompt_len)).collect();
        let input = BackboneInput::new(Tensor::from_slice(&f.ids).view([1, t]))
            .unwrap()
            .with_context_mask(Tensor::from_slice(&context).view([1, t]))
            .unwrap();
        let backbone = m.backbone.as_ref();
        let hooks: Box<dyn Hooks + '_> = match delta {
            Some(d) => d.bind(&BindCtx { backbone, input: &input, train: false }).unwrap(),
            None => Box::new(NoHooks),
        };
        let s = backbone.forward_t(&input, hooks.as_ref(), false).unwrap();
        let logits = backbone.lm_logits(&s.text_hidden(), false).unwrap().get(0); // [T, V]
        for pos in f.prompt_len..f.ids.len() {
            let row = logits.get(pos as i64 - 1).to_kind(Kind::Double);
            let logz = row.logsumexp([0], false).double_value(&[]);
            sum += logz - row.double_value(&[f.ids[pos]]);
            n += 1;
        }
    }
    sum / n as f64
}

/// A delta with the store that holds its tensors.
type Built = (VarStore, Box<dyn Delta>);

fn lpt_and_lora() -> Vec<(&'static str, MethodConfig)> {
    vec![
        ("LPT NPG", MethodConfig::Lpt(LptConfig::npg(2))),
        ("LoRA q+v", MethodConfig::Lora(LoraConfig { r: 4, alpha: 8.0, ..Default::default() })),
    ]
}

#[test]
fn the_loss_is_the_completion_tokens_cross_entropy_and_ignores_padding() {
    init();
    for name in ["gpt2-lm", "llama-lm"] {
        let m = LoadedModel::from_dir(&fixture(name), &LoadOptions::default()).unwrap();
        let feats = features(&m, &rows());
        let refs: Vec<&LmFeature> = feats.iter().collect();
        let completion_tokens: usize = feats.iter().map(|f| f.ids.len() - f.prompt_len).sum();
        let _no_grad = tch::no_grad_guard();
        let batch = collate(&refs, m.tokenizer.pad_id(), Device::Cpu).unwrap();
        let (_, n) = completion_nll(m.backbone.as_ref(), None, &batch, false).unwrap();
        assert_eq!(n as usize, completion_tokens, "{name}");
        let mut deltas: Vec<(&str, Option<Built>)> = vec![("none", None)];
        for (label, cfg) in lpt_and_lora() {
            tch::manual_seed(5);
            let vs = VarStore::new(Device::Cpu);
            let d = cfg.build(&(vs.root() / "delta"), m.backbone.as_ref()).unwrap().unwrap();
            deltas.push((label, Some((vs, d))));
        }
        for (label, d) in &deltas {
            let delta = d.as_ref().map(|(_, d)| d.as_ref());
            let want = by_hand(&m, delta, &feats);
            let got = causal_lm_loss(m.backbone.as_ref(), delta, &batch, false).unwrap();
            let got = got.double_value(&[]);
            assert!((got - want).abs() < 1e-5, "{name}, {label}: {got} vs by hand {want}");
            // Another padding id: the same loss.
            let other = collate(&refs, 7, Device::Cpu).unwrap();
            let again = causal_lm_loss(m.backbone.as_ref(), delta, &other, false).unwrap();
            assert!((again.double_value(&[]) - got).abs() < 1e-6, "{name}, {label}: padding");
        }
    }
}

#[test]
fn lpt_and_lora_lower_the_dev_loss_and_generate_from_the_tuned_delta() {
    init();
    let dir = instruct_dir();
    let (train_rows, dev_rows) = (
        read_instruct_jsonl(&dir.join("train.jsonl")).unwrap(),
        read_instruct_jsonl(&dir.join("dev.jsonl")).unwrap(),
    );
    assert!(train_rows.len() >= 24 && !dev_rows.is_empty());
    for name in ["gpt2-lm", "llama-lm"] {
        let m = LoadedModel::from_dir(&fixture(name), &LoadOptions::default()).unwrap();
        let (tr, dev) = (features(&m, &train_rows), features(&m, &dev_rows));
        let pad = m.tokenizer.pad_id();
        for (label, cfg) in lpt_and_lora() {
            tch::manual_seed(9);
            let vs = VarStore::new(Device::Cpu);
            let delta = cfg.build(&(vs.root() / "delta"), m.backbone.as_ref()).unwrap().unwrap();
            let before = evaluate(m.backbone.as_ref(), Some(delta.as_ref()), &dev, pad, 8).unwrap();
            let params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            let cfg = LmTrainConfig { steps: 12, lr: 1e-2, batch_size: 8, ..Default::default() };
            let losses =
                train(m.backbone.as_ref(), delta.as_ref(), params, &tr, pad, &cfg).unwrap();
            assert_eq!(losses.len(), 12);
            let after = evaluate(m.backbone.as_ref(), Some(delta.as_ref()), &dev, pad, 8).unwrap();
            eprintln!("{name}, {label}: dev loss {:.4} → {:.4}", before.loss, after.loss);
            assert!(after.loss < before.loss, "{name}, {label}: {before:?} → {after:?}");
            assert!((after.perplexity - after.loss.exp()).abs() < 1e-9);
            // The tuned delta generates (through the cache) from a prompt of the data.
            let opts = GenerateOptions { max_new_tokens: 4, ..Default::default() };
            let prompt = &dev[0].ids[..dev[0].prompt_len];
            let g = generate(m.backbone.as_ref(), Some(delta.as_ref()), prompt, &opts).unwrap();
            assert_eq!(g.tokens.len(), 4, "{name}, {label}");
        }
    }
}

#[test]
fn bad_rows_are_typed_errors() {
    init();
    let m = LoadedModel::from_dir(&fixture("gpt2-lm"), &LoadOptions::default()).unwrap();
    let eos = m.backbone.spec().eos_id.unwrap();
    let empty = InstructExample { prompt: "Q".into(), completion: String::new() };
    assert!(encode(&m.tokenizer, &empty, eos, 64).is_err());
    let long = InstructExample { prompt: "word ".repeat(40), completion: " more".repeat(40) };
    assert!(encode(&m.tokenizer, &long, eos, 64).is_err());
    let dir = std::env::temp_dir().join(format!("petune-clm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"text\": \"c\"}\n")
        .unwrap();
    let err = read_instruct_jsonl(&bad).unwrap_err();
    assert!(err.to_string().contains(":2:"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
