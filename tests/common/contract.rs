//! The site contract every backbone must satisfy (docs/sites.md): this suite is what
//! admits a new backbone.

use petune::core::{
    Arch, KvPrefix, LinearRole, LinearSite, NormRole, NormSite, RecordingHooks, SiteEvent,
    Sublayer, SublayerSite,
};
use petune::prelude::*;
use tch::{Kind, Tensor};

/// Hooks that prepend a fixed prompt before layer `layer`.
pub struct PrependAt {
    pub layer: usize,
    pub prompt: Tensor,
}

impl Hooks for PrependAt {
    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        if layer == self.layer {
            s.prepend(&self.prompt)
        } else {
            Ok(s)
        }
    }
}

/// A small padded batch of random ids (avoiding id 0..3, often special/padding).
pub fn random_batch(spec: &BackboneSpec, lengths: &[i64], pad_left: bool) -> BackboneInput {
    let t = *lengths.iter().max().unwrap();
    let b = lengths.len() as i64;
    let ids = Tensor::randint_low(5, spec.vocab, [b, t], (Kind::Int64, tch::Device::Cpu));
    let pos = Tensor::arange(t, (Kind::Int64, tch::Device::Cpu)).unsqueeze(0); // [1, T]
    let len = Tensor::from_slice(lengths).unsqueeze(1); // [B, 1]
    let mask = if pad_left { pos.ge_tensor(&(-&len + t)) } else { pos.lt_tensor(&len) }
        .to_kind(Kind::Int64);
    let ids = ids.where_self(
        &mask.ne(0),
        &Tensor::full([b, t], spec.pad_id, (Kind::Int64, tch::Device::Cpu)),
    );
    BackboneInput::new(ids).unwrap().with_attention_mask(mask).unwrap()
}

/// The documented order of events for a plain forward (docs/sites.md); each linear
/// site fires with the sizes of the spec's inventory (`[B, T, d_in] → [B, T, d_out]`).
pub fn expected_events(spec: &BackboneSpec, b: i64, t: i64) -> Vec<SiteEvent> {
    use LinearRole::*;
    let h = spec.hidden;
    let bth = vec![b, t, h];
    let lin = |layer, role| {
        let site = LinearSite { layer, role };
        let info =
            spec.linear_site(site).unwrap_or_else(|| panic!("{site:?} not in the inventory"));
        SiteEvent::Linear(site, vec![b, t, info.d_in], vec![b, t, info.d_out])
    };
    let gated = |layer| spec.linear_site(LinearSite { layer, role: FfnGate }).is_some();
    let norm = |layer, role| SiteEvent::Norm(NormSite { layer, role }, bth.clone());
    let sub = |layer, kind| SiteEvent::SublayerOut(SublayerSite { layer, kind }, bth.clone());
    let mut ev = vec![SiteEvent::InputEmbeds(bth.clone())];
    if spec.arch == Arch::Encoder {
        ev.push(norm(None, NormRole::Embeddings));
    }
    for l in 0..spec.n_layers {
        ev.push(SiteEvent::BeforeLayer(l, bth.clone()));
        ev.push(SiteEvent::AttnPrefix(l));
        let pre_ln = spec.arch == Arch::CausalDecoder;
        if pre_ln {
            ev.push(norm(Some(l), NormRole::Attn));
        }
        ev.extend([lin(l, Query), lin(l, Key), lin(l, Value)]);
        ev.push(lin(l, AttnOut));
        ev.push(sub(l, Sublayer::Attn));
        if pre_ln {
            ev.push(norm(Some(l), NormRole::Ffn));
        } else {
            ev.push(norm(Some(l), NormRole::Attn));
        }
        if gated(l) {
            ev.push(lin(l, FfnGate));
        }
        ev.push(lin(l, FfnUp));
        ev.push(lin(l, FfnDown));
        ev.push(sub(l, Sublayer::Ffn));
        if !pre_ln {
            ev.push(norm(Some(l), NormRole::Ffn));
        }
    }
    if spec.arch == Arch::CausalDecoder {
        ev.push(norm(None, NormRole::Final));
    }
    ev
}

