//! Numeric parity with Hugging Face `transformers`: every hidden state and the MLM
//! logits of tiny random checkpoints, on a padded batch, within 1e-4.
//!
//! Goldens come from scripts/export_fixtures.py (transformers and torch versions are in
//! tests/fixtures/README.md and in each golden's metadata). The `#[ignore]`d tests do
//! the same on the real assets of scripts/setup.sh:
//! `cargo test --release --test parity -- --ignored`.

mod common;

use common::*;
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
