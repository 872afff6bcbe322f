//! Autocast with a chosen dtype on CPU or CUDA (`torch.autocast(device, dtype)`): tch's
//! `autocast` switches CUDA autocast on in libtorch's default float16 and cannot choose
//! bfloat16 or autocast on CPU. The guard follows `torch.autocast`'s `__enter__` /
//! `__exit__` (ATen `autocast_mode.h`): set the dtype, enable, count the nesting; on exit
//! clear the cast cache at the outermost level and restore the previous state.

use petune_core::{Error, Result};
use tch::Device;

use crate::ffi;

/// Autocast's lower-precision dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutocastDtype {
    /// float16.
    F16,
    /// bfloat16.
    Bf16,
}

impl AutocastDtype {
    fn code(self) -> i32 {
        match self {
            AutocastDtype::F16 => 0,
            AutocastDtype::Bf16 => 1,
        }
    }

    fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(AutocastDtype::F16),
            1 => Some(AutocastDtype::Bf16),
            _ => None,
        }
    }
}

fn device_code(device: Device) -> Result<i32> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        other => Err(Error::Unsupported {
            what: "autocast device".into(),
            msg: format!("{other:?}: autocast is available for CPU and CUDA"),
        }),
    }
}

/// Autocast switched on for a device type until dropped (then restored as it was).
#[derive(Debug)]
#[must_use = "autocast ends when the guard is dropped"]
pub struct AutocastGuard {
    device: i32,
    prev_enabled: bool,
    prev_dtype: i32,
}

impl AutocastGuard {
    /// Enables autocast in `dtype` for `device`'s type (all CUDA devices for `cuda:N`).
    pub fn new(device: Device, dtype: AutocastDtype) -> Result<Self> {
        let device = device_code(device)?;
        let (mut prev_enabled, mut prev_dtype) = (false, -1);
        // SAFETY: the two outputs outlive the call.
        let msg = unsafe {
            ffi::petune_ext_autocast_enter(device, dtype.code(), &mut prev_enabled, &mut prev_dtype)
        };
        ffi::check("autocast", msg)?;
        Ok(AutocastGuard { device, prev_enabled, prev_dtype })
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // SAFETY: no pointers. It cannot fail for a device code that `new` accepted; a
        // drop has no way to report an error anyway.
        let msg = unsafe {
            ffi::petune_ext_autocast_exit(self.device, self.prev_enabled, self.prev_dtype)
        };
        let _ = ffi::check("autocast exit", msg);
    }
}

/// Runs `f` under autocast in `dtype` on `device`.
pub fn autocast<T>(device: Device, dtype: AutocastDtype, f: impl FnOnce() -> T) -> Result<T> {
    let _guard = AutocastGuard::new(device, dtype)?;
    Ok(f())
}

/// Whether autocast is on for `device`'s type, and its dtype (`None` if neither float16
/// nor bfloat16).
pub fn autocast_state(device: Device) -> Result<(bool, Option<AutocastDtype>)> {
    let device = device_code(device)?;
    let (mut enabled, mut dtype) = (false, -1);
    // SAFETY: the two outputs outlive the call.
    let msg = unsafe { ffi::petune_ext_autocast_state(device, &mut enabled, &mut dtype) };
    ffi::check("autocast_state", msg)?;
    Ok((enabled, AutocastDtype::from_code(dtype)))
}
