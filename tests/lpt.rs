//! Late Prompt Tuning as the paper and the authors' code define it
//! (lpt-reference.md §2, §3, §7):
//! - trainable parameter counts equal the paper's closed forms on RoBERTa-large and
//!   GPT2-large (specs from their `config.json` alone), and a built `LptDelta` holds
//!   exactly that many elements for every variant;
//! - the prompt is prepended at exactly `before_layer(PL − 1)`: the final state has
//!   `l` virtual tokens, layers below PL are bit-identical to the plain backbone and
//!   the text outputs above it change;
//! - padding stays masked after the late prompt (BERT, RoBERTa, DeBERTa right-padded;
//!   GPT-2 left- and right-padded), whatever the generator;
//! - generator shapes on ragged batches, APPG/MPPG equal to the authors' per-example
//!   crop + `AdaptiveAvg/MaxPool1d`, and NPG reading exactly the first valid token
//!   (encoders) or the last valid token (GPT-2);
//! - PyTorch-default initialisation: NPG linears U(±1/√fan_in) (not tch's √6× wider
//!   Kaiming bound), static prompt N(0, 1).

mod common;

use std::cell::RefCell;

use common::*;
use petune::backbones::spec_from_config;
use petune::core::pool::first_valid_index;
use petune::core::{BindCtx, RecordingHooks, SiteEvent, Stack};
use petune::lpt::{LinearInit, PromptGenerator};
use petune::prelude::*;
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

/// Forwards every hook to a borrowed hooks object (to stack a recorder we keep).
struct By<'a, H: Hooks>(&'a H);

impl<H: Hooks> Hooks for By<'_, H> {
    fn input_embeds(&self, s: SeqState) -> Result<SeqState> {
        self.0.input_embeds(s)
    }
    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        self.0.before_layer(layer, s)
    }
    fn attn_prefix(&self, layer: usize) -> Option<petune::core::KvPrefix> {
        self.0.attn_prefix(layer)
    }
    fn linear(&self, site: LinearSite, x: &Tensor, y: Tensor) -> Tensor {
        self.0.linear(site, x, y)
    }
    fn norm(&self, site: petune::core::NormSite, y: Tensor) -> Tensor {
        self.0.norm(site, y)
    }
    fn sublayer_out(&self, site: petune::core::SublayerSite, h: Tensor) -> Tensor {
        self.0.sublayer_out(site, h)
    }
}

/// An `LptDelta` in a fresh trainable store (kept, so its variables can be counted).
fn build(backbone: &dyn Backbone, cfg: &LptConfig) -> (VarStore, LptDelta) {
    let vs = VarStore::new(CPU);
    let delta = LptDelta::new(&(vs.root() / "delta"), cfg, backbone).unwrap();
    (vs, delta)
}

/// Every generator variant at prompt layer `pl` (PPG lengths longer and shorter than
/// the test inputs).
fn variants(pl: usize) -> Vec<LptConfig> {
    vec![
        LptConfig::npg(pl),
        LptConfig::pooling(pl, PoolKind::Avg, 10),
        LptConfig::pooling(pl, PoolKind::Max, 3),
        LptConfig::static_prompt(pl),
    ]
}

fn ctx<'a>(backbone: &'a dyn Backbone, input: &'a BackboneInput) -> BindCtx<'a> {
    BindCtx { backbone, input, train: false }
}

// ---------------------------------------------------------------- parameter counts

