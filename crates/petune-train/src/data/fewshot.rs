//! The LPT authors' few-shot protocol, reproducing their splits exactly.
//!
//! Follows `encoder-only/data/generate_low_resource_data.py` (github.com/xyltt/LPT @ 634c7b2;
//! lpt-reference §6 "Few-shot"), per seed and task:
//!
//! 1. `np.random.seed(seed)`; `np.random.shuffle(train_lines)` over the data rows (header
//!    excluded), with numpy's legacy generator ([`crate::data::numpy_rng`]). **The shuffles
//!    accumulate for header-less files**: for MR/MPQA/Subj/TREC `split_header` returns the
//!    loaded list itself and the shuffle runs in place, so within one run of the script the
//!    seed-`s_i` split starts from the order the previous seeds left (with the default
//!    `--seed 100 13 21 42 87`, seed 13 sees the rows as seed 100 shuffled them, and so on).
//!    GLUE files are sliced past their header (`lines[1:]`, a copy), so every seed starts
//!    from file order. [`authors_splits`] / [`authors_split`] reproduce this;
//!    [`sample_few_shot`] always shuffles file order (the GLUE behaviour);
//! 2. group the shuffled rows by label, classes in order of first appearance;
//! 3. train: `k` examples **in total**, `round(k·n_c/N)` for every class but the last, which
//!    gets the remainder; each class contributes the first `k_c` of its shuffled rows;
//! 4. dev: `k_dev` (1000) from the rows left, `round(k_dev·(n_c − k_c)/(N − k))` per class but
//!    the last, remainder to the last; rows `k_c .. k_c + dev_c` of each class, so no overlap;
//! 5. both files list class after class, in that class order.
//!
//! `round` is Python 3's, round-half-to-even, computed here in exact integer arithmetic
//! (Python divides in floating point, but for integer operands of realistic size the float
//! quotient can neither create nor break a tie, so the results agree). A class smaller than
//! its share contributes all it has, as the script's slicing does.
//!
//! Where the script divides by zero (`k == N`) or slices with a negative count (rounding can
//! push the last class's remainder below zero on tiny pools, and Python's `lines[:-m]` then
//! returns nearly the whole class), petune returns [`Error::Input`] instead.
//!
//! [`stratified_split`] applies the same allocation rule to carve a fixed test set out of a
//! data set that has none (MR, [`crate::data::load::mr_split`]).

use petune_core::{Error, Result};

use super::example::Dataset;
use super::numpy_rng::{shuffled_indices, RandomState};
use super::task::{FileLayout, TaskName};

/// The authors' seeds, in the order their script runs them.
pub const AUTHORS_SEEDS: [u32; 5] = [100, 13, 21, 42, 87];

/// The authors' dev-set size (`--k_for_dev 1000`).
pub const K_DEV: usize = 1000;

/// A sampled few-shot train/dev pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FewShotSplit {
    /// The `k` training examples (fewer only if a class ran out).
    pub train: Dataset,
    /// The dev examples (up to `k_dev`).
    pub dev: Dataset,
    /// Positions in the pool of `train`'s examples, in order.
    pub train_indices: Vec<usize>,
    /// Positions in the pool of `dev`'s examples, in order.
    pub dev_indices: Vec<usize>,
}

/// Python 3's `round(num / den)` for `den > 0`: nearest integer, ties to even.
pub fn round_half_even(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 == 0 => q,
        std::cmp::Ordering::Equal => q + 1,
    }
}

/// The script's allocation: `[round(total·num_c/den) for all but the last] + [remainder]`.
/// Counts may come out negative on degenerate inputs; callers reject those.
fn allocate(nums: &[i128], total: i128, den: i128) -> Vec<i128> {
    let mut out: Vec<i128> = Vec::with_capacity(nums.len());
    if let Some((_, init)) = nums.split_last() {
        out.extend(init.iter().map(|&n| round_half_even(total * n, den)));
        let assigned: i128 = out.iter().sum();
        out.push(total - assigned);
    }
    out
}

