//! Bottleneck adapters (Houlsby et al., 2019; OpenDelta's `AdapterModel`, the LPT
//! paper's "Adapter" row) and AdapterDrop (Rücklé et al., EMNLP 2021).
//!
//! An adapter `h + up(act(down(h)))` sits on a sublayer's output just before the
//! residual add (`Hooks::sublayer_out`, after the output projection and its dropout, as
//! adapter-transformers places it), after attention and after the FFN of every layer.
//! `down: d → m` is N(0, `init_std`²), `up: m → d` and both biases start at zero, so a
//! fresh adapter is the identity.
//!
//! AdapterDrop removes the adapters of the lowest `n` layers. With
//! [`DropSchedule::Fixed`] they are never allocated and those layers run without
//! autograd (`grad_floor = n`). With [`DropSchedule::Sampled`] every layer has an
//! adapter and each training batch drops the lowest `k ~ U{0..=n}` ("robust"
//! AdapterDrop); inference keeps them all.

use std::cell::Cell;
use std::collections::BTreeMap;

use petune_core::{
    Backbone, BackboneSpec, BindCtx, Delta, Error, Hooks, Result, Sublayer, SublayerSite,
};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::activation::Act;

/// Adapter settings (paper: bottleneck 16 after attention and FFN, as OpenDelta's
/// `AdapterModel`; unlike OpenDelta, whose up projection is N(0, 0.01²) too, `up` starts
/// at zero so that a fresh adapter is the identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// Bottleneck size m.
    #[serde(default = "default_bottleneck")]
    pub bottleneck: i64,
    /// Activation between the projections.
    #[serde(default)]
    pub activation: Act,
    /// Std of the down projection's normal init.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    /// Which sublayers get an adapter.
    #[serde(default = "default_sublayers")]
    pub sublayers: Vec<Sublayer>,
}

fn default_bottleneck() -> i64 {
    16
}

fn default_init_std() -> f64 {
    0.01
}

fn default_sublayers() -> Vec<Sublayer> {
    vec![Sublayer::Attn, Sublayer::Ffn]
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            bottleneck: default_bottleneck(),
            activation: Act::default(),
            init_std: default_init_std(),
            sublayers: default_sublayers(),
        }
    }
}

/// How AdapterDrop chooses the dropped layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DropSchedule {
    /// Always the lowest `drop_lowest` layers (no adapters allocated there).
    #[default]
    Fixed,
    /// Each training batch drops the lowest `k ~ U{0..=drop_lowest}`; none at inference.
    Sampled,
}

/// AdapterDrop settings (paper: the lowest 12 of RoBERTa-large's 24 layers dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterDropConfig {
    /// The adapters.
    #[serde(default)]
    pub adapter: AdapterConfig,
    /// Number of lowest layers without adapters.
    pub drop_lowest: usize,
    /// Fixed or sampled per batch.
    #[serde(default)]
    pub schedule: DropSchedule,
}

impl AdapterConfig {
    fn per_adapter(&self, d: i64) -> i64 {
        2 * self.bottleneck * d + self.bottleneck + d
    }

    /// Trainable parameters on `layers` layers: `layers · |sublayers| · (2·m·d + m + d)`.
    pub fn params_on(&self, spec: &BackboneSpec, layers: usize) -> i64 {
        layers as i64 * self.sublayers.len() as i64 * self.per_adapter(spec.hidden)
    }

    /// Trainable parameters with adapters in every layer.
    pub fn trainable_params(&self, spec: &BackboneSpec) -> i64 {
        self.params_on(spec, spec.n_layers)
    }

    /// Checks the config.
    pub fn validate(&self) -> Result<()> {
        if self.bottleneck < 1 {
            return Err(Error::config("bottleneck", "must be positive"));
        }
        if self.sublayers.is_empty() {
            return Err(Error::config("sublayers", "choose attn, ffn or both"));
        }
        Ok(())
    }
}

impl AdapterDropConfig {
    /// Trainable parameters: adapters only above the dropped layers when fixed.
    pub fn trainable_params(&self, spec: &BackboneSpec) -> i64 {
        match self.schedule {
            DropSchedule::Fixed => {
                self.adapter.params_on(spec, spec.n_layers.saturating_sub(self.drop_lowest))
            }
            DropSchedule::Sampled => self.adapter.trainable_params(spec),
        }
    }