#[test]
fn parameter_counts_match_the_paper_on_roberta_large_and_gpt2_large() {
    init();
    let roberta = spec_from_config(&fixture("configs/roberta-large.json")).unwrap();
    assert_eq!(roberta.model_type, "roberta");
    assert_eq!(
        (roberta.hidden, roberta.n_layers, roberta.n_heads, roberta.intermediate, roberta.vocab),
        (1024, 24, 16, 4096, 50265)
    );
    assert_eq!(roberta.pad_id, 1);
    let gpt2 = spec_from_config(&fixture("configs/gpt2-large.json")).unwrap();
    assert_eq!(gpt2.model_type, "gpt2");
    assert_eq!((gpt2.hidden, gpt2.n_layers, gpt2.n_heads, gpt2.vocab), (1280, 36, 20, 50257));
    assert_eq!(gpt2.max_positions, 1024);

    // (spec, paper PL, NPG, APPG/MPPG, static 20 × d) — lpt-reference.md §7.
    for (spec, pl, npg, ppg, stat) in
        [(&roberta, 13, 791_680, 263_296, 20_480), (&gpt2, 19, 989_568, 329_088, 25_600)]
    {
        let d = spec.hidden;
        let what = spec.describe();
        let c = LptConfig::npg(pl);
        c.validate(spec).unwrap();
        assert_eq!(c.insert_before_layer(), spec.n_layers / 2, "{what}: PL is the middle layer");
        assert_eq!(c.trainable_params(d), npg, "{what}: NPG");
        for pool in [PoolKind::Avg, PoolKind::Max] {
            for len in [5, 10, 15, 20] {
                let c = LptConfig::pooling(pl, pool, len);
                c.validate(spec).unwrap();
                assert_eq!(c.trainable_params(d), ppg, "{what}: {pool:?} l={len}");
            }
        }
        assert_eq!(LptConfig::static_prompt(pl).trainable_params(d), stat, "{what}: w/o PG");
        assert_eq!(LptConfig::prompt_tuning().trainable_params(d), stat, "{what}: PT");
    }
}

#[test]
fn built_deltas_hold_exactly_the_closed_form_count() {
    init();
    for name in ["bert-mlm", "gpt2-lm"] {
        let backbone = load(&fixture(name));
        let d = backbone.spec().hidden;
        let mut cfgs = variants(2);
        cfgs.push(LptConfig::pooling(1, PoolKind::Max, 20));
        cfgs.push(LptConfig {
            prompt_layer: 2,
            generator: GeneratorConfig::Naive {
                len: 3,
                bottleneck: 16,
                init: LinearInit::HfNormal,
            },
            dropout: 0.1,
        });
        cfgs.push(LptConfig {
            prompt_layer: 1,
            generator: GeneratorConfig::Static { len: 7, init: PromptInit::Vocab { first_n: 100 } },
            dropout: 0.0,
        });
        for cfg in &cfgs {
            let (vs, _delta) = build(backbone.as_ref(), cfg);
            let vars = vs.variables();
            let numel: i64 = vars.values().map(|t| t.numel() as i64).sum();
            assert_eq!(numel, cfg.trainable_params(d), "{name}: {cfg:?}");
            let expected_tensors = match cfg.generator {
                GeneratorConfig::Static { .. } => 1,
                _ => 4,
            };
            assert_eq!(vars.len(), expected_tensors, "{name}: {:?}", vars.keys());
            assert!(vars.values().all(Tensor::requires_grad), "{name}: delta must be trainable");
        }
        assert!(
            backbone.var_store().variables().values().all(|t| !t.requires_grad()),
            "{name}: building a delta must not unfreeze the backbone"
        );
    }
}

// ---------------------------------------------------------------- insertion

