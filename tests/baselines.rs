//! Every baseline of the LPT paper on every backbone (tiny BERT, RoBERTa, DeBERTa and
//! GPT-2 fixtures), the property matrix of issue #5:
//! - a built delta holds exactly the closed-form number of parameters;
//! - LoRA, Adapter, AdapterDrop and BitFit are the identity at initialisation (bit-exact);
//! - after a few trainer steps every delta tensor moved and every backbone tensor is
//!   bit-identical to the checkpoint (model tuning, in contrast, changes it);
//! - save → load gives identical class probabilities;
//! - a disabled delta gives the plain backbone's output, an enabled one does not;
//! - LoRA merged = unmerged outputs, and unmerging restores the weights;
//! - a configuration that cannot apply is a typed error at construction.

mod common;

use std::sync::{Mutex, MutexGuard};

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

/// `fit` seeds libtorch's global generator: tests of this binary run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every method, sized for the 2-layer, d = 32 fixtures.
fn methods() -> Vec<(&'static str, MethodConfig)> {
    use LinearRole::*;
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
                position: PromptPosition::InputEmbeds,
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
        ("BitFit", MethodConfig::BitFit(BitFitConfig::default())),
        ("LoRA", MethodConfig::Lora(LoraConfig { r: 2, alpha: 4.0, ..Default::default() })),
        (
            "LoRA (all roles, dropout)",
            MethodConfig::Lora(LoraConfig {
                r: 2,
                alpha: 4.0,
                dropout: 0.1,
                targets: vec![Query, Key, Value, AttnOut, FfnUp, FfnDown],
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
        ("LPT NPG", MethodConfig::Lpt(LptConfig::npg(2))),
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
    for (label, method) in methods() {
        let what = format!("{name} / {label}");
        // Closed-form count = allocated elements.
        if !method.trains_backbone() {
            let (vs, delta) = build(reference.as_ref(), &method, SEED);
            let n: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
            assert_eq!(n, method.delta_params(&spec), "{what}: closed-form count");
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
