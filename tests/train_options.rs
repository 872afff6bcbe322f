//! The training choices issue #13 made options (`train.schedule`, `train.sampling`,
//! `train.head_lr`), on the tiny BERT fixture: each does what it says, the defaults are
//! the previous behaviour, and a config written before they existed reads the same.

mod common;

use common::tiny_task::*;
use common::*;
use petune::prelude::*;
use petune::train::data::sampler::Sampling;
use petune::train::optim::Schedule;
use petune::train::{FitResult, HeadToken};
use tch::Tensor;

fn config(train: impl FnOnce(&mut TrainConfig)) -> RunConfig {
    let mut cfg = run_config_for(
        &fixture("bert-mlm"),
        MethodConfig::Lpt(LptConfig::npg(2)),
        HeadConfig::Linear { token: HeadToken::Mask },
        7,
    );
    train(&mut cfg.train);
    cfg
}

fn fit(cfg: RunConfig) -> FitResult {
    let model = loaded_from(&fixture("bert-mlm"));
    Trainer::new(model, cfg)
        .with_data(task_data(mr()))
        .quiet(true)
        .fit()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn tensors(r: &FitResult, prefix: &str) -> Vec<(String, Tensor)> {
    r.model.trainable_tensors().into_iter().filter(|(n, _)| n.starts_with(prefix)).collect()
}

fn same(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((n, x), (m, y))| n == m && x.equal(y))
}

/// The learning rates of a run's steps, from its `log.jsonl`.
fn logged_lrs(schedule: Schedule) -> Vec<f64> {
    let dir = temp_dir(&format!("schedule-{schedule:?}"));
    let mut cfg = config(|t| t.schedule = schedule);
    cfg.out_dir = Some(dir.clone());
    fit(cfg);
    let log = std::fs::read_to_string(dir.join("log.jsonl")).unwrap();
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("lr").and_then(|x| x.as_f64()))
        .collect()
}

