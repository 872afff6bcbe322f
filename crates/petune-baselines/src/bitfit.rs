//! BitFit (Ben Zaken et al., ACL 2022; the LPT paper's row via OpenDelta): a trainable
//! bias delta, zero at initialisation, on every linear projection and LayerNorm of the
//! backbone that has a bias (a projection stored without one, e.g. DeBERTa's key, gets
//! none). The deltas add to the frozen biases (`Hooks::linear`, `Hooks::norm`), so the
//! effective bias is `b + Δb`, and the trainer applies no weight decay to them (their
//! names end in `bias`).
//!
//! Bias-free backbones (Llama, Mistral: no bias anywhere; Qwen2: only q/k/v) are a
//! choice, not a fallback: with `add_missing` every chosen site without a bias gets a
//! zero-initialised trainable one too (OpenDelta's BitFit also adds biases to modules
//! that have none), the norms included (added after the RMSNorm's scale); without it, a
//! backbone where nothing chosen has a bias is refused at construction with an error
//! that names the option.
//!
//! Count on RoBERTa-large: 24 layers × (4·1024 attention + 4096 + 1024 FFN + 2·1024
//! LayerNorm) = 270,336, + 1,024 for the embedding LayerNorm = 271,360; with the
//! 2-class linear head (2,050) 273,410, the paper's "273K".

use std::collections::BTreeMap;

use petune_core::{
    Backbone, BackboneSpec, BindCtx, Delta, Error, Hooks, LinearSite, LinearSiteInfo, NormSite,
    NormSiteInfo, Result,
};
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
    /// Also add a zero-initialised trainable bias where a chosen site has none.
    #[serde(default)]
    pub add_missing: bool,
}

fn yes() -> bool {
    true
}

impl Default for BitFitConfig {
    fn default() -> Self {
        BitFitConfig { linears: true, norms: true, add_missing: false }
    }
}

impl BitFitConfig {
    /// Trainable parameters: the widths of every biased (or, with `add_missing`, every)
    /// linear and norm chosen.
    pub fn trainable_params(&self, spec: &BackboneSpec) -> i64 {
        let (linear, norm) = self.chosen(spec);
        linear.iter().map(|s| s.d_out).sum::<i64>() + norm.iter().map(|s| s.dim).sum::<i64>()
    }

    /// The linear and norm sites that get a bias delta.
    fn chosen<'s>(
        &self,
        spec: &'s BackboneSpec,
    ) -> (Vec<&'s LinearSiteInfo>, Vec<&'s NormSiteInfo>) {
        let keep = |has_bias: bool| has_bias || self.add_missing;
        let linear =
            spec.linear_sites.iter().filter(|s| self.linears && keep(s.has_bias)).collect();
        let norm = spec.norm_sites.iter().filter(|s| self.norms && keep(s.has_bias)).collect();
        (linear, norm)
    }

    /// Refuses a selection with nothing to tune (a bias-free backbone without
    /// `add_missing`).
    pub fn validate(&self, spec: &BackboneSpec) -> Result<()> {
        let (linear, norm) = self.chosen(spec);
        if linear.is_empty() && norm.is_empty() {
            return Err(Error::Incompatible {
                method: "BitFit".into(),
                backbone: spec.describe(),
                reason: "none of the chosen projections or norms has a bias; set \
                         \"add_missing\": true to train zero-initialised biases there"
                    .into(),
            });
        }
        Ok(())
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
        cfg.validate(spec)?;
        let zero = Init::Const(0.0);
        let (linear, norm) = cfg.chosen(spec);
        let linear = linear
            .into_iter()
            .map(|s| {
                let name = format!("layer_{}", s.site.layer);
                let role = format!("{:?}", s.site.role).to_lowercase();
                (s.site, (p / name / role).var("bias", &[s.d_out], zero))
            })
            .collect();
        let norm = norm
            .into_iter()
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