fn insertion_at_prompt_layer(name: &str) {
    let backbone = load(&fixture(name));
    let bb = backbone.as_ref();
    let spec = bb.spec();
    let n = spec.n_layers;
    let input = contract::random_batch(spec, &[6, 4], false);
    let (b, t) = (input.batch(), input.seq_len());
    for pl in 1..=n {
        let k = pl - 1;
        for cfg in variants(pl) {
            let what = format!("{name} PL {pl} {:?}", cfg.generator);
            let l = cfg.prompt_len();
            let (_vs, delta) = build(bb, &cfg);
            assert_eq!(delta.grad_floor(), k, "{what}");

            // The final state carries the prompt.
            let rec = RecordingHooks::new();
            let hooks = Stack(vec![delta.bind(&ctx(bb, &input)).unwrap(), Box::new(By(&rec))]);
            let out = bb.forward_t(&input, &hooks, false).unwrap();
            assert_eq!(out.n_prefix, l, "{what}");
            assert_eq!(out.seq_len(), l + t, "{what}");
            assert_eq!(out.hidden.size(), [b, l + t, spec.hidden], "{what}");
            let ones = Tensor::ones([b, l], (Kind::Int64, CPU));
            assert!(out.pad_mask.narrow(1, 0, l).equal(&ones), "{what}: prompt mask");
            assert!(out.text_mask().equal(&input.attention_mask), "{what}: text mask");

            // Recorded after the delta: every site below PL − 1 sees T positions, every
            // site from before_layer(PL − 1) on sees l + T.
            let events = rec.events();
            let before: Vec<usize> = events
                .iter()
                .filter_map(|e| match e {
                    SiteEvent::BeforeLayer(i, _) => Some(*i),
                    _ => None,
                })
                .collect();
            assert_eq!(before, (0..n).collect::<Vec<_>>(), "{what}");
            let len_at = |layer: usize| if layer < k { t } else { l + t };
            for e in &events {
                match e {
                    SiteEvent::InputEmbeds(s) => assert_eq!(s[1], t, "{what}: {e:?}"),
                    SiteEvent::BeforeLayer(i, s) => assert_eq!(s[1], len_at(*i), "{what}: {e:?}"),
                    SiteEvent::Linear(site, x, y) => {
                        assert_eq!((x[1], y[1]), (len_at(site.layer), len_at(site.layer)), "{e:?}")
                    }
                    SiteEvent::SublayerOut(site, h) => assert_eq!(h[1], len_at(site.layer)),
                    _ => {}
                }
            }

            // Layers below PL are the plain backbone's, bit for bit; above, every real
            // text position changes.
            for j in 0..=n {
                let hooks = delta.bind(&ctx(bb, &input)).unwrap();
                let s = bb.embed(&input, hooks.as_ref(), false).unwrap();
                let s = bb.layers(s, 0..j, hooks.as_ref(), false).unwrap();
                let p = bb.embed(&input, &NoHooks, false).unwrap();
                let p = bb.layers(p, 0..j, &NoHooks, false).unwrap();
                if j <= k {
                    assert_eq!(s.n_prefix, 0, "{what}: after {j} layers");
                    assert!(s.hidden.equal(&p.hidden), "{what}: layer {j} differs from plain");
                } else {
                    assert_eq!(s.n_prefix, l, "{what}: after {j} layers");
                    let change = (s.text_hidden() - &p.hidden).abs().amax([-1].as_slice(), false);
                    let min = change.masked_select(&input.attention_mask.ne(0)).min();
                    assert!(
                        min.double_value(&[]) > 1e-6,
                        "{what}: some text output after {j} layers ignores the prompt"
                    );
                }
            }
        }
    }
}

#[test]
fn bert_prompt_enters_at_the_prompt_layer() {
    init();
    insertion_at_prompt_layer("bert-mlm");
}

#[test]
fn gpt2_prompt_enters_at_the_prompt_layer() {
    init();
    insertion_at_prompt_layer("gpt2-lm");
}

#[test]
fn llama_prompt_enters_at_the_prompt_layer() {
    init();
    insertion_at_prompt_layer("llama-lm");
}

// ---------------------------------------------------------------- masks after insertion

