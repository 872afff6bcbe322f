//! The trainer on a tiny BERT (MLM verbalizer head, and a linear head on the mask):
//! - no gradient below the prompt layer: layers under `grad_floor` run with autograd
//!   off, the prompt layer and above with it on, and only delta tensors get gradients;
//! - the backbone is bit-identical after LPT training while every delta tensor moved
//!   (model tuning, in contrast, changes the backbone);
//! - (a killed and resumed run, the output folder's lock and fingerprint, and non-finite
//!   losses: tests/run_safety.rs);
//! - save → load gives identical predictions; the same seed gives bit-identical deltas;
//! - bad input (multi-token label word, empty training set, prompt layer out of range)
//!   is a typed error that names the problem;
//! - `LoadedModel::from_dir` falls back to `vocab.json` + `merges.txt`.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use common::tiny_task::*;
use common::*;
use petune::core::tensor_io::read_safetensors;
use petune::core::{BindCtx, LinearRole, Stack};
use petune::prelude::*;
use petune::train::data::TaskSpec;
use petune::train::features::{collate, label_word_ids, Feature, FeatureEncoder};
use petune::train::{FitResult, Head, HeadToken, TaskData, VerbalizerLoss};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;
const SEED: u64 = 7;

fn bert_dir() -> PathBuf {
    fixture("bert-mlm")
}

fn loaded() -> LoadedModel {
    loaded_from(&bert_dir())
}

fn run_config(method: MethodConfig, head: HeadConfig) -> RunConfig {
    run_config_for(&bert_dir(), method, head, SEED)
}

fn npg() -> MethodConfig {
    MethodConfig::Lpt(LptConfig::npg(2))
}

fn fit(cfg: RunConfig, data: TaskData) -> FitResult {
    Trainer::new(loaded(), cfg).with_data(data).quiet(true).fit().unwrap_or_else(|e| panic!("{e}"))
}

fn fit_err(cfg: RunConfig, data: TaskData) -> Error {
    Trainer::new(loaded(), cfg).with_data(data).quiet(true).fit().err().expect("fit must fail")
}

fn vars(vs: &VarStore) -> HashMap<String, Tensor> {
    vs.variables()
}

// ---------------------------------------------------------------- no grad below PL

/// True when autograd records operations here (no `no_grad` guard active).
fn grad_mode_on() -> bool {
    let leaf = Tensor::ones([1], (Kind::Float, CPU)).set_requires_grad(true);
    (&leaf * 2.0).requires_grad()
}

/// What a watcher saw at one site: (where, layer, value requires grad, grad mode on).
type Seen = (&'static str, usize, bool, bool);

/// Records, at `before_layer` (and at every linear site when `linears`), whether the
/// hidden state (the projection's output) requires grad and whether autograd is on.
struct Watch<'a> {
    tag: &'static str,
    linears: bool,
    seen: &'a RefCell<Vec<Seen>>,
}

impl Hooks for Watch<'_> {
    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        self.seen.borrow_mut().push((self.tag, layer, s.hidden.requires_grad(), grad_mode_on()));
        Ok(s)
    }

    fn linear(&self, site: LinearSite, _x: &Tensor, y: Tensor) -> Tensor {
        if self.linears {
            self.seen.borrow_mut().push(("linear", site.layer, y.requires_grad(), grad_mode_on()));
        }
        y
    }
}

const BEFORE: &str = "before_layer (watched before the delta)";
const AFTER: &str = "before_layer (watched after the delta)";

/// An LPT delta with watchers stacked before and after it.
struct Watched {
    inner: LptDelta,
    seen: RefCell<Vec<Seen>>,
}

impl Delta for Watched {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn bind<'a>(&'a self, ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>> {
        let inner = self.inner.bind(ctx)?;
        Ok(Box::new(Stack(vec![
            Box::new(Watch { tag: BEFORE, linears: false, seen: &self.seen }),
            inner,
            Box::new(Watch { tag: AFTER, linears: true, seen: &self.seen }),
        ])))
    }

