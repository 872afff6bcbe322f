//! The trainer's AdamW, in one of two recurrences ([`OptimizerKind`]):
//!
//! - `adamw_fused` (the default): `torch.optim.AdamW(fused=True)` through libtorch's
//!   multi-tensor `_fused_adamw_` kernel (petune-ext), with `clip_grad_norm_(foreach=True)`'s
//!   clipping (`_foreach_norm`, `_foreach_mul_`): decay first (`p ← p·(1 − lr·wd)`), then
//!   `p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε)`; a float32 step counter per parameter,
//!   as PyTorch's `state["step"]`. Matches PyTorch on committed goldens
//!   (tests/optim_golden.rs).
//! - `hf_adamw`: Hugging Face `transformers.AdamW` (v4.6.1, the LPT authors' version) as
//!   lpt-reference.md §5, §10 describe it: `eps` added to √v *before* bias correction,
//!   step size `lr·√(1−β2^t)/(1−β1^t)`, and decoupled weight decay applied *after* the
//!   Adam step. Written out here with in-place libtorch ops, per tensor (or over flat
//!   buffers on CUDA); kept for exact reproduction of the authors' runs.
//!
//! The two differ in early steps (ε placement, decay order) and not beyond seed noise in
//! accuracy (docs/benchmarks.md). Parameters whose name ends in `bias` or that belong to a
//! LayerNorm get no decay, as the authors' `no_decay = ["bias", "LayerNorm.weight"]` rule.

use std::collections::BTreeMap;

use petune_core::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which AdamW recurrence the trainer runs (`train.optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// `torch.optim.AdamW(fused=True)` with foreach clipping: PyTorch's current numerics
    /// and its multi-tensor kernels (a few launches per step instead of ~10 per tensor).
    #[default]
    AdamwFused,
    /// The LPT authors' `transformers.AdamW` recurrence, for exact reproduction.
    HfAdamw,
}

impl OptimizerKind {
    /// The config name (`adamw_fused`, `hf_adamw`).
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::AdamwFused => "adamw_fused",
            OptimizerKind::HfAdamw => "hf_adamw",
        }
    }
}

/// Hyper-parameters (the authors': β = (0.9, 0.999), ε = 1e-8, weight decay 0.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay for parameters that decay.
    pub weight_decay: f64,
    /// The recurrence.
    pub kind: OptimizerKind,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
            kind: OptimizerKind::default(),
        }
    }
}

/// One optimised tensor with its moments.
#[derive(Debug)]
pub struct Param {
    /// Name (for checkpoints and the decay rule).
    pub name: String,
    /// The tensor (requires grad).
    pub tensor: Tensor,
    /// First moment.
    pub m: Tensor,
    /// Second moment.
    pub v: Tensor,
    /// Whether weight decay applies.
    pub decay: bool,
    /// The fused optimizer's step counter of this parameter (a float32 scalar on its
    /// device, PyTorch's `state["step"]`); `None` for `hf_adamw`, which counts globally.
    pub step: Option<Tensor>,
    /// This tensor's learning rate as a multiple of the scheduled one (1 unless set by
    /// [`AdamW::scale_lr`]: e.g. the task head trained at its own rate).
    pub lr_scale: f64,
}

/// Whether a parameter gets weight decay (not biases, not LayerNorm weights).
pub fn decays(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !(lower.ends_with("bias")
        || lower.contains("layernorm")
        || lower.contains("layer_norm")
        || lower.contains(".ln_"))
}

/// `torch.nn.utils.clip_grad_norm_`'s factor for a gradient norm `norm`: `max_norm /
/// (norm + 1e-6)` when that is below 1, else none.
fn clip_coefficient(norm: f64, max_norm: f64) -> Option<f64> {
    let coef = max_norm / (norm + 1e-6);
    (coef < 1.0).then_some(coef)
}

/// The Adam arithmetic shared by the per-tensor and the flat update, in place and in
/// few passes (the optimizer was 15 % of a model-tuning step on MiniLM):
/// m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²; returns the divisor `(√v + ε) / −s` of
/// the update `p ← p + m / divisor` (= `p − s·m / (√v + ε)`, HF's ε placement).
fn adam_moments(cfg: &AdamWConfig, m: &Tensor, v: &Tensor, g: &Tensor, step_size: f64) -> Tensor {
    let _ = m.shallow_clone().f_lerp_(g, 1.0 - cfg.beta1);
    let _ = v.shallow_clone().f_lerp_(&(g * g), 1.0 - cfg.beta2);
    let mut divisor = v.sqrt();
    let _ = divisor.f_add_scalar_(cfg.eps).and_then(|mut d| d.f_div_scalar_(-step_size));
    divisor
}

/// The decoupled weight decay after the Adam step, `p ← p·(1 − lr·wd)`, for parameters
/// that decay.
fn decay(cfg: &AdamWConfig, p: &mut Param, lr: f64) {
    if p.decay && cfg.weight_decay > 0.0 {
        let _ = p.tensor.f_mul_scalar_(1.0 - lr * cfg.weight_decay);
    }
}

/// The trainer's AdamW over named tensors, in the recurrence of its config
/// ([`OptimizerKind`]).
#[derive(Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<Param>,
    step: i64,
    flat: Option<FlatMoments>,
    flat_on_cpu: bool,
}

