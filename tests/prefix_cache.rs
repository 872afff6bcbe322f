//! The frozen-prefix cache (issue #7 §4) on the tiny BERT:
//! - a cached step's output equals the uncached eval-mode forward bit for bit (the
//!   cache stores exactly the frozen layers' output);
//! - a run with a zero memory budget (everything spilled to disk) ends with the same
//!   delta, bit for bit, as one held in memory;
//! - methods that act below their floor refuse the cache with a typed error.

mod common;

use std::collections::HashMap;

use common::tiny_task::*;
use common::*;
use petune::prelude::*;
use petune::train::features::collate;
use petune::train::model::{forward, forward_from, frozen_prefix};
use petune::train::prefix_cache::PrefixCache;
use tch::nn::VarStore;
use tch::Device;

fn npg() -> MethodConfig {
    MethodConfig::Lpt(LptConfig::npg(2))
}

fn cached_run(budget_mib: f64) -> HashMap<String, tch::Tensor> {
    let dir = fixture("bert-mlm");
    let mut cfg = run_config_for(&dir, npg(), HeadConfig::Auto, 5);
    cfg.train.max_steps = 12; // 2 epochs of 24 examples at batch 4: the second reuses
    cfg.train.frozen_prefix_cache = true;
    cfg.train.cache_budget_mib = budget_mib;
    let fit =
        Trainer::new(loaded_from(&dir), cfg).with_data(task_data(mr())).quiet(true).fit().unwrap();
    fit.model.trainable_tensors().into_iter().collect()
}

#[test]
fn cached_states_equal_the_frozen_forward_and_spilling_changes_nothing() {
    init();
    let _serial = serial();
    let dir = fixture("bert-mlm");
    let m = loaded_from(&dir);
    let backbone = m.backbone;
    let vs = VarStore::new(Device::Cpu);
    let delta = npg().build(&(vs.root() / "delta"), backbone.as_ref()).unwrap().unwrap();
    let spec = mr();
    let encoder = petune::train::features::FeatureEncoder {
        tokenizer: m.tokenizer,
        template: Some(spec.template.clone()),
        max_len: 64,
        truncate: false,
        lm: None,
    };
    let feats = encoder.encode(&task_data(spec).train).unwrap();
    let refs: Vec<_> = feats.iter().take(5).collect();
    let batch = collate(&refs, encoder.tokenizer.pad_id(), Device::Cpu).unwrap();
    for budget in [64.0, 0.0] {
        let spill = temp_dir(&format!("cache-spill-{budget}"));
        let mut cache = PrefixCache::new(budget, spill.clone());
        let idx = [0, 1, 2, 3, 4];
        let first = cache.state(backbone.as_ref(), delta.as_ref(), &batch, &idx).unwrap();
        let again = cache.state(backbone.as_ref(), delta.as_ref(), &batch, &idx).unwrap();
        assert_eq!((cache.misses, cache.hits), (5, 5));
        assert_eq!(cache.spilled(), if budget == 0.0 { 5 } else { 0 });
        let fresh = frozen_prefix(backbone.as_ref(), delta.as_ref(), &batch).unwrap();
        let mask = batch.input.attention_mask.unsqueeze(-1);
        for s in [&first, &again] {
            assert_eq!(
                max_diff(&(&s.hidden * &mask), &(&fresh.hidden * &mask)),
                0.0,
                "budget {budget}"
            );
        }
        // From the cache up = the whole eval-mode forward.
        let _g = tch::no_grad_guard();
        let up = forward_from(backbone.as_ref(), delta.as_ref(), &batch, again, false).unwrap();
        let whole = forward(backbone.as_ref(), Some(delta.as_ref()), &batch, false).unwrap();
        assert_eq!(max_diff(&(&up.text_hidden() * &mask), &(&whole.text_hidden() * &mask)), 0.0);
        drop(cache);
        if budget == 0.0 {
            assert!(!spill.exists(), "the spill folder is removed");
        }
    }
}

#[test]
fn spilled_and_in_memory_caches_train_identically() {
    init();
    let _serial = serial();
    let a = cached_run(256.0);
    let b = cached_run(0.0);
    for (k, t) in &a {
        assert_eq!(max_diff(t, &b[k]), 0.0, "{k}");
    }
}

#[test]
fn methods_acting_below_their_floor_refuse_the_cache() {
    init();
    let _serial = serial();
    let dir = fixture("bert-mlm");
    let mut cfg =
        run_config_for(&dir, MethodConfig::Lora(LoraConfig::default()), HeadConfig::Auto, 5);
    cfg.train.frozen_prefix_cache = true;
    let err = Trainer::new(loaded_from(&dir), cfg)
        .with_data(task_data(mr()))
        .quiet(true)
        .fit()
        .err()
        .unwrap();
    assert!(err.to_string().contains("no frozen prefix"), "{err}");
}
