//! Every baseline of the LPT paper on every backbone (tiny BERT, RoBERTa, DeBERTa, GPT-2,
//! Llama, Mistral and Qwen2 fixtures), the property matrix of issues #5 and #14:
//! - a built delta holds exactly the closed-form number of parameters, and the sites it
//!   reports touching (`petune inspect`) account for all of them;
//! - LoRA, Adapter, AdapterDrop and BitFit are the identity at initialisation (bit-exact);
//! - after a few trainer steps every delta tensor moved and every backbone tensor is
//!   bit-identical to the checkpoint (model tuning, in contrast, changes it);
//! - save → load gives identical class probabilities;
//! - a disabled delta gives the plain backbone's output, an enabled one does not;
//! - LoRA merged = unmerged outputs, and unmerging restores the weights;
//! - a configuration that cannot apply is a typed error at construction.

mod common;

use common::tiny_task::*;
use common::*;
use petune::baselines::{DropSchedule, SidpgConfig};
use petune::core::{BindCtx, Sublayer};
use petune::prelude::*;
use petune::train::features::collate;
use petune::train::model::forward;
use tch::nn::VarStore;
use tch::{Device, Tensor};

const CPU: Device = Device::Cpu;
const SEED: u64 = 11;

/// Every method, sized for the 2-layer, d = 32 fixtures of `spec`'s family: LoRA on all
/// roles covers the gate of a gated FFN, and BitFit adds zero-initialised biases on a
/// backbone without any (Llama, Mistral).
fn methods(spec: &BackboneSpec) -> Vec<(&'static str, MethodConfig)> {
    use LinearRole::*;
    let mut all_roles: Vec<LinearRole> = spec.linear_sites.iter().map(|s| s.site.role).collect();
    all_roles.sort();
    all_roles.dedup();
    let biased = spec.linear_sites.iter().any(|s| s.has_bias);
    let windowed = spec.model_type == "mistral";
    vec![
        (
            "prompt tuning",
            MethodConfig::PromptTuning(PromptTuningConfig { len: 3, ..Default::default() }),
        ),
        (
            "prompt tuning (PEFT, vocab init)",
            MethodConfig::PromptTuning(PromptTuningConfig {
                len: 3,
                init: PromptInit::Vocab { first_n: 50 },
                position: PromptPosition::Peft,
            }),
        ),
        ("P-tuning v2", MethodConfig::PTuningV2(PTuningV2Config { len: 4, ..Default::default() })),
        (
            "P-tuning v2 (MLP)",
            MethodConfig::PTuningV2(PTuningV2Config {
                len: 4,
                reparam_hidden: Some(8),
                dropout: 0.0,
            }),
        ),
        ("Adapter", MethodConfig::Adapter(AdapterConfig { bottleneck: 4, ..Default::default() })),
        (
            "AdapterDrop",
            MethodConfig::AdapterDrop(AdapterDropConfig {
                adapter: AdapterConfig { bottleneck: 4, ..Default::default() },
                drop_lowest: 1,
                schedule: DropSchedule::Fixed,
            }),
        ),
        (
            "AdapterDrop (sampled, FFN only)",
            MethodConfig::AdapterDrop(AdapterDropConfig {
                adapter: AdapterConfig {
                    bottleneck: 4,
                    sublayers: vec![Sublayer::Ffn],
                    ..Default::default()
                },
                drop_lowest: 1,
                schedule: DropSchedule::Sampled,
            }),
        ),
        (
            "BitFit",
            MethodConfig::BitFit(BitFitConfig { add_missing: !biased, ..Default::default() }),
        ),
        ("LoRA", MethodConfig::Lora(LoraConfig { r: 2, alpha: 4.0, ..Default::default() })),
        (
            "LoRA (all roles, dropout)",
            MethodConfig::Lora(LoraConfig {
                r: 2,
                alpha: 4.0,
                dropout: 0.1,
                targets: all_roles,
                ..Default::default()
            }),
        ),
        (
            "LoRA (fused qkv)",
            MethodConfig::Lora(LoraConfig {
                r: 2,
                alpha: 4.0,
                targets: vec![Query, Key, Value],
                fused_qkv: true,
                ..Default::default()
            }),
        ),
        (
            "S-IDPG-PHM",
            MethodConfig::SidpgPhm(SidpgConfig { len: 3, bottleneck: 8, phm_n: 4, dropout: 0.1 }),
        ),
        // Mistral's fixture slides an 8-token window: a prompt before its last layer is out
        // of the LM-scoring targets' view (nothing to learn), so it enters one layer lower.
        ("LPT NPG", MethodConfig::Lpt(LptConfig::npg(if windowed { 1 } else { 2 }))),
        ("model tuning", MethodConfig::ModelTuning),
    ]
}

