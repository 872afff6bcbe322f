//! `petune generate`'s library part on the tiny decoder fixtures (GPT-2, Llama, Mistral
//! with its 8-token sliding window, Qwen2), with no delta and with the deltas that act
//! at every kind of site (prompt tuning at the input, both position conventions; LPT's
//! late prompt at layer 1; P-tuning v2's prefixes; LoRA on q/v; adapters; BitFit):
//! - with the key/value cache, the logits of every generated position equal a full
//!   forward pass without the cache over prompt + the tokens so far (the generator
//!   reading the prompt part, as generation binds it), within 1e-5;
//! - greedy tokens equal a no-cache argmax loop;
//! - sampling with the same seed is reproducible, another seed differs;
//! - bad requests are typed errors;
//! - on a left-padded batch of two, the backbone-level cache API (prefill, then one token
//!   per row) gives the logits of full forward passes, with and without LPT.

mod common;

use common::*;
use petune::core::{BindCtx, Error, KvCache};
use petune::prelude::*;
use petune::train::generate::{generate, Decoding, GenerateOptions, StopReason};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const DECODERS: [&str; 4] = ["gpt2-lm", "llama-lm", "mistral-lm", "qwen2-lm"];

/// Deltas acting at every kind of site; LoRA, adapters and BitFit are perturbed away from
/// their identity initialisation so that they change the output.
fn methods(spec: &BackboneSpec) -> Vec<(&'static str, MethodConfig)> {
    let biased = spec.linear_sites.iter().any(|s| s.has_bias);
    vec![
        (
            "prompt tuning",
            MethodConfig::PromptTuning(PromptTuningConfig { len: 3, ..Default::default() }),
        ),
        (
            "prompt tuning (PEFT)",
            MethodConfig::PromptTuning(PromptTuningConfig {
                len: 3,
                position: PromptPosition::Peft,
                ..Default::default()
            }),
        ),
        ("LPT NPG before layer 1", MethodConfig::Lpt(LptConfig::npg(2))),
        ("P-tuning v2", MethodConfig::PTuningV2(PTuningV2Config { len: 4, ..Default::default() })),
        ("LoRA q+v", MethodConfig::Lora(LoraConfig { r: 2, alpha: 4.0, ..Default::default() })),
        ("Adapter", MethodConfig::Adapter(AdapterConfig { bottleneck: 4, ..Default::default() })),
        (
            "BitFit",
            MethodConfig::BitFit(BitFitConfig { add_missing: !biased, ..Default::default() }),
        ),
    ]
}

fn perturb(vs: &VarStore) {
    let _no_grad = tch::no_grad_guard();
    for (_, mut t) in vs.variables() {
        let noise = t.randn_like() * 0.3;
        let _ = t.f_add_(&noise).unwrap();
    }
}

/// The prompt: a few arbitrary in-vocabulary ids.
fn prompt(spec: &BackboneSpec) -> Vec<i64> {
    [5i64, 17, 3, 42, 9, 28, 11].iter().map(|i| i % spec.vocab).collect()
}

/// Logits `[V]` of the last position of a full forward pass without cache over `prompt`
/// + `generated`, the delta bound to that input with the prompt part readable.
fn full_forward_logits(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    prompt: &[i64],
    generated: &[i64],
) -> Tensor {
    let ids: Vec<i64> = prompt.iter().chain(generated).copied().collect();
    let context: Vec<i64> = (0..ids.len()).map(|i| i64::from(i < prompt.len())).collect();
    let input = BackboneInput::new(Tensor::from_slice(&ids).view([1, -1]))
        .unwrap()
        .with_context_mask(Tensor::from_slice(&context).view([1, -1]))
        .unwrap();
    let _no_grad = tch::no_grad_guard();
    let hooks: Box<dyn Hooks + '_> = match delta {
        Some(d) => d.bind(&BindCtx { backbone, input: &input, train: false }).unwrap(),
        None => Box::new(NoHooks),
    };
    let s = backbone.forward_t(&input, hooks.as_ref(), false).unwrap();
    let last = s.hidden.select(1, s.seq_len() - 1); // [1, H]
    backbone.lm_logits(&last, false).unwrap().get(0).to_kind(Kind::Float)
}

/// Greedy decoding without the cache: a full forward pass per token.
fn no_cache_greedy(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    p: &[i64],
    n: usize,
) -> Vec<i64> {
    let mut out = Vec::new();
    for _ in 0..n {
        let logits = full_forward_logits(backbone, delta, p, &out);
        out.push(logits.argmax(0, false).int64_value(&[]));
    }
    out
}

