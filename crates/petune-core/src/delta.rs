//! The long-lived parameter holder of a PETuning method (design.md §3, `trait Delta`).
//!
//! A delta owns its trainable tensors (in the trainable store, never the backbone's)
//! and, once per batch, binds them to a [`Hooks`] object that the backbone calls.

use crate::backbone::Backbone;
use crate::error::Result;
use crate::hooks::Hooks;
use crate::input::BackboneInput;

/// What a delta may look at when it binds to a batch.
pub struct BindCtx<'a> {
    /// The frozen backbone (S-IDPG runs it once to get its sentence vector).
    pub backbone: &'a dyn Backbone,
    /// The batch.
    pub input: &'a BackboneInput,
    /// Training mode (dropout on).
    pub train: bool,
}

/// A PETuning method's trainable part.
pub trait Delta {
    /// Short method name (`lpt`, `lora`, ...).
    fn name(&self) -> &'static str;

    /// Does per-batch work once (prefix key/values, generated prompts) and returns the
    /// hooks the backbone will call for this batch.
    /// The hooks may borrow the delta but not the context: a mixed batch binds each
    /// delta on a sub-batch it builds on the fly ([`crate::mixed`]).
    fn bind<'a>(&'a self, ctx: &BindCtx<'_>) -> Result<Box<dyn Hooks + 'a>>;

    /// The lowest layer that needs gradients: layers below it run without autograd
    /// (LPT: its prompt layer; AdapterDrop: the number of dropped layers).
    fn grad_floor(&self) -> usize {
        0
    }

    /// The sites this delta acts on, each with the trainable parameters that serve it
    /// (shared parameters, e.g. a generator, are reported once at the site where they
    /// act). PEFT's `targeted_module_names`, typed. Empty when not reported.
    fn touched_sites(&self) -> Vec<(crate::site::SiteRef, i64)> {
        Vec::new()
    }

    /// Whether the layers below `grad_floor` are untouched by this delta (all their
    /// hooks are identity), so their output for an example can be computed once, in
    /// eval mode, and reused (the frozen-prefix cache): LPT, fixed AdapterDrop.
    fn frozen_prefix_cacheable(&self) -> bool {
        false
    }

    /// Folds the delta into the backbone's weights (LoRA), after which `bind` adds
    /// nothing. Methods that cannot be folded say so.
    fn merge(&self, backbone: &dyn Backbone) -> Result<()> {
        Err(crate::Error::Incompatible {
            method: self.name().into(),
            backbone: backbone.spec().describe(),
            reason: "only weight-space deltas (LoRA) can be merged".into(),
        })
    }

    /// Undoes [`Delta::merge`] (restores the weights up to float rounding).
    fn unmerge(&self, backbone: &dyn Backbone) -> Result<()> {
        Err(crate::Error::Incompatible {
            method: self.name().into(),
            backbone: backbone.spec().describe(),
            reason: "only weight-space deltas (LoRA) can be unmerged".into(),
        })
    }

    /// Whether the delta is currently merged into the backbone.
    fn is_merged(&self) -> bool {
        false
    }
}