fn is_identity_at_init(m: &MethodConfig) -> bool {
    matches!(
        m,
        MethodConfig::Lora(_)
            | MethodConfig::Adapter(_)
            | MethodConfig::AdapterDrop(_)
            | MethodConfig::BitFit(_)
    )
}

/// A delta in a fresh store, built right after seeding as `fit` does.
fn build(backbone: &dyn Backbone, m: &MethodConfig, seed: u64) -> (VarStore, Box<dyn Delta>) {
    tch::manual_seed(seed as i64);
    let vs = VarStore::new(CPU);
    let delta = m.build(&(vs.root() / "delta"), backbone).unwrap().expect("a delta");
    (vs, delta)
}

fn text_output(backbone: &dyn Backbone, hooks: &dyn Hooks, input: &BackboneInput) -> Tensor {
    backbone.forward_t(input, hooks, false).unwrap().text_hidden()
}

fn bitwise_equal(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.eq_tensor(b).all().int64_value(&[]) == 1
}

fn texts() -> Vec<(String, Option<String>)> {
    POSITIVE.iter().chain(NEGATIVE.iter()).map(|t| (t.to_string(), None)).collect()
}

fn matrix(name: &str) {
    init();
    let _serial = serial();
    let dir = fixture(name);
    let reference = load(&dir);
    let spec = reference.spec().clone();
    let input = contract::random_batch(&spec, &[6, 4, 5], false);
    for (label, method) in methods(&spec) {
        let what = format!("{name} / {label}");
        // Closed-form count = allocated elements.
        if !method.trains_backbone() {
            let (vs, delta) = build(reference.as_ref(), &method, SEED);
            let n: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
            assert_eq!(n, method.delta_params(&spec), "{what}: closed-form count");
            let touched: i64 = delta.touched_sites().iter().map(|(_, p)| p).sum();
            assert_eq!(touched, n, "{what}: touched sites account for every parameter");
            if is_identity_at_init(&method) {
                let hooks = delta
                    .bind(&BindCtx { backbone: reference.as_ref(), input: &input, train: false })
                    .unwrap();
                let with = text_output(reference.as_ref(), hooks.as_ref(), &input);
                let without = text_output(reference.as_ref(), &NoHooks, &input);
                assert!(bitwise_equal(&with, &without), "{what}: identity at initialisation");
            }
        }
        // A few trainer steps.
        let fit = Trainer::new(
            loaded_from(&dir),
            run_config_for(&dir, method.clone(), HeadConfig::Auto, SEED),
        )
        .with_data(task_data(mr()))
        .quiet(true)
        .fit()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut trained = fit.model;
        let backbone_now = trained.backbone().var_store().variables();
        let backbone_ref = reference.var_store().variables();
        let unchanged = backbone_ref.iter().all(|(k, t)| bitwise_equal(t, &backbone_now[k]));
        assert_eq!(
            unchanged,
            !method.trains_backbone(),
            "{what}: backbone bit-identical iff not model tuning"
        );
        if !method.trains_backbone() {
            let (init_vs, _) = build(reference.as_ref(), &method, SEED);
            let now: std::collections::HashMap<_, _> =
                trained.trainable_tensors().into_iter().collect();
            let moved =
                init_vs.variables().iter().filter(|(k, t)| !bitwise_equal(t, &now[*k])).count();
            let sampled = matches!(&method, MethodConfig::AdapterDrop(c) if c.schedule == DropSchedule::Sampled);
            if sampled {
                assert!(moved > 0, "{what}: some delta tensor moved");
            } else {
                assert_eq!(moved, init_vs.variables().len(), "{what}: every delta tensor moved");
            }
        }
        // Save → load → identical probabilities.
        let out =
            temp_dir(&format!("baselines-{name}-{}", label.replace([' ', '(', ')', ','], "_")));
        trained.save(&out).unwrap();
        let fresh = loaded_from(&dir);
        let reloaded = TrainedModel::load(&out, fresh.backbone, fresh.tokenizer)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let a = trained.predict(&texts()).unwrap();
        let b = reloaded.predict(&texts()).unwrap();
        assert_eq!(a, b, "{what}: save → load → identical predictions");
        // Disabled delta = the plain backbone.
        let features = trained.encoder().encode(&task_data(mr()).dev).unwrap();
        let refs: Vec<_> = features.iter().collect();
        let batch = collate(&refs, trained.encoder().tokenizer.pad_id(), CPU).unwrap();
        let _no_grad = tch::no_grad_guard();
        let base = forward(trained.backbone(), None, &batch, false).unwrap().text_hidden();
        let on = trained.forward(&batch).unwrap().text_hidden();
        if !method.trains_backbone() {
            assert!(max_diff(&on, &base) > 1e-6, "{what}: the trained delta changes the output");
        }
        trained.set_delta_enabled(false).unwrap();
        let off = trained.forward(&batch).unwrap().text_hidden();
        assert!(bitwise_equal(&off, &base), "{what}: a disabled delta gives the base output");
        trained.set_delta_enabled(true).unwrap();
        // LoRA: merged = unmerged; unmerge restores the weights.
        if let MethodConfig::Lora(_) = method {
            trained.merge_delta().unwrap();
            let merged = trained.forward(&batch).unwrap().text_hidden();
            assert_close(&merged, &on, 1e-5, &format!("{what}: merged = unmerged"));
            assert!(trained.merge_delta().is_err(), "{what}: double merge is an error");
            trained.unmerge_delta().unwrap();
            for (k, t) in trained.backbone().var_store().variables() {
                assert_close(&t, &backbone_ref[&k], 1e-6, &format!("{what}: unmerged {k}"));
            }
            trained.merge_delta().unwrap();
            trained.set_delta_enabled(false).unwrap();
            let off = trained.forward(&batch).unwrap().text_hidden();
            assert_close(&off, &base, 1e-5, &format!("{what}: disabling a merged LoRA unmerges"));
        } else if !method.trains_backbone() {
            assert!(trained.merge_delta().is_err(), "{what}: only LoRA merges");
        }
    }
}