/// An example alone and the same example padded in a batch give the same text and
/// prompt outputs with every LPT variant at every prompt layer (eval mode).
fn padding_stays_masked_after_the_prompt(name: &str, pad_left: bool) {
    let backbone = load(&fixture(name));
    let bb = backbone.as_ref();
    let (short, batch, t) = contract::padded_in_batch(bb.spec(), pad_left);
    for pl in 1..=bb.spec().n_layers {
        for cfg in variants(pl) {
            let what = format!("{name} (pad_left {pad_left}) PL {pl} {:?}", cfg.generator);
            let (_vs, delta) = build(bb, &cfg);
            let run = |input: &BackboneInput| {
                let hooks = delta.bind(&ctx(bb, input)).unwrap();
                bb.forward_t(input, hooks.as_ref(), false).unwrap()
            };
            let alone = run(&short);
            let inside = run(&batch);
            let l = cfg.prompt_len();
            assert_eq!((alone.n_prefix, inside.n_prefix), (l, l), "{what}");
            let a = alone.text_hidden().get(0); // [4, H]
            let text = inside.text_hidden().get(0); // [t, H]
            let b = if pad_left { text.narrow(0, t - 4, 4) } else { text.narrow(0, 0, 4) };
            let d = max_diff(&a, &b);
            assert!(d < 1e-5, "{what}: padding leaked into the text outputs ({d:e})");
            let pa = alone.hidden.get(0).narrow(0, 0, l);
            let pb = inside.hidden.get(0).narrow(0, 0, l);
            let d = max_diff(&pa, &pb);
            assert!(d < 1e-5, "{what}: prompt outputs depend on padding ({d:e})");
        }
    }
}

#[test]
fn bert_padding_stays_masked_after_the_prompt() {
    init();
    padding_stays_masked_after_the_prompt("bert-mlm", false);
}

#[test]
fn roberta_padding_stays_masked_after_the_prompt() {
    init();
    padding_stays_masked_after_the_prompt("roberta-mlm", false);
}

#[test]
fn deberta_padding_stays_masked_after_the_prompt() {
    init();
    padding_stays_masked_after_the_prompt("deberta-mlm", false);
}

#[test]
fn gpt2_padding_stays_masked_after_the_prompt() {
    init();
    padding_stays_masked_after_the_prompt("gpt2-lm", true);
    padding_stays_masked_after_the_prompt("gpt2-lm", false);
}

#[test]
fn llama_family_padding_stays_masked_after_the_prompt() {
    // Rotary positions and (Mistral) a sliding window counted in positions.
    init();
    for name in ["llama-lm", "mistral-lm"] {
        padding_stays_masked_after_the_prompt(name, true);
        padding_stays_masked_after_the_prompt(name, false);
    }
}

// ---------------------------------------------------------------- generators

/// Right-padded mask `[B, T]` for `lengths`.
fn right_mask(lengths: &[i64], t: i64) -> Tensor {
    let pos = Tensor::arange(t, (Kind::Int64, CPU)).unsqueeze(0);
    pos.lt_tensor(&Tensor::from_slice(lengths).unsqueeze(1)).to_kind(Kind::Int64)
}

#[test]
fn generators_have_the_documented_shapes_on_ragged_batches() {
    init();
    let (d, t) = (32i64, 12i64);
    let lengths = [2i64, 7, 12];
    let b = lengths.len() as i64;
    let hidden = Tensor::randn([b, t, d], (Kind::Float, CPU));
    let mask = right_mask(&lengths, t);
    let anchor = first_valid_index(&mask);
    let vs = VarStore::new(CPU);

    let npg = PromptGenerator::new(&(vs.root() / "npg"), &LptConfig::npg(1), d, None).unwrap();
    assert_eq!(npg.generate(&hidden, &mask, &anchor).size(), [b, 5, d]);
    assert!(npg.is_instance_aware());

    let stat =
        PromptGenerator::new(&(vs.root() / "st"), &LptConfig::static_prompt(1), d, None).unwrap();
    assert_eq!(stat.generate(&hidden, &mask, &anchor).size(), [20, d]);
    assert!(!stat.is_instance_aware());

    // l = 10 is longer than two of the examples: PyTorch's adaptive pooling repeats
    // inputs. The batched result equals the authors' loop: crop each example to its
    // length, pool `[1, m, len]` to l, then ReLU and proj_up.
    for (i, pool) in [PoolKind::Avg, PoolKind::Max].into_iter().enumerate() {
        let cfg = LptConfig::pooling(1, pool, 10);
        let g = PromptGenerator::new(&(vs.root() / format!("ppg{i}")), &cfg, d, None).unwrap();
        let out = g.generate(&hidden, &mask, &anchor);
        assert_eq!(out.size(), [b, 10, d], "{pool:?}");
        assert_eq!(out.isfinite().all().int64_value(&[]), 1, "{pool:?}: empty bin");
        let PromptGenerator::Pool { down, up, .. } = &g else { panic!("not a pooling generator") };
        for (e, &len) in lengths.iter().enumerate() {
            let z = down.forward(&hidden.get(e as i64).narrow(0, 0, len)); // [len, m]
            let z = z.transpose(0, 1).unsqueeze(0); // [1, m, len]
            let pooled = match pool {
                PoolKind::Avg => z.adaptive_avg_pool1d([10]),
                PoolKind::Max => z.adaptive_max_pool1d([10]).0,
            }; // [1, m, l]
            let want = up.forward(&pooled.squeeze_dim(0).transpose(0, 1).relu()); // [l, d]
            assert_close(&out.get(e as i64), &want, 1e-5, &format!("{pool:?} example {e}"));
        }
    }
}

