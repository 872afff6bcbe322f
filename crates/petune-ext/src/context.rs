//! libtorch's global switches that torch-sys has no setter for: TF32 for float32 matmuls
//! on CUDA (`torch.backends.cuda.matmul.allow_tf32`, off by default in PyTorch and here);
//! and the process heap's `malloc_trim` (glibc), which Rust's std does not expose.

use petune_core::Result;

use crate::ffi;

/// Lets cuBLAS run float32 matmuls in TF32 (process-wide; no effect on CPU).
pub fn set_allow_tf32_cublas(allow: bool) -> Result<()> {
    // SAFETY: no pointers; the C++ side catches every exception.
    ffi::check("set_allow_tf32_cublas", unsafe { ffi::petune_ext_set_allow_tf32_cublas(allow) })
}

/// Whether cuBLAS may run float32 matmuls in TF32.
pub fn allow_tf32_cublas() -> Result<bool> {
    let mut allow = false;
    // SAFETY: `allow` outlives the call, which writes one bool to it.
    ffi::check("allow_tf32_cublas", unsafe { ffi::petune_ext_allow_tf32_cublas(&mut allow) })?;
    Ok(allow)
}

/// Returns the heap's free pages to the OS (glibc `malloc_trim(0)`): called after a
/// bfloat16 base is loaded, whose freed float32 copies would otherwise stay resident.
/// `Ok(true)` when memory went back; `Ok(false)` when none did or off glibc.
pub fn release_free_heap() -> Result<bool> {
    let mut released = false;
    // SAFETY: `released` outlives the call, which writes one bool to it.
    ffi::check("release_free_heap", unsafe { ffi::petune_ext_release_free_heap(&mut released) })?;
    Ok(released)
}