#[test]
fn matrix_bert() {
    matrix("bert-mlm");
}

#[test]
fn matrix_roberta() {
    matrix("roberta-mlm");
}

#[test]
fn matrix_deberta() {
    matrix("deberta-mlm");
}

#[test]
fn matrix_gpt2() {
    matrix("gpt2-lm");
}

#[test]
fn matrix_llama() {
    matrix("llama-lm");
}

#[test]
fn matrix_mistral() {
    matrix("mistral-lm");
}

#[test]
fn matrix_qwen2() {
    matrix("qwen2-lm");
}

// ---------------------------------------------------------------- typed errors at build

#[test]
fn configurations_that_cannot_apply_fail_at_construction() {
    init();
    let backbone = load(&fixture("bert-mlm"));
    let bad = [
        MethodConfig::Lora(LoraConfig { r: 0, ..Default::default() }),
        MethodConfig::Lora(LoraConfig { layers: Some(vec![5]), ..Default::default() }),
        MethodConfig::Lora(LoraConfig { fused_qkv: true, ..Default::default() }),
        MethodConfig::SidpgPhm(SidpgConfig { phm_n: 5, ..Default::default() }),
        MethodConfig::AdapterDrop(AdapterDropConfig {
            adapter: AdapterConfig::default(),
            drop_lowest: 2,
            schedule: DropSchedule::Fixed,
        }),
        MethodConfig::PromptTuning(PromptTuningConfig { len: 0, ..Default::default() }),
        MethodConfig::PTuningV2(PTuningV2Config { dropout: 1.5, ..Default::default() }),
    ];
    for m in bad {
        let vs = VarStore::new(CPU);
        let err =
            m.build(&vs.root(), backbone.as_ref()).err().unwrap_or_else(|| panic!("{m:?} built"));
        assert!(matches!(err, Error::Config { .. } | Error::Incompatible { .. }), "{m:?}: {err}");
    }
    // Template-free methods refuse a head that needs the template.
    let err = petune::train::resolve_head(
        HeadConfig::Verbalizer { loss: Default::default() },
        &MethodConfig::Lora(LoraConfig::default()),
        backbone.spec(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("linear head"), "{err}");
}

// ---------------------------------------------------------------- paper counts

/// Trainable parameters (method + resolved auto head, 2 classes) from a config alone.
fn count(spec: &BackboneSpec, m: &MethodConfig) -> i64 {
    let head = petune::train::resolve_head(HeadConfig::Auto, m, spec).unwrap();
    m.delta_params(spec) + petune::train::head_params(head, spec, 2)
}

#[test]
fn parameter_counts_match_the_paper_on_roberta_large_and_gpt2_large() {
    init();
    use petune::backbones::spec_from_config;
    let roberta = spec_from_config(&fixture("configs/roberta-large.json")).unwrap();
    let gpt2 = spec_from_config(&fixture("configs/gpt2-large.json")).unwrap();
    let drop = |n| {
        MethodConfig::AdapterDrop(AdapterDropConfig {
            adapter: AdapterConfig::default(),
            drop_lowest: n,
            schedule: DropSchedule::Fixed,
        })
    };
    // lpt-reference.md §7; the head is the auto head: a verbalizer (0) for the
    // template methods, a 2-class linear head (d·2 + 2) for the others.
    let roberta_rows = [
        ("prompt tuning", MethodConfig::PromptTuning(PromptTuningConfig::default()), 20_480),
        ("P-tuning v2 + head", MethodConfig::PTuningV2(PTuningV2Config::default()), 985_090),
        ("Adapter", MethodConfig::Adapter(AdapterConfig::default()), 1_622_784),
        ("AdapterDrop (lowest 12)", drop(12), 811_392),
        ("LoRA r=8 q+v + head", MethodConfig::Lora(LoraConfig::default()), 788_482),
        // 24 × 11,264 layer biases + 1,024 embedding LN + 2,050 head ("273K").
        ("BitFit + head", MethodConfig::BitFit(BitFitConfig::default()), 273_410),
        // 20,736 + 91,136 PHM (n = 16) + 2,050 head ("114K").
        ("S-IDPG-PHM + head", MethodConfig::SidpgPhm(SidpgConfig::default()), 113_922),
    ];
    for (what, m, want) in roberta_rows {
        assert_eq!(count(&roberta, &m), want, "roberta-large: {what}");
    }
    let gpt2_lora = LoraConfig {
        r: 4,
        alpha: 32.0,
        targets: vec![LinearRole::Query, LinearRole::Key, LinearRole::Value],
        fused_qkv: true,
        ..Default::default()
    };
    let gpt2_rows = [
        ("prompt tuning", MethodConfig::PromptTuning(PromptTuningConfig::default()), 25_600),
        ("Adapter", MethodConfig::Adapter(AdapterConfig::default()), 3_042_432),
        ("AdapterDrop (lowest 18)", drop(18), 1_521_216),
        // 36 × (4·1280 + 3840·4) on the fused c_attn + 2,562 head ("740K").
        ("LoRA r=4 c_attn + head", MethodConfig::Lora(gpt2_lora), 739_842),
        // 36 × 14,080 + 1,280 ln_f + 2,562 head ("511K").
        ("BitFit + head", MethodConfig::BitFit(BitFitConfig::default()), 510_722),
        // The paper prints 1.9M; the closed form is 1,843,200 (+ head).
        ("P-tuning v2 + head", MethodConfig::PTuningV2(PTuningV2Config::default()), 1_845_762),
    ];
    for (what, m, want) in gpt2_rows {
        assert_eq!(count(&gpt2, &m), want, "gpt2-large: {what}");
    }
}

// ---------------------------------------------------------------- modern decoders

/// The Llama family's counts in closed form from `config.json` alone (no weights):
/// backbone parameters and what the methods add, grouped-query K/V included.
#[test]
fn llama_family_counts_from_their_configs() {
    init();
    let _serial = serial(); // builds deltas: draws from libtorch's generator
    use petune::backbones::spec_from_config;
    use LinearRole::*;
    let q_v = MethodConfig::Lora(LoraConfig { r: 8, ..Default::default() });
    let all = MethodConfig::Lora(LoraConfig {
        r: 8,
        targets: vec![Query, Key, Value, AttnOut, FfnGate, FfnUp, FfnDown],
        ..Default::default()
    });
    // (config, backbone, LoRA r=8 q+v, LoRA r=8 on all seven, P-tuning v2 len 20)
    let rows = [
        // 30 × (576² + 2·576·192 + 576² + 3·576·1536 + 2·576) + 49,152·576 + 576 (tied).
        ("smollm2-135m", 134_515_008, 460_800, 2_442_240, 20 * 2 * 30 * 192),
        // Qwen2.5-0.5B: q/k/v biases, tied: Qwen's "0.49B".
        ("qwen2.5-0.5b", 494_032_768, 540_672, 4_399_104, 20 * 2 * 24 * 128),
        // Llama-3-8B: untied head.
        ("llama-3-8b", 8_030_261_248, 3_407_872, 20_971_520, 20 * 2 * 32 * 1024),
    ];
    for (name, total, lora_qv, lora_all, ptv2) in rows {
        let spec = spec_from_config(&fixture(&format!("configs/{name}.json"))).unwrap();
        assert_eq!(spec.total_params, total, "{name}: backbone");
        assert_eq!(q_v.delta_params(&spec), lora_qv, "{name}: LoRA r=8 q+v");
        assert_eq!(all.delta_params(&spec), lora_all, "{name}: LoRA r=8 on every projection");
        let ptv2_cfg = MethodConfig::PTuningV2(PTuningV2Config::default());
        assert_eq!(ptv2_cfg.delta_params(&spec), ptv2, "{name}: P-tuning v2 sized by KV heads");
    }
    // The closed forms are what a built delta allocates (on the tiny Llama fixture).
    let backbone = load(&fixture("llama-lm"));
    for m in [q_v, all] {
        let vs = VarStore::new(CPU);
        m.build(&vs.root(), backbone.as_ref()).unwrap();
        let n: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(n, m.delta_params(backbone.spec()), "{m:?}");
    }
}

/// What cannot apply to the Llama family fails at construction, with the fix named.
#[test]
fn llama_family_refusals_are_typed() {
    init();
    let _serial = serial();
    let llama = load(&fixture("llama-lm"));
    let vs = VarStore::new(CPU);
    let err = MethodConfig::BitFit(BitFitConfig::default())
        .build(&vs.root(), llama.as_ref())
        .err()
        .expect("BitFit on a bias-free backbone is refused");
    assert!(matches!(err, Error::Incompatible { .. }) && err.to_string().contains("add_missing"));
    // A gate projection is a Llama site, not a BERT one.
    let bert = load(&fixture("bert-mlm"));
    let gate =
        MethodConfig::Lora(LoraConfig { targets: vec![LinearRole::FfnGate], ..Default::default() });
    let err = gate.build(&vs.root(), bert.as_ref()).err().expect("no gate on BERT");
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert!(gate.build(&vs.root(), llama.as_ref()).is_ok());
}

// ---------------------------------------------------------------- frozen-prefix cache

/// The Llama family has no dropout, so the frozen layers compute the same states in
/// training and in eval mode: training LPT with the frozen-prefix cache (states stored
/// with their positions rebuilt from the batch) ends with the very same delta as
/// without it.
#[test]
fn frozen_prefix_cache_changes_nothing_on_a_dropout_free_decoder() {
    init();
    let _serial = serial();
    let dir = fixture("llama-lm");
    let run = |cache: bool| {
        let mut cfg =
            run_config_for(&dir, MethodConfig::Lpt(LptConfig::npg(2)), HeadConfig::Auto, 5);
        cfg.train.max_steps = 12; // two epochs of 24 examples: the second reads the cache
        cfg.train.frozen_prefix_cache = cache;
        let fit = Trainer::new(loaded_from(&dir), cfg)
            .with_data(task_data(mr()))
            .quiet(true)
            .fit()
            .unwrap();
        fit.model.trainable_tensors()
    };
    let (plain, cached) = (run(false), run(true));
    assert_eq!(plain.len(), cached.len());
    for ((k, a), (_, b)) in plain.iter().zip(&cached) {
        assert!(a.equal(b), "{k} differs with the cache");
    }
}

// ---------------------------------------------------------------- mixed batches

/// Every delta tensor nudged away from its (often identity) initialisation.
fn perturb(vs: &VarStore) {
    let _no_grad = tch::no_grad_guard();
    for (_, mut t) in vs.variables() {
        let noise = t.randn_like() * 0.3;
        let _ = t.f_add_(&noise).unwrap();
    }
}

/// Checks a mixed batch against each delta run alone on its own rows.
fn check_mixed(
    backbone: &dyn Backbone,
    deltas: &[Option<&dyn Delta>],
    groups: &[usize],
    what: &str,
) {
    let b = groups.len();
    let lengths: Vec<i64> = (0..b as i64).map(|i| 3 + (i * 5) % 6).collect();
    let input = contract::random_batch(backbone.spec(), &lengths, false);
    let _no_grad = tch::no_grad_guard();
    let hooks = petune::core::bind_mixed(deltas, groups, backbone, &input, false).unwrap();
    let mixed = text_output(backbone, &hooks, &input);
    for (k, delta) in deltas.iter().enumerate() {
        let rows: Vec<i64> = (0..b).filter(|&i| groups[i] == k).map(|i| i as i64).collect();
        if rows.is_empty() {
            continue;
        }
        let rows = Tensor::from_slice(&rows);
        let sub = input.select_rows(&rows);
        let alone = match delta {
            Some(d) => {
                let h = d.bind(&BindCtx { backbone, input: &sub, train: false }).unwrap();
                text_output(backbone, h.as_ref(), &sub)
            }
            None => text_output(backbone, &NoHooks, &sub),
        };
        let mask = sub.attention_mask.unsqueeze(-1); // compare real tokens only
        assert_close(
            &(mixed.index_select(0, &rows) * &mask),
            &(alone * &mask),
            1e-5,
            &format!("{what}: delta {k}"),
        );
    }
}

#[test]
fn mixed_batches_give_each_example_its_own_delta() {
    init();
    let _serial = serial();
    for name in ["bert-mlm", "roberta-mlm", "deberta-mlm", "gpt2-lm", "llama-lm", "qwen2-lm"] {
        let backbone = load(&fixture(name));
        let bb = backbone.as_ref();
        for (label, method) in methods(bb.spec()) {
            if method.trains_backbone() {
                continue;
            }
            let (vs0, d0) = build(bb, &method, 1);
            let (vs1, d1) = build(bb, &method, 2);
            perturb(&vs0);
            perturb(&vs1);
            let what = format!("{name} / {label}");
            // Prompts prepended to the sequence need every row to get one of the same length.
            let prepends = matches!(
                method,
                MethodConfig::PromptTuning(_) | MethodConfig::SidpgPhm(_) | MethodConfig::Lpt(_)
            );
            if prepends {
                check_mixed(bb, &[Some(d0.as_ref()), Some(d1.as_ref())], &[0, 1, 1, 0, 1], &what);
            } else {
                let deltas = [Some(d0.as_ref()), None, Some(d1.as_ref())];
                check_mixed(bb, &deltas, &[0, 1, 2, 2, 0, 1], &what);
            }
        }
        // Different methods in one batch, prefixes of different lengths included.
        let pick = |i: usize| methods(bb.spec()).into_iter().nth(i).unwrap().1;
        let built: Vec<_> =
            [2, 3, 4, 7, 8, 10].iter().map(|&i| build(bb, &pick(i), 3 + i as u64)).collect();
        built.iter().for_each(|(vs, _)| perturb(vs));
        let mut deltas: Vec<Option<&dyn Delta>> =
            built.iter().map(|(_, d)| Some(d.as_ref())).collect();
        deltas.push(None);
        check_mixed(bb, &deltas, &[0, 1, 2, 3, 4, 5, 6, 3, 0], &format!("{name} / cross-method"));
        // Prompts of different lengths cannot share a batch: a typed error.
        let short = MethodConfig::PromptTuning(PromptTuningConfig { len: 2, ..Default::default() });
        let long = MethodConfig::PromptTuning(PromptTuningConfig { len: 4, ..Default::default() });
        let ((_, a), (_, b)) = (build(bb, &short, 1), build(bb, &long, 1));
        let input = contract::random_batch(bb.spec(), &[4, 5], false);
        let hooks = petune::core::bind_mixed(
            &[Some(a.as_ref()), Some(b.as_ref())],
            &[0, 1],
            bb,
            &input,
            false,
        )
        .unwrap();
        let err = bb.forward_t(&input, &hooks, false).unwrap_err();
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
        // Group indices are checked.
        assert!(petune::core::bind_mixed(&[Some(a.as_ref())], &[0, 1], bb, &input, false).is_err());
    }
}

/// A fused LoRA pair shares a token's dropout draw between its query, key and value, so
/// in training with dropout its hooks are not row-wise (the last layer then runs at
/// every token); without dropout, in eval or unfused, they are.
#[test]
fn only_fused_lora_with_dropout_in_training_is_not_row_wise() {
    init();
    let _serial = serial();
    let backbone = load(&fixture("bert-mlm"));
    let input = contract::random_batch(backbone.spec(), &[4, 3], false);
    let lora = |fused_qkv: bool, dropout: f64| {
        MethodConfig::Lora(LoraConfig {
            r: 2,
            dropout,
            fused_qkv,
            targets: vec![LinearRole::Query, LinearRole::Key, LinearRole::Value],
            ..Default::default()
        })
    };
    for (fused, dropout, train, row_wise) in [
        (true, 0.1, true, false),
        (true, 0.1, false, true),
        (true, 0.0, true, true),
        (false, 0.1, true, true),
    ] {
        let (_vs, delta) = build(backbone.as_ref(), &lora(fused, dropout), SEED);
        let ctx = BindCtx { backbone: backbone.as_ref(), input: &input, train };
        let hooks = delta.bind(&ctx).unwrap();
        assert_eq!(hooks.row_wise(), row_wise, "fused {fused}, dropout {dropout}, train {train}");
    }
}