#[test]
fn constant_schedule_keeps_the_peak_rate_and_linear_decays() {
    init();
    let _serial = serial();
    // 4 steps, no warm-up, lr 1e-2.
    assert_eq!(logged_lrs(Schedule::Constant), vec![1e-2; 4]);
    let linear = logged_lrs(Schedule::Linear);
    let want = [1e-2, 0.75e-2, 0.5e-2, 0.25e-2];
    assert!(linear.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{linear:?}");
}

#[test]
fn per_step_sampling_is_seeded_and_differs_from_epochs() {
    init();
    let _serial = serial();
    // 24 training examples, batch 16: epochs give steps of 16, 8, 16, 8 examples.
    let per_step = || fit(config(|t| t.sampling = Sampling::PerStep));
    let (a, b) = (per_step(), per_step());
    assert!(same(&tensors(&a, ""), &tensors(&b, "")), "same seed, same batches");
    let epochs = fit(config(|t| t.batch_size = 16));
    let per_step16 = fit(config(|t| {
        t.batch_size = 16;
        t.sampling = Sampling::PerStep;
    }));
    assert!(!same(&tensors(&epochs, ""), &tensors(&per_step16, "")));
}

#[test]
fn head_lr_moves_only_the_head_at_its_own_rate() {
    init();
    let _serial = serial();
    let one_step = |head_lr: Option<f64>| {
        fit(config(|t| {
            t.max_steps = 1;
            t.head_lr = head_lr;
        }))
    };
    let base = one_step(None);
    let equal = one_step(Some(1e-2));
    let faster = one_step(Some(3e-2));
    assert!(same(&tensors(&base, ""), &tensors(&equal, "")), "head_lr = lr is the default");
    // After one step the delta's update does not depend on the head's.
    assert!(same(&tensors(&base, "delta."), &tensors(&faster, "delta.")));
    assert!(!same(&tensors(&base, "head."), &tensors(&faster, "head.")));
}

#[test]
fn head_lr_on_a_frozen_head_is_a_config_error() {
    init();
    let _serial = serial();
    let mut cfg = config(|t| t.head_lr = Some(1e-3));
    cfg.head = HeadConfig::Verbalizer { loss: Default::default() };
    let model = loaded_from(&fixture("bert-mlm"));
    let err = Trainer::new(model, cfg).with_data(task_data(mr())).quiet(true).fit().err();
    let err = err.expect("a verbalizer has no head to give a rate");
    assert!(matches!(&err, Error::Config { field, .. } if field == "head_lr"), "{err}");
    let bad = config(|t| t.head_lr = Some(-1.0));
    assert!(bad.train.validate().is_err());
}

#[test]
fn defaults_are_left_out_of_the_json_and_old_configs_read_alike() {
    let t = TrainConfig::default();
    let json = serde_json::to_value(&t).unwrap();
    for field in ["schedule", "sampling", "head_lr", "head_dropout"] {
        assert!(json.get(field).is_none(), "{field} at its default is not written: {json}");
    }
    let back: TrainConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, t);
    let set: TrainConfig = serde_json::from_str(
        r#"{"schedule": "constant", "sampling": "per_step", "head_lr": 0.001}"#,
    )
    .unwrap();
    assert_eq!(
        (set.schedule, set.sampling, set.head_lr),
        (Schedule::Constant, Sampling::PerStep, Some(1e-3))
    );
    assert!(serde_json::from_str::<TrainConfig>(r#"{"schedule": "cosine"}"#).is_err());
    let hd: TrainConfig = serde_json::from_str(r#"{"head_dropout": 0}"#).unwrap();
    assert_eq!(hd.head_dropout, Some(0.0));
    assert!(hd.validate().is_ok());
    for bad in [1.0, -0.1, f64::NAN] {
        let t = TrainConfig { head_dropout: Some(bad), ..TrainConfig::default() };
        let err = t.validate().expect_err("head_dropout outside [0, 1)");
        assert!(matches!(&err, Error::Config { field, .. } if field == "head_dropout"), "{err}");
    }
}

/// `train.head_dropout` reaches the linear head: unset is 0.1 bit for bit, and 0 gives
/// another run (no mask drawn before the projection).
#[test]
fn head_dropout_reaches_the_linear_head() {
    init();
    let _serial = serial();
    let run = |p: Option<f64>| {
        let cfg = config(|t| t.head_dropout = p);
        let model = loaded_from(&fixture("bert-mlm"));
        let r = Trainer::new(model, cfg).with_data(task_data(mr())).quiet(true).fit().unwrap();
        r.model.trainable_tensors()
    };
    let (default, explicit, off) = (run(None), run(Some(0.1)), run(Some(0.0)));
    assert!(same(&default, &explicit), "None is 0.1");
    assert!(!same(&default, &off), "0 changes the run");
}

/// `template_style: raw`: a prompt method reads the raw text, an `auto` head is a linear
/// head on `[CLS]`, and a mask head is refused; the saved manifest keeps the choice.
#[test]
fn raw_template_style_feeds_prompt_methods_raw_text() {
    init();
    let _serial = serial();
    use petune::train::data::TemplateStyle;
    let model = || loaded_from(&fixture("bert-mlm"));
    let data = || task_data(TaskName::Mr.spec(TemplateStyle::Raw));
    let mut cfg = config(|_| {});
    cfg.head = HeadConfig::Auto;
    let r = Trainer::new(model(), cfg.clone()).with_data(data()).quiet(true).fit().unwrap();
    assert_eq!(r.model.manifest().head, HeadConfig::Linear { token: HeadToken::Cls });
    assert!(r.model.manifest().task.raw_text);
    assert!(r.model.encoder().template.is_none(), "no template with the raw style");
    // The authors' style still templates (an MLM head on the fixture: the verbalizer).
    let templated = Trainer::new(model(), cfg.clone()).with_data(task_data(mr())).quiet(true);
    let t = templated.fit().unwrap();
    assert!(t.model.encoder().template.is_some());
    assert!(!t.model.manifest().task.raw_text);
    cfg.head = HeadConfig::Linear { token: HeadToken::Mask };
    let err = Trainer::new(model(), cfg).with_data(data()).quiet(true).fit().err();
    let err = err.expect("no mask to read in raw text");
    assert!(matches!(&err, Error::Config { field, .. } if field == "head"), "{err}");
}