/// The moments of every parameter as views into two flat float32 buffers, set up at
/// the first [`AdamW::update`] that finds a gradient for every parameter (all float32
/// on one CUDA device, or on CPU when asked: [`AdamW::with_flat_buffers_on_cpu`]). An update is then a few kernels over the whole model plus an add
/// (and a decay) per parameter, instead of about ten kernels per parameter: what
/// PyTorch's CUDA AdamW gets from its multi-tensor kernels, which tch does not expose.
/// The values per element are the same arithmetic as [`AdamW::step`].
#[derive(Debug)]
struct FlatMoments {
    m: Tensor,
    v: Tensor,
    /// (offset, numel) of each parameter in the buffers, in `params` order.
    spans: Vec<(i64, i64)>,
}

/// What [`AdamW::update`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Update {
    /// Gradient norm after the factor, before clipping; not finite on an overflow.
    pub grad_norm: f64,
    /// Whether the parameters were updated.
    pub applied: bool,
}

impl AdamW {
    /// Optimises `params` (name, tensor); the decay rule follows the names.
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdamWConfig) -> Result<Self> {
        if params.is_empty() {
            return Err(Error::config(
                "method",
                "nothing to train: the method has no trainable tensors",
            ));
        }
        let fused = cfg.kind == OptimizerKind::AdamwFused;
        let params = params
            .into_iter()
            .map(|(name, tensor)| {
                // The fused kernel keeps the moments in the parameter's dtype (as PyTorch).
                let kind = if fused { tensor.kind() } else { Kind::Float };
                let m = tensor.zeros_like().to_kind(kind);
                let v = tensor.zeros_like().to_kind(kind);
                let decay = decays(&name);
                let step = fused.then(|| Tensor::zeros([], (Kind::Float, tensor.device())));
                Param { name, tensor, m, v, decay, step, lr_scale: 1.0 }
            })
            .collect();
        Ok(AdamW { cfg, params, step: 0, flat: None, flat_on_cpu: false })
    }

    /// Uses the flat buffers ([`AdamW::update`]) on CPU too. By default they are used on
    /// CUDA only: there they replace thousands of kernel launches per step, while on
    /// CPU, where a launch costs little, model tuning's optimizer phase measured the same
    /// either way (MiniLM-L6, docs/benchmarks.md).
    pub fn with_flat_buffers_on_cpu(mut self, on: bool) -> Self {
        self.flat_on_cpu = on;
        self
    }

    /// Trains the parameters whose name starts with `prefix` at `scale` times the
    /// scheduled learning rate (their weight decay scales with it, as a PyTorch param
    /// group with its own `lr` does); returns how many matched.
    pub fn scale_lr(&mut self, prefix: &str, scale: f64) -> Result<usize> {
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(Error::config(
                "lr",
                format!("a learning-rate scale must be positive and finite, got {scale}"),
            ));
        }
        let mut n = 0;
        for p in self.params.iter_mut().filter(|p| p.name.starts_with(prefix)) {
            p.lr_scale = scale;
            n += 1;
        }
        Ok(n)
    }

    /// The parameters.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Mutable access for checkpoint restore.
    pub fn params_mut(&mut self) -> &mut [Param] {
        &mut self.params
    }

    /// Optimizer steps taken.
    pub fn step_count(&self) -> i64 {
        self.step
    }

    /// Restores the step counter (resume).
    pub fn set_step_count(&mut self, step: i64) {
        self.step = step;
    }

    /// The recurrence this optimizer runs.
    pub fn kind(&self) -> OptimizerKind {
        self.cfg.kind
    }

    /// Global L2 norm of the gradients, clipped to `max_norm` as
    /// `torch.nn.utils.clip_grad_norm_` does (scale by `max_norm / (norm + 1e-6)` when
    /// that is below 1). Returns the norm before clipping. Foreach ops for `adamw_fused`.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<f64> {
        if self.cfg.kind == OptimizerKind::AdamwFused {
            let _guard = tch::no_grad_guard();
            let (_, grads) = self.live_grads()?;
            if grads.is_empty() {
                return Ok(0.0);
            }
            let total = petune_ext::total_norm(&grads)?;
            clip_foreach(&grads, &total, max_norm)?;
            return Ok(total.f_double_value(&[])?);
        }
        Ok(self.clip_grad_norm_per_tensor(max_norm))
    }

    fn clip_grad_norm_per_tensor(&mut self, max_norm: f64) -> f64 {
        let _guard = tch::no_grad_guard();
        let grads: Vec<Tensor> =
            self.params.iter().map(|p| p.tensor.grad()).filter(|g| g.defined()).collect();
        if grads.is_empty() {
            return 0.0;
        }
        let norms: Vec<Tensor> = grads.iter().map(|g| g.to_kind(Kind::Float).norm()).collect();
        let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
        if let Some(coef) = clip_coefficient(total, max_norm) {
            for mut g in grads {
                let _ = g.f_mul_scalar_(coef);
            }
        }
        total
    }

    /// One update with learning rate `lr` (no clipping), then zeroes the gradients.
    pub fn step(&mut self, lr: f64) -> Result<()> {
        if self.cfg.kind == OptimizerKind::AdamwFused {
            let _guard = tch::no_grad_guard();
            let (live, grads) = self.live_grads()?;
            self.fused_step(&live, &grads, lr, None)?;
            self.zero_grad();
            return Ok(());
        }
        self.step_per_tensor(lr);
        Ok(())
    }

    fn step_per_tensor(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        let step_size = self.next_step_size(lr);
        for p in &mut self.params {
            let mut g = p.tensor.grad();
            if !g.defined() {
                continue;
            }
            let size = step_size * p.lr_scale;
            let divisor = adam_moments(&self.cfg, &p.m, &p.v, &g.to_kind(Kind::Float), size);
            let m = p.m.to_kind(p.tensor.kind());
            let _ = p.tensor.f_addcdiv_(&m, &divisor.to_kind(p.tensor.kind()));
            decay(&self.cfg, p, lr * p.lr_scale);
            let _ = g.f_zero_();
        }
    }

    /// Advances the step counter; the bias-corrected step size `lr·√(1−β2^t)/(1−β1^t)`.
    fn next_step_size(&mut self, lr: f64) -> f64 {
        self.step += 1;
        let t = self.step as f64;
        lr * (1.0 - self.cfg.beta2.powf(t)).sqrt() / (1.0 - self.cfg.beta1.powf(t))
    }

    /// The whole optimizer phase of a training step: gradients times `grad_factor` (the
    /// loss scale's inverse, or 1), their global norm, clipping to `max_norm`, and the
    /// update at `lr` — skipped when `skip_non_finite` and the norm is not finite.
    /// Equal to [`AdamW::scale_grads`], [`AdamW::clip_grad_norm`] and [`AdamW::step`] in
    /// turn (within float rounding: `adamw_fused` folds the factor and the clip into the
    /// kernel's divisor), but in fewer passes. Afterwards the gradients are released
    /// (`adamw_fused`: set to none, as PyTorch's `zero_grad` default) or zeroed
    /// (`hf_adamw`, over flat buffers once every parameter has a gradient:
    /// [`FlatMoments`]).
    pub fn update(
        &mut self,
        lr: f64,
        max_norm: f64,
        grad_factor: f64,
        skip_non_finite: bool,
    ) -> Result<Update> {
        if self.cfg.kind == OptimizerKind::AdamwFused {
            return self.fused_update(lr, max_norm, grad_factor, skip_non_finite);
        }
        let grads: Vec<Tensor> = self.params.iter().map(|p| p.tensor.grad()).collect();
        if self.flat_layout(&grads) {
            return Ok(self.flat_update(&grads, lr, max_norm, grad_factor, skip_non_finite));
        }
        if grad_factor != 1.0 {
            self.scale_grads(grad_factor);
        }
        let grad_norm = self.clip_grad_norm_per_tensor(max_norm);
        if skip_non_finite && !grad_norm.is_finite() {
            self.zero_grad();
            return Ok(Update { grad_norm, applied: false });
        }
        self.step_per_tensor(lr);
        Ok(Update { grad_norm, applied: true })
    }

    /// The indices of the parameters that have a gradient, and those gradients
    /// (contiguous, as the fused kernel needs: a copy only where one is not, and then
    /// the copy is what gets clipped and applied).
    fn live_grads(&self) -> Result<(Vec<usize>, Vec<Tensor>)> {
        let mut live = Vec::new();
        let mut grads = Vec::new();
        for (i, p) in self.params.iter().enumerate() {
            let g = p.tensor.grad();
            if g.defined() {
                live.push(i);
                grads.push(if g.is_contiguous() { g } else { g.f_contiguous()? });
            }
        }
        Ok((live, grads))
    }

    /// The `adamw_fused` optimizer phase in three libtorch calls and one host read: the
    /// foreach norm of the gradients as they are, the skip on a non-finite norm, and the
    /// fused step with the loss-scale removal and the clip folded into the kernel's
    /// `grad_scale` (it divides each gradient as it reads it), so neither is a pass of its
    /// own over the gradients; then the gradients are released (set to none, PyTorch's
    /// `zero_grad` default), which writes nothing. The norm of `g / s` is the norm of `g`
    /// divided by `s`, exactly when `s` is a power of two (a loss scale always is).
    fn fused_update(
        &mut self,
        lr: f64,
        max_norm: f64,
        grad_factor: f64,
        skip_non_finite: bool,
    ) -> Result<Update> {
        let _guard = tch::no_grad_guard();
        let (live, grads) = self.live_grads()?;
        if grads.is_empty() {
            self.step += 1;
            return Ok(Update { grad_norm: 0.0, applied: true });
        }
        let raw = petune_ext::total_norm(&grads)?; // [] float32, of the gradients as stored
        let total = if grad_factor != 1.0 { raw.f_mul_scalar(grad_factor)? } else { raw };
        // The one host synchronisation of the phase: the norm is reported and decides
        // the skip (and whether any divisor is needed at all).
        let grad_norm = total.f_double_value(&[])?;
        if skip_non_finite && !grad_norm.is_finite() {
            self.release_grads()?;
            return Ok(Update { grad_norm, applied: false });
        }
        let grad_scale = if clip_coefficient(grad_norm, max_norm).is_some() {
            // 1 / (clip coefficient · factor), the coefficient as clip_foreach computes it.
            Some(clip_coef(&total, max_norm)?.f_reciprocal()?.f_div_scalar(grad_factor)?)
        } else if grad_factor != 1.0 {
            Some(Tensor::from(1.0 / grad_factor as f32).f_to_device(total.device())?)
        } else {
            None
        };
        self.fused_step(&live, &grads, lr, grad_scale.as_ref())?;
        self.release_grads()?;
        Ok(Update { grad_norm, applied: true })
    }

    /// Sets every gradient to none (`zero_grad(set_to_none=True)`).
    fn release_grads(&mut self) -> Result<()> {
        let tensors: Vec<Tensor> = self.params.iter().map(|p| p.tensor.shallow_clone()).collect();
        petune_ext::grads_to_none(&tensors)
    }

    /// `torch.optim.AdamW(fused=True).step()` over the parameters `live` with `grads`:
    /// one fused call per (decay, learning-rate scale, device, dtype) group, as PyTorch
    /// groups them (a param group with its own `lr` is its own call). `grad_scale`
    /// divides the gradients inside the kernel ([`petune_ext::fused_adamw_`]).
    fn fused_step(
        &mut self,
        live: &[usize],
        grads: &[Tensor],
        lr: f64,
        grad_scale: Option<&Tensor>,
    ) -> Result<()> {
        self.step += 1;
        // The scale's bits order the groups (an f64 is not `Ord`; scales are positive).
        let mut groups: BTreeMap<(bool, u64, String), Vec<usize>> = BTreeMap::new();
        for (k, &i) in live.iter().enumerate() {
            let p = &self.params[i];
            let key = format!("{:?}/{:?}", p.tensor.device(), p.tensor.kind());
            groups.entry((p.decay, p.lr_scale.to_bits(), key)).or_default().push(k);
        }
        for ((decay, scale, _), members) in groups {
            let mut lists: [Vec<Tensor>; 5] = Default::default();
            for &k in &members {
                let p = &self.params[live[k]];
                let step = p
                    .step
                    .as_ref()
                    .ok_or_else(|| Error::input(format!("{}: no fused step counter", p.name)))?;
                lists[0].push(p.tensor.shallow_clone());
                lists[1].push(grads[k].shallow_clone());
                lists[2].push(p.m.shallow_clone());
                lists[3].push(p.v.shallow_clone());
                lists[4].push(step.shallow_clone());
            }
            let hyper = petune_ext::AdamWHyper {
                lr: lr * f64::from_bits(scale),
                beta1: self.cfg.beta1,
                beta2: self.cfg.beta2,
                weight_decay: if decay { self.cfg.weight_decay } else { 0.0 },
                eps: self.cfg.eps,
            };
            let [p, g, m, v, s] = &lists;
            petune_ext::fused_adamw_(p, g, m, v, s, &hyper, grad_scale)?;
        }
        Ok(())
    }

    /// Whether the flat path applies to `grads`, setting the layout up on first use.
    fn flat_layout(&mut self, grads: &[Tensor]) -> bool {
        if self.flat.is_some() {
            return grads.iter().all(Tensor::defined);
        }
        let Some(first) = self.params.first() else { return false };
        let device = first.tensor.device();
        let eligible = (device.is_cuda() || self.flat_on_cpu)
            && self.params.len() > 1
            && grads.iter().all(Tensor::defined)
            && self
                .params
                .iter()
                .all(|p| p.tensor.kind() == Kind::Float && p.tensor.device() == device);
        if !eligible {
            return false;
        }
        let _guard = tch::no_grad_guard();
        let mut spans = Vec::with_capacity(self.params.len());
        let mut total = 0;
        for p in &self.params {
            let n = p.tensor.numel() as i64;
            spans.push((total, n));
            total += n;
        }
        // The moments move into the buffers with their values (a resumed run's).
        let flatten = |t: &Tensor| t.reshape([-1]);
        let m = Tensor::cat(&self.params.iter().map(|p| flatten(&p.m)).collect::<Vec<_>>(), 0); // [total]
        let v = Tensor::cat(&self.params.iter().map(|p| flatten(&p.v)).collect::<Vec<_>>(), 0); // [total]
        for (p, &(offset, n)) in self.params.iter_mut().zip(&spans) {
            let shape = p.tensor.size();
            p.m = m.narrow(0, offset, n).view(shape.as_slice()); // the parameter's shape
            p.v = v.narrow(0, offset, n).view(shape.as_slice());
        }
        self.flat = Some(FlatMoments { m, v, spans });
        true
    }

    fn flat_update(
        &mut self,
        grads: &[Tensor],
        lr: f64,
        max_norm: f64,
        grad_factor: f64,
        skip_non_finite: bool,
    ) -> Update {
        let _guard = tch::no_grad_guard();
        let zero_grads = || {
            for g in grads {
                let _ = g.shallow_clone().f_zero_();
            }
        };
        let mut g = Tensor::cat(&grads.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(), 0); // [total]
        if grad_factor != 1.0 {
            let _ = g.f_mul_scalar_(grad_factor);
        }
        let grad_norm = g.norm().double_value(&[]);
        if skip_non_finite && !grad_norm.is_finite() {
            zero_grads();
            return Update { grad_norm, applied: false };
        }
        if let Some(coef) = clip_coefficient(grad_norm, max_norm) {
            let _ = g.f_mul_scalar_(coef);
        }
        let step_size = self.next_step_size(lr);
        let Some(flat) = &self.flat else {
            return Update { grad_norm, applied: false }; // unreachable: the layout is set
        };
        let divisor = adam_moments(&self.cfg, &flat.m, &flat.v, &g, step_size);
        drop(g);
        let delta = &flat.m / &divisor; // [total]: −s·m / (√v + ε)
        drop(divisor);
        for (p, &(offset, n)) in self.params.iter_mut().zip(&flat.spans) {
            let shape = p.tensor.size();
            let update = delta.narrow(0, offset, n).view(shape.as_slice());
            let _ = if p.lr_scale == 1.0 {
                p.tensor.f_add_(&update)
            } else {
                p.tensor.f_add_(&(update * p.lr_scale))
            };
            decay(&self.cfg, p, lr * p.lr_scale);
        }
        zero_grads();
        Update { grad_norm, applied: true }
    }

    /// Multiplies every gradient by `factor` in place (loss-scale removal).
    pub fn scale_grads(&mut self, factor: f64) {
        let _guard = tch::no_grad_guard();
        for p in &self.params {
            let mut g = p.tensor.grad();
            if g.defined() {
                let _ = g.f_mul_scalar_(factor);
            }
        }
    }

    /// Zeroes every gradient.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            let mut g = p.tensor.grad();
            if g.defined() {
                let _ = g.f_zero_();
            }
        }
    }
}

