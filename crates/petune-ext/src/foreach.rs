//! Multi-tensor optimizer ops: `torch.optim.AdamW(fused=True)`'s step through
//! `at::_fused_adamw_` (PyTorch 2.13, `torch/optim/adam.py::_fused_adam`), and
//! `torch.nn.utils.clip_grad_norm_(foreach=True)`'s norm and scaling through
//! `at::_foreach_norm` / `at::_foreach_mul_` (`torch/nn/utils/clip_grad.py`).
//!
//! List lengths are checked here; devices, dtypes, shapes and contiguity in C++ (what
//! the kernels assume without checking); anything libtorch itself throws comes back as
//! [`Error::Extension`] too.

use petune_core::{Error, Result};
use tch::Tensor;

use crate::ffi::{self, ptrs, TensorPtr};

/// AdamW's hyper-parameters for one parameter group of [`fused_adamw_`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWHyper {
    /// Learning rate of this step.
    pub lr: f64,
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// Decoupled weight decay (PyTorch's: `p ← p·(1 − lr·wd)` before the Adam step).
    pub weight_decay: f64,
    /// ε (PyTorch's placement: added to `√v̂`, the bias-corrected second moment).
    pub eps: f64,
}

fn same_len(op: &str, lens: &[(&str, usize)]) -> Result<()> {
    let n = lens[0].1;
    if lens.iter().all(|(_, l)| *l == n) {
        return Ok(());
    }
    let got: Vec<String> = lens.iter().map(|(w, l)| format!("{w} {l}")).collect();
    Err(Error::Extension {
        op: op.into(),
        msg: format!("lists of different lengths: {}", got.join(", ")),
    })
}

/// One `torch.optim.AdamW(fused=True)` step of a parameter group, in place: each step
/// counter (a float32 scalar per parameter, on its device) is incremented, then
/// parameters and both moments are updated by libtorch's fused kernel. All tensors of a
/// parameter share its dtype, shape and device and are contiguous.
///
/// With `grad_scale` (a float32 scalar on the parameters' device) every gradient is
/// divided by it as the kernel reads it, and the divided gradient is written back, as
/// `torch.amp.GradScaler` with a fused optimizer does. With `grad_scale = 1 / clip
/// coefficient` this is clipping and the step in one pass over the gradients, instead of
/// a `_foreach_mul_` pass before the step.
pub fn fused_adamw_(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    steps: &[Tensor],
    h: &AdamWHyper,
    grad_scale: Option<&Tensor>,
) -> Result<()> {
    let op = "fused_adamw_";
    same_len(
        op,
        &[
            ("params", params.len()),
            ("grads", grads.len()),
            ("exp_avgs", exp_avgs.len()),
            ("exp_avg_sqs", exp_avg_sqs.len()),
            ("state_steps", steps.len()),
        ],
    )?;
    let (p, g, m, v, s) =
        (ptrs(params), ptrs(grads), ptrs(exp_avgs), ptrs(exp_avg_sqs), ptrs(steps));
    let scale = grad_scale.map_or(std::ptr::null(), |t| t.as_ptr() as *const std::ffi::c_void);
    // SAFETY: five arrays of `params.len()` pointers to live `at::Tensor`s and an optional
    // live scale, borrowed for the call; the C++ side checks every tensor before use and
    // catches every exception.
    let msg = unsafe {
        ffi::petune_ext_fused_adamw(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            s.as_ptr(),
            params.len(),
            h.lr,
            h.beta1,
            h.beta2,
            h.weight_decay,
            h.eps,
            scale,
        )
    };
    ffi::check(op, msg)
}

/// The 2-norm of all `tensors` together as `clip_grad_norm_(foreach=True)` computes it
/// (the norm of the per-tensor norms), a float32 scalar on the first tensor's device;
/// reading it is the only host synchronisation.
pub fn total_norm(tensors: &[Tensor]) -> Result<Tensor> {
    let p = ptrs(tensors);
    let mut out: TensorPtr = std::ptr::null_mut();
    // SAFETY: an array of live tensor pointers borrowed for the call; `out` receives a
    // tensor allocated with `new` on success, owned by the `Tensor` built from it.
    let msg = unsafe { ffi::petune_ext_total_norm(p.as_ptr(), tensors.len(), &mut out) };
    ffi::check("total_norm", msg)?;
    if out.is_null() {
        return Err(Error::Extension { op: "total_norm".into(), msg: "no result".into() });
    }
    // SAFETY: `out` is a fresh `at::Tensor*` that nothing else owns.
    Ok(unsafe { Tensor::from_ptr(out as *mut _) })
}

/// Multiplies every tensor in place by `factor`, a one-element tensor (0-dim, as
/// libtorch's `_foreach_mul_.Tensor` requires) that stays on the device.
pub fn foreach_mul_(tensors: &[Tensor], factor: &Tensor) -> Result<()> {
    let p = ptrs(tensors);
    // SAFETY: live tensor pointers borrowed for the call.
    let msg = unsafe {
        ffi::petune_ext_foreach_mul_tensor_(p.as_ptr(), tensors.len(), factor.as_ptr() as TensorPtr)
    };
    ffi::check("foreach_mul_", msg)
}

/// Multiplies every tensor in place by a number.
pub fn foreach_mul_scalar_(tensors: &[Tensor], factor: f64) -> Result<()> {
    let p = ptrs(tensors);
    // SAFETY: live tensor pointers borrowed for the call.
    let msg = unsafe { ffi::petune_ext_foreach_mul_scalar_(p.as_ptr(), tensors.len(), factor) };
    ffi::check("foreach_mul_scalar_", msg)
}

/// Releases the gradients of `tensors` (`.grad` becomes undefined): PyTorch's
/// `zero_grad(set_to_none=True)`, its default. Saves the pass that writes zeros over
/// every gradient, and the next backward stores its gradient instead of adding it to
/// zeros; the values of later steps are the same (0 + g = g exactly).
pub fn grads_to_none(tensors: &[Tensor]) -> Result<()> {
    let p = ptrs(tensors);
    // SAFETY: live tensor pointers borrowed for the call.
    let msg = unsafe { ffi::petune_ext_grads_to_none(p.as_ptr(), tensors.len()) };
    ffi::check("grads_to_none", msg)
}