/// Sites fire in the documented order with the documented shapes.
pub fn sites_fire_in_order(backbone: &dyn Backbone) {
    let spec = backbone.spec();
    let input = random_batch(spec, &[5, 3], false);
    let rec = RecordingHooks::new();
    backbone.forward_t(&input, &rec, false).unwrap();
    let got = rec.events();
    let want = expected_events(spec, 2, 5);
    assert_eq!(got.len(), want.len(), "number of site events");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "site event {i}");
    }
}

/// Identity hooks reproduce the plain forward bit for bit.
pub fn identity_hooks_are_bit_exact(backbone: &dyn Backbone) {
    let input = random_batch(backbone.spec(), &[6, 4, 2], false);
    let plain = backbone.forward_t(&input, &NoHooks, false).unwrap();
    let rec = backbone.forward_t(&input, &RecordingHooks::new(), false).unwrap();
    assert!(plain.hidden.equal(&rec.hidden), "recording hooks changed the output");
}

/// `layers(0..k)` then `layers(k..L)` equals `layers(0..L)`, for every k.
pub fn split_layers_equal_whole(backbone: &dyn Backbone) {
    let n = backbone.spec().n_layers;
    let input = random_batch(backbone.spec(), &[6, 4], false);
    let whole = backbone.forward_t(&input, &NoHooks, false).unwrap();
    for k in 0..=n {
        let s = backbone.embed(&input, &NoHooks, false).unwrap();
        let s = backbone.layers(s, 0..k, &NoHooks, false).unwrap();
        let s = backbone.layers(s, k..n, &NoHooks, false).unwrap();
        let s = backbone.finish(s, &NoHooks, false).unwrap();
        assert!(s.hidden.equal(&whole.hidden), "split at {k} differs");
    }
    let s = backbone.embed(&input, &NoHooks, false).unwrap();
    assert!(
        backbone.layers(s, 0..n + 1, &NoHooks, false).is_err(),
        "out-of-range layers must be an error"
    );
}

/// Tokens prepended before layer k are attended by every text position at the layers
/// above (changing the prompt changes every text output), and sit at positions 0..P.
pub fn prepended_tokens_are_attended(backbone: &dyn Backbone) {
    let spec = backbone.spec();
    let n = spec.n_layers;
    let input = random_batch(spec, &[6, 4], false);
    for k in 0..n {
        let p1 = Tensor::randn([3, spec.hidden], (Kind::Float, tch::Device::Cpu));
        let p2 = Tensor::randn([3, spec.hidden], (Kind::Float, tch::Device::Cpu));
        let o1 = backbone.forward_t(&input, &PrependAt { layer: k, prompt: p1 }, false).unwrap();
        let o2 = backbone.forward_t(&input, &PrependAt { layer: k, prompt: p2 }, false).unwrap();
        assert_eq!(o1.n_prefix, 3);
        assert_eq!(o1.hidden.size(), [2, 9, spec.hidden]);
        // [B, T] per-position change over the text part
        let change = (o1.text_hidden() - o2.text_hidden()).abs().amax([-1].as_slice(), false);
        let real = input.attention_mask.ne(0);
        let min_change = change.masked_select(&real).min().double_value(&[]);
        assert!(
            min_change > 1e-6,
            "prompt at layer {k}: some text position ignores it ({min_change:e})"
        );
    }
}

/// One random example of 4 tokens alone, and the same example padded to `t` = 9 inside
/// a batch with a full-length one: `(alone, batch, t)`. With `pad_left` (decoders) both
/// carry explicit positions `clamp(cumsum(mask) - 1, 0)`, as Hugging Face computes them.
pub fn padded_in_batch(spec: &BackboneSpec, pad_left: bool) -> (BackboneInput, BackboneInput, i64) {
    let short = random_batch(spec, &[4], pad_left);
    let t = 9;
    let (ids, mask) = (short.input_ids.shallow_clone(), short.attention_mask.shallow_clone());
    let pad = Tensor::full([1, t - 4], spec.pad_id, (Kind::Int64, tch::Device::Cpu));
    let zeros = Tensor::zeros([1, t - 4], (Kind::Int64, tch::Device::Cpu));
    let (ids_p, mask_p) = if pad_left {
        (Tensor::cat(&[&pad, &ids], 1), Tensor::cat(&[&zeros, &mask], 1))
    } else {
        (Tensor::cat(&[&ids, &pad], 1), Tensor::cat(&[&mask, &zeros], 1))
    };
    let other = random_batch(spec, &[t], pad_left);
    let batch = BackboneInput::new(Tensor::cat(&[&ids_p, &other.input_ids], 0))
        .unwrap()
        .with_attention_mask(Tensor::cat(&[&mask_p, &other.attention_mask], 0))
        .unwrap();
    if !pad_left {
        return (short, batch, t);
    }
    let positions = |m: &Tensor| (m.cumsum(1, Kind::Int64) - 1).clamp_min(0);
    let single_pos = positions(&short.attention_mask);
    let pos = positions(&batch.attention_mask);
    (short.with_positions(single_pos).unwrap(), batch.with_positions(pos).unwrap(), t)
}

