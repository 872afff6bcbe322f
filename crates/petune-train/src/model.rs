//! A backbone, an optional delta and a head composed into one forward pass:
//! bind the delta → embed → layers below the delta's `grad_floor` without autograd →
//! the remaining layers → finish → head (design.md §3, `TunedModel`).
//!
//! `train` (dropout) is passed unchanged into the no-grad region: the LPT authors keep
//! dropout active in the frozen layers during training (lpt-reference.md §0).

use petune_core::{Backbone, BindCtx, Delta, Hooks, NoHooks, Result, SeqState};

use crate::features::Batch;

/// Runs the backbone with `delta` on `batch`, layers below `grad_floor` without autograd.
pub fn forward(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    batch: &Batch,
    train: bool,
) -> Result<SeqState> {
    let hooks: Box<dyn Hooks + '_> = match delta {
        Some(d) => d.bind(&BindCtx { backbone, input: &batch.input, train })?,
        None => Box::new(NoHooks),
    };
    let n = backbone.spec().n_layers;
    let floor = delta.map(|d| d.grad_floor()).unwrap_or(0).min(n);
    let s = if floor > 0 {
        let _guard = tch::no_grad_guard();
        let s = backbone.embed(&batch.input, hooks.as_ref(), train)?;
        backbone.layers(s, 0..floor, hooks.as_ref(), train)?
    } else {
        backbone.embed(&batch.input, hooks.as_ref(), train)?
    };
    let s = backbone.layers(s, floor..n, hooks.as_ref(), train)?;
    backbone.finish(s, hooks.as_ref(), train)
}