    fn grad_floor(&self) -> usize {
        self.inner.grad_floor()
    }
}

fn features(tok: &TextTokenizer, spec: &TaskSpec) -> Vec<Feature> {
    let enc = FeatureEncoder {
        tokenizer: tok.clone(),
        template: Some(spec.template.clone()),
        max_len: 64,
        truncate: false,
        lm: None,
    };
    enc.encode(&dataset(spec, examples(6, 0))).unwrap()
}

#[test]
fn no_gradient_below_the_prompt_layer() {
    init();
    let _serial = serial();
    let LoadedModel { backbone, tokenizer } = loaded();
    let bb = backbone.as_ref();
    let n = bb.spec().n_layers;
    let spec = mr();
    let feats = features(&tokenizer, &spec);
    let refs: Vec<&Feature> = feats.iter().collect();
    let batch = collate(&refs, tokenizer.pad_id(), CPU).unwrap();
    let label_ids = label_word_ids(&tokenizer, &spec.label_words).unwrap();
    let head = Head::verbalizer(bb, label_ids, VerbalizerLoss::FullVocab).unwrap();

    for pl in 1..=n {
        let k = pl - 1;
        let vs = VarStore::new(CPU);
        let inner = LptDelta::new(&(vs.root() / "delta"), &LptConfig::npg(pl), bb).unwrap();
        let watched = Watched { inner, seen: RefCell::new(Vec::new()) };
        let out = petune::train::model::forward(bb, Some(&watched), &batch, true).unwrap();
        let seen = watched.seen.borrow().clone();
        assert_eq!(seen.iter().filter(|s| s.0 == "linear").count(), 6 * n, "PL {pl}: linears");
        for &(tag, layer, requires_grad, grad_on) in &seen {
            let what = format!("PL {pl}: {tag} of layer {layer}");
            // Autograd is off exactly below the prompt layer.
            assert_eq!(grad_on, layer >= k, "{what}: grad mode");
            let want = match tag {
                // Before the delta at layer k the state still comes from frozen layers.
                BEFORE => layer > k,
                // From the prompt on, the state depends on the generator.
                _ => layer >= k,
            };
            assert_eq!(requires_grad, want, "{what}: requires_grad");
        }

        // Backward reaches every generator tensor and no backbone tensor.
        let logits = head.forward(bb, &out, &batch, true).unwrap();
        head.loss(&logits, &batch.labels).backward();
        for (name, t) in vs.variables() {
            let g = t.grad();
            assert!(
                g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                "PL {pl}: {name} has no gradient"
            );
        }
        for (name, t) in bb.var_store().variables() {
            assert!(!t.grad().defined(), "PL {pl}: backbone tensor {name} got a gradient");
        }
    }
}

// ---------------------------------------------------------------- last layer read-out

/// Loss and gradients of one step with `method` and `head`, the last layer at the read
/// token only or at every token (`full`); no dropout, so the two are the same function.
/// With `cached`, from the frozen-prefix state at the delta's floor (as the trainer's
/// prefix cache feeds LPT).
fn loss_and_grads(
    bb: &dyn Backbone,
    batch: &petune::train::features::Batch,
    method: &MethodConfig,
    linear_head: bool,
    (full, cached): (bool, bool),
) -> (f64, Vec<(String, Tensor)>) {
    tch::manual_seed(SEED as i64);
    let vs = VarStore::new(CPU);
    let delta = method.build(&(vs.root() / "delta"), bb).unwrap();
    let head = if linear_head {
        Head::linear(&(vs.root() / "head"), bb.spec().hidden, 2, HeadToken::Cls, 0.0)
    } else {
        let label_ids = label_word_ids(&loaded().tokenizer, &mr().label_words).unwrap();
        Head::verbalizer(bb, label_ids, VerbalizerLoss::FullVocab).unwrap()
    };
    let tunes = method.trains_backbone();
    for (_, t) in bb.var_store().variables() {
        let _ = t.set_requires_grad(tunes);
    }
    let s0 = match (cached, delta.as_deref()) {
        (true, Some(d)) => Some(petune::train::model::frozen_prefix(bb, d, batch).unwrap()),
        _ => None,
    };
    let out =
        petune::train::model::head_output(bb, delta.as_deref(), &head, batch, s0, false, full)
            .unwrap();
    let loss = head.loss(&out, &batch.labels);
    loss.backward();
    let mut grads: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    if tunes {
        grads.extend(bb.var_store().variables());
    }
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    let grads = grads
        .into_iter()
        .map(|(n, t)| {
            let g = t.grad();
            let g = if g.defined() { g.copy() } else { t.zeros_like() };
            (n, g)
        })
        .collect();
    for (_, mut t) in bb.var_store().variables() {
        t.zero_grad();
        let _ = t.set_requires_grad(false);
    }
    (loss.double_value(&[]), grads)
}