/// Groups `order` (pool positions) by label, classes in first-appearance order.
fn group_by_label(pool: &Dataset, order: &[usize]) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for &i in order {
        let label = pool.examples[i].label;
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, members)) => members.push(i),
            None => groups.push((label, vec![i])),
        }
    }
    groups
}

fn negative(what: &str, label: &str, count: i128) -> Error {
    Error::input(format!(
        "few-shot allocation gives class `{label}` {count} {what} examples: the pool is too small \
         for this k (the authors' script would slice with a negative count here)"
    ))
}

/// Samples the authors' few-shot split with `k` training examples and a [`K_DEV`]-example dev
/// set from one fresh shuffle of `pool`. See [`sample_few_shot_with_dev`].
pub fn sample_few_shot(pool: &Dataset, k: usize, seed: u32) -> Result<FewShotSplit> {
    sample_few_shot_with_dev(pool, k, K_DEV, seed)
}

/// Samples `k` training and up to `k_dev` dev examples from `pool` (the full training set of
/// a task, rows in file order) with the authors' protocol (module docs), shuffling file order
/// with `seed`. This is exactly the authors' split for GLUE tasks, and for the first seed of
/// a run for the others; [`authors_split`] handles their accumulated shuffles.
///
/// Errors ([`Error::Input`]): `k == 0`; `k >= pool.len()` (the script divides by `N − k`);
/// labels outside `label_names`; a negative per-class count.
pub fn sample_few_shot_with_dev(
    pool: &Dataset,
    k: usize,
    k_dev: usize,
    seed: u32,
) -> Result<FewShotSplit> {
    check_pool(pool, k)?;
    split_from_order(pool, &shuffled_indices(pool.len(), seed), k, k_dev)
}

/// The splits one run of the authors' script writes for `task` with
/// `--k k --k_for_dev k_dev --seed seeds...`, in seed order: independent shuffles of file
/// order for GLUE tasks, accumulated in-place shuffles for MR/MPQA/Subj/TREC (module docs).
/// `pool` is the task's `train.tsv` as loaded (data rows in file order).
///
/// Errors: as [`sample_few_shot_with_dev`].
pub fn authors_splits(
    task: TaskName,
    pool: &Dataset,
    k: usize,
    k_dev: usize,
    seeds: &[u32],
) -> Result<Vec<FewShotSplit>> {
    check_pool(pool, k)?;
    let accumulate = task.layout() == FileLayout::LmBff;
    let mut order: Vec<usize> = (0..pool.len()).collect();
    let mut out = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        if !accumulate {
            // `lines[1:]` is a fresh copy of file order every time.
            order = (0..pool.len()).collect();
        }
        RandomState::new(seed).shuffle(&mut order);
        out.push(split_from_order(pool, &order, k, k_dev)?);
    }
    Ok(out)
}

/// The split the authors' published protocol gives for `seed`: a run with the default seeds
/// [`AUTHORS_SEEDS`] and `k_dev` = [`K_DEV`], up to `seed`. A seed outside that list is taken
/// as a run with `--seed <seed>` alone.
pub fn authors_split(task: TaskName, pool: &Dataset, k: usize, seed: u32) -> Result<FewShotSplit> {
    let seeds: Vec<u32> = match AUTHORS_SEEDS.iter().position(|&s| s == seed) {
        Some(i) => AUTHORS_SEEDS[..=i].to_vec(),
        None => vec![seed],
    };
    let mut splits = authors_splits(task, pool, k, K_DEV, &seeds)?;
    splits.pop().ok_or_else(|| Error::input("no seed to sample with"))
}

fn check_pool(pool: &Dataset, k: usize) -> Result<()> {
    pool.validate()?;
    let n = pool.len();
    if k == 0 {
        return Err(Error::input("few-shot k must be at least 1"));
    }
    if k >= n {
        return Err(Error::input(format!(
            "few-shot k = {k} needs a pool larger than k, but `{}` has {n} examples",
            pool.task
        )));
    }
    Ok(())
}