fn check_against_full_forward(backbone: &dyn Backbone, delta: Option<&dyn Delta>, what: &str) {
    let p = prompt(backbone.spec());
    let n = 6;
    let opts = GenerateOptions { max_new_tokens: n, keep_logits: true, ..Default::default() };
    let g = generate(backbone, delta, &p, &opts).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(g.tokens.len(), n, "{what}");
    assert_eq!(g.stop, StopReason::Length, "{what}");
    let logits = g.logits.unwrap();
    assert_eq!(logits.size(), [n as i64, backbone.spec().vocab], "{what}");
    for i in 0..n {
        let want = full_forward_logits(backbone, delta, &p, &g.tokens[..i]);
        assert_close(&logits.get(i as i64), &want, 1e-5, &format!("{what}: position {i}"));
    }
    assert_eq!(g.tokens, no_cache_greedy(backbone, delta, &p, n), "{what}: greedy tokens");
}

#[test]
fn cached_generation_equals_full_forward_passes_with_every_kind_of_delta() {
    init();
    for name in DECODERS {
        let backbone = load(&fixture(name));
        check_against_full_forward(backbone.as_ref(), None, &format!("{name}, no delta"));
        for (label, cfg) in methods(backbone.spec()) {
            tch::manual_seed(3);
            let vs = VarStore::new(Device::Cpu);
            let delta = cfg.build(&(vs.root() / "delta"), backbone.as_ref()).unwrap().unwrap();
            perturb(&vs);
            // The delta changes what is generated from (else the check proves nothing).
            let p = prompt(backbone.spec());
            let plain = full_forward_logits(backbone.as_ref(), None, &p, &[]);
            let tuned = full_forward_logits(backbone.as_ref(), Some(delta.as_ref()), &p, &[]);
            assert!(max_diff(&plain, &tuned) > 1e-4, "{name}, {label}: the delta does nothing");
            check_against_full_forward(
                backbone.as_ref(),
                Some(delta.as_ref()),
                &format!("{name}, {label}"),
            );
        }
    }
}

#[test]
fn sampling_is_reproducible_per_seed_and_stops_at_eos() {
    init();
    for name in ["gpt2-lm", "llama-lm"] {
        let backbone = load(&fixture(name));
        let p = prompt(backbone.spec());
        let sample = |seed| {
            let decoding = Decoding::Sample { temperature: 1.5, top_p: 0.95, seed };
            let opts = GenerateOptions { max_new_tokens: 12, decoding, ..Default::default() };
            generate(backbone.as_ref(), None, &p, &opts).unwrap().tokens
        };
        let a = sample(1);
        assert_eq!(a, sample(1), "{name}");
        assert_ne!(a, sample(2), "{name}");
        // Stopping at a token the greedy run produces: the output ends there, with it.
        let greedy = GenerateOptions { max_new_tokens: 8, ..Default::default() };
        let all = generate(backbone.as_ref(), None, &p, &greedy).unwrap().tokens;
        let stop = all[3];
        let first = all.iter().position(|&t| t == stop).unwrap();
        let opts = GenerateOptions { stop_ids: vec![stop], ..greedy };
        let g = generate(backbone.as_ref(), None, &p, &opts).unwrap();
        assert_eq!(g.stop, StopReason::Eos, "{name}");
        assert_eq!(g.tokens, all[..=first], "{name}");
    }
}

