//! A backbone, an optional delta and a head composed into one forward pass:
//! bind the delta → embed → layers below the delta's `grad_floor` without autograd →
//! the remaining layers → finish → head (design.md §3, `TunedModel`).
//!
//! A head that reads one token per example ([`Head::read_rows`]) gets the last layer
//! computed at those tokens alone ([`head_output`], `Backbone::layers_read_out`): every
//! other token's output of the last layer is never read.
//!
//! `train` (dropout) is passed unchanged into the no-grad region: the LPT authors keep
//! dropout active in the frozen layers during training (lpt-reference.md §0).

use std::ops::Range;

use petune_core::{
    Backbone, BackboneInput, BindCtx, Delta, Error, Hooks, NoHooks, Result, SeqState,
};
use tch::Tensor;

use crate::features::Batch;
use crate::head::{Head, HeadOutput};

/// The head's scores on `batch` with `delta` (from `s0`, the batch's cached state at the
/// delta's floor, when given): the last layer only at the tokens the head reads
/// ([`Head::read_rows`]) unless `full_last_layer`, then [`Head::forward_read`].
pub fn head_output(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    head: &Head,
    batch: &Batch,
    s0: Option<SeqState>,
    train: bool,
    full_last_layer: bool,
) -> Result<HeadOutput> {
    let rows = if full_last_layer { None } else { head.read_rows(batch)? };
    let s = match (s0, delta) {
        (Some(s0), Some(d)) => forward_from_reading(backbone, d, batch, s0, train, rows.as_ref())?,
        _ => forward_reading(backbone, delta, &batch.input, train, rows.as_ref())?,
    };
    score(backbone, head, batch, &s, train, rows.is_some())
}

/// The head's scores on a final state `s`: the state of the read tokens alone when
/// `read_out` (from [`run_range`] with rows: one token per example, no prefix, a typed
/// error otherwise), else the whole sequence.
pub fn score(
    backbone: &dyn Backbone,
    head: &Head,
    batch: &Batch,
    s: &SeqState,
    train: bool,
    read_out: bool,
) -> Result<HeadOutput> {
    if !read_out {
        return head.forward(backbone, s, batch, train);
    }
    let examples = batch.input.input_ids.size().first().copied().unwrap_or(0);
    if (s.seq_len(), s.n_prefix, s.batch()) != (1, 0, examples) {
        return Err(Error::Shape {
            ctx: "a read-out state (one token per example)".into(),
            expected: format!("[{examples}, 1, H] without prefix"),
            got: s.hidden.size(),
        });
    }
    head.forward_read(backbone, &s.hidden.select(1, 0), train) // [B, H]
}

/// `backbone.layers(s, range)`, or with `rows` its read-out variant.
pub fn run_range(
    backbone: &dyn Backbone,
    s: SeqState,
    range: Range<usize>,
    hooks: &dyn Hooks,
    train: bool,
    rows: Option<&Tensor>,
) -> Result<SeqState> {
    match rows {
        Some(rows) => backbone.layers_read_out(s, range, hooks, train, rows),
        None => backbone.layers(s, range, hooks, train),
    }
}

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
    forward_reading(backbone, delta, input, train, None)
}

/// [`forward_input`]; with `rows`, the final state is theirs alone.
fn forward_reading(
    backbone: &dyn Backbone,
    delta: Option<&dyn Delta>,
    input: &BackboneInput,
    train: bool,
    rows: Option<&Tensor>,
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
    let s = run_range(backbone, s, floor..n, hooks.as_ref(), train, rows)?;
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
    forward_from_reading(backbone, delta, batch, s0, train, None)
}

/// [`forward_from`]; with `rows`, the final state is theirs alone.
fn forward_from_reading(
    backbone: &dyn Backbone,
    delta: &dyn Delta,
    batch: &Batch,
    s0: SeqState,
    train: bool,
    rows: Option<&Tensor>,
) -> Result<SeqState> {
    let hooks = delta.bind(&BindCtx { backbone, input: &batch.input, train })?;
    let n = backbone.spec().n_layers;
    let floor = delta.grad_floor().min(n);
    let s = run_range(backbone, s0, floor..n, hooks.as_ref(), train, rows)?;
    backbone.finish(s, hooks.as_ref(), train)
}