/// Outputs at real positions do not depend on how much padding the batch has, with
/// and without a prompt prepended mid-network; `pad_left` for decoders.
pub fn padding_stays_masked(backbone: &dyn Backbone, pad_left: bool) {
    let (short, batch, t) = padded_in_batch(backbone.spec(), pad_left);
    compare_padded(backbone, &short, &batch, pad_left, t)
}

fn compare_padded(
    backbone: &dyn Backbone,
    short: &BackboneInput,
    batch: &BackboneInput,
    pad_left: bool,
    t: i64,
) {
    let spec = backbone.spec();
    let prompt = Tensor::randn([2, spec.hidden], (Kind::Float, tch::Device::Cpu));
    let hooks: Vec<Box<dyn Hooks>> = vec![
        Box::new(NoHooks),
        Box::new(PrependAt { layer: spec.n_layers / 2, prompt: prompt.shallow_clone() }),
    ];
    for h in &hooks {
        let alone = backbone.forward_t(short, h.as_ref(), false).unwrap();
        let inside = backbone.forward_t(batch, h.as_ref(), false).unwrap();
        let p = alone.n_prefix;
        let a = alone.text_hidden().get(0); // [4, H]
        let text = inside.text_hidden().get(0); // [t, H]
        let b = if pad_left { text.narrow(0, t - 4, 4) } else { text.narrow(0, 0, 4) };
        let d = super::max_diff(&a, &b);
        assert!(d < 1e-5, "padding leaked into real positions (prefix {p}): {d:e}");
        if p > 0 {
            let pa = alone.hidden.get(0).narrow(0, 0, p);
            let pb = inside.hidden.get(0).narrow(0, 0, p);
            assert!(super::max_diff(&pa, &pb) < 1e-5, "prompt outputs depend on padding");
        }
    }
}

/// Prefix key/values (P-tuning v2) are attended: a prefix changes every output, and a
/// fully masked prefix is the same as none.
pub fn attn_prefix_is_attended(backbone: &dyn Backbone) {
    struct Prefix {
        k: Tensor,
        v: Tensor,
        mask: Option<Tensor>,
    }
    impl Hooks for Prefix {
        fn attn_prefix(&self, _layer: usize) -> Option<KvPrefix> {
            Some(KvPrefix {
                k: self.k.shallow_clone(),
                v: self.v.shallow_clone(),
                mask: self.mask.as_ref().map(Tensor::shallow_clone),
            })
        }
    }
    let spec = backbone.spec();
    let input = random_batch(spec, &[5, 3], false);
    let shape = [2, spec.n_kv_heads, 4, spec.head_dim]; // prefixes are sized by the KV heads
    let k = Tensor::randn(shape, (Kind::Float, tch::Device::Cpu));
    let v = Tensor::randn(shape, (Kind::Float, tch::Device::Cpu));
    let plain = backbone.forward_t(&input, &NoHooks, false).unwrap();
    let with = backbone
        .forward_t(
            &input,
            &Prefix { k: k.shallow_clone(), v: v.shallow_clone(), mask: None },
            false,
        )
        .unwrap();
    assert_eq!(with.hidden.size(), plain.hidden.size(), "a prefix adds no positions");
    let change = (with.hidden - &plain.hidden).abs().amax([-1].as_slice(), false);
    assert!(change.masked_select(&input.attention_mask.ne(0)).min().double_value(&[]) > 1e-6);
    let masked =
        Prefix { k, v, mask: Some(Tensor::zeros([2, 4], (Kind::Int64, tch::Device::Cpu))) };
    let off = backbone.forward_t(&input, &masked, false).unwrap();
    let real = input.attention_mask.ne(0).unsqueeze(-1).expand_as(&plain.hidden);
    assert!(
        super::max_diff(&off.hidden.masked_select(&real), &plain.hidden.masked_select(&real))
            < 1e-5
    );
}

