//! Pooling over the *valid* tokens of a ragged batch, vectorised (no per-example loop).
//!
//! Adaptive pooling follows PyTorch's `AdaptiveAvgPool1d` / `AdaptiveMaxPool1d` bin
//! edges: output `j` of `l` covers input indices `[floor(j·n/l), ceil((j+1)·n/l))` of an
//! example with `n` valid tokens (bins overlap, and inputs repeat when `n < l`). Valid
//! tokens are ranked with a cumulative sum of the mask, so any padding side works —
//! the LPT authors crop each example to its length and pool it alone (lpt-reference.md
//! §3, "PPG"); this computes the same thing for the whole batch at once.

use tch::{Kind, Tensor};

/// Which adaptive pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdaptivePool {
    /// Mean of each bin.
    Avg,
    /// Max of each bin.
    Max,
}

/// Bin membership `[B, l, T]` (bool): token `t` of example `b` is in bin `j`.
pub fn adaptive_bins(mask: &Tensor, l: i64) -> Tensor {
    let valid = mask.ne(0); // [B, T]
    let rank = mask.to_kind(Kind::Int64).cumsum(1, Kind::Int64) - 1; // [B, T], rank among valid tokens
    let n = valid.sum_dim_intlist(1, true, Kind::Int64); // [B, 1]
    let j = Tensor::arange(l, (Kind::Int64, mask.device())).unsqueeze(0); // [1, l]
    let start = (&j * &n).floor_divide_scalar(l); // [B, l] = floor(j·n/l)
    let end = ((&j + 1) * &n + (l - 1)).floor_divide_scalar(l); // [B, l] = ceil((j+1)·n/l)
    let rank = rank.unsqueeze(1); // [B, 1, T]
    let inside =
        rank.ge_tensor(&start.unsqueeze(2)).logical_and(&rank.lt_tensor(&end.unsqueeze(2))); // [B, l, T]
    inside.logical_and(&valid.unsqueeze(1))
}

/// Adaptive pooling of `x` `[B, T, m]` over the valid tokens of `mask` `[B, T]` to `l`
/// outputs: `[B, l, m]`.
pub fn adaptive_pool(x: &Tensor, mask: &Tensor, l: i64, kind: AdaptivePool) -> Tensor {
    let bins = adaptive_bins(mask, l); // [B, l, T]
    match kind {
        AdaptivePool::Avg => {
            let w = bins.to_kind(x.kind()); // [B, l, T]
            let count = w.sum_dim_intlist(2, true, x.kind()).clamp_min(1.0); // [B, l, 1]
            w.matmul(x) / count // [B, l, m]
        }
        AdaptivePool::Max => {
            let outside = bins.logical_not().unsqueeze(-1); // [B, l, T, 1]
            x.unsqueeze(1).masked_fill(&outside, f64::NEG_INFINITY).amax([2].as_slice(), false)
            // [B, l, m]
        }
    }
}

/// Index of the first valid token of each example, `[B]`.
pub fn first_valid_index(mask: &Tensor) -> Tensor {
    mask.ne(0).to_kind(Kind::Int64).argmax(1, false)
}

/// Index of the last valid token of each example, `[B]`.
pub fn last_valid_index(mask: &Tensor) -> Tensor {
    let t = mask.size()[1];
    let idx = Tensor::arange(t, (Kind::Int64, mask.device())).unsqueeze(0); // [1, T]
    (idx * mask.ne(0).to_kind(Kind::Int64)).amax([1].as_slice(), false)
}

/// Gathers one vector per example: `x[b, index[b]]` for `x` `[B, T, H]`, `index` `[B]` → `[B, H]`.
pub fn gather_tokens(x: &Tensor, index: &Tensor) -> Tensor {
    let h = x.size()[2];
    x.gather(1, &index.view([-1, 1, 1]).expand([-1, 1, h], false), false).squeeze_dim(1)
}

/// Mean over valid tokens: `[B, T, H]` → `[B, H]`.
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Tensor {
    let m = mask.ne(0).to_kind(x.kind()).unsqueeze(-1); // [B, T, 1]
    (x * &m).sum_dim_intlist(1, false, x.kind())
        / m.sum_dim_intlist(1, false, x.kind()).clamp_min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// PyTorch's adaptive pooling of one unpadded sequence `[n, m]`, per the definition.
    fn reference(x: &Tensor, l: i64, kind: AdaptivePool) -> Tensor {
        let n = x.size()[0];
        let rows: Vec<Tensor> = (0..l)
            .map(|j| {
                let (s, e) = ((j * n) / l, ((j + 1) * n + l - 1) / l);
                let bin = x.narrow(0, s, e - s);
                match kind {
                    AdaptivePool::Avg => bin.mean_dim([0].as_slice(), false, Kind::Float),
                    AdaptivePool::Max => bin.amax([0].as_slice(), false),
                }
            })
            .collect();
        Tensor::stack(&rows, 0)
    }

    #[test]
    fn ragged_batch_pools_each_example_over_its_valid_tokens_only() {
        for kind in [AdaptivePool::Avg, AdaptivePool::Max] {
            for l in [1, 3, 5, 7] {
                let lengths = [7i64, 2, 5];
                let t = 8;
                let x = Tensor::randn([3, t, 4], (Kind::Float, Device::Cpu));
                // right padding for rows 0 and 1, left padding for row 2
                let mask = Tensor::zeros([3, t], (Kind::Int64, Device::Cpu));
                let _ = mask.get(0).narrow(0, 0, 7).fill_(1);
                let _ = mask.get(1).narrow(0, 0, 2).fill_(1);
                let _ = mask.get(2).narrow(0, 3, 5).fill_(1);
                let out = adaptive_pool(&x, &mask, l, kind);
                assert_eq!(out.size(), [3, l, 4]);
                let starts = [0, 0, 3];
                for b in 0..3 {
                    let want = reference(
                        &x.get(b).narrow(0, starts[b as usize], lengths[b as usize]),
                        l,
                        kind,
                    );
                    let d = (out.get(b) - want).abs().max().double_value(&[]);
                    assert!(d < 1e-6, "{kind:?} l={l} example {b}: {d}");
                }
            }
        }
    }

    #[test]
    fn first_and_last_valid_indices() {
        let mask = Tensor::from_slice2(&[[1i64, 1, 1, 0], [0, 0, 1, 1], [1, 1, 1, 1]]);
        assert_eq!(Vec::<i64>::try_from(&first_valid_index(&mask)).unwrap(), vec![0, 2, 0]);
        assert_eq!(Vec::<i64>::try_from(&last_valid_index(&mask)).unwrap(), vec![2, 3, 3]);
        let x = Tensor::arange(24, (Kind::Float, Device::Cpu)).view([3, 4, 2]);
        let g = gather_tokens(&x, &Tensor::from_slice(&[2i64, 0, 3]));
        assert_eq!(
            Vec::<f32>::try_from(&g.flatten(0, -1)).unwrap(),
            vec![4., 5., 8., 9., 22., 23.]
        );
    }
}