#[test]
fn bad_requests_are_typed_errors() {
    init();
    let backbone = load(&fixture("llama-lm"));
    let spec = backbone.spec().clone();
    let ok = GenerateOptions { max_new_tokens: 2, ..Default::default() };
    let run = |p: &[i64], o: &GenerateOptions| generate(backbone.as_ref(), None, p, o).unwrap_err();
    assert!(matches!(run(&[], &ok), Error::Input(_)), "empty prompt");
    let long = vec![1i64; spec.max_positions as usize];
    let err = run(&long, &ok);
    assert!(matches!(err, Error::Input(_)) && err.to_string().contains("positions"), "{err}");
    // Exactly the model's positions is fine.
    let fits = vec![1i64; spec.max_positions as usize - 2];
    assert_eq!(generate(backbone.as_ref(), None, &fits, &ok).unwrap().tokens.len(), 2);
    let zero = GenerateOptions { max_new_tokens: 0, ..Default::default() };
    assert!(matches!(run(&[1], &zero), Error::Config { .. }), "max_new_tokens 0");
    for temperature in [0.0, -1.0] {
        let d = Decoding::Sample { temperature, top_p: 1.0, seed: 0 };
        let o = GenerateOptions { decoding: d, ..ok.clone() };
        let err = run(&[1], &o);
        assert!(err.to_string().contains("temperature"), "{err}");
    }
    let err = run(&[spec.vocab], &ok);
    assert!(matches!(err, Error::Input(_)), "{err}");
    // An encoder cannot generate.
    let bert = load(&fixture("bert-mlm"));
    let err = generate(bert.as_ref(), None, &[1, 2], &ok).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

/// The backbone-level cache API on a left-padded batch of two prompts (explicit
/// positions, as transformers' `generate` builds them): three steps of one token per
/// row give the logits of full forward passes over the padded prompt + tokens so far.
#[test]
fn a_left_padded_batch_steps_like_full_passes() {
    init();
    for name in DECODERS {
        let backbone = load(&fixture(name));
        let spec = backbone.spec().clone();
        tch::manual_seed(4);
        let vs = VarStore::new(Device::Cpu);
        let lpt = MethodConfig::Lpt(LptConfig::npg(2));
        let delta = lpt.build(&(vs.root() / "delta"), backbone.as_ref()).unwrap().unwrap();
        for delta in [None, Some(delta.as_ref())] {
            let ids = Tensor::from_slice2(&[[0i64, 0, 5, 17, 3], [9, 28, 11, 4, 6]])
                .remainder(spec.vocab);
            let mask = Tensor::from_slice2(&[[0i64, 0, 1, 1, 1], [1, 1, 1, 1, 1]]);
            let positions = |m: &Tensor| (m.cumsum(1, Kind::Int64) - 1).clamp_min(0);
            let input = |ids: &Tensor, m: &Tensor, prompt_len: i64| {
                let t = ids.size()[1];
                let context = Tensor::arange(t, (Kind::Int64, Device::Cpu)).lt(prompt_len);
                BackboneInput::new(ids.shallow_clone())
                    .unwrap()
                    .with_attention_mask(m.shallow_clone())
                    .unwrap()
                    .with_positions(positions(m))
                    .unwrap()
                    .with_context_mask(
                        context.to_kind(Kind::Int64).unsqueeze(0).expand([2, t], true),
                    )
                    .unwrap()
            };
            let _no_grad = tch::no_grad_guard();
            let prompt = input(&ids, &mask, 5);
            let hooks: Box<dyn Hooks + '_> = match delta {
                Some(d) => d
                    .bind(&BindCtx { backbone: backbone.as_ref(), input: &prompt, train: false })
                    .unwrap(),
                None => Box::new(NoHooks),
            };
            let mut cache = KvCache::new(spec.n_layers);
            let (mut all_ids, mut all_mask) = (ids.shallow_clone(), mask.shallow_clone());
            let mut step_input = prompt.clone();
            for step in 0..4 {
                let s = backbone.embed_cached(&step_input, hooks.as_ref(), &mut cache).unwrap();
                let s = backbone
                    .layers_cached(s, 0..spec.n_layers, hooks.as_ref(), &mut cache)
                    .unwrap();
                let s = backbone.finish(s, hooks.as_ref(), false).unwrap();
                let got = backbone.lm_logits(&s.hidden.select(1, s.seq_len() - 1), false).unwrap();
                // The full pass, the delta bound to it with the prompt part readable.
                let full = input(&all_ids, &all_mask, 5);
                let fh: Box<dyn Hooks + '_> = match delta {
                    Some(d) => d
                        .bind(&BindCtx { backbone: backbone.as_ref(), input: &full, train: false })
                        .unwrap(),
                    None => Box::new(NoHooks),
                };
                let f = backbone.forward_t(&full, fh.as_ref(), false).unwrap();
                let want = backbone.lm_logits(&f.hidden.select(1, f.seq_len() - 1), false).unwrap();
                let what = format!("{name}, delta {}, step {step}", delta.is_some());
                assert_close(&got, &want, 1e-5, &what);
                let next = got.argmax(-1, true); // [2, 1]
                all_ids = Tensor::cat(&[&all_ids, &next], 1);
                all_mask = Tensor::cat(&[all_mask.shallow_clone(), next.ones_like()], 1);
                step_input = BackboneInput::new(next).unwrap(); // positions continue the cache
            }
        }
    }
}
