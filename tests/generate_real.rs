//! Generation on the real SmolLM2-135M-Instruct Q4_1 GGUF (scripts/setup.sh puts it in
//! `.assets/smollm2/`), dequantized to f32: greedy decoding of "The capital of France is"
//! gives " Paris." (issue #15's statement of a working model), the KV-cached logits equal
//! full forward passes, and the chat template of the metadata renders and is answered.
//! `#[ignore]`d for CI time; run with
//!
//! ```sh
//! cargo test --test generate_real -- --ignored --nocapture --test-threads 1
//! ```

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;
use petune::backbones::gguf::GgufModel;
use petune::backbones::{LlamaBackbone, LlamaConfig};
use petune::prelude::*;
use petune::train::generate::chat::{chat_template_of, render_chat, Message};
use petune::train::generate::{generate, GenerateOptions};
use tch::{Kind, Tensor};

fn smollm2_path() -> std::path::PathBuf {
    asset("smollm2").join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The backbone (f32) and tokenizer of the GGUF file.
fn smollm2() -> (LlamaBackbone, TextTokenizer) {
    let path = smollm2_path();
    let model = GgufModel::open(&path).unwrap();
    let (config, tensors, tokenizer) = model.into_parts();
    let config = LlamaConfig::from_json(config, &path).unwrap();
    let backbone =
        LlamaBackbone::from_tensors(config, tensors, &path, &LoadOptions::default()).unwrap();
    (backbone, tokenizer)
}

fn encode(tok: &TextTokenizer, text: &str) -> Vec<i64> {
    tok.encode_ids(&TextInput::single(text), 8192, false).unwrap().0
}

#[test]
#[ignore = "real model: cargo test --test generate_real -- --ignored"]
fn smollm2_greedy_says_paris_and_the_cache_matches_full_passes() {
    init();
    let (backbone, tok) = smollm2();
    let prompt = encode(&tok, "The capital of France is");
    let opts = GenerateOptions { max_new_tokens: 8, keep_logits: true, ..Default::default() };
    let start = Instant::now();
    let g = generate(&backbone, None, &prompt, &opts).unwrap();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let text = tok.decode(&g.tokens).unwrap();
    eprintln!("greedy: {text:?} {:?} ({} tokens in {ms:.0} ms)", g.tokens, g.tokens.len());
    assert!(text.starts_with(" Paris."), "{text:?}");
    // Every cached position against a full forward pass over prompt + tokens so far.
    let logits = g.logits.unwrap();
    let _no_grad = tch::no_grad_guard();
    let start = Instant::now();
    for i in 0..g.tokens.len() {
        let ids: Vec<i64> = prompt.iter().chain(&g.tokens[..i]).copied().collect();
        let input = BackboneInput::new(Tensor::from_slice(&ids).view([1, -1])).unwrap();
        let s = backbone.forward_t(&input, &NoHooks, false).unwrap();
        let last = s.hidden.select(1, s.seq_len() - 1);
        let want = backbone.lm_logits(&last, false).unwrap().get(0).to_kind(Kind::Float);
        assert_close(&logits.get(i as i64), &want, 1e-4, &format!("position {i}"));
    }
    let full_ms = start.elapsed().as_secs_f64() * 1e3;
    eprintln!("the same {} positions as full forward passes: {full_ms:.0} ms", g.tokens.len());
}

#[test]
#[ignore = "real model: cargo test --test generate_real -- --ignored"]
fn smollm2_chat_template_from_the_metadata() {
    init();
    let template = chat_template_of(Path::new(&smollm2_path())).unwrap().unwrap();
    let rendered = render_chat(
        &template,
        &[Message::user("What is the capital of France?")],
        true,
        None,
        None,
    )
    .unwrap();
    assert!(rendered.ends_with("<|im_start|>assistant\n"), "{rendered:?}");
    let (backbone, tok) = smollm2();
    let ids = tok.ids_without_special(&rendered).unwrap();
    // The specials are single tokens: <|im_start|> = 1 (bos), <|im_end|> = 2 (eos).
    assert_eq!(ids[0], 1);
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 2, "{ids:?}");
    let opts = GenerateOptions { max_new_tokens: 24, stop_ids: vec![2], ..Default::default() };
    let g = generate(&backbone, None, &ids, &opts).unwrap();
    let text = tok.decode(&g.tokens).unwrap();
    eprintln!("chat: {text:?} ({:?})", g.stop);
    assert!(text.contains("Paris"), "{text:?}");
}