/// Rotary backbones position tokens by the state (docs/sites.md): shifting every
/// position uniformly changes nothing (only offsets matter), a prompt prepended by
/// `before_layer(0)` is the same as one prepended to the input embeddings, and a late
/// prompt leaves every text–text offset unchanged (text shifted by its length).
pub fn rotary_positions_follow_the_state(backbone: &dyn Backbone) {
    let spec = backbone.spec();
    let input = random_batch(spec, &[6, 4], false);
    let base = backbone.forward_t(&input, &NoHooks, false).unwrap();
    let t = input.seq_len();
    let shifted = input
        .clone()
        .with_positions(
            Tensor::arange(t, (Kind::Int64, tch::Device::Cpu)).unsqueeze(0).expand([2, t], true)
                + 7,
        )
        .unwrap();
    let moved = backbone.forward_t(&shifted, &NoHooks, false).unwrap();
    let real = input.attention_mask.ne(0).unsqueeze(-1).expand_as(&base.hidden);
    let d = super::max_diff(&base.hidden.masked_select(&real), &moved.hidden.masked_select(&real));
    assert!(d < 1e-4, "a uniform position shift changed the output: {d:e}");

    struct AtInput(Tensor);
    impl Hooks for AtInput {
        fn input_embeds(&self, s: SeqState) -> Result<SeqState> {
            s.prepend(&self.0)
        }
    }
    let prompt = Tensor::randn([3, spec.hidden], (Kind::Float, tch::Device::Cpu));
    let a = backbone.forward_t(&input, &AtInput(prompt.shallow_clone()), false).unwrap();
    let b = backbone
        .forward_t(&input, &PrependAt { layer: 0, prompt: prompt.shallow_clone() }, false)
        .unwrap();
    assert!(a.hidden.equal(&b.hidden), "input_embeds and before_layer(0) prompts differ");
    let late =
        backbone.forward_t(&input, &PrependAt { layer: spec.n_layers - 1, prompt }, false).unwrap();
    let want = Tensor::arange(t, (Kind::Int64, tch::Device::Cpu)).unsqueeze(0) + 3;
    assert!(
        late.text_positions().equal(&want.expand([2, t], true)),
        "text positions after a late prompt"
    );
    let prompt_pos =
        Tensor::arange(3, (Kind::Int64, tch::Device::Cpu)).unsqueeze(0).expand([2, 3], true);
    assert!(late.positions.narrow(1, 0, 3).equal(&prompt_pos), "prompt positions 0..P");
}

/// Prefix key/values of one shape for every layer.
pub struct FixedPrefix {
    pub k: Tensor,
    pub v: Tensor,
}

impl Hooks for FixedPrefix {
    fn attn_prefix(&self, _layer: usize) -> Option<KvPrefix> {
        Some(KvPrefix { k: self.k.shallow_clone(), v: self.v.shallow_clone(), mask: None })
    }
}

