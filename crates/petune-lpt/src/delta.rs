//! The LPT delta: at the prompt layer, generate a prompt from the hidden states there
//! and prepend it; it is never removed, and heads index past it (paper §3;
//! lpt-reference.md §2). Layers below the prompt layer need no gradient
//! (`grad_floor`), which is where LPT's training-cost saving comes from.

use petune_core::pool::{first_valid_index, last_valid_index};
use petune_core::{Arch, Backbone, BindCtx, Delta, Error, Hooks, Result, SeqState};
use tch::nn;

use crate::config::LptConfig;
use crate::generator::PromptGenerator;

/// Late Prompt Tuning's trainable part.
#[derive(Debug)]
pub struct LptDelta {
    cfg: LptConfig,
    generator: PromptGenerator,
    before_layer: usize,
    arch: Arch,
    params: i64,
}

impl LptDelta {
    /// Builds the generator under `p` (a path of the trainable store) for `backbone`.
    pub fn new(p: &nn::Path, cfg: &LptConfig, backbone: &dyn Backbone) -> Result<Self> {
        let spec = backbone.spec();
        cfg.validate(spec)?;
        let words = backbone.word_embeddings();
        let generator = PromptGenerator::new(p, cfg, spec.hidden, Some(&words))?;
        Ok(LptDelta {
            cfg: cfg.clone(),
            generator,
            before_layer: cfg.insert_before_layer(),
            arch: spec.arch,
            params: cfg.trainable_params(spec.hidden),
        })
    }

    /// The config.
    pub fn config(&self) -> &LptConfig {
        &self.cfg
    }

    /// The generator.
    pub fn generator(&self) -> &PromptGenerator {
        &self.generator
    }
}

struct LptHooks<'a> {
    delta: &'a LptDelta,
    train: bool,
    /// Tokens the generator may read (`[B, n]`), when the input restricts them.
    context: Option<tch::Tensor>,
}

impl Hooks for LptHooks<'_> {
    fn before_layer(&self, layer: usize, s: SeqState) -> Result<SeqState> {
        if layer != self.delta.before_layer {
            return Ok(s);
        }
        let text = s.text_hidden(); // [B, n, d]: tokens an earlier method prepended are not read
        let mask = match &self.context {
            Some(c) => c.logical_and(&s.text_mask().ne(0)).to_kind(tch::Kind::Int64), // [B, n]
            None => s.text_mask(),                                                    // [B, n]
        };
        let anchor = match self.delta.arch {
            Arch::Encoder => first_valid_index(&mask),
            Arch::CausalDecoder => last_valid_index(&mask),
        };
        let prompt = self.delta.generator.generate(&text, &mask, &anchor);
        let train = self.train && self.delta.generator.is_instance_aware();
        let prompt = petune_core::dropout::dropout(prompt, self.delta.cfg.dropout, train);
        s.prepend(&prompt)
    }
}

impl Delta for LptDelta {
    fn name(&self) -> &'static str {
        "lpt"
    }

    fn bind<'a>(&'a self, ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>> {
        if ctx.backbone.spec().n_layers < self.cfg.prompt_layer {
            return Err(Error::config("prompt_layer", "beyond the backbone's layers"));
        }
        let context = ctx.input.context_mask.as_ref().map(|m| m.ne(0));
        Ok(Box::new(LptHooks { delta: self, train: ctx.train, context }))
    }

    fn grad_floor(&self) -> usize {
        self.before_layer
    }

    fn touched_sites(&self) -> Vec<(petune_core::SiteRef, i64)> {
        vec![(petune_core::SiteRef::BeforeLayer { layer: self.before_layer }, self.params)]
    }

    /// Nothing happens below the prompt layer.
    fn frozen_prefix_cacheable(&self) -> bool {
        true
    }
}
