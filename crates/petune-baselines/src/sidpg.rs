//! S-IDPG-PHM (Wu et al., *IDPG: An Instance-Dependent Prompt Generation Method*,
//! NAACL 2022; lpt-reference.md §7): a first pass of the frozen model (no autograd,
//! eval mode) gives a sentence vector — the last layer's first token on encoders, the
//! last real token on GPT-2 — from which a PHM bottleneck generator makes an
//! instance-dependent prompt `[l, d]`: `PHM(d → m) → GELU → dropout → PHM(m → l·d)`.
//! The prompt is prepended to the word embeddings of a second pass (`input_embeds`),
//! which is why the method costs about as much as model tuning per step.
//!
//! Count on RoBERTa-large with the paper's l = 5, m = 256 and n = 16:
//! (16³ + 1024·256/16 + 256) + (16³ + 256·5120/16 + 5120) = 20,736 + 91,136 = 111,872;
//! with the 2-class linear head (2,050) 113,922, the paper's "114K".

use petune_core::pool::{first_valid_index, gather_tokens, last_valid_index};
use petune_core::{
    Arch, Backbone, BackboneSpec, BindCtx, Delta, Error, Hooks, NoHooks, Result, SeqState,
};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::phm::PhmLinear;

/// S-IDPG-PHM settings (paper: l = 5, m = 256; PHM n = 16).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidpgConfig {
    /// Prompt length l.
    #[serde(default = "default_len")]
    pub len: i64,
    /// Bottleneck m.
    #[serde(default = "default_bottleneck")]
    pub bottleneck: i64,
    /// PHM order n (divides d, m and l·d).
    #[serde(default = "default_n")]
    pub phm_n: i64,
    /// Dropout inside the generator.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

fn default_len() -> i64 {
    5
}

fn default_bottleneck() -> i64 {
    256
}

fn default_n() -> i64 {
    16
}

fn default_dropout() -> f64 {
    0.1
}

impl Default for SidpgConfig {
    fn default() -> Self {
        SidpgConfig {
            len: default_len(),
            bottleneck: default_bottleneck(),
            phm_n: default_n(),
            dropout: default_dropout(),
        }
    }
}

impl SidpgConfig {
    /// Trainable parameters of the two PHM layers.
    pub fn trainable_params(&self, spec: &BackboneSpec) -> i64 {
        let (d, m, n) = (spec.hidden, self.bottleneck, self.phm_n);
        PhmLinear::params(n, d, m) + PhmLinear::params(n, m, self.len * d)
    }

    /// Checks the config against a backbone before anything is allocated.
    pub fn validate(&self, spec: &BackboneSpec) -> Result<()> {
        if self.len < 1 || self.bottleneck < 1 {
            return Err(Error::config("len/bottleneck", "must be positive"));
        }
        PhmLinear::check(self.phm_n, spec.hidden, self.bottleneck)?;
        PhmLinear::check(self.phm_n, self.bottleneck, self.len * spec.hidden)?;
        if !spec.capabilities.input_embeds {
            return Err(Error::Incompatible {
                method: "S-IDPG-PHM".into(),
                backbone: spec.describe(),
                reason: "the backbone has no input_embeds site".into(),
            });
        }
        Ok(())
    }
}

/// The PHM prompt generator.
#[derive(Debug)]
pub struct SidpgDelta {
    cfg: SidpgConfig,
    down: PhmLinear,
    up: PhmLinear,
    arch: Arch,
    params: i64,
}

impl SidpgDelta {
    /// Allocates the generator under `p` (`p.generator.{down, up}`).
    pub fn new(p: &nn::Path, cfg: &SidpgConfig, backbone: &dyn Backbone) -> Result<Self> {
        let spec = backbone.spec();
        cfg.validate(spec)?;
        let g = p / "generator";
        Ok(SidpgDelta {
            cfg: cfg.clone(),
            down: PhmLinear::new(&(&g / "down"), cfg.phm_n, spec.hidden, cfg.bottleneck)?,
            up: PhmLinear::new(&(&g / "up"), cfg.phm_n, cfg.bottleneck, cfg.len * spec.hidden)?,
            arch: spec.arch,
            params: cfg.trainable_params(spec),
        })
    }

    /// The sentence vectors `[B, d]` of the frozen first pass.
    fn sentence_vectors(&self, ctx: &BindCtx<'_>) -> Result<Tensor> {
        let _no_grad = tch::no_grad_guard();
        let out = ctx.backbone.forward_t(ctx.input, &NoHooks, false)?;
        let mask = out.text_mask();
        let anchor = match self.arch {
            Arch::Encoder => first_valid_index(&mask),
            Arch::CausalDecoder => last_valid_index(&mask),
        };
        Ok(gather_tokens(&out.text_hidden(), &anchor).detach())
    }
}

struct SidpgHooks {
    /// `[B, l, d]`.
    prompt: Tensor,
}

impl Hooks for SidpgHooks {
    fn input_embeds(&self, s: SeqState) -> Result<SeqState> {
        s.prepend(&self.prompt)
    }
}

impl Delta for SidpgDelta {
    fn name(&self) -> &'static str {
        "sidpg_phm"
    }

    fn touched_sites(&self) -> Vec<(petune_core::SiteRef, i64)> {
        vec![(petune_core::SiteRef::InputEmbeds, self.params)]
    }

    fn bind<'a>(&'a self, ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>> {
        let sentence = self.sentence_vectors(ctx)?; // [B, d]
        let (b, d) = (sentence.size()[0], sentence.size()[1]);
        let z = self.down.forward(&sentence).gelu("none").dropout(self.cfg.dropout, ctx.train); // [B, m]
        let prompt = self.up.forward(&z).view([b, self.cfg.len, d]); // [B, l·d] → [B, l, d]
        Ok(Box::new(SidpgHooks { prompt }))
    }
}