/// Adds 1 to one hidden vector before layer `layer` (stacked before the delta).
struct Perturb {
    layer: usize,
    example: i64,
    pos: i64,
}

impl Hooks for Perturb {
    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        if layer != self.layer {
            return Ok(s);
        }
        let bump = s.hidden.zeros_like();
        let mut at = bump.get(self.example).get(self.pos);
        let _ = at.fill_(1.0);
        let hidden = &s.hidden + bump;
        Ok(s.with_hidden(hidden))
    }
}

/// Keeps the first `len` positions of the state after `before_layer(layer)` (the
/// prompt, when stacked after the delta).
struct Capture {
    layer: usize,
    len: i64,
    got: RefCell<Option<Tensor>>,
}

impl Hooks for Capture {
    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        if layer == self.layer {
            *self.got.borrow_mut() = Some(s.hidden.narrow(1, 0, self.len).copy());
        }
        Ok(s)
    }
}

/// NPG's prompt per example when (optionally) one hidden vector at the prompt layer is
/// perturbed: `[B, l, H]`.
fn npg_prompt(
    bb: &dyn Backbone,
    delta: &LptDelta,
    input: &BackboneInput,
    at: Option<(i64, i64)>,
) -> Tensor {
    let k = delta.grad_floor();
    let capture = Capture { layer: k, len: delta.config().prompt_len(), got: RefCell::new(None) };
    let mut hooks: Vec<Box<dyn Hooks + '_>> = Vec::new();
    if let Some((example, pos)) = at {
        hooks.push(Box::new(Perturb { layer: k, example, pos }));
    }
    hooks.push(delta.bind(&ctx(bb, input)).unwrap());
    hooks.push(Box::new(By(&capture)));
    bb.forward_t(input, &Stack(hooks), false).unwrap();
    let got = capture.got.borrow_mut().take();
    got.expect("the delta never reached its prompt layer")
}

/// Perturbing the anchor of example `e` changes its prompt (and only its prompt);
/// perturbing any other position of it changes nothing, bit for bit.
fn check_anchor(name: &str, pad_left: bool, anchors: &[i64]) {
    let backbone = load(&fixture(name));
    let bb = backbone.as_ref();
    let input = contract::random_batch(bb.spec(), &[6, 4], pad_left);
    let t = input.seq_len();
    let (_vs, delta) = build(bb, &LptConfig::npg(2));
    let base = npg_prompt(bb, &delta, &input, None);
    for (e, &anchor) in anchors.iter().enumerate() {
        let e = e as i64;
        for pos in 0..t {
            let what = format!("{name} (pad_left {pad_left}) example {e} position {pos}");
            let got = npg_prompt(bb, &delta, &input, Some((e, pos)));
            for other in 0..input.batch() {
                let same = got.get(other).equal(&base.get(other));
                if other == e && pos == anchor {
                    assert!(!same, "{what}: perturbing the anchor must change the prompt");
                } else {
                    assert!(same, "{what}: prompt of example {other} read a non-anchor token");
                }
            }
        }
    }
}

