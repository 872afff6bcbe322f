//! Data-parallel training (issue #17): which contiguous share of a global batch a rank
//! takes ([`shard_range`]), the weighted all-reduce that turns every rank's mean gradient
//! over its share into the one-rank mean gradient over the whole batch
//! ([`average_gradients_`], as `torch.nn.parallel.DistributedDataParallel` averages, but
//! weighted, so unequal shares still give the one-rank result), and what the trainer's
//! loop ([`crate::Trainer::with_process_group`]) builds on them: the per-step gradient
//! exchange ([`grads`]), rank 0's start state on every rank ([`state`]) and sharded
//! evaluation's gather ([`gather`]). docs/scaling-out.md describes the whole.

pub mod gather;
pub mod grads;
pub mod state;

pub use gather::gather_predictions;
pub use grads::{sum_gradients_, SyncStats};
pub use state::{broadcast_bytes, broadcast_tensors_};

use std::ops::Range;

use petune_core::{Error, Result};
use petune_ext::ProcessGroup;
use tch::{Kind, Tensor};

/// Rank `rank`'s contiguous share of a batch of `n` examples split over `world` ranks:
/// the first `n % world` ranks take one more, so shares differ by at most one and their
/// concatenation in rank order is the whole batch, as the one-rank run would draw it.
pub fn shard_range(n: usize, rank: usize, world: usize) -> Result<Range<usize>> {
    if world == 0 || rank >= world {
        return Err(Error::Input(format!("shard: rank {rank} is not in [0, {world})")));
    }
    let (base, extra) = (n / world, n % world);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    Ok(start..start + len)
}

/// Replaces every rank's `grads` (each the mean over its `local` examples) by the mean over
/// all `global` examples: each rank scales its gradients by `local / global`, and one
/// all-reduce sums the flattened float32 buffer. Undefined gradients count as zeros.
pub fn average_gradients_(
    pg: &ProcessGroup,
    grads: &mut [Tensor],
    local: usize,
    global: usize,
) -> Result<()> {
    if global == 0 || local > global {
        return Err(Error::Input(format!(
            "average_gradients: {local} local examples of {global} in all"
        )));
    }
    let weight = local as f64 / global as f64;
    let _no_grad = tch::no_grad_guard();
    let parts: Vec<Tensor> = grads
        .iter()
        .filter(|g| g.defined())
        .map(|g| g.f_to_kind(Kind::Float).and_then(|g| g.f_reshape([-1])))
        .collect::<std::result::Result<_, _>>()?;
    if parts.is_empty() {
        return Ok(());
    }
    // flat: [Σ numel], this rank's weighted share of the mean gradient.
    let mut flat = Tensor::f_cat(&parts, 0)?.f_mul_scalar(weight)?.f_contiguous()?;
    pg.all_reduce_sum_(&mut flat)?;
    let mut offset = 0i64;
    for g in grads.iter_mut().filter(|g| g.defined()) {
        let n = g.numel() as i64;
        let avg = flat.f_narrow(0, offset, n)?.f_reshape(g.size())?.f_to_kind(g.kind())?;
        g.f_copy_(&avg)?;
        offset += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn shards_cover_the_batch_in_order() {
        for n in 0..12 {
            for world in 1..5 {
                let mut next = 0;
                for rank in 0..world {
                    let r = shard_range(n, rank, world).unwrap();
                    assert_eq!(r.start, next, "n={n} world={world} rank={rank}");
                    assert!(r.len() == n / world || r.len() == n / world + 1);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
        assert_eq!(shard_range(5, 0, 2).unwrap(), 0..3);
        assert_eq!(shard_range(5, 1, 2).unwrap(), 3..5);
        assert!(shard_range(5, 2, 2).is_err());
        assert!(shard_range(5, 0, 0).is_err());
    }

    #[test]
    fn one_rank_keeps_its_gradient_and_dtypes() {
        tch::set_num_threads(1);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = ProcessGroup::new("127.0.0.1", port, 0, 1, Duration::from_secs(5)).unwrap();
        let mut grads = vec![
            Tensor::from_slice(&[1f32, -2., 3., 4.]).reshape([2, 2]),
            Tensor::new(),
            Tensor::from_slice(&[0.5f64]),
        ];
        average_gradients_(&pg, &mut grads, 3, 3).unwrap();
        assert_eq!(Vec::<f32>::try_from(&grads[0].reshape([-1])).unwrap(), vec![1., -2., 3., 4.]);
        assert_eq!(grads[0].size(), vec![2, 2]);
        assert!(!grads[1].defined());
        assert_eq!(grads[2].kind(), Kind::Double);
        // A share of 1 in 4: scaled by 1/4 (the other ranks would add theirs).
        average_gradients_(&pg, &mut grads, 1, 4).unwrap();
        assert_eq!(Vec::<f64>::try_from(&grads[2]).unwrap(), vec![0.125]);
        assert!(average_gradients_(&pg, &mut grads, 5, 4).is_err());
    }
}
