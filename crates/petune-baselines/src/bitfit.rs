//! BitFit (Ben Zaken et al., ACL 2022; the LPT paper's row via OpenDelta): a trainable
//! bias delta, zero at initialisation, on every linear projection and LayerNorm of the
//! backbone that has a bias (a projection stored without one, e.g. DeBERTa's key, gets
//! none). The deltas add to the frozen biases (`Hooks::linear`, `Hooks::norm`), so the
//! effective bias is `b + Δb`, and the trainer applies no weight decay to them (their
//! names end in `bias`).
//!
//! Count on RoBERTa-large: 24 layers × (4·1024 attention + 4096 + 1024 FFN + 2·1024
//! LayerNorm) = 270,336, + 1,024 for the embedding LayerNorm = 271,360; with the
//! 2-class linear head (2,050) 273,410, the paper's "273K".

use std::collections::BTreeMap;

use petune_core::{Backbone, BackboneSpec, BindCtx, Delta, Hooks, LinearSite, NormSite, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::Tensor;

/// BitFit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitFitConfig {
    /// Tune the biases of the linear projections.
    #[serde(default = "yes")]
    pub linears: bool,
    /// Tune the biases of the LayerNorms.
    #[serde(default = "yes")]
    pub norms: bool,
}

fn yes() -> bool {
    true
}

impl Default for BitFitConfig {
    fn default() -> Self {
        BitFitConfig { linears: true, norms: true }
    }
}

impl BitFitConfig {
    /// Trainable parameters: the widths of every biased linear and LayerNorm chosen.
    pub fn trainable_params(&self, spec: &BackboneSpec) -> i64 {
        let linear: i64 = spec.linear_sites.iter().filter(|s| s.has_bias).map(|s| s.d_out).sum();
        let norm: i64 = spec.norm_sites.iter().filter(|s| s.has_bias).map(|s| s.dim).sum();
        i64::from(self.linears) * linear + i64::from(self.norms) * norm
    }
}

/// The bias deltas.
#[derive(Debug)]
pub struct BitFitDelta {
    linear: BTreeMap<LinearSite, Tensor>,
    norm: BTreeMap<NormSite, Tensor>,
}

impl BitFitDelta {
    /// Allocates a zero bias delta per biased site under `p`.
    pub fn new(p: &nn::Path, cfg: &BitFitConfig, backbone: &dyn Backbone) -> Result<Self> {
        let spec = backbone.spec();
        let zero = Init::Const(0.0);
        let linear = spec
            .linear_sites
            .iter()
            .filter(|s| cfg.linears && s.has_bias)
            .map(|s| {
                let name = format!("layer_{}", s.site.layer);
                let role = format!("{:?}", s.site.role).to_lowercase();
                (s.site, (p / name / role).var("bias", &[s.d_out], zero))
            })
            .collect();
        let norm = spec
            .norm_sites
            .iter()
            .filter(|s| cfg.norms && s.has_bias)
            .map(|s| {
                let place = match s.site.layer {
                    Some(l) => format!("layer_{l}"),
                    None => "outer".to_string(),
                };
                let role = format!("{:?}_norm", s.site.role).to_lowercase();
                (s.site, (p / place / role).var("bias", &[s.dim], zero))
            })
            .collect();
        Ok(BitFitDelta { linear, norm })
    }
}

struct BitFitHooks<'a>(&'a BitFitDelta);

impl Hooks for BitFitHooks<'_> {
    fn linear(&self, site: LinearSite, _x: &Tensor, y: Tensor) -> Tensor {
        match self.0.linear.get(&site) {
            Some(b) => y + b,
            None => y,
        }
    }

    fn norm(&self, site: NormSite, y: Tensor) -> Tensor {
        match self.0.norm.get(&site) {
            Some(b) => y + b,
            None => y,
        }
    }
}

impl Delta for BitFitDelta {
    fn name(&self) -> &'static str {
        "bitfit"
    }

    fn bind<'a>(&'a self, _ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>> {
        Ok(Box::new(BitFitHooks(self)))
    }

    fn touched_sites(&self) -> Vec<(petune_core::SiteRef, i64)> {
        let linear =
            self.linear.iter().map(|(s, b)| (petune_core::SiteRef::Linear(*s), b.numel() as i64));
        let norm =
            self.norm.iter().map(|(s, b)| (petune_core::SiteRef::Norm(*s), b.numel() as i64));
        linear.chain(norm).collect()
    }
}