/// `clip_grad_norm_(foreach=True)`'s scaling: every gradient times
/// `min(1, max_norm / (total + 1e-6))`, computed on the device as PyTorch does
/// (`max_norm / t` is `t.reciprocal() * max_norm` for a tensor `t`), so no branch on the
/// host and the same float32 rounding.
fn clip_foreach(grads: &[Tensor], total: &Tensor, max_norm: f64) -> Result<()> {
    petune_ext::foreach_mul_(grads, &clip_coef(total, max_norm)?)
}

/// `min(1, max_norm / (total + 1e-6))` on the device, `[]` float32.
fn clip_coef(total: &Tensor, max_norm: f64) -> Result<Tensor> {
    Ok(total.f_add_scalar(1e-6)?.f_reciprocal()?.f_mul_scalar(max_norm)?.f_clamp_max(1.0)?)
}

/// The learning-rate schedule after the linear warm-up (`train.schedule`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Linear decay to 0 at the last step (`get_linear_schedule_with_warmup`, the LPT
    /// authors' schedule).
    #[default]
    Linear,
    /// The peak rate until the end (`get_constant_schedule_with_warmup`; with
    /// `warmup_rate` 0, a constant rate throughout).
    Constant,
}

impl Schedule {
    /// The factor on the peak rate for the update after `step` completed steps.
    pub fn factor(self, step: i64, warmup: i64, total: i64) -> f64 {
        match self {
            Schedule::Linear => linear_schedule(step, warmup, total),
            Schedule::Constant if step < warmup => step as f64 / warmup.max(1) as f64,
            Schedule::Constant => 1.0,
        }
    }
}