#[test]
fn last_layer_at_the_read_token_gives_the_full_loss_and_gradients() {
    init();
    let _serial = serial();
    let LoadedModel { backbone, tokenizer } = loaded();
    let bb = backbone.as_ref();
    let n = bb.spec().n_layers;
    assert!(bb.read_out_rows_only(), "BERT computes only the read rows");
    let feats = features(&tokenizer, &mr());
    let refs: Vec<&Feature> = feats.iter().collect();
    let batch = collate(&refs, tokenizer.pad_id(), CPU).unwrap();
    let methods = [
        ("model tuning", MethodConfig::ModelTuning),
        ("LPT NPG at the last layer", MethodConfig::Lpt(LptConfig::npg(n))),
        ("LPT NPG", MethodConfig::Lpt(LptConfig::npg(1))),
        (
            "prompt tuning",
            MethodConfig::PromptTuning(PromptTuningConfig { len: 3, ..Default::default() }),
        ),
        ("P-tuning v2", MethodConfig::PTuningV2(PTuningV2Config { len: 2, ..Default::default() })),
        ("LoRA", MethodConfig::Lora(LoraConfig { r: 2, alpha: 4.0, ..Default::default() })),
        (
            "LoRA on fused Q/K/V",
            MethodConfig::Lora(LoraConfig {
                r: 2,
                alpha: 4.0,
                fused_qkv: true,
                targets: vec![LinearRole::Query, LinearRole::Key, LinearRole::Value],
                ..Default::default()
            }),
        ),
        ("Adapter", MethodConfig::Adapter(AdapterConfig { bottleneck: 4, ..Default::default() })),
    ];
    let lpt = |m: &MethodConfig| matches!(m, MethodConfig::Lpt(_));
    let cases = methods.iter().flat_map(|(label, m)| {
        let cached: &[bool] = if lpt(m) { &[false, true] } else { &[false] };
        cached.iter().flat_map(move |&c| [false, true].map(|linear| (label, m, c, linear)))
    });
    for (label, method, cached, linear) in cases {
        let head = if linear { "linear" } else { "verbalizer" };
        let what = format!("{label}{}, {head} head", if cached { " (cached)" } else { "" });
        let (l_read, g_read) = loss_and_grads(bb, &batch, method, linear, (false, cached));
        let (l_full, g_full) = loss_and_grads(bb, &batch, method, linear, (true, cached));
        assert!((l_read - l_full).abs() < 1e-5 * l_full.abs().max(1.0), "{what}: loss");
        assert_eq!(g_read.len(), g_full.len());
        let mut nonzero = 0;
        // Some gradients are zero in exact arithmetic (a key bias shifts every score of
        // a query alike) and rounding noise in both: scaled by the largest gradient.
        let largest =
            g_full.iter().map(|(_, g)| g.abs().max().double_value(&[])).fold(0.0, f64::max);
        for ((name, a), (other, b)) in g_read.iter().zip(&g_full) {
            assert_eq!(name, other);
            let scale = b.abs().max().double_value(&[]).max(1e-3 * largest);
            let d = max_diff(a, b) / scale;
            assert!(d < 1e-4, "{what}: gradient of {name} differs by {d:e} (relative)");
            nonzero += usize::from(b.abs().max().double_value(&[]) > 0.0);
        }
        assert!(nonzero > 0, "{what}: some gradient is non-zero");
    }
}

