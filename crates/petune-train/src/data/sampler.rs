//! The order in which an epoch visits the training examples.
//!
//! By default the authors' `RandomSampler` (lpt-reference.md §5): a seeded shuffle,
//! batches of consecutive examples, padding to each batch's longest. With length
//! bucketing (opt-in; issue #7) the shuffled order is cut into pools of
//! `bucket_batches` optimizer steps, each pool is sorted by length and cut into steps,
//! and the steps are shuffled: every batch still mixes random examples of the epoch, but
//! of similar lengths, so little of a step is spent on padding. The order is a
//! permutation fixed by the seed and the epoch, so resuming mid-epoch is unchanged.

use serde::{Deserialize, Serialize};

use super::numpy_rng::{shuffled_indices, RandomState};

/// How a training step's examples are drawn (`train.sampling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Shuffled passes over the training set ([`epoch_order`]); the last step of an
    /// epoch may be partial (the authors' `RandomSampler`, `drop_last=False`).
    #[default]
    Epochs,
    /// Every step draws a fresh batch without replacement ([`step_sample`]): full
    /// batches always, examples seen at a random rather than an even rate.
    PerStep,
}

/// The examples of optimizer step `step` under [`Sampling::PerStep`]: the first
/// `per_step` (at most `n`) of a shuffle seeded by `(seed, step)` alone, so a resumed
/// run draws the same batches.
///
/// ```
/// use petune_train::data::sampler::step_sample;
///
/// let a = step_sample(100, 16, 42, 7);
/// assert_eq!(a, step_sample(100, 16, 42, 7)); // a function of (seed, step)
/// assert_ne!(a, step_sample(100, 16, 42, 8));
/// let mut d = a.clone();
/// d.sort();
/// d.dedup();
/// assert_eq!(d.len(), 16); // without replacement
/// assert_eq!(step_sample(5, 16, 42, 0).len(), 5);
/// ```
pub fn step_sample(n: usize, per_step: usize, seed: u64, step: i64) -> Vec<usize> {
    // splitmix64 of (seed, step): nearby steps get unrelated MT19937 seeds.
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(step as u64);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let mut order = shuffled_indices(n, z as u32);
    order.truncate(per_step.min(n));
    order
}

/// The example order of one epoch (module docs). `lengths[i]` is example i's token
/// count, `per_step` the examples per optimizer step, `bucket_batches` the steps per
/// sorting pool (0 = no bucketing: the plain shuffle).
///
/// ```
/// use petune_train::data::sampler::epoch_order;
///
/// let lengths = [5, 40, 6, 39, 7, 38, 8, 37];
/// // Steps of 2 examples, pools of 4 steps (here the whole epoch).
/// let order = epoch_order(&lengths, 42, 2, 4);
/// let mut sorted = order.clone();
/// sorted.sort();
/// assert_eq!(sorted, (0..8).collect::<Vec<_>>()); // a permutation
/// for step in order.chunks(2) {
///     let (a, b) = (lengths[step[0]], lengths[step[1]]);
///     assert!(a.abs_diff(b) <= 1, "{step:?}"); // short with short, long with long
/// }
/// ```
pub fn epoch_order(
    lengths: &[usize],
    seed: u32,
    per_step: usize,
    bucket_batches: usize,
) -> Vec<usize> {
    let order = shuffled_indices(lengths.len(), seed);
    if bucket_batches == 0 || per_step == 0 {
        return order;
    }
    let mut steps: Vec<Vec<usize>> = Vec::new();
    for pool in order.chunks(per_step.saturating_mul(bucket_batches)) {
        let mut pool = pool.to_vec();
        // Stable: equal lengths keep their shuffled order.
        pool.sort_by_key(|&i| lengths[i]);
        steps.extend(pool.chunks(per_step).map(<[usize]>::to_vec));
    }
    // A second stream of the same seed shuffles the steps, so that an epoch does not
    // run through its pools short to long.
    let mut step_order: Vec<usize> = (0..steps.len()).collect();
    RandomState::new(seed ^ 0x5bd1_e995).shuffle(&mut step_order);
    step_order.into_iter().flat_map(|s| std::mem::take(&mut steps[s])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_buckets_it_is_the_authors_shuffle() {
        let lengths = vec![3; 50];
        assert_eq!(epoch_order(&lengths, 7, 8, 0), shuffled_indices(50, 7));
    }

    #[test]
    fn buckets_cut_padding_and_keep_a_permutation() {
        // Lengths 1..=400 in a random order; batches of 16, pools of 10 steps.
        let lengths: Vec<usize> = shuffled_indices(400, 3).into_iter().map(|l| l + 1).collect();
        let padded = |order: &[usize]| -> usize {
            order
                .chunks(16)
                .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap_or(0))
                .sum()
        };
        let plain = epoch_order(&lengths, 11, 16, 0);
        let bucketed = epoch_order(&lengths, 11, 16, 10);
        let mut sorted = bucketed.clone();
        sorted.sort();
        assert_eq!(sorted, (0..400).collect::<Vec<_>>());
        let real: usize = lengths.iter().sum();
        // Padding overhead falls from about 2× the real tokens to a few percent.
        assert!(padded(&plain) as f64 > 1.5 * real as f64);
        assert!((padded(&bucketed) as f64) < 1.15 * real as f64, "{} vs {real}", padded(&bucketed));
        assert_eq!(bucketed, epoch_order(&lengths, 11, 16, 10), "deterministic");
        assert_ne!(bucketed, epoch_order(&lengths, 12, 16, 10), "seeded");
    }
}
