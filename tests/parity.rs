//! Numeric parity with Hugging Face `transformers`: every hidden state and the MLM / LM
//! logits of tiny random checkpoints, on a padded batch (decoders: right- and
//! left-padded), within 1e-4.
//!
//! Goldens come from scripts/export_fixtures.py (transformers and torch versions are in
//! tests/fixtures/README.md and in each golden's metadata). The `#[ignore]`d tests do
//! the same on the real assets of scripts/setup.sh:
//! `cargo test --release --test parity -- --ignored`.

mod common;

use common::*;
use petune::backbones::Family;
use petune::prelude::*;

const TOL: f64 = 1e-4;

fn fixture_parity(name: &str) {
    init();
    let dir = fixture(name);
    let backbone = load(&dir);
    let g = golden(&dir.join("golden.safetensors"));
    assert_hidden_parity(backbone.as_ref(), &g, "", TOL, false);
}

/// petune's tokenization of `inputs.jsonl` equals the golden ids, mask and segments.
fn tokenizer_parity(dir: &std::path::Path, g: &petune::core::tensor_io::TensorFile, pad_id: i64) {
    let tok = TextTokenizer::from_file(&dir.join("tokenizer.json"), pad_id).unwrap();
    let opts = EncodeOptions { max_len: 512, truncate: false, padding_side: PaddingSide::Right };
    let batch = tok.encode_batch(&fixture_inputs(dir), &opts, tch::Device::Cpu).unwrap();
    assert!(batch.input_ids.equal(&g.tensors["input_ids"]), "input_ids differ from transformers'");
    assert!(batch.attention_mask.equal(&g.tensors["attention_mask"]), "attention_mask differs");
    if let Some(tt) = g.tensors.get("token_type_ids") {
        assert!(batch.token_type_ids.equal(tt), "token_type_ids differ");
    }
}

#[test]
fn bert_mlm_matches_transformers() {
    fixture_parity("bert-mlm");
}

#[test]
fn roberta_mlm_matches_transformers() {
    fixture_parity("roberta-mlm");
}

#[test]
fn bert_tokenizer_matches_transformers() {
    init();
    let dir = fixture("bert-mlm");
    tokenizer_parity(&dir, &golden(&dir.join("golden.safetensors")), 0);
}

#[test]
fn roberta_tokenizer_matches_transformers() {
    init();
    let dir = fixture("roberta-mlm");
    tokenizer_parity(&dir, &golden(&dir.join("golden.safetensors")), 1);
}

#[test]
fn deberta_mlm_matches_transformers() {
    // All positions, padded ones included: petune replicates transformers'
    // `masked_fill(finfo.min)`, which makes a padded query row a uniform average.
    fixture_parity("deberta-mlm");
}

