//! Mixed precision for training steps (issues #7, #16): autocast around the forward pass
//! and the loss, through petune-ext (`at::autocast::set_autocast_dtype` /
//! `set_autocast_enabled`, which tch does not expose), with float32 master weights,
//! float32 gradients of them and float32 optimizer moments.
//!
//! - `fp16`: CUDA autocast to float16 with dynamic loss scaling as `torch.amp.GradScaler`
//!   does it (scale 2¹⁶ at start; after an overflow the update is skipped and the scale
//!   halved; after 2,000 finite steps in a row it doubles). CUDA only: a `fp16` run
//!   config on a CPU device is refused ([`Precision::check_device`]).
//! - `bf16`: autocast to bfloat16 on CUDA or CPU (`torch.autocast(device, torch.bfloat16)`),
//!   no loss scaler: bfloat16 has float32's exponent range, so gradients do not underflow
//!   (PyTorch's AMP recipe). On a CPU without native bfloat16 arithmetic it is slower than
//!   f32 (docs/benchmarks.md); it is allowed there because it is correct.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::optim::{AdamW, Update};
use petune_core::{Error, Result};
use petune_ext::AutocastDtype;

/// The arithmetic of a training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Float32 everywhere (the default).
    #[default]
    F32,
    /// CUDA autocast to float16 with dynamic loss scaling; float32 master weights.
    Fp16,
    /// Autocast to bfloat16 (CUDA or CPU), no loss scaling; float32 master weights.
    Bf16,
}

impl Precision {
    /// A CUDA-only precision on a CPU device is a config error, not a silent f32 run.
    pub fn check_device(self, device: Device) -> Result<()> {
        if self == Precision::Fp16 && !device.is_cuda() {
            return Err(Error::config(
                "precision",
                "fp16 autocast with loss scaling runs on CUDA only; use f32 or bf16 on CPU",
            ));
        }
        Ok(())
    }

    /// The config name (`f32`, `fp16`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
        }
    }

    /// The dtype autocast runs matmuls in (float32 for `f32`).
    pub fn matmul_kind(self) -> Kind {
        match self {
            Precision::F32 => Kind::Float,
            Precision::Fp16 => Kind::Half,
            Precision::Bf16 => Kind::BFloat16,
        }
    }

    /// Runs `f` (forward and loss) under this precision's autocast on `device`.
    pub fn autocast<T>(self, device: Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let dtype = match self {
            Precision::F32 => return f(),
            Precision::Fp16 => AutocastDtype::F16,
            Precision::Bf16 => AutocastDtype::Bf16,
        };
        let _guard = petune_ext::AutocastGuard::new(device, dtype)?;
        f()
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
    pub fn step(&mut self, opt: &mut AdamW, max_norm: f64, lr: f64) -> Result<Update> {
        let factor = if self.enabled { 1.0 / self.scale } else { 1.0 };
        let update = opt.update(lr, max_norm, factor, self.enabled)?;
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
        Ok(update)
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
        let scaled = scaler.step(&mut opt, 1.0, 1e-2).unwrap();
        let plain = reference.clip_grad_norm(1.0).unwrap();
        reference.step(1e-2).unwrap();
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
        let out = scaler.step(&mut opt, 1.0, 1e-2).unwrap();
        assert!(!out.applied && !out.grad_norm.is_finite());
        assert_eq!(scaler.scale(), 512.0);
        assert!(p.equal(&before));
        let g = p.grad();
        assert!(!g.defined() || g.abs().sum(Kind::Float).double_value(&[]) == 0.0, "grads cleared");
        assert_eq!(opt.step_count(), 0, "a skipped update is no Adam step");
    }

    #[test]
    fn the_scale_doubles_after_the_growth_interval() {
        tch::set_num_threads(1);
        let (p, mut opt) = one_param(1.0);
        let mut scaler = LossScaler::new(Precision::Fp16, Some(8.0));
        for _ in 0..LossScaler::GROWTH_INTERVAL {
            scaler.backward(&p.sum(Kind::Float));
            assert!(scaler.step(&mut opt, 1.0, 0.0).unwrap().applied);
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
        assert!(scaler.step(&mut opt, 1.0, 1e-3).unwrap().applied);
        assert!(Precision::F32.check_device(Device::Cpu).is_ok());
        let err = Precision::Fp16.check_device(Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("precision") && err.contains("CUDA"), "{err}");
        assert!(Precision::Bf16.check_device(Device::Cpu).is_ok());
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        let kind = |p: Precision| p.autocast(Device::Cpu, || Ok(a.matmul(&a).kind())).unwrap();
        assert_eq!(kind(Precision::F32), Kind::Float);
        assert_eq!(kind(Precision::Bf16), Kind::BFloat16);
        assert_eq!(a.matmul(&a).kind(), Kind::Float, "autocast ends with the closure");
        for (name, p) in [("fp16", Precision::Fp16), ("bf16", Precision::Bf16)] {
            let parsed: Precision = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!((parsed, p.name()), (p, name));
        }
        // bf16 needs no loss scale.
        assert_eq!(LossScaler::new(Precision::Bf16, Some(8.0)).scale(), 1.0);
    }
}
