//! Mixed precision for training steps on CUDA (issue #7): libtorch's autocast around the
//! forward pass and the loss, with dynamic loss scaling as `torch.amp.GradScaler` does
//! it (scale 2¹⁶ at start; after an overflow the update is skipped and the scale halved;
//! after 2,000 finite steps in a row it doubles).
//!
//! Why float16 and not bfloat16: tch switches libtorch's CUDA autocast on and off but
//! torch-sys' C API has no setter for its lower-precision type, which stays libtorch's
//! default, float16. Trainable tensors stay float32 (the master weights): autocast casts
//! them to float16 at each matmul and their gradients arrive in float32, and the
//! optimizer's moments are float32 as always. On CPU autocast does nothing in tch, so a
//! `fp16` run config on a CPU device is refused ([`Precision::check_device`]).

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::optim::{AdamW, Update};
use petune_core::{Error, Result};

/// The arithmetic of a training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Float32 everywhere (the default; what CPU runs use).
    #[default]
    F32,
    /// CUDA autocast to float16 with dynamic loss scaling; float32 master weights.
    Fp16,
}

impl Precision {
    /// A CUDA-only precision on a CPU device is a config error, not a silent f32 run.
    pub fn check_device(self, device: Device) -> Result<()> {
        if self == Precision::Fp16 && !device.is_cuda() {
            return Err(Error::config(
                "precision",
                "fp16 autocast runs on CUDA only (tch's autocast is libtorch's CUDA autocast); use f32 on CPU",
            ));
        }
        Ok(())
    }

    /// Runs `f` (forward and loss) under this precision's autocast.
    pub fn autocast<T>(self, f: impl FnOnce() -> T) -> T {
        match self {
            Precision::F32 => f(),
            Precision::Fp16 => tch::autocast(true, f),
        }
    }
}

/// The dynamic loss scale (`GradScaler`'s defaults); a no-op at [`Precision::F32`].
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    enabled: bool,
    scale: f64,
    finite_in_a_row: u32,
}

impl LossScaler {
    /// `GradScaler`'s initial scale.
    pub const INIT_SCALE: f64 = 65_536.0;
    /// Finite steps in a row before the scale doubles.
    pub const GROWTH_INTERVAL: u32 = 2_000;

    /// The scaler for `precision`, starting at `scale` (a resumed run's) or the initial one.
    pub fn new(precision: Precision, scale: Option<f64>) -> Self {
        let enabled = precision == Precision::Fp16;
        let scale = if enabled { scale.unwrap_or(Self::INIT_SCALE) } else { 1.0 };
        LossScaler { enabled, scale, finite_in_a_row: 0 }
    }

    /// The current scale (1 when disabled).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Backward of `loss` times the scale (float16 gradients of small losses would
    /// underflow otherwise).
    pub fn backward(&self, loss: &Tensor) {
        if self.enabled {
            (loss * self.scale).backward();
        } else {
            loss.backward();
        }
    }

    /// Unscales the gradients, clips them to `max_norm`, and applies the update at `lr`
    /// unless a gradient overflowed; adjusts the scale. Gradients are zeroed either way.
    pub fn step(&mut self, opt: &mut AdamW, max_norm: f64, lr: f64) -> Update {
        let factor = if self.enabled { 1.0 / self.scale } else { 1.0 };
        let update = opt.update(lr, max_norm, factor, self.enabled);
        if !update.applied {
            self.scale *= 0.5;
            self.finite_in_a_row = 0;
        } else if self.enabled {
            self.finite_in_a_row += 1;
            if self.finite_in_a_row >= Self::GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.finite_in_a_row = 0;
            }
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::AdamWConfig;
    use tch::Kind;

    fn one_param(value: f64) -> (Tensor, AdamW) {
        let p = Tensor::full([3], value, (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let opt =
            AdamW::new(vec![("p".into(), p.shallow_clone())], AdamWConfig::default()).unwrap();
        (p, opt)
    }

    #[test]
    fn gradients_are_unscaled_before_clipping_and_the_update() {
        tch::set_num_threads(1);
        let (p, mut opt) = one_param(1.0);
        let (q, mut reference) = one_param(1.0);
        let mut scaler = LossScaler::new(Precision::Fp16, None);
        scaler.backward(&(&p * 0.25).sum(Kind::Float));
        (&q * 0.25).sum(Kind::Float).backward();
        let scaled = scaler.step(&mut opt, 1.0, 1e-2);
        let plain = reference.clip_grad_norm(1.0);
        reference.step(1e-2);
        assert!(scaled.applied);
        assert!((scaled.grad_norm - plain).abs() < 1e-6, "{} vs {plain}", scaled.grad_norm);
        assert!(p.allclose(&q, 1e-7, 1e-7, false));
    }

    #[test]
    fn an_overflow_skips_the_update_and_halves_the_scale() {
        tch::set_num_threads(1);
        let (p, mut opt) = one_param(1.0);
        let before = p.copy();
        let mut scaler = LossScaler::new(Precision::Fp16, Some(1024.0));
        scaler.backward(&(&p * f64::INFINITY).sum(Kind::Float));
        let out = scaler.step(&mut opt, 1.0, 1e-2);
        assert!(!out.applied && !out.grad_norm.is_finite());
        assert_eq!(scaler.scale(), 512.0);
        assert!(p.equal(&before));
        assert_eq!(p.grad().abs().sum(Kind::Float).double_value(&[]), 0.0, "grads zeroed");
        assert_eq!(opt.step_count(), 0, "a skipped update is no Adam step");
    }

    #[test]
    fn the_scale_doubles_after_the_growth_interval() {
        tch::set_num_threads(1);
        let (p, mut opt) = one_param(1.0);
        let mut scaler = LossScaler::new(Precision::Fp16, Some(8.0));
        for _ in 0..LossScaler::GROWTH_INTERVAL {
            scaler.backward(&p.sum(Kind::Float));
            assert!(scaler.step(&mut opt, 1.0, 0.0).applied);
        }
        assert_eq!(scaler.scale(), 16.0);
    }

    #[test]
    fn f32_is_a_plain_step_and_fp16_needs_cuda() {
        tch::set_num_threads(1);
        let (p, mut opt) = one_param(2.0);
        let mut scaler = LossScaler::new(Precision::F32, Some(1024.0));
        assert_eq!(scaler.scale(), 1.0);
        scaler.backward(&p.sum(Kind::Float));
        assert!(scaler.step(&mut opt, 1.0, 1e-3).applied);
        assert!(Precision::F32.check_device(Device::Cpu).is_ok());
        let err = Precision::Fp16.check_device(Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("precision") && err.contains("CUDA"), "{err}");
        assert_eq!(Precision::Fp16.autocast(|| 3), 3);
        let parsed: Precision = serde_json::from_str("\"fp16\"").unwrap();
        assert_eq!(parsed, Precision::Fp16);
    }
}
