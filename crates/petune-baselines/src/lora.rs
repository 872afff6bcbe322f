//! LoRA (Hu et al., ICLR 2022; PEFT's `LoraModel`, the LPT paper's row via OpenDelta):
//! a frozen projection `y = W x + b` becomes `y + (α/r) · B A drop(x)` with
//! `A: [r, in]` Kaiming-uniform (PEFT's `a = √5`, i.e. U(±1/√in)) and `B: [out, r]`
//! zero, so a fresh LoRA is the identity. Query and Value by default (the paper: r = 8,
//! α = 16 on RoBERTa).
//!
//! Any of the backbone's projections can be a target: Query, Key, Value, AttnOut and the
//! FFN's FfnUp and FfnDown everywhere, FfnGate on gated FFNs (the Llama family's
//! `gate_proj`); each pair is sized by the site (`d_in`, `d_out`), so grouped-query
//! Key/Value pairs are `n_kv_heads · head_dim` tall.
//!
//! `fused_qkv` reproduces PEFT/OpenDelta on GPT-2's fused `c_attn` (the paper's GPT-2
//! count, r = 4): one `A: [r, d]` shared by Query, Key and Value and one
//! `B: [q + k + v, r]` whose row blocks are the three roles; dropout is drawn once per
//! layer then.
//!
//! [`LoraDelta::merge`] folds `(α/r) B A` into the frozen weights
//! (`Backbone::add_to_linear_weight`) for adapter-free inference; `unmerge` subtracts it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use petune_core::{
    Backbone, BackboneSpec, BindCtx, Delta, Error, Hooks, LinearRole, LinearSite, Result,
};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::Tensor;

/// LoRA settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// Rank r.
    #[serde(default = "default_r")]
    pub r: i64,
    /// Scale numerator α (the update is scaled by α / r).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Dropout on the LoRA branch's input while training.
    #[serde(default)]
    pub dropout: f64,
    /// Projections adapted.
    #[serde(default = "default_targets")]
    pub targets: Vec<LinearRole>,
    /// One `A` shared by Query/Key/Value (PEFT on GPT-2's `c_attn`); needs all three
    /// in `targets`.
    #[serde(default)]
    pub fused_qkv: bool,
    /// Layers adapted (0-based); all when absent.
    #[serde(default)]
    pub layers: Option<Vec<usize>>,
}

fn default_r() -> i64 {
    8
}

fn default_alpha() -> f64 {
    16.0
}

fn default_targets() -> Vec<LinearRole> {
    vec![LinearRole::Query, LinearRole::Value]
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: default_r(),
            alpha: default_alpha(),
            dropout: 0.0,
            targets: default_targets(),
            fused_qkv: false,
            layers: None,
        }
    }
}

const QKV: [LinearRole; 3] = [LinearRole::Query, LinearRole::Key, LinearRole::Value];

fn role_name(role: LinearRole) -> String {
    format!("{role:?}").to_lowercase()
}

impl LoraConfig {
    /// `α / r`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }

    fn layer_chosen(&self, layer: usize) -> bool {
        self.layers.as_ref().is_none_or(|l| l.contains(&layer))
    }

    fn is_fused(&self, role: LinearRole) -> bool {
        self.fused_qkv && QKV.contains(&role)
    }

    /// Trainable parameters: `r·(in + out)` per adapted projection; fused Q/K/V count
    /// `r·d + (q + k + v)·r` per layer.
    pub fn trainable_params(&self, spec: &BackboneSpec) -> i64 {
        let chosen = spec
            .linear_sites
            .iter()
            .filter(|s| self.targets.contains(&s.site.role) && self.layer_chosen(s.site.layer));
        chosen
            .map(|s| match (self.is_fused(s.site.role), s.site.role) {
                (false, _) => self.r * (s.d_in + s.d_out),
                // The shared A is counted once, at Query.
                (true, LinearRole::Query) => self.r * (s.d_in + s.d_out),
                (true, _) => self.r * s.d_out,
            })
            .sum()
    }

