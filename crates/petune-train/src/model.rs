//! A backbone, an optional delta and a head composed into one forward pass:
//! bind the delta → embed → layers below the delta's `grad_floor` without autograd →
//! the remaining layers → finish → head (design.md §3, `TunedModel`).
//!
//! `train` (dropout) is passed unchanged into the no-grad region: the LPT authors keep
//! dropout active in the frozen layers during training (lpt-reference.md §0).

use petune_core::{Backbone, BackboneInput, BindCtx, Delta, Hooks, NoHooks, Result, SeqState};

use crate::features::Batch;

/// Runs the backbone with `delta` on `batch`, layers below `grad_floor` without autograd.
pub fn forward(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    batch: &Batch,
    train: bool,
) -> Result<SeqState> {
    forward_input(backbone, delta, &batch.input, train)
}

/// [`forward`] on a model input (no head-specific batch fields).
pub fn forward_input(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    input: &BackboneInput,
    train: bool,
) -> Result<SeqState> {
    let hooks: Box<dyn Hooks + '_> = match delta {
        Some(d) => d.bind(&BindCtx { backbone, input, train })?,
        None => Box::new(NoHooks),
    };
    let n = backbone.spec().n_layers;
    let floor = delta.map(|d| d.grad_floor()).unwrap_or(0).min(n);
    let s = if floor > 0 {
        let _guard = tch::no_grad_guard();
        let s = backbone.embed(input, hooks.as_ref(), train)?;
        backbone.layers(s, 0..floor, hooks.as_ref(), train)?
    } else {
        backbone.embed(input, hooks.as_ref(), train)?
    };
    let s = backbone.layers(s, floor..n, hooks.as_ref(), train)?;
    backbone.finish(s, hooks.as_ref(), train)
}

/// The state after the layers below `delta`'s floor, in eval mode and without autograd:
/// what the frozen-prefix cache stores. Only for deltas whose hooks are identity there.
pub fn frozen_prefix(
    backbone: &dyn Backbone,
    delta: &dyn Delta,
    batch: &Batch,
) -> Result<SeqState> {
    if !delta.frozen_prefix_cacheable() {
        return Err(petune_core::Error::config(
            "frozen_prefix_cache",
            format!("{} acts below its floor: nothing to cache", delta.name()),
        ));
    }
    let _guard = tch::no_grad_guard();
    let floor = delta.grad_floor().min(backbone.spec().n_layers);
    let s = backbone.embed(&batch.input, &NoHooks, false)?;
    backbone.layers(s, 0..floor, &NoHooks, false)
}

/// Runs the layers from `delta`'s floor up, starting from a cached state `s0` (the
/// output of [`frozen_prefix`] for this batch's examples).
pub fn forward_from(
    backbone: &dyn Backbone,
    delta: &dyn Delta,
    batch: &Batch,
    s0: SeqState,
    train: bool,
) -> Result<SeqState> {
    let hooks = delta.bind(&BindCtx { backbone, input: &batch.input, train })?;
    let n = backbone.spec().n_layers;
    let floor = delta.grad_floor().min(n);
    let s = backbone.layers(s0, floor..n, hooks.as_ref(), train)?;
    backbone.finish(s, hooks.as_ref(), train)
}
