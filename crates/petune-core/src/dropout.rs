//! Dropout for training steps (Srivastava et al., 2014): zero each element with
//! probability `p`, scale the kept ones so the expectation is unchanged.
//!
//! Why not libtorch's dropout on CPU: it draws one float Bernoulli sample per element,
//! then divides and multiplies (three full passes); on a MiniLM training step at
//! 16 × 128 the profiler puts its `bernoulli_` alone at 13 % of the step (PyTorch,
//! docs/benchmarks.md). Here the mask comes from 16 random bits per element: one
//! `random_()` int64 draw per three elements (its low 48 bits), viewed as int16 words and
//! compared with a threshold, then turned into a float multiplier (what the backward
//! multiplies by).
//! The keep probability is `round((1 − p)·2¹⁶) / 2¹⁶` (within 2⁻¹⁷ of `1 − p`) and kept
//! values are scaled by its inverse, so `E[dropout(x)] = x` exactly. Measured for a
//! `[16, 12, 128, 128]` attention-probability tensor, forward + backward: 16–20 ms
//! against libtorch's 30 ms (2 threads, docs/benchmarks.md). On CUDA libtorch's fused
//! kernel is used.

use tch::{Device, Kind, Tensor};

/// Where an int64's three low 16-bit words start in memory.
const LOW_WORDS_START: i64 = if cfg!(target_endian = "little") { 0 } else { 1 };

/// `x` with dropout `p` in training, `x` itself otherwise (no kernel launched).
pub fn dropout(x: Tensor, p: f64, train: bool) -> Tensor {
    if !train || p <= 0.0 {
        return x;
    }
    if x.device() != Device::Cpu {
        return x.dropout(p, true);
    }
    const WORDS: f64 = 65_536.0;
    // Kept when the int16 word (uniform on −2¹⁵..2¹⁵) is below `threshold − 2¹⁵`.
    let threshold = ((1.0 - p).clamp(0.0, 1.0) * WORDS).round();
    if threshold <= 0.0 {
        return x * 0.0;
    }
    if threshold >= WORDS {
        return x;
    }
    let n = x.numel() as i64;
    // libtorch's int64 `random_()` is uniform on [0, 2⁶³]: the low 48 bits of each draw
    // are uniform, the top word is not (its sign bit is 0). Three words per draw.
    let draws = (n + 2) / 3;
    let mut words = Tensor::empty([draws], (Kind::Int64, Device::Cpu));
    let _ = words.random_();
    let keep = words
        .view_dtype(Kind::Int16) // [4·draws] 16-bit words
        .view([draws, 4])
        .narrow(1, LOW_WORDS_START, 3) // the low 48 bits of each draw
        .lt(threshold - WORDS / 2.0) // [draws, 3], contiguous
        .view([3 * draws])
        .narrow(0, 0, n);
    let mut multiplier = keep.to_kind(x.kind());
    let _ = multiplier.f_mul_scalar_(WORDS / threshold);
    let multiplier = multiplier.view(x.size().as_slice()); // the shape of x
    x * multiplier
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_expectation_and_the_rate() {
        tch::set_num_threads(1);
        tch::manual_seed(3);
        let x = Tensor::ones([400, 500], (Kind::Float, Device::Cpu));
        let y = dropout(x.shallow_clone(), 0.1, true);
        let kept = y.ne(0.0).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        assert!((kept - 0.9).abs() < 0.003, "kept {kept}");
        let mean = y.mean(Kind::Double).double_value(&[]);
        assert!((mean - 1.0).abs() < 0.004, "mean {mean}");
        // Every word position of a draw is fair (a biased top word once kept 0.875).
        let flat = y.view([-1]).ne(0.0).to_kind(Kind::Double);
        for start in 0..3 {
            let every_third = flat.slice(0, start, None, 3).mean(Kind::Double).double_value(&[]);
            assert!((every_third - 0.9).abs() < 0.004, "position {start}: {every_third}");
        }
        let scale = WORDS_SCALE_01;
        let nonzero = y.masked_select(&y.ne(0.0));
        assert!(nonzero.eq(scale).all().int64_value(&[]) == 1, "kept values scaled by 1/keep");
    }

    const WORDS_SCALE_01: f64 = 65_536.0 / 58_982.0;

    #[test]
    fn eval_and_zero_p_are_identity_and_p_one_zeroes() {
        tch::set_num_threads(1);
        let x = Tensor::randn([7, 3], (Kind::Float, Device::Cpu));
        assert!(dropout(x.shallow_clone(), 0.1, false).equal(&x));
        assert!(dropout(x.shallow_clone(), 0.0, true).equal(&x));
        assert_eq!(
            dropout(x.shallow_clone(), 1.0, true).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
    }

    #[test]
    fn gradient_is_the_same_mask_and_odd_sizes_work() {
        tch::set_num_threads(1);
        let x = Tensor::randn([5, 7], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = dropout(x.shallow_clone(), 0.5, true);
        y.sum(Kind::Float).backward();
        let g = x.grad();
        // d(out)/dx is the multiplier: 0 where dropped, 1/keep where kept.
        let expected = y.detach().ne(0.0).to_kind(Kind::Float) * 2.0;
        assert!(g.allclose(&expected, 1e-6, 1e-6, false));
    }
}