    /// Checks the config against a backbone before anything is allocated.
    pub fn validate(&self, spec: &BackboneSpec) -> Result<()> {
        if self.r < 1 {
            return Err(Error::config("r", "LoRA rank must be positive"));
        }
        if self.targets.is_empty() {
            return Err(Error::config("targets", "choose at least one projection role"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", "must be in [0, 1)"));
        }
        if self.fused_qkv && !QKV.iter().all(|r| self.targets.contains(r)) {
            return Err(Error::config("fused_qkv", "needs query, key and value in targets"));
        }
        if let Some(role) =
            self.targets.iter().find(|r| !spec.linear_sites.iter().any(|s| s.site.role == **r))
        {
            return Err(Error::Incompatible {
                method: "LoRA".into(),
                backbone: spec.describe(),
                reason: format!("the backbone has no {role:?} projection to adapt"),
            });
        }
        if let Some(bad) = self.layers.iter().flatten().find(|&&l| l >= spec.n_layers) {
            return Err(Error::config(
                "layers",
                format!("layer {bad} is beyond the backbone's {} layers", spec.n_layers),
            ));
        }
        Ok(())
    }
}

/// One low-rank pair.
#[derive(Debug)]
pub struct LoraPair {
    /// `[r, in]`.
    pub a: Tensor,
    /// `[out, r]` (`[3d, r]` when fused).
    pub b: Tensor,
}

/// The trained low-rank updates.
#[derive(Debug)]
pub struct LoraDelta {
    cfg: LoraConfig,
    /// Separate pairs by site.
    pairs: BTreeMap<LinearSite, LoraPair>,
    /// Fused Q/K/V pairs by layer.
    fused: BTreeMap<usize, LoraPair>,
    /// `(first row, rows)` of Query, Key and Value within a fused `B`.
    qkv_blocks: [(i64, i64); 3],
    merged: Cell<bool>,
}

impl LoraDelta {
    /// Allocates the pairs under `p` (`p.layer_{i}.{role}.lora_{A,B}.weight`).
    pub fn new(p: &nn::Path, cfg: &LoraConfig, backbone: &dyn Backbone) -> Result<Self> {
        let spec = backbone.spec();
        cfg.validate(spec)?;
        let pair = |place: nn::Path, d_in: i64, d_out: i64| {
            let bound = 1.0 / (d_in as f64).sqrt();
            LoraPair {
                a: (&place / "lora_A").var(
                    "weight",
                    &[cfg.r, d_in],
                    Init::Uniform { lo: -bound, up: bound },
                ),
                b: (&place / "lora_B").var("weight", &[d_out, cfg.r], Init::Const(0.0)),
            }
        };
        // Q, K, V rows of a fused B, from the inventory (every layer has the same sizes).
        let rows = |role| spec.linear_site(LinearSite { layer: 0, role }).map_or(0, |s| s.d_out);
        let (q, k, v) = (rows(LinearRole::Query), rows(LinearRole::Key), rows(LinearRole::Value));
        let qkv_blocks = [(0, q), (q, k), (q + k, v)];
        let mut pairs = BTreeMap::new();
        let mut fused = BTreeMap::new();
        for s in &spec.linear_sites {
            let (layer, role) = (s.site.layer, s.site.role);
            if !cfg.targets.contains(&role) || !cfg.layer_chosen(layer) {
                continue;
            }
            let place = p / format!("layer_{layer}");
            if cfg.is_fused(role) {
                if role == LinearRole::Query {
                    fused.insert(layer, pair(&place / "qkv", s.d_in, q + k + v));
                }
            } else {
                pairs.insert(s.site, pair(&place / role_name(role), s.d_in, s.d_out));
            }
        }
        Ok(LoraDelta { cfg: cfg.clone(), pairs, fused, qkv_blocks, merged: Cell::new(false) })
    }

    /// The config.
    pub fn config(&self) -> &LoraConfig {
        &self.cfg
    }

    /// Separate pairs by site.
    pub fn pairs(&self) -> &BTreeMap<LinearSite, LoraPair> {
        &self.pairs
    }

    /// Fused Q/K/V pairs by layer.
    pub fn fused_pairs(&self) -> &BTreeMap<usize, LoraPair> {
        &self.fused
    }

    /// `(first row, rows)` of Query, Key and Value within a fused `B`.
    pub fn qkv_blocks(&self) -> [(i64, i64); 3] {
        self.qkv_blocks
    }

    /// The `B` rows of `role` within a fused pair: `[d_out, r]`.
    fn fused_rows(&self, b: &Tensor, role: LinearRole) -> Tensor {
        let block = QKV.iter().position(|&r| r == role).unwrap_or(0);
        let (start, len) = self.qkv_blocks[block];
        b.narrow(0, start, len)
    }

    /// Every update `(site, (α/r) · B A)` as `[out, in]` weights.
    fn weight_deltas(&self) -> Vec<(LinearSite, Tensor)> {
        let scale = self.cfg.scale();
        let mut out: Vec<_> =
            self.pairs.iter().map(|(site, p)| (*site, p.b.matmul(&p.a) * scale)).collect();
        for (&layer, p) in &self.fused {
            for role in QKV {
                out.push((
                    LinearSite { layer, role },
                    self.fused_rows(&p.b, role).matmul(&p.a) * scale,
                ));
            }
        }
        out
    }

    fn apply(&self, backbone: &dyn Backbone, sign: f64) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        for (site, delta) in self.weight_deltas() {
            backbone.add_to_linear_weight(site, &(delta * sign))?;
        }
        Ok(())
    }
}

struct LoraHooks<'a> {
    delta: &'a LoraDelta,
    train: bool,
    /// `A · drop(x)` of the fused pair of the layer being run, with the shape of the `x`
    /// it came from: `(layer, x's shape, [B, T, r])`. Query, key and value see the same
    /// `x` — except in a last layer run at the read tokens only
    /// (`Backbone::layers_read_out`), where the query sees those rows `[B, 1, H]`: the
    /// shape tells the two inputs apart (equal shapes there mean one token, the same
    /// values).
    fused_cache: RefCell<Option<(usize, Vec<i64>, Tensor)>>,
}