/// `layers_read_out` at one text token per example is `layers` then that token, for
/// every range ending anywhere, with padding, a prompt prepended at the last layer or
/// below, and prefix key/values; rows outside the text are a typed error.
pub fn read_out_equals_full(backbone: &dyn Backbone) {
    let spec = backbone.spec();
    let n = spec.n_layers;
    let input = random_batch(spec, &[6, 4, 5], false);
    let rows = Tensor::from_slice(&[5i64, 0, 2]); // real tokens of each example
    let cpu = tch::Device::Cpu;
    let prompt = Tensor::randn([2, spec.hidden], (Kind::Float, cpu));
    let shape = [3, spec.n_kv_heads, 2, spec.head_dim];
    let mut hooks: Vec<(&str, Box<dyn Hooks>)> = vec![
        ("no hooks", Box::new(NoHooks)),
        (
            "prompt at the last layer",
            Box::new(PrependAt { layer: n - 1, prompt: prompt.shallow_clone() }),
        ),
        ("prompt at layer 0", Box::new(PrependAt { layer: 0, prompt })),
    ];
    if spec.capabilities.attn_prefix {
        let (k, v) =
            (Tensor::randn(shape, (Kind::Float, cpu)), Tensor::randn(shape, (Kind::Float, cpu)));
        hooks.push(("prefix key/values", Box::new(FixedPrefix { k, v })));
    }
    for (what, h) in &hooks {
        for end in 0..=n {
            let s = backbone.embed(&input, h.as_ref(), false).unwrap();
            let full = backbone.layers(s.clone(), 0..end, h.as_ref(), false).unwrap();
            let want = petune::core::pool::gather_tokens(&full.hidden, &full.text_index(&rows)); // [B, H]
            let got = backbone.layers_read_out(s, 0..end, h.as_ref(), false, &rows).unwrap();
            assert_eq!(got.hidden.size(), [3, 1, spec.hidden], "{what}, 0..{end}");
            let d = super::max_diff(&got.hidden.select(1, 0), &want);
            assert!(d < 1e-5, "{what}, layers 0..{end}: read-out differs by {d:e}");
            let pos = full.positions.gather(1, &full.text_index(&rows).unsqueeze(1), false);
            assert!(got.positions.equal(&pos), "{what}: read-out positions");
        }
    }
    let s = backbone.embed(&input, &NoHooks, false).unwrap();
    for bad in [
        Tensor::from_slice(&[6i64, 0, 0]),
        Tensor::from_slice(&[-1i64, 0, 0]),
        Tensor::from_slice(&[0i64]),
    ] {
        let r = backbone.layers_read_out(s.clone(), 0..n, &NoHooks, false, &bad);
        assert!(r.is_err(), "rows {bad:?} outside the text must be a typed error");
    }
    read_out_runs_the_read_rows(backbone, &input, &rows);
}

/// Records the sites and says whether it is row-wise.
struct Recorder {
    events: RecordingHooks,
    row_wise: bool,
}

impl Hooks for Recorder {
    fn row_wise(&self) -> bool {
        self.row_wise
    }

    fn linear(&self, site: LinearSite, x: &Tensor, y: Tensor) -> Tensor {
        self.events.linear(site, x, y)
    }
}

/// The input length `linear(role)` saw in `layer` (dimension 1 of its input).
fn tokens_seen(events: &[SiteEvent], layer: usize, role: LinearRole) -> i64 {
    let seen = events.iter().find_map(|e| match e {
        SiteEvent::Linear(site, x, _) if *site == LinearSite { layer, role } => Some(x[1]),
        _ => None,
    });
    seen.unwrap_or_else(|| panic!("linear({role:?}) of layer {layer} did not fire"))
}

/// A family that says it computes only the read rows does: in the last layer the query
/// side sees one token per example, keys and values every token — and under hooks that
/// are not row-wise every site sees every token.
fn read_out_runs_the_read_rows(backbone: &dyn Backbone, input: &BackboneInput, rows: &Tensor) {
    let n = backbone.spec().n_layers;
    let t = input.input_ids.size()[1];
    for row_wise in [true, false] {
        let hooks = Recorder { events: RecordingHooks::new(), row_wise };
        let s = backbone.embed(input, &hooks, false).unwrap();
        backbone.layers_read_out(s, 0..n, &hooks, false, rows).unwrap();
        let events = hooks.events.events();
        let rows_only = row_wise && backbone.read_out_rows_only();
        let query_side = if rows_only { 1 } else { t };
        for role in [LinearRole::Query, LinearRole::AttnOut, LinearRole::FfnUp, LinearRole::FfnDown]
        {
            let seen = tokens_seen(&events, n - 1, role);
            assert_eq!(seen, query_side, "last layer, {role:?}, row-wise hooks: {row_wise}");
        }
        assert_eq!(tokens_seen(&events, n - 1, LinearRole::Key), t, "last layer's keys");
        assert_eq!(tokens_seen(&events, 0, LinearRole::FfnUp), t, "layer 0");
    }
}

/// Runs the whole contract.
pub fn full_suite(backbone: &dyn Backbone, pad_left: bool) {
    sites_fire_in_order(backbone);
    identity_hooks_are_bit_exact(backbone);
    split_layers_equal_whole(backbone);
    prepended_tokens_are_attended(backbone);
    padding_stays_masked(backbone, pad_left);
    read_out_equals_full(backbone);
    if backbone.spec().capabilities.attn_prefix {
        attn_prefix_is_attended(backbone);
    }
}
