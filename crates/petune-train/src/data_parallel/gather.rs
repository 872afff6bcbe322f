//! Sharded evaluation's gather: each rank predicts its contiguous share of a split
//! ([`crate::data_parallel::shard_range`]) and one sum all-reduce over a zero buffer,
//! each rank having written its rows at its offset, gives every rank all the
//! predictions (an all-gather built on `all_reduce_sum_`: exact for integers).

use petune_core::{Error, Result};
use petune_ext::ProcessGroup;
use tch::Tensor;

use super::shard_range;

/// All `n` predictions, given this rank's share `local` (rows `shard_range(n, rank,
/// world)`), on every rank.
pub fn gather_predictions(pg: &ProcessGroup, local: &[usize], n: usize) -> Result<Vec<usize>> {
    let share = shard_range(n, pg.rank(), pg.world_size())?;
    if share.len() != local.len() {
        return Err(Error::Input(format!(
            "gather: rank {} has {} predictions for a share of {}",
            pg.rank(),
            local.len(),
            share.len()
        )));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut all = vec![0i64; n];
    for (slot, &p) in all[share].iter_mut().zip(local) {
        *slot = p as i64;
    }
    let mut t = Tensor::from_slice(&all);
    pg.all_reduce_sum_(&mut t)?;
    Ok(Vec::<i64>::try_from(&t)?.into_iter().map(|p| p.max(0) as usize).collect())
}