// ---------------------------------------------------------------- frozen backbone

/// The initial delta tensors of a run (the trainer seeds with `seed`, then builds the
/// delta under `delta`).
fn initial_delta(method: &MethodConfig) -> HashMap<String, Tensor> {
    let fresh = load(&bert_dir());
    tch::manual_seed(SEED as i64);
    let vs = VarStore::new(CPU);
    let _delta = method.build(&(vs.root() / "delta"), fresh.as_ref()).unwrap();
    vars(&vs).into_iter().map(|(n, t)| (n, t.detach().copy())).collect()
}

fn lpt_keeps_the_backbone_and_moves_the_delta(head: HeadConfig) {
    let init0 = initial_delta(&npg());
    let result = fit(run_config(npg(), head), task_data(mr()));
    assert_eq!(result.report.steps, 4);
    let fresh = load(&bert_dir());
    let want = vars(fresh.var_store());
    let got = vars(result.model.backbone().var_store());
    assert_eq!(got.len(), want.len());
    for (name, t) in &got {
        assert!(t.equal(&want[name]), "{head:?}: backbone tensor {name} changed");
        assert!(!t.requires_grad(), "{head:?}: {name} left trainable");
    }
    let trained: HashMap<String, Tensor> = result.model.trainable_tensors().into_iter().collect();
    assert_eq!(
        trained.len(),
        init0.len() + usize::from(matches!(head, HeadConfig::Linear { .. })) * 2
    );
    for (name, t0) in &init0 {
        let t = &trained[name];
        let moved = (t - t0).abs().max().double_value(&[]);
        assert!(moved > 1e-6, "{head:?}: delta tensor {name} did not move ({moved:e})");
    }
    let params: i64 = trained.values().map(|t| t.numel() as i64).sum();
    assert_eq!(result.report.trainable_params, params);
}

#[test]
fn lpt_training_leaves_the_backbone_bit_identical_verbalizer() {
    init();
    let _serial = serial();
    lpt_keeps_the_backbone_and_moves_the_delta(HeadConfig::Auto);
}

#[test]
fn lpt_training_leaves_the_backbone_bit_identical_linear_head() {
    init();
    let _serial = serial();
    lpt_keeps_the_backbone_and_moves_the_delta(HeadConfig::Linear { token: HeadToken::Mask });
}

#[test]
fn model_tuning_changes_the_backbone() {
    init();
    let _serial = serial();
    let result = fit(run_config(MethodConfig::ModelTuning, HeadConfig::Auto), task_data(mr()));
    let fresh = load(&bert_dir());
    let want = vars(fresh.var_store());
    let got = vars(result.model.backbone().var_store());
    let layer_tensors: Vec<&String> = got.keys().filter(|n| n.contains("encoder.layer.")).collect();
    assert!(!layer_tensors.is_empty());
    for name in layer_tensors {
        assert!(!got[name].equal(&want[name]), "model tuning left {name} unchanged");
    }
}

// ---------------------------------------------------------------- save / load, seeds