/// Steps 2-5 of the protocol on pool positions already in shuffled `order`.
fn split_from_order(
    pool: &Dataset,
    order: &[usize],
    k: usize,
    k_dev: usize,
) -> Result<FewShotSplit> {
    let n = pool.len();
    let groups = group_by_label(pool, order);
    let sizes: Vec<i128> = groups.iter().map(|(_, m)| m.len() as i128).collect();
    let (n, k, k_dev) = (n as i128, k as i128, k_dev as i128);
    let train_counts = allocate(&sizes, k, n);
    let label_name = |g: usize| pool.label_names[groups[g].0].as_str();
    for (g, &c) in train_counts.iter().enumerate() {
        if c < 0 {
            return Err(negative("training", label_name(g), c));
        }
    }
    let rest: Vec<i128> = sizes.iter().zip(&train_counts).map(|(s, t)| s - t).collect();
    let dev_counts = allocate(&rest, k_dev, n - k);
    if let Some(&c) = dev_counts.last().filter(|c| **c < 0) {
        return Err(negative("dev", label_name(groups.len() - 1), c));
    }

    let mut train_indices = Vec::new();
    let mut dev_indices = Vec::new();
    for (g, (_, members)) in groups.iter().enumerate() {
        // Counts are >= 0 here (earlier classes' dev counts can only round a negative rest,
        // i.e. a class smaller than its train share, to <= 0, which slices nothing).
        let len = members.len();
        let t = usize::try_from(train_counts[g]).unwrap_or(0).min(len);
        train_indices.extend_from_slice(&members[..t]);
        let d_end = usize::try_from(train_counts[g] + dev_counts[g].max(0)).unwrap_or(0).min(len);
        if d_end > t {
            dev_indices.extend_from_slice(&members[t..d_end]);
        }
    }
    let pick =
        |idx: &[usize]| pool.with_examples(idx.iter().map(|&i| pool.examples[i].clone()).collect());
    Ok(FewShotSplit {
        train: pick(&train_indices),
        dev: pick(&dev_indices),
        train_indices,
        dev_indices,
    })
}