/// transformers' greedy tokens for SmolLM2 (tests/fixtures/gguf/smollm2.forward.json,
/// scripts/export_smollm2_forward.py on branch `gguf`: transformers 5.24 loading the same
/// GGUF in float32, `generate(do_sample=False, max_new_tokens=10)`, which stops at eos):
/// the cached greedy generation reproduces every case, the chat-templated one included,
/// and the chat template renders its text.
#[test]
#[ignore = "real model: cargo test --test generate_real -- --ignored"]
fn smollm2_greedy_tokens_equal_transformers() {
    init();
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("gguf").join("smollm2.forward.json")).unwrap(),
    )
    .unwrap();
    let (backbone, tok) = smollm2();
    let template = chat_template_of(Path::new(&smollm2_path())).unwrap().unwrap();
    let messages: Vec<Message> = golden["chat_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message {
            role: m["role"].as_str().unwrap().into(),
            content: m["content"].as_str().unwrap().into(),
        })
        .collect();
    let ids = |v: &serde_json::Value| -> Vec<i64> { serde_json::from_value(v.clone()).unwrap() };
    for case in golden["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let prompt = ids(&case["ids"]);
        if case["chat"].as_bool().unwrap() {
            assert_eq!(render_chat(&template, &messages, true, None, None).unwrap(), text);
        }
        let want = ids(&case["greedy_new_ids"]);
        let eos = backbone.spec().eos_id.unwrap();
        let opts =
            GenerateOptions { max_new_tokens: 10, stop_ids: vec![eos], ..Default::default() };
        let g = generate(&backbone, None, &prompt, &opts).unwrap();
        eprintln!("{text:?} -> {:?}", tok.decode(&g.tokens).unwrap());
        assert_eq!(g.tokens, want, "{text:?}");
    }
}

/// What the cache saves: 48 greedy tokens with the cache against the same tokens by full
/// forward passes (printed; the cached run must be the faster one).
#[test]
#[ignore = "real model: cargo test --test generate_real -- --ignored"]
fn smollm2_cache_speed() {
    init();
    let (backbone, tok) = smollm2();
    let prompt =
        encode(&tok, "Late prompt tuning inserts a soft prompt into an intermediate layer of");
    let n = 48;
    let opts = GenerateOptions { max_new_tokens: n, ..Default::default() };
    let start = Instant::now();
    let g = generate(&backbone, None, &prompt, &opts).unwrap();
    let cached = start.elapsed().as_secs_f64() * 1e3;
    let _no_grad = tch::no_grad_guard();
    let start = Instant::now();
    let mut ids = prompt.clone();
    for _ in 0..n {
        let input = BackboneInput::new(Tensor::from_slice(&ids).view([1, -1])).unwrap();
        let s = backbone.forward_t(&input, &NoHooks, false).unwrap();
        let logits = backbone.lm_logits(&s.hidden.select(1, s.seq_len() - 1), false).unwrap();
        ids.push(logits.argmax(-1, false).int64_value(&[0]));
    }
    let full = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(&ids[prompt.len()..], g.tokens.as_slice(), "greedy tokens");
    eprintln!(
        "{} prompt tokens + {n} new: cached {cached:.0} ms ({:.1} tokens/s), full passes {full:.0} ms ({:.1} tokens/s)",
        prompt.len(),
        n as f64 / (cached / 1e3),
        n as f64 / (full / 1e3)
    );
    assert!(cached < full);
}