fn predictions_survive_save_and_load(head: HeadConfig, tag: &str) {
    let result = fit(run_config(npg(), head), task_data(mr()));
    let dir = std::env::temp_dir().join(format!("petune-trainer-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    result.model.save(&dir).unwrap();
    let LoadedModel { backbone, tokenizer } = loaded();
    let reloaded = TrainedModel::load(&dir, backbone, tokenizer).unwrap();
    assert_eq!(reloaded.manifest(), result.model.manifest());
    let texts: Vec<(String, Option<String>)> = POSITIVE
        .iter()
        .chain(NEGATIVE.iter())
        .chain(["an odd little film nobody asked for"].iter())
        .map(|s| (s.to_string(), None))
        .collect();
    let a = result.model.predict(&texts).unwrap();
    let b = reloaded.predict(&texts).unwrap();
    assert_eq!(a.len(), texts.len());
    assert_eq!(a, b, "{head:?}: predictions differ after save → load");
    let saved = read_safetensors(&dir.join("delta.safetensors"), CPU).unwrap();
    let live: HashMap<String, Tensor> = result.model.trainable_tensors().into_iter().collect();
    assert_eq!(saved.tensors.len(), live.len());
    for (name, t) in &saved.tensors {
        assert!(t.equal(&live[name]), "{name} saved differently");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_load_gives_identical_predictions() {
    init();
    let _serial = serial();
    predictions_survive_save_and_load(HeadConfig::Auto, "verbalizer");
    predictions_survive_save_and_load(HeadConfig::Linear { token: HeadToken::Mask }, "linear");
}

fn trained_tensors(seed: u64, head: HeadConfig) -> Vec<(String, Tensor)> {
    let mut cfg = run_config(npg(), head);
    cfg.train.seed = seed;
    fit(cfg, task_data(mr())).model.trainable_tensors()
}

#[test]
fn same_seed_gives_bit_identical_deltas() {
    init();
    let _serial = serial();
    let head = HeadConfig::Linear { token: HeadToken::Mask };
    let a = trained_tensors(SEED, head);
    let b = trained_tensors(SEED, head);
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs between two runs with the same seed");
    }
    // ... and the comparison can tell runs apart.
    let c = trained_tensors(SEED + 1, head);
    assert!(a.iter().zip(&c).any(|((_, ta), (_, tc))| !ta.equal(tc)), "seed has no effect");
}

// ---------------------------------------------------------------- bad input

#[test]
fn multi_token_label_word_is_a_config_error_naming_it() {
    init();
    let _serial = serial(); // `fit` seeds the global generator before failing
    let word = "cinematographically";
    let tok = loaded().tokenizer;
    assert!(tok.ids_without_special(&format!(" {word}")).unwrap().len() > 1, "{word} is one token");
    let spec = TaskSpec::new(
        "custom",
        vec!["neg".into(), "pos".into()],
        "{text} It was {mask} .",
        vec!["terrible".into(), word.into()],
    )
    .unwrap();
    let err = fit_err(run_config(npg(), HeadConfig::Auto), task_data(spec));
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(err.to_string().contains(word), "{err}");
}

#[test]
fn empty_train_set_is_an_input_error() {
    init();
    let _serial = serial(); // `fit` seeds the global generator before failing
    let mut data = task_data(mr());
    data.train.examples.clear();
    let err = fit_err(run_config(npg(), HeadConfig::Auto), data);
    assert!(matches!(err, Error::Input(_)), "{err}");
}

#[test]
fn prompt_layer_out_of_range_is_a_config_error() {
    init();
    let _serial = serial(); // `fit` seeds the global generator before failing
    for pl in [0, 3] {
        let err = fit_err(
            run_config(MethodConfig::Lpt(LptConfig::npg(pl)), HeadConfig::Auto),
            task_data(mr()),
        );
        assert!(matches!(err, Error::Config { .. }), "PL {pl}: {err}");
        assert!(err.to_string().contains("prompt_layer"), "PL {pl}: {err}");
    }
}

#[test]
fn fp16_on_cpu_and_a_missing_gpu_are_config_errors() {
    init();
    let _serial = serial(); // `fit` seeds the global generator before failing
    let mut cfg = run_config(npg(), HeadConfig::Auto);
    cfg.train.device = "cpu".into();
    cfg.train.precision = petune::train::Precision::Fp16;
    let err = fit_err(cfg, task_data(mr()));
    assert!(matches!(&err, Error::Config { field, .. } if field == "precision"), "{err}");
    if !tch::Cuda::is_available() {
        let mut cfg = run_config(npg(), HeadConfig::Auto);
        cfg.train.device = "cuda".into();
        let err = cfg.train.device().unwrap_err();
        assert!(matches!(&err, Error::Config { field, .. } if field == "device"), "{err}");
    }
}

/// bf16 autocast on a CPU device (issue #16): model tuning and LPT train end to end with
/// finite, falling losses; the trained tensors stay float32 (master weights).
#[test]
fn bf16_trains_end_to_end_on_cpu() {
    init();
    let _serial = serial();
    for (method, lr) in [(MethodConfig::ModelTuning, 1e-3), (npg(), 1e-2)] {
        let label = method.label();
        let mut cfg = run_config(method, HeadConfig::Auto);
        cfg.train.precision = petune::train::Precision::Bf16;
        cfg.train.max_steps = 30;
        cfg.train.batch_size = 8;
        cfg.train.lr = lr;
        // One full batch of 8 examples per step: the loss must fall as they are learnt.
        let mut data = task_data(mr());
        data.train.examples.truncate(8);
        let losses = std::rc::Rc::new(RefCell::new(Vec::new()));
        let sink = losses.clone();
        let result = Trainer::new(loaded(), cfg)
            .with_data(data)
            .quiet(true)
            .on_event(move |e| {
                if let petune::train::TrainEvent::Step { loss, .. } = e {
                    sink.borrow_mut().push(*loss);
                }
            })
            .fit()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let l = losses.borrow();
        assert_eq!(l.len(), 30, "{label}");
        assert!(l.iter().all(|x| x.is_finite()), "{label}: {l:?}");
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let (first, last) = (mean(&l[..6]), mean(&l[24..]));
        eprintln!(
            "{label}: bf16 loss {first:.4} -> {last:.4} (mean of the first and last 6 steps)"
        );
        assert!(last < 0.8 * first, "{label}: loss {first:.4} -> {last:.4}: {l:?}");
        for (name, t) in result.model.trainable_tensors() {
            assert_eq!(t.kind(), Kind::Float, "{label}: {name}");
        }
    }
}

// ---------------------------------------------------------------- loading

/// `LoadedModel::from_dir` reads `vocab.json` + `merges.txt` when a folder has no
/// `tokenizer.json`, and tokenizes as the `tokenizer.json` of the same model does.
#[test]
fn loaded_model_falls_back_to_vocab_and_merges() {
    init();
    for name in ["roberta-mlm", "gpt2-lm"] {
        let src = fixture(name);
        let dir = std::env::temp_dir().join(format!("petune-nojson-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["config.json", "model.safetensors", "vocab.json", "merges.txt"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let with_json = LoadedModel::from_dir(&src, &LoadOptions::default()).unwrap();
        let without = LoadedModel::from_dir(&dir, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name} without tokenizer.json: {e}"));
        assert!(without.tokenizer.path().ends_with("vocab.json"), "{name}");
        for input in fixture_inputs(&src).into_iter().filter(|i| i.text_pair.is_none()) {
            let a = with_json.tokenizer.encode_ids(&input, 64, false).unwrap();
            let b = without.tokenizer.encode_ids(&input, 64, false).unwrap();
            assert_eq!(a, b, "{name}: {:?}", input.text);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// MNLI from a GLUE folder: the matched and mismatched dev files are both loaded, and a
/// full-data run scores them as `avg_acc` (their mean), as the authors' metric key.
#[test]
fn mnli_task_dir_loads_matched_and_mismatched() {
    common::init();
    let dir = common::fixture("data").join("glue").join("MNLI");
    let cfg = TaskConfig {
        kind: TaskName::Mnli.into(),
        data: DataSource::TaskDir { dir },
        fewshot: None,
        template_style: Default::default(),
    };
    let data = cfg.load().unwrap();
    assert_eq!(data.spec.metric, petune::train::data::Metric::MnliAvg);
    assert_eq!(data.dev.len(), 3, "dev_matched.tsv");
    assert_eq!(data.test.as_ref().map(|t| t.len()), Some(3), "matched dev reported as test");
    assert_eq!(data.test_mismatched.as_ref().map(|t| t.len()), Some(1), "dev_mismatched.tsv");
}