impl LoraHooks<'_> {
    fn branch_input(&self, x: &Tensor) -> Tensor {
        petune_core::dropout::dropout(x.shallow_clone(), self.delta.cfg.dropout, self.train)
    }
}

impl Hooks for LoraHooks<'_> {
    /// A fused pair shares one dropout draw of a token between its query, key and
    /// value; computing the query at the read tokens alone would draw theirs apart.
    fn row_wise(&self) -> bool {
        !(self.train && self.delta.cfg.dropout > 0.0 && !self.delta.fused.is_empty())
    }

    fn linear(&self, site: LinearSite, x: &Tensor, y: Tensor) -> Tensor {
        let scale = self.delta.cfg.scale();
        if let Some(p) = self.delta.pairs.get(&site) {
            let low = self.branch_input(x).matmul(&p.a.tr()); // [B, T, r]
            return y + low.matmul(&p.b.tr()) * scale; // [B, T, out]
        }
        if let Some(p) = self.delta.fused.get(&site.layer).filter(|_| QKV.contains(&site.role)) {
            let mut cache = self.fused_cache.borrow_mut();
            let shape = x.size();
            let low = match cache.as_ref() {
                // Query opens a layer's pair: its first call there draws the dropout.
                Some((layer, seen, low))
                    if *layer == site.layer && *seen == shape && site.role != LinearRole::Query =>
                {
                    low.shallow_clone()
                }
                _ => {
                    let low = self.branch_input(x).matmul(&p.a.tr()); // [B, T, r]
                    *cache = Some((site.layer, shape, low.shallow_clone()));
                    low
                }
            };
            return y + low.matmul(&self.delta.fused_rows(&p.b, site.role).tr()) * scale;
        }
        y
    }
}

impl Delta for LoraDelta {
    fn name(&self) -> &'static str {
        "lora"
    }

    fn bind<'a>(&'a self, ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>> {
        if self.merged.get() {
            if ctx.train {
                return Err(Error::config("lora", "unmerge the LoRA weights before training"));
            }
            return Ok(Box::new(petune_core::NoHooks));
        }
        Ok(Box::new(LoraHooks { delta: self, train: ctx.train, fused_cache: RefCell::new(None) }))
    }

    /// Fused Q/K/V: the shared `A` is reported at Query, each role with its `B` rows.
    fn touched_sites(&self) -> Vec<(petune_core::SiteRef, i64)> {
        let n = |t: &Tensor| t.numel() as i64;
        let mut out: Vec<_> = self
            .pairs
            .iter()
            .map(|(s, p)| (petune_core::SiteRef::Linear(*s), n(&p.a) + n(&p.b)))
            .collect();
        for (&layer, p) in &self.fused {
            for (role, (_, rows)) in QKV.into_iter().zip(self.qkv_blocks) {
                let a = if role == LinearRole::Query { n(&p.a) } else { 0 };
                let b = rows * p.b.size()[1];
                out.push((petune_core::SiteRef::Linear(LinearSite { layer, role }), a + b));
            }
        }
        out.sort_by_key(|(s, _)| *s);
        out
    }

    fn merge(&self, backbone: &dyn Backbone) -> Result<()> {
        if self.merged.get() {
            return Err(Error::config("lora", "already merged"));
        }
        self.apply(backbone, 1.0)?;
        self.merged.set(true);
        Ok(())
    }

    fn unmerge(&self, backbone: &dyn Backbone) -> Result<()> {
        if !self.merged.get() {
            return Err(Error::config("lora", "not merged"));
        }
        self.apply(backbone, -1.0)?;
        self.merged.set(false);
        Ok(())
    }

    fn is_merged(&self) -> bool {
        self.merged.get()
    }
}