/// Linear warm-up then linear decay to 0 (`get_linear_schedule_with_warmup`).
pub fn linear_schedule(step: i64, warmup: i64, total: i64) -> f64 {
    if step < warmup {
        step as f64 / warmup.max(1) as f64
    } else {
        ((total - step) as f64 / (total - warmup).max(1) as f64).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hf() -> AdamWConfig {
        AdamWConfig { kind: OptimizerKind::HfAdamw, ..Default::default() }
    }

    #[test]
    fn decay_rule_matches_the_authors() {
        assert!(decays("delta.prompt_generator.proj_down.weight"));
        assert!(decays("delta.prompt_embedding.weight"));
        assert!(!decays("delta.prompt_generator.proj_down.bias"));
        assert!(!decays("bert.encoder.layer.0.output.LayerNorm.weight"));
        assert!(!decays("transformer.h.0.ln_1.weight"));
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert_eq!(linear_schedule(0, 10, 100), 0.0);
        assert_eq!(linear_schedule(5, 10, 100), 0.5);
        assert_eq!(linear_schedule(10, 10, 100), 1.0);
        assert_eq!(linear_schedule(55, 10, 100), 0.5);
        assert_eq!(linear_schedule(100, 10, 100), 0.0);
        assert_eq!(linear_schedule(3, 0, 4), 0.25);
    }

    /// Two steps of HF AdamW on a scalar, computed by hand from the update rule.
    #[test]
    fn adamw_follows_hf_update_rule() {
        let p = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("w".into(), p.shallow_clone())], hf()).unwrap();
        let (lr, b1, b2, eps, wd) = (0.1f64, 0.9f64, 0.999f64, 1e-8f64, 0.1f64);
        let (mut x, mut m, mut v) = (1.0f64, 0.0f64, 0.0f64);
        for t in 1..=2 {
            let loss = (&p * &p).sum(Kind::Float); // grad = 2x
            loss.backward();
            opt.step(lr).unwrap();
            let g = 2.0 * x;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let step = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            x -= step * m / (v.sqrt() + eps);
            x -= lr * wd * x;
        }
        let got = p.double_value(&[0]);
        assert!((got - x).abs() < 1e-6, "{got} vs {x}");
    }

    /// Two identical models, one stepped tensor by tensor and one through the flat
    /// buffers: the same parameters and moments after steps that scale and clip.
    #[test]
    fn flat_update_equals_the_per_tensor_update() {
        tch::set_num_threads(1);
        tch::manual_seed(5);
        let shapes: [&[i64]; 3] = [&[4, 3], &[3], &[2, 2, 2]];
        let names = ["layer.weight", "layer.bias", "LayerNorm.weight"];
        let make = || -> Vec<(String, Tensor)> {
            tch::manual_seed(5);
            names
                .iter()
                .zip(shapes)
                .map(|(n, s)| {
                    (
                        n.to_string(),
                        Tensor::randn(s, (Kind::Float, tch::Device::Cpu)).set_requires_grad(true),
                    )
                })
                .collect()
        };
        let (a, b) = (make(), make());
        let share = |ps: &[(String, Tensor)]| -> Vec<(String, Tensor)> {
            ps.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect()
        };
        let mut flat = AdamW::new(share(&a), hf()).unwrap().with_flat_buffers_on_cpu(true);
        let mut plain = AdamW::new(share(&b), hf()).unwrap();
        let loss = |ps: &[(String, Tensor)], k: f64| -> Tensor {
            ps.iter()
                .map(|(_, t)| (t * t * k).sum(Kind::Float))
                .fold(Tensor::from(0.0f32), |x, y| x + y)
        };
        for step in 0..3 {
            let k = 3.0 + step as f64; // large gradients: clipping is active
            loss(&a, k * 8.0).backward();
            loss(&b, k * 8.0).backward();
            let u = flat.update(1e-2, 1.0, 0.125, true).unwrap();
            plain.scale_grads(0.125);
            let norm = plain.clip_grad_norm(1.0).unwrap();
            plain.step(1e-2).unwrap();
            assert!(u.applied && norm > 1.0);
            assert!((u.grad_norm - norm).abs() < 1e-4 * norm, "{} vs {norm}", u.grad_norm);
        }
        assert!(flat.flat.is_some(), "the flat path ran");

        for (p, q) in flat.params().iter().zip(plain.params()) {
            assert!(p.tensor.allclose(&q.tensor, 1e-5, 1e-6, false), "{}", p.name);
            assert!(p.m.allclose(&q.m, 1e-5, 1e-7, false), "{} m", p.name);
            assert!(p.v.allclose(&q.v, 1e-5, 1e-9, false), "{} v", p.name);
            assert_eq!(p.tensor.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
        }
        assert_eq!(flat.step_count(), 3);
        // An overflow skips the update and zeroes the gradients on the flat path too.
        let before: Vec<Tensor> = flat.params().iter().map(|p| p.tensor.copy()).collect();
        (loss(&a, 1.0) * f64::INFINITY).backward();
        let u = flat.update(1e-2, 1.0, 1.0, true).unwrap();
        assert!(!u.applied && !u.grad_norm.is_finite());
        for (p, b) in flat.params().iter().zip(&before) {
            assert!(p.tensor.equal(b));
        }
        assert_eq!(flat.step_count(), 3);
        // On CPU the default is the per-tensor path.
        let c = make();
        let mut cpu_default = AdamW::new(share(&c), hf()).unwrap();
        loss(&c, 1.0).backward();
        assert!(cpu_default.update(1e-2, 1.0, 1.0, true).unwrap().applied);
        assert!(cpu_default.flat.is_none());
    }

    #[test]
    fn constant_schedule_warms_up_then_holds() {
        let c = Schedule::Constant;
        assert_eq!(c.factor(0, 10, 100), 0.0);
        assert_eq!(c.factor(5, 10, 100), 0.5);
        assert_eq!(c.factor(10, 10, 100), 1.0);
        assert_eq!(c.factor(99, 10, 100), 1.0);
        assert_eq!(c.factor(0, 0, 100), 1.0);
        assert_eq!(Schedule::Linear.factor(55, 10, 100), linear_schedule(55, 10, 100));
    }

    /// A tensor at `scale_lr(·, 3)` moves as it would alone at three times the rate,
    /// decay included, on the per-tensor and the flat HF path and on the fused path; the
    /// others are unchanged.
    #[test]
    fn lr_scale_is_a_param_group_with_its_own_rate() {
        tch::set_num_threads(1);
        // Three steps of HF AdamW on x² from x0 at `lr`, by hand (no clipping).
        let hand = |x0: f64, lr: f64| -> f64 {
            let (mut x, mut m, mut v) = (x0, 0.0f64, 0.0f64);
            for t in 1..=3 {
                let g = 2.0 * x;
                m = 0.9 * m + 0.1 * g;
                v = 0.999 * v + 0.001 * g * g;
                let step = lr * (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.9f64.powi(t));
                x -= step * m / (v.sqrt() + 1e-8);
                x -= lr * 0.1 * x;
            }
            x
        };
        // Three steps of x² from `x0` on a fresh optimizer, `head.w` scaled by `scale`.
        let run = |cfg: AdamWConfig, flat: bool, x0: &[f32], scale: f64| -> Vec<f64> {
            let a = Tensor::from_slice(x0).set_requires_grad(true);
            let b = Tensor::from_slice(&[0.5f32]).set_requires_grad(true);
            let params =
                vec![("delta.w".into(), a.shallow_clone()), ("head.w".into(), b.shallow_clone())];
            let mut opt = AdamW::new(params, cfg).unwrap().with_flat_buffers_on_cpu(flat);
            assert_eq!(opt.scale_lr("head.", scale).unwrap(), 1);
            for _ in 0..3 {
                ((&a * &a).sum(Kind::Float) + (&b * &b).sum(Kind::Float)).backward();
                assert!(opt.update(1e-2 * 3.0 / scale, 100.0, 1.0, false).unwrap().applied);
            }
            assert_eq!(opt.flat.is_some(), flat && cfg.kind == OptimizerKind::HfAdamw);
            vec![a.double_value(&[0]), a.double_value(&[1]), b.double_value(&[0])]
        };
        for flat in [false, true] {
            // lr 1e-2 for the delta, 3e-2 for the head.
            let got = run(hf(), flat, &[1.0, -2.0], 3.0);
            let want = [hand(1.0, 1e-2), hand(-2.0, 1e-2), hand(0.5, 3e-2)];
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "flat {flat}: {got:?} vs {want:?}");
            }
        }
        // Fused: the head at 3 × 1e-2 moves as an unscaled head at lr 3e-2 does.
        let fused = AdamWConfig::default();
        assert_eq!(fused.kind, OptimizerKind::AdamwFused);
        let scaled = run(fused, false, &[1.0, -2.0], 3.0);
        let alone = run(fused, false, &[1.0, -2.0], 1.0);
        assert!((scaled[2] - alone[2]).abs() < 1e-7, "{scaled:?} vs {alone:?}");
        assert!((scaled[0] - alone[0]).abs() > 1e-4, "the delta's rate differs: {scaled:?}");
        let mut opt =
            AdamW::new(vec![("w".into(), Tensor::from(1.0f32))], AdamWConfig::default()).unwrap();
        assert!(opt.scale_lr("w", 0.0).is_err());
        assert!(opt.scale_lr("w", f64::NAN).is_err());
    }
}
