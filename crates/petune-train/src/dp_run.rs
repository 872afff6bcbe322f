//! How a data-parallel run starts (issue #17; docs/scaling-out.md): rank 0, which alone
//! owns the output folder, has built its state and resumed from its checkpoint if there
//! was one; this makes every other rank hold the same state before the first step —
//! rank 0's trainable tensors always (as `DistributedDataParallel`'s constructor
//! broadcasts the module's parameters), and on resume also the Adam moments, step
//! counters, progress and best-so-far tensors, so a resumed run needs no shared file
//! system and cannot drift.

use petune_core::{Error, Result};
use petune_ext::ProcessGroup;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::checkpoint::Progress;
use crate::data_parallel::{broadcast_bytes, broadcast_tensors_};
use crate::optim::AdamW;

/// Offset between the ranks' dropout seeds at one step: rank 0 keeps the one-process
/// seed, other ranks draw other masks (a large odd number, so that no rank's seed at one
/// step is another's at a nearby step).
pub(crate) const RANK_SEED_STRIDE: i64 = 2_654_435_761;

/// Tensors by name.
type NamedTensors = Vec<(String, Tensor)>;

/// What rank 0 tells the others before the tensors.
#[derive(Serialize, Deserialize)]
struct StartState {
    progress: Progress,
    adam_step: i64,
    resumed: bool,
    has_best: bool,
}

/// Makes every rank's optimizer, progress and best tensors rank 0's (see the module
/// header). Resuming a checkpoint written by another number of ranks is allowed: the
/// global batch is the same, only its split changes (rank 0 says so).
pub(crate) fn sync_start(
    pg: &ProcessGroup,
    opt: &mut AdamW,
    progress: Progress,
    best: Option<NamedTensors>,
) -> Result<(Progress, Option<NamedTensors>)> {
    let world = pg.world_size();
    let leader = pg.rank() == 0;
    let mine = StartState {
        resumed: progress.step > 0 || opt.step_count() > 0,
        adam_step: opt.step_count(),
        has_best: best.is_some(),
        progress,
    };
    let bytes = if leader { serde_json::to_vec(&mine).map_err(json_error)? } else { Vec::new() };
    let bytes = broadcast_bytes(pg, &bytes, 0)?;
    let mut state: StartState =
        if leader { mine } else { serde_json::from_slice(&bytes).map_err(json_error)? };
    let was = state.progress.world_size.unwrap_or(1);
    if state.resumed && was != world && leader {
        tracing::warn!(checkpoint = was, now = world, "resuming with another number of ranks");
        eprintln!(
            "resuming a checkpoint written by {was} rank(s) with {world}: the global batch is the \
             same, its split over the ranks changes (equal up to float rounding and dropout \
             masks, not bit for bit)"
        );
    }
    state.progress.world_size = Some(world);
    opt.set_step_count(state.adam_step);

    // Always the trainable tensors; the moments and counters only when resuming (at a
    // fresh start they are zeros on every rank).
    let mut tensors: Vec<Tensor> = opt.params().iter().map(|p| p.tensor.shallow_clone()).collect();
    if state.resumed {
        for p in opt.params() {
            tensors.push(p.m.shallow_clone());
            tensors.push(p.v.shallow_clone());
            if let Some(step) = &p.step {
                tensors.push(step.shallow_clone());
            }
        }
    }
    broadcast_tensors_(pg, &tensors, 0)?;

    let best = if state.has_best {
        // Both sides in name order, so that the broadcast lines up.
        let mut names: Vec<(String, Tensor)> =
            opt.params().iter().map(|p| (p.name.clone(), p.tensor.shallow_clone())).collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let best = match best {
            Some(mut b) if leader => {
                b.sort_by(|a, b| a.0.cmp(&b.0));
                let same = b.len() == names.len()
                    && b.iter().zip(&names).all(|(x, y)| x.0 == y.0 && x.1.size() == y.1.size());
                if !same {
                    return Err(Error::Input(
                        "data parallel: the checkpoint's best tensors are not the trainable \
                         tensors"
                            .into(),
                    ));
                }
                b
            }
            _ => names
                .into_iter()
                .map(|(n, t)| t.f_zeros_like().map(|z| (n, z)))
                .collect::<std::result::Result<_, _>>()?,
        };
        let ts: Vec<Tensor> = best.iter().map(|(_, t)| t.shallow_clone()).collect();
        broadcast_tensors_(pg, &ts, 0)?;
        Some(best)
    } else {
        None
    };
    Ok((state.progress, best))
}

fn json_error(e: serde_json::Error) -> Error {
    Error::Input(format!("data parallel: the start state does not (de)serialize: {e}"))
}