#[test]
fn deberta_lm_predictions_head_layout_matches_transformers() {
    // The original Microsoft checkpoints (and the LPT authors' code) keep the MLM head
    // under `lm_predictions.lm_head.*`; the same tensors there give the same logits.
    init();
    let src = fixture("deberta-mlm");
    let dir = std::env::temp_dir().join(format!("petune-deberta-lmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let file =
        petune::core::tensor_io::read_safetensors(&src.join("model.safetensors"), tch::Device::Cpu)
            .unwrap();
    let renamed: Vec<(String, tch::Tensor)> = file
        .tensors
        .into_iter()
        .map(|(k, t)| {
            let k = k
                .replace("cls.predictions.transform.", "lm_predictions.lm_head.")
                .replace("cls.predictions.", "lm_predictions.lm_head.");
            (k, t)
        })
        .collect();
    petune::core::tensor_io::write_safetensors(&dir.join("model.safetensors"), &renamed, None)
        .unwrap();
    let backbone = load(&dir);
    let g = golden(&src.join("golden.safetensors"));
    assert_hidden_parity(backbone.as_ref(), &g, "", TOL, false);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gpt2_lm_matches_transformers() {
    // Right padding: every position (padded ones attend to the real tokens before them).
    fixture_parity("gpt2-lm");
}

#[test]
fn gpt2_ignores_token_types() {
    // transformers would add `wte[token_type_ids]`; petune's callers pass zeros for every
    // family, so GPT-2 ignores them (gpt2/embeddings.rs).
    init();
    let dir = fixture("gpt2-lm");
    let backbone = load(&dir);
    let input = golden_input(&golden(&dir.join("golden.safetensors")), "");
    let typed = input.clone().with_token_types(input.input_ids.ones_like()).unwrap();
    let _guard = tch::no_grad_guard();
    let a = backbone.forward_t(&input, &NoHooks, false).unwrap();
    let b = backbone.forward_t(&typed, &NoHooks, false).unwrap();
    assert!(a.hidden.equal(&b.hidden));
}

#[test]
fn gpt2_left_padding_matches_transformers() {
    init();
    let dir = fixture("gpt2-lm");
    let backbone = load(&dir);
    let g = golden(&dir.join("golden.safetensors"));
    // Explicit `left.position_ids`; padded rows attend to nothing and are compared nowhere.
    assert_hidden_parity(backbone.as_ref(), &g, "left.", TOL, true);
}

/// A Llama-family fixture: every hidden state and the LM logits, right-padded and
/// left-padded with explicit positions, and its tokenizer (padding with the spec's id,
/// the end-of-sequence token the goldens use). Right-padded, every position is compared
/// unless a sliding window leaves padded queries with no key at all (`windowed`: a
/// fully masked row is garbage in every implementation); left-padded, real positions.
fn llama_family_parity(name: &str, windowed: bool) {
    init();
    let dir = fixture(name);
    let backbone = load(&dir);
    let g = golden(&dir.join("golden.safetensors"));
    assert_hidden_parity(backbone.as_ref(), &g, "", TOL, windowed);
    assert_hidden_parity(backbone.as_ref(), &g, "left.", TOL, true);
    let spec = backbone.spec();
    let tok = TextTokenizer::from_model_dir(&dir, spec).unwrap();
    assert_eq!(Some(tok.pad_id()), spec.eos_id, "pads with the end-of-sequence id");
    batch_matches(&tok, &dir, &g, false);
}

#[test]
fn llama_gqa_llama3_rope_untied_matches_transformers() {
    // 4 query / 2 key-value heads, llama3 rope scaling (theta 5e5), untied LM head.
    llama_family_parity("llama-lm", false);
    let spec = load(&fixture("llama-lm")).spec().clone();
    assert_eq!((spec.n_heads, spec.n_kv_heads, spec.head_dim), (4, 2, 8));
}

#[test]
fn mistral_mqa_head_dim_sliding_window_matches_transformers() {
    // 4 query heads / 1 key-value head of explicit size 16 (q_proj 32 → 64), a sliding
    // window of 8 over 28 tokens, untied head.
    llama_family_parity("mistral-lm", true);
    let spec = load(&fixture("mistral-lm")).spec().clone();
    assert_eq!((spec.n_heads, spec.n_kv_heads, spec.head_dim), (4, 1, 16));
}

#[test]
fn qwen2_qkv_biases_tied_matches_transformers() {
    // q/k/v biases (o none), 4 / 2 heads, tied LM head.
    llama_family_parity("qwen2-lm", false);
    let spec = load(&fixture("qwen2-lm")).spec().clone();
    let biased: Vec<_> = spec
        .linear_sites
        .iter()
        .filter(|s| s.site.layer == 0 && s.has_bias)
        .map(|s| s.site.role)
        .collect();
    assert_eq!(biased, [LinearRole::Query, LinearRole::Key, LinearRole::Value]);
}

#[test]
fn llama_loads_from_named_tensors_and_bare_model_files() {
    // The constructor from (config, named tensors) another loader (GGUF) uses, and a
    // bare `LlamaModel` file (no `model.` prefix, no head): same hidden states.
    init();
    let dir = fixture("llama-lm");
    let g = golden(&dir.join("golden.safetensors"));
    let config = petune::backbones::LlamaConfig::from_file(&dir.join("config.json")).unwrap();
    let file =
        petune::core::tensor_io::read_safetensors(&dir.join("model.safetensors"), tch::Device::Cpu)
            .unwrap();
    let tensors: Vec<(String, tch::Tensor)> = file.tensors.into_iter().collect();
    let from_tensors = petune::backbones::LlamaBackbone::from_tensors(
        config.clone(),
        tensors.iter().map(|(k, t)| (k.clone(), t.shallow_clone())),
        &dir.join("model.safetensors"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_hidden_parity(&from_tensors, &g, "", TOL, false);
    let bare: Vec<(String, tch::Tensor)> = tensors
        .iter()
        .filter(|(k, _)| k.starts_with("model."))
        .map(|(k, t)| (k.trim_start_matches("model.").to_string(), t.shallow_clone()))
        .collect();
    let headless = petune::backbones::LlamaBackbone::from_tensors(
        config.clone(),
        bare,
        std::path::Path::new("bare"),
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(!headless.spec().capabilities.lm_head);
    let input = golden_input(&g, "");
    let _guard = tch::no_grad_guard();
    let out = headless.forward_t(&input, &NoHooks, false).unwrap();
    assert_close(&out.hidden, &g.tensors["hidden.2"], TOL, "bare LlamaModel last hidden state");
    assert!(headless.lm_logits(&out.hidden, false).is_err());
    // Strict: a missing tensor and an unexpected one are reported together.
    let mut broken: Vec<(String, tch::Tensor)> = tensors
        .iter()
        .filter(|(k, _)| k != "model.norm.weight")
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    broken.push(("model.extra.weight".into(), tch::Tensor::zeros([2], tch::kind::FLOAT_CPU)));
    let err = petune::backbones::LlamaBackbone::from_tensors(
        config,
        broken,
        std::path::Path::new("broken"),
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("model.norm.weight") && err.contains("model.extra.weight"), "{err}");
}

#[test]
fn llama_bad_inputs_are_typed_errors() {
    init();
    let backbone = load(&fixture("qwen2-lm"));
    let vocab = backbone.spec().vocab;
    let ids = tch::Tensor::from_slice2(&[[3i64, vocab]]);
    let err = backbone.forward_t(&BackboneInput::new(ids).unwrap(), &NoHooks, false).unwrap_err();
    assert!(matches!(err, Error::Input(_)) && err.to_string().contains("vocabulary"), "{err}");
    // A config petune cannot honour is refused before any weight is read.
    let dir = std::env::temp_dir().join(format!("petune-llama-yarn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("llama-lm").join("config.json")).unwrap(),
    )
    .unwrap();
    cfg["rope_parameters"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0});
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(fixture("llama-lm").join("model.safetensors"), dir.join("model.safetensors"))
        .unwrap();
    let err = load_backbone(&dir, &LoadOptions::default()).err().expect("yarn is refused");
    assert!(matches!(err, Error::Unsupported { .. }) && err.to_string().contains("yarn"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn deberta_tokenizer_matches_transformers() {
    init();
    let dir = fixture("deberta-mlm");
    let g = golden(&dir.join("golden.safetensors"));
    tokenizer_parity(&dir, &g, 0);
    // The vocab.json + merges.txt route builds the same tokenizer.
    let tok = TextTokenizer::from_vocab_merges(
        &dir.join("vocab.json"),
        &dir.join("merges.txt"),
        Family::Deberta,
        0,
    )
    .unwrap();
    batch_matches(&tok, &dir, &g, false);
    assert_eq!(tok.token_id("[MASK]"), Some(4));
}

#[test]
fn gpt2_tokenizer_matches_transformers() {
    init();
    let dir = fixture("gpt2-lm");
    let g = golden(&dir.join("golden.safetensors"));
    // The goldens pad with `<|endoftext|>` (511).
    tokenizer_parity(&dir, &g, 511);
    let tok = TextTokenizer::from_vocab_merges(
        &dir.join("vocab.json"),
        &dir.join("merges.txt"),
        Family::Gpt2,
        511,
    )
    .unwrap();
    batch_matches(&tok, &dir, &g, false);
    // `<|endoftext|>` in the text stays one token; no special token is added around text.
    assert_eq!(tok.ids_without_special("a<|endoftext|>").unwrap().last(), Some(&511));
    // petune's own choice (spec pad id 0, as the LPT authors) differs only at padding.
    let spec = load(&dir).spec().clone();
    assert_eq!(spec.pad_id, 0);
    for tok in [
        TextTokenizer::from_model_dir(&dir, &spec).unwrap(),
        TextTokenizer::from_vocab_merges(
            &dir.join("vocab.json"),
            &dir.join("merges.txt"),
            Family::Gpt2,
            spec.pad_id,
        )
        .unwrap(),
    ] {
        batch_matches(&tok, &dir, &g, true);
    }
}

#[test]
fn roberta_vocab_merges_tokenizer_matches_transformers() {
    init();
    let dir = fixture("roberta-mlm");
    let g = golden(&dir.join("golden.safetensors"));
    let tok = TextTokenizer::from_vocab_merges(
        &dir.join("vocab.json"),
        &dir.join("merges.txt"),
        Family::Roberta,
        1,
    )
    .unwrap();
    batch_matches(&tok, &dir, &g, false);
}

/// `tok`'s encoding of the fixture's inputs equals the golden ids and mask (at real
/// tokens only when `real_only`, for a tokenizer padding with another id).
fn batch_matches(
    tok: &TextTokenizer,
    dir: &std::path::Path,
    g: &petune::core::tensor_io::TensorFile,
    real_only: bool,
) {
    let opts = EncodeOptions { max_len: 512, truncate: false, padding_side: PaddingSide::Right };
    let batch = tok.encode_batch(&fixture_inputs(dir), &opts, tch::Device::Cpu).unwrap();
    let mask = &g.tensors["attention_mask"];
    assert!(batch.attention_mask.equal(mask), "attention_mask differs");
    let ids = &g.tensors["input_ids"];
    if real_only {
        let real = mask.ne(0);
        assert!(batch.input_ids.masked_select(&real).equal(&ids.masked_select(&real)));
        let pads = batch.input_ids.masked_select(&real.logical_not());
        assert!(pads.eq(tok.pad_id()).all().int64_value(&[]) == 1, "padding id");
    } else {
        assert!(batch.input_ids.equal(ids), "input_ids differ from transformers'");
    }
}

#[test]
#[ignore = "needs the real assets of scripts/setup.sh"]
fn real_minilm_all_layers_match_transformers() {
    init();
    let g = golden(&fixture("real").join("minilm_golden.safetensors"));
    let dir = asset("all-MiniLM-L6-v2");
    let backbone = load(&dir);
    assert_hidden_parity(backbone.as_ref(), &g, "", TOL, false);
    // The tokenizer file pads to 128 by itself: petune must not.
    let tok = TextTokenizer::from_file(&dir.join("tokenizer.json"), 0).unwrap();
    let opts = EncodeOptions { max_len: 512, truncate: false, padding_side: PaddingSide::Right };
    let batch =
        tok.encode_batch(&fixture_inputs(&fixture("real")), &opts, tch::Device::Cpu).unwrap();
    assert!(batch.input_ids.equal(&g.tensors["input_ids"]), "MiniLM tokenization differs");
}

#[test]
#[ignore = "needs the real assets of scripts/setup.sh"]
fn real_splade_mlm_logits_match_transformers() {
    init();
    let g = golden(&fixture("real").join("splade_golden.safetensors"));
    let backbone = load(&asset("splade-tiny"));
    let input = golden_input(&g, "");
    let _guard = tch::no_grad_guard();
    let (hidden, last) = all_hidden_states(backbone.as_ref(), &input, &NoHooks, false).unwrap();
    for (i, h) in hidden.iter().enumerate() {
        assert_close(h, &g.tensors[&format!("hidden.{i}")], TOL, &format!("hidden.{i}"));
    }
    let logits = backbone.lm_logits(&last.hidden, false).unwrap();
    let cols = &g.tensors["logits_cols"];
    assert_close(
        &logits.index_select(2, cols),
        &g.tensors["logits"],
        TOL,
        "logits (every 7th column)",
    );
    let mask_pos = Vec::<i64>::try_from(&g.tensors["mask_positions"]).unwrap();
    for (b, &p) in mask_pos.iter().enumerate() {
        if p >= 0 {
            let row = logits.get(b as i64).get(p);
            assert_close(
                &row,
                &g.tensors["mask_logits"].get(b as i64),
                TOL,
                "full logits at [MASK]",
            );
        }
    }
}
