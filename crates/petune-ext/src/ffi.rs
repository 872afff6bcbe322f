//! The C declarations of `csrc/petune_ext.cpp` and the conversion of its error messages
//! into [`petune_core::Error::Extension`]. Tensors cross as tch's raw pointers, which are
//! `at::Tensor*` (torch-sys' `tensor` type).

use std::ffi::{c_char, c_void, CStr};

use petune_core::{Error, Result};
use tch::Tensor;

/// An `at::Tensor*`, as `tch::Tensor::as_ptr` gives it.
pub(crate) type TensorPtr = *mut c_void;

extern "C" {
    pub(crate) fn petune_ext_free_error(msg: *mut c_char);
    pub(crate) fn petune_ext_fused_adamw(
        params: *const TensorPtr,
        grads: *const TensorPtr,
        exp_avgs: *const TensorPtr,
        exp_avg_sqs: *const TensorPtr,
        steps: *const TensorPtr,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        grad_scale: *const c_void,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_grads_to_none(tensors: *const TensorPtr, n: usize) -> *mut c_char;
    pub(crate) fn petune_ext_total_norm(
        tensors: *const TensorPtr,
        n: usize,
        out: *mut TensorPtr,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_foreach_mul_tensor_(
        tensors: *const TensorPtr,
        n: usize,
        factor: TensorPtr,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_foreach_mul_scalar_(
        tensors: *const TensorPtr,
        n: usize,
        factor: f64,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_autocast_enter(
        device: i32,
        dtype: i32,
        prev_enabled: *mut bool,
        prev_dtype: *mut i32,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_autocast_exit(
        device: i32,
        prev_enabled: bool,
        prev_dtype: i32,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_autocast_state(
        device: i32,
        enabled: *mut bool,
        dtype: *mut i32,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_set_allow_tf32_cublas(allow: bool) -> *mut c_char;
    pub(crate) fn petune_ext_allow_tf32_cublas(allow: *mut bool) -> *mut c_char;
    pub(crate) fn petune_ext_release_free_heap(released: *mut bool) -> *mut c_char;
    pub(crate) fn petune_ext_pg_new(
        host: *const c_char,
        port: u16,
        rank: i64,
        world: i64,
        timeout_ms: i64,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_pg_destroy(handle: *mut c_void) -> *mut c_char;
    pub(crate) fn petune_ext_pg_all_reduce_sum_(
        handle: *mut c_void,
        tensor: TensorPtr,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_pg_broadcast_(
        handle: *mut c_void,
        tensor: TensorPtr,
        root: i64,
    ) -> *mut c_char;
    pub(crate) fn petune_ext_pg_barrier(handle: *mut c_void) -> *mut c_char;
}

/// `Ok` for a null message, else the message as [`Error::Extension`] (the C++ side's
/// allocation is freed here).
pub(crate) fn check(op: &str, msg: *mut c_char) -> Result<()> {
    if msg.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null message is a NUL-terminated string allocated by the extension
    // (or its static out-of-memory message), valid until `petune_ext_free_error`, which is
    // called exactly once, after the copy.
    let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned();
    unsafe { petune_ext_free_error(msg) };
    Err(Error::Extension { op: op.into(), msg: text })
}

/// The raw pointers of `tensors`, valid while they are borrowed.
pub(crate) fn ptrs(tensors: &[Tensor]) -> Vec<TensorPtr> {
    tensors.iter().map(|t| t.as_ptr() as TensorPtr).collect()
}
