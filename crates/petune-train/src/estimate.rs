//! How long a run will take, said before it starts: one training batch and one
//! evaluation batch are run forward (eval mode, no autograd: nothing is trained and no
//! random number is drawn), and the run is costed as
//!
//! - a step = forward × (1 + 2·f) × `grad_accum`, where f is the fraction of layers
//!   above the method's gradient floor (a backward pass costs about two forward passes,
//!   and none is run below LPT's prompt layer);
//! - an evaluation = ⌈dev / eval_batch⌉ forward passes, one per `eval_every` steps and
//!   after the last, plus the test set once.
//!
//! The first forward pass of a process pays one-off allocation costs, so the faster of
//! two is used. The figure is an estimate; the progress bar's ETA then follows the real
//! steps.
//!
//! Memory is estimated too, before anything is allocated ([`check_fits`]): a batch whose
//! activations cannot fit in the machine's memory is refused with a typed error rather
//! than ending in an allocation failure inside libtorch (a panic) or the OOM killer.

use std::time::Instant;

use petune_core::{BackboneSpec, Error, Result};

use crate::config::TrainConfig;
use crate::features::{collate, Feature};
use crate::run::Features;
use crate::trained::TrainedModel;

/// Seconds of one forward pass over `features` (the faster of two).
fn forward_seconds(model: &TrainedModel, features: &[Feature]) -> Result<f64> {
    if features.is_empty() {
        return Ok(0.0);
    }
    let refs: Vec<&Feature> = features.iter().collect();
    let batch = collate(&refs, model.encoder.tokenizer.pad_id(), model.backbone.device())?;
    let _guard = tch::no_grad_guard();
    let mut best = f64::INFINITY;
    for _ in 0..2 {
        let t0 = Instant::now();
        let _ = model.head_output(&batch)?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Estimated seconds for steps `done..total` and their evaluations (module docs).
pub(crate) fn estimate_seconds(
    model: &TrainedModel,
    features: &Features,
    tc: &TrainConfig,
    total: i64,
    done: i64,
) -> Result<f64> {
    let remaining = (total - done).max(0);
    if remaining == 0 {
        return Ok(0.0);
    }
    let take = |f: &[Feature], n: usize| f[..n.min(f.len())].to_vec();
    let fwd_train = forward_seconds(model, &take(&features.train, tc.batch_size))?;
    let fwd_eval = forward_seconds(model, &take(&features.dev, tc.eval_batch_size))?;
    let n = model.backbone.spec().n_layers.max(1);
    let floor = model.active_delta().map_or(0, |d| d.grad_floor()).min(n);
    let above = (n - floor) as f64 / n as f64;
    let step = fwd_train * (1.0 + 2.0 * above) * tc.grad_accum as f64;
    let evals = remaining / tc.eval_every + i64::from(total % tc.eval_every != 0);
    let dev_batches = features.dev.len().div_ceil(tc.eval_batch_size.max(1));
    let test_batches =
        features.test.as_ref().map_or(0, |t| t.len().div_ceil(tc.eval_batch_size.max(1)));
    Ok(remaining as f64 * step
        + (evals as f64 * dev_batches as f64 + test_batches as f64) * fwd_eval)
}

/// Rough bytes of the activations of `batch` sequences of `seq` tokens on `spec`: per
/// layer and token about 16 hidden-size and 2 FFN-size float vectors (projections,
/// norms, dropout masks) plus the attention maps; a training step keeps them for the
/// backward pass, evaluation holds about a quarter at a time.
pub fn activation_bytes(spec: &BackboneSpec, batch: i64, seq: i64, training: bool) -> f64 {
    let (b, t, l) = (batch as f64, seq as f64, spec.n_layers as f64);
    let per_token = 16.0 * spec.hidden as f64 + 2.0 * spec.intermediate as f64;
    let attention = 2.0 * b * spec.n_heads as f64 * t * t;
    let bytes = 4.0 * l * (b * t * per_token + attention);
    if training {
        bytes
    } else {
        bytes / 4.0
    }
}

/// The machine's memory (`MemTotal`), when the system says (Linux).
pub fn total_memory_bytes() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses (naming `field`) a batch whose activations ([`activation_bytes`]) would take
/// more than 80 % of the machine's memory.
pub fn check_fits(
    spec: &BackboneSpec,
    batch: i64,
    seq: i64,
    training: bool,
    field: &str,
) -> Result<()> {
    let need = activation_bytes(spec, batch, seq, training);
    match total_memory_bytes() {
        Some(total) if need > 0.8 * total => Err(Error::config(
            field,
            format!(
                "{batch} sequences of {seq} tokens need about {:.0} GiB of activations on {}; \
                 this machine has {:.0} GiB: use a smaller batch (or shorter inputs)",
                need / GIB,
                spec.describe(),
                total / GIB
            ),
        )),
        _ => Ok(()),
    }
}

const GIB: f64 = (1u64 << 30) as f64;

/// `42 s`, `3 min`, `1 h 20 min`.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=89 => format!("{} s", s.max(1)),
        90..=5399 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600 + 30) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(0.2), "1 s");
        assert_eq!(human_duration(42.0), "42 s");
        assert_eq!(human_duration(150.0), "3 min");
        assert_eq!(human_duration(4800.0), "80 min");
        assert_eq!(human_duration(7300.0), "2 h 2 min");
    }
}
