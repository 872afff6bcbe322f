//! Rotary position embeddings (Su et al., RoFormer, 2021) as the Llama family computes
//! them in transformers 5.24: the inverse frequencies of `modeling_rope_utils.py`
//! (`compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`,
//! `_compute_llama3_parameters`), the angles of `LlamaRotaryEmbedding.forward` and the
//! `rotate_half` rotation of `apply_rotary_pos_emb` (models/llama/modeling_llama.py).
//!
//! Angles come from each token's position in the [`petune_core::SeqState`], so a prompt
//! prepended mid-network is rotated as the first tokens of the input and the text keeps
//! every relative offset (docs/sites.md).

use std::f64::consts::PI;

use tch::{Device, Kind, Tensor};

/// How the frequencies are rescaled for longer contexts (`rope_type`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// `default`: none.
    None,
    /// `linear`: every frequency divided by `factor` (position interpolation).
    Linear {
        /// Scaling factor.
        factor: f64,
    },
    /// `llama3` (Llama 3.1): low frequencies divided by `factor`, high ones kept, the
    /// band between interpolated smoothly.
    Llama3 {
        /// Scaling factor (8 in Llama 3.1).
        factor: f64,
        /// Wavelengths above `original_max_positions / low_freq_factor` are scaled.
        low_freq_factor: f64,
        /// Wavelengths below `original_max_positions / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// Context length of pre-training.
        original_max_positions: f64,
    },
}

/// The rotary embedding of one model: inverse frequencies `[head_dim / 2]` (float32).
#[derive(Debug)]
pub struct Rotary {
    inv_freq: Tensor,
}

impl Rotary {
    /// Frequencies `1 / theta^(2i / head_dim)` for `i < head_dim / 2`, rescaled by
    /// `scaling`, computed in float32 as transformers does.
    pub fn new(head_dim: i64, theta: f64, scaling: RopeScaling, device: Device) -> Rotary {
        let exponents =
            Tensor::arange_start_step(0, head_dim, 2, (Kind::Float, device)) / head_dim as f64; // [d/2]
        let inv = Tensor::pow_scalar(theta, &exponents).reciprocal();
        let inv_freq = match scaling {
            RopeScaling::None => inv,
            RopeScaling::Linear { factor } => inv / factor,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor: lo,
                high_freq_factor: hi,
                original_max_positions: old,
            } => {
                let wavelen = inv.reciprocal() * (2.0 * PI);
                let scaled = (&inv / factor).where_self(&wavelen.gt(old / lo), &inv);
                let smooth = (wavelen.reciprocal() * old - lo) / (hi - lo);
                let smoothed = smooth.rsub_scalar(1.0) * &scaled / factor + &smooth * &scaled;
                let medium = wavelen.ge(old / hi).logical_and(&wavelen.le(old / lo));
                smoothed.where_self(&medium, &scaled)
            }
        };
        Rotary { inv_freq }
    }

    /// The inverse frequencies `[head_dim / 2]`.
    pub fn inv_freq(&self) -> &Tensor {
        &self.inv_freq
    }

    /// `(cos, sin)` `[B, 1, T, head_dim]` in `kind` for positions `[B, T]`: angles
    /// `position · inv_freq` in float32, each half repeated (`cat(freqs, freqs)`).
    pub fn angles(&self, positions: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let inv = self.inv_freq.to_device(positions.device());
        let freqs = positions.unsqueeze(-1).to_kind(Kind::Float) * inv; // [B, T, d/2]
        let emb = Tensor::cat(&[&freqs, &freqs], -1).unsqueeze(1); // [B, 1, T, d]
        (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
    }

    /// Rotates `x` `[B, heads, T, d]`: `x · cos + rotate_half(x) · sin`, where
    /// `rotate_half([x1, x2]) = [-x2, x1]` splits the last dimension in halves.
    pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
        let half = x.size()[3] / 2;
        let (x1, x2) = (x.narrow(3, 0, half), x.narrow(3, half, half));
        let rotated = Tensor::cat(&[x2.neg(), x1], 3);
        x * cos + rotated * sin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_frequencies_and_a_rotation_that_keeps_relative_offsets() {
        let r = Rotary::new(4, 10000.0, RopeScaling::None, Device::Cpu);
        let inv = Vec::<f32>::try_from(r.inv_freq()).unwrap();
        assert_eq!(inv.len(), 2);
        assert!((inv[0] - 1.0).abs() < 1e-7 && (inv[1] - 0.01).abs() < 1e-7, "{inv:?}");
        // q·k after rotation depends only on the offset of the two positions.
        let q = Tensor::randn([1, 1, 1, 4], (Kind::Double, Device::Cpu));
        let k = Tensor::randn([1, 1, 1, 4], (Kind::Double, Device::Cpu));
        let score = |pq: i64, pk: i64| {
            let (cq, sq) = r.angles(&Tensor::from_slice2(&[[pq]]), Kind::Double);
            let (ck, sk) = r.angles(&Tensor::from_slice2(&[[pk]]), Kind::Double);
            let a = Rotary::apply(&q, &cq, &sq);
            let b = Rotary::apply(&k, &ck, &sk);
            (a * b).sum(Kind::Double).double_value(&[])
        };
        // (angles are float32, as transformers computes them)
        assert!((score(7, 3) - score(24, 20)).abs() < 1e-5);
        assert!((score(7, 3) - score(7, 4)).abs() > 1e-6);
    }

    #[test]
    fn llama3_scaling_keeps_high_divides_low_and_blends_the_band() {
        // head_dim 8, theta 500000: wavelengths 6.3, 167, 4443, 118k; original context 16
        // → bounds 4 and 16: the first is in the band, the rest are divided by 8.
        let plain = Rotary::new(8, 500000.0, RopeScaling::None, Device::Cpu);
        let scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_positions: 16.0,
        };
        let scaled = Rotary::new(8, 500000.0, scaling, Device::Cpu);
        let (p, s) = (
            Vec::<f32>::try_from(plain.inv_freq()).unwrap(),
            Vec::<f32>::try_from(scaled.inv_freq()).unwrap(),
        );
        for i in 1..4 {
            assert!((s[i] - p[i] / 8.0).abs() <= 1e-7 * p[i], "{i}: {s:?} vs {p:?}");
        }
        let smooth = (16.0 / (2.0 * PI as f32 / p[0]) - 1.0) / 3.0;
        let want = (1.0 - smooth) * p[0] / 8.0 + smooth * p[0];
        assert!((s[0] - want).abs() < 1e-6, "{} vs {want}", s[0]);
    }
}
