//! The site contract (docs/sites.md) on every backbone's tiny fixture: documented
//! order and shapes, identity hooks bit-exact, split layer ranges, prepended tokens
//! attended, padding masked, attention prefixes attended; rotary positions for the
//! Llama family.

mod common;

use common::*;

#[test]
fn bert_site_contract() {
    init();
    contract::full_suite(load(&fixture("bert-mlm")).as_ref(), false);
}

#[test]
fn roberta_site_contract() {
    init();
    contract::full_suite(load(&fixture("roberta-mlm")).as_ref(), false);
}

#[test]
fn deberta_site_contract() {
    init();
    contract::full_suite(load(&fixture("deberta-mlm")).as_ref(), false);
}

#[test]
fn gpt2_site_contract() {
    init();
    let backbone = load(&fixture("gpt2-lm"));
    contract::full_suite(backbone.as_ref(), false);
    contract::full_suite(backbone.as_ref(), true);
}

/// Llama, Mistral and Qwen2: right and left padding, and rotary positions.
fn llama_family_contract(name: &str) {
    init();
    let backbone = load(&fixture(name));
    contract::full_suite(backbone.as_ref(), false);
    contract::full_suite(backbone.as_ref(), true);
    contract::rotary_positions_follow_the_state(backbone.as_ref());
}

#[test]
fn llama_site_contract() {
    llama_family_contract("llama-lm");
}

#[test]
fn mistral_site_contract() {
    llama_family_contract("mistral-lm");
}

#[test]
fn qwen2_site_contract() {
    llama_family_contract("qwen2-lm");
}