/// Splits `data` into `(rest, test)` with `test_size` examples stratified by label:
/// `np.random.seed(seed)`-shuffle the positions, allocate `test_size` over classes in label
/// order with the authors' rule (round-half-even shares, remainder to the last class), take
/// each class's first shuffled members as test. Both parts keep `data`'s order.
///
/// Errors ([`Error::Input`]): `test_size` 0 or `>= data.len()`, labels outside `label_names`.
pub fn stratified_split(data: &Dataset, test_size: usize, seed: u32) -> Result<(Dataset, Dataset)> {
    data.validate()?;
    let n = data.len();
    if test_size == 0 || test_size >= n {
        return Err(Error::input(format!(
            "stratified split of `{}`: test size {test_size} must be in 1..{n}",
            data.task
        )));
    }
    let counts = data.label_counts();
    let present: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] > 0).collect();
    let sizes: Vec<i128> = present.iter().map(|&c| counts[c] as i128).collect();
    let quota = allocate(&sizes, test_size as i128, n as i128);
    let mut want = vec![0usize; counts.len()];
    for (&c, &q) in present.iter().zip(&quota) {
        // test_size < n keeps every share within its class here except on toy inputs, where
        // a negative remainder means "none" and an excess is capped by the class size.
        want[c] = usize::try_from(q).unwrap_or(0).min(counts[c]);
    }
    let mut is_test = vec![false; n];
    for i in shuffled_indices(n, seed) {
        let c = data.examples[i].label;
        if want[c] > 0 {
            want[c] -= 1;
            is_test[i] = true;
        }
    }
    let (mut rest, mut test) = (Vec::new(), Vec::new());
    for (ex, t) in data.examples.iter().zip(is_test) {
        if t {
            test.push(ex.clone());
        } else {
            rest.push(ex.clone());
        }
    }
    Ok((data.with_examples(rest), data.with_examples(test)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::example::Example;

    #[test]
    fn python_round() {
        // Python 3: round(0.5)=0, round(1.5)=2, round(2.5)=2, round(-0.5)=0, round(-1.5)=-2,
        // round(2.4999)=2, round(2.6)=3.
        assert_eq!(round_half_even(1, 2), 0);
        assert_eq!(round_half_even(3, 2), 2);
        assert_eq!(round_half_even(5, 2), 2);
        assert_eq!(round_half_even(-1, 2), 0);
        assert_eq!(round_half_even(-3, 2), -2);
        assert_eq!(round_half_even(24999, 10000), 2);
        assert_eq!(round_half_even(26, 10), 3);
        assert_eq!(round_half_even(7, 1), 7);
    }

    #[test]
    fn allocation_matches_python() {
        // Python: [round(100*n/1000) for n in [123, 377]] + [remainder] = [12, 38, 50]
        assert_eq!(allocate(&[123, 377, 500], 100, 1000), vec![12, 38, 50]);
        // Ties go to even: 10*1/4 = 2.5 -> 2 (three times), remainder 4.
        assert_eq!(allocate(&[1, 1, 1, 1], 10, 4), vec![2, 2, 2, 4]);
        // 3·(3/10) = 0.9 -> 1 ... rounding up can drive the remainder negative.
        assert_eq!(allocate(&[3, 3, 3, 1], 5, 10), vec![2, 2, 2, -1]);
        assert!(allocate(&[], 5, 10).is_empty());
    }

    fn pool(labels: &[usize]) -> Dataset {
        Dataset {
            task: "toy".into(),
            label_names: vec!["0".into(), "1".into(), "2".into(), "3".into()],
            examples: labels
                .iter()
                .enumerate()
                .map(|(i, &l)| Example::single(format!("ex{i}"), l))
                .collect(),
        }
    }

    #[test]
    fn negative_remainder_is_an_error() {
        let labels: Vec<usize> = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3].to_vec();
        // Whatever the shuffle order, sizes are {3,3,3,1}; if class 3 comes last the
        // remainder is -1, otherwise the allocation is fine. Find a seed of each kind.
        let mut saw_err = false;
        let mut saw_ok = false;
        for seed in 0..50 {
            match sample_few_shot_with_dev(&pool(&labels), 5, 2, seed) {
                Err(Error::Input(m)) => {
                    assert!(m.contains("negative"), "{m}");
                    saw_err = true;
                }
                Err(e) => panic!("{e}"),
                Ok(s) => {
                    assert_eq!(s.train.len(), 5);
                    saw_ok = true;
                }
            }
        }
        assert!(saw_err && saw_ok);
    }

    #[test]
    fn stratified_split_keeps_order_and_proportions() {
        let labels: Vec<usize> = (0..40).map(|i| usize::from(i % 4 == 0)).collect();
        let d = pool(&labels);
        let (rest, test) = stratified_split(&d, 8, 7).unwrap();
        assert_eq!(test.len(), 8);
        assert_eq!(rest.len(), 32);
        // 10 of 40 are class 1: round(8*30/40)=6 of class 0, remainder 2 of class 1.
        assert_eq!(test.label_counts()[..2], [6, 2]);
        let pos = |name: &str| d.examples.iter().position(|e| e.text_a == name).unwrap();
        assert!(test.examples.windows(2).all(|w| pos(&w[0].text_a) < pos(&w[1].text_a)));
        assert!(rest.examples.windows(2).all(|w| pos(&w[0].text_a) < pos(&w[1].text_a)));
        assert!(test.examples.iter().all(|e| !rest.examples.contains(e)));
        assert!(stratified_split(&d, 0, 7).is_err());
        assert!(stratified_split(&d, 40, 7).is_err());
    }
}