    /// Checks the config against a backbone.
    pub fn validate(&self, spec: &BackboneSpec) -> Result<()> {
        self.adapter.validate()?;
        if self.drop_lowest >= spec.n_layers {
            return Err(Error::config(
                "drop_lowest",
                format!("must leave at least one of the {} layers", spec.n_layers),
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Bottleneck {
    down: nn::Linear,
    up: nn::Linear,
}

/// Adapters on the chosen sublayers of the chosen layers.
#[derive(Debug)]
pub struct AdapterDelta {
    cfg: AdapterConfig,
    adapters: BTreeMap<SublayerSite, Bottleneck>,
    /// Fixed floor (AdapterDrop fixed), or the sampling bound (sampled).
    drop: Option<(usize, DropSchedule)>,
    /// Layers dropped for the batch bound last (read by `grad_floor`).
    dropped_now: Cell<usize>,
}

impl AdapterDelta {
    /// Adapters in every layer.
    pub fn new(p: &nn::Path, cfg: &AdapterConfig, backbone: &dyn Backbone) -> Result<Self> {
        cfg.validate()?;
        Self::build(p, cfg, backbone.spec(), None)
    }

    /// AdapterDrop.
    pub fn with_drop(
        p: &nn::Path,
        cfg: &AdapterDropConfig,
        backbone: &dyn Backbone,
    ) -> Result<Self> {
        cfg.validate(backbone.spec())?;
        Self::build(p, &cfg.adapter, backbone.spec(), Some((cfg.drop_lowest, cfg.schedule)))
    }

    fn build(
        p: &nn::Path,
        cfg: &AdapterConfig,
        spec: &BackboneSpec,
        drop: Option<(usize, DropSchedule)>,
    ) -> Result<Self> {
        let first = match drop {
            Some((n, DropSchedule::Fixed)) => n,
            _ => 0,
        };
        let (d, m) = (spec.hidden, cfg.bottleneck);
        let mut adapters = BTreeMap::new();
        for site in spec.sublayer_sites() {
            if site.layer < first || !cfg.sublayers.contains(&site.kind) {
                continue;
            }
            let kind = match site.kind {
                Sublayer::Attn => "attn",
                Sublayer::Ffn => "ffn",
            };
            let a = p / format!("layer_{}", site.layer) / kind;
            let zero = nn::LinearConfig {
                ws_init: Init::Const(0.0),
                bs_init: Some(Init::Const(0.0)),
                bias: true,
            };
            let down_cfg = nn::LinearConfig {
                ws_init: Init::Randn { mean: 0.0, stdev: cfg.init_std },
                ..zero
            };
            adapters.insert(
                site,
                Bottleneck {
                    down: nn::linear(&a / "down", d, m, down_cfg),
                    up: nn::linear(&a / "up", m, d, zero),
                },
            );
        }
        Ok(AdapterDelta { cfg: cfg.clone(), adapters, drop, dropped_now: Cell::new(first) })
    }

    /// Number of adapters allocated.
    pub fn len(&self) -> usize {
        self.adapters.len()
    }

    /// Whether no adapter is allocated.
    pub fn is_empty(&self) -> bool {
        self.adapters.is_empty()
    }
}

struct AdapterHooks<'a> {
    delta: &'a AdapterDelta,
    /// Layers below this run without their adapter for this batch.
    first_active: usize,
}

impl Hooks for AdapterHooks<'_> {
    fn sublayer_out(&self, site: SublayerSite, h: Tensor) -> Tensor {
        if site.layer < self.first_active {
            return h;
        }
        match self.delta.adapters.get(&site) {
            Some(a) => {
                let z = self.delta.cfg.activation.forward(&a.down.forward(&h)); // [B, T, m]
                &h + a.up.forward(&z) // [B, T, d]
            }
            None => h,
        }
    }
}

impl Delta for AdapterDelta {
    fn name(&self) -> &'static str {
        if self.drop.is_some() {
            "adapter_drop"
        } else {
            "adapter"
        }
    }

    fn bind<'a>(&'a self, ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>> {
        let first_active = match self.drop {
            None => 0,
            Some((n, DropSchedule::Fixed)) => n,
            Some((n, DropSchedule::Sampled)) if ctx.train => {
                // k ~ U{0..=n} from libtorch's generator (seeded per step by the trainer).
                Tensor::randint((n + 1) as i64, [1], (Kind::Int64, tch::Device::Cpu))
                    .int64_value(&[0]) as usize
            }
            Some((_, DropSchedule::Sampled)) => 0,
        };
        self.dropped_now.set(first_active);
        Ok(Box::new(AdapterHooks { delta: self, first_active }))
    }

    /// The layers whose adapters are dropped for the batch bound last need no autograd.
    fn grad_floor(&self) -> usize {
        self.dropped_now.get()
    }

    fn touched_sites(&self) -> Vec<(petune_core::SiteRef, i64)> {
        let numel = |l: &nn::Linear| {
            l.ws.numel() as i64 + l.bs.as_ref().map(|b| b.numel() as i64).unwrap_or(0)
        };
        self.adapters
            .iter()
            .map(|(site, a)| (petune_core::SiteRef::Sublayer(*site), numel(&a.down) + numel(&a.up)))
            .collect()
    }

    /// Fixed AdapterDrop allocates nothing below its floor.
    fn frozen_prefix_cacheable(&self) -> bool {
        matches!(self.drop, Some((_, DropSchedule::Fixed)))
    }
}