#[test]
fn npg_reads_the_first_valid_token_of_encoders() {
    init();
    // Lengths 6 and 4 in a batch of 6: right padding → [CLS] at 0; left padding → the
    // first valid token of the short example is at 2.
    check_anchor("bert-mlm", false, &[0, 0]);
    check_anchor("bert-mlm", true, &[0, 2]);
}

#[test]
fn npg_reads_the_last_valid_token_of_decoders() {
    init();
    for name in ["gpt2-lm", "qwen2-lm"] {
        check_anchor(name, false, &[5, 3]);
        check_anchor(name, true, &[5, 5]);
    }
}

// ---------------------------------------------------------------- initialisation

fn abs_max(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

/// U(±bound): within the bound, reaching close to it, with the uniform's std bound/√3.
fn assert_torch_uniform(t: &Tensor, fan_in: i64, what: &str) {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let kaiming = (6.0 / fan_in as f64).sqrt();
    let m = abs_max(t);
    assert!(m <= bound, "{what}: max |w| = {m} beyond PyTorch's 1/√fan_in = {bound}");
    assert!(m < kaiming / 2.0, "{what}: looks like tch's Kaiming bound {kaiming}");
    if t.numel() >= 1000 {
        assert!(m > 0.99 * bound, "{what}: max |w| = {m}, expected close to {bound}");
        let std = t.std(true).double_value(&[]);
        let want = bound / 3f64.sqrt();
        assert!((std / want - 1.0).abs() < 0.03, "{what}: std {std}, expected {want}");
    }
}

#[test]
fn generators_get_pytorch_default_init() {
    init();
    tch::manual_seed(20221021);
    let (d, m) = (1024i64, 128i64);
    let vs = VarStore::new(CPU);
    let npg = PromptGenerator::new(&(vs.root() / "npg"), &LptConfig::npg(13), d, None).unwrap();
    let PromptGenerator::Naive { down, up, len } = &npg else { panic!("not NPG") };
    assert_eq!(down.ws.size(), [m, d]);
    assert_eq!(up.ws.size(), [len * d, m]);
    assert_torch_uniform(&down.ws, d, "proj_down.weight");
    assert_torch_uniform(down.bs.as_ref().unwrap(), d, "proj_down.bias");
    assert_torch_uniform(&up.ws, m, "proj_up.weight");
    assert_torch_uniform(up.bs.as_ref().unwrap(), m, "proj_up.bias");

    let ppg = LptConfig::pooling(13, PoolKind::Avg, 10);
    let g = PromptGenerator::new(&(vs.root() / "ppg"), &ppg, d, None).unwrap();
    let PromptGenerator::Pool { down, up, .. } = &g else { panic!("not PPG") };
    assert_torch_uniform(&down.ws, d, "APPG proj_down.weight");
    assert_torch_uniform(&up.ws, m, "APPG proj_up.weight");

    // The authors' static prompt is nn.Embedding's N(0, 1).
    let st =
        PromptGenerator::new(&(vs.root() / "st"), &LptConfig::static_prompt(13), d, None).unwrap();
    let PromptGenerator::Static { prompt } = &st else { panic!("not static") };
    assert_eq!(prompt.size(), [20, d]);
    let std = prompt.std(true).double_value(&[]);
    let mean = prompt.mean(Kind::Float).double_value(&[]);
    assert!((std - 1.0).abs() < 0.03, "static prompt std {std}");
    assert!(mean.abs() < 0.03, "static prompt mean {mean}");

    // HF's init, on request: N(0, 0.02²), zero biases.
    let hf = LptConfig {
        prompt_layer: 13,
        generator: GeneratorConfig::Naive { len: 5, bottleneck: m, init: LinearInit::HfNormal },
        dropout: 0.1,
    };
    let g = PromptGenerator::new(&(vs.root() / "hf"), &hf, d, None).unwrap();
    let PromptGenerator::Naive { down, up, .. } = &g else { panic!("not NPG") };
    let std = up.ws.std(true).double_value(&[]);
    assert!((std - 0.02).abs() < 0.001, "HF-normal std {std}");
    assert_eq!(abs_max(down.bs.as_ref().unwrap()), 0.0);
}
