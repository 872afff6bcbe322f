//! libtorch's global switches that torch-sys has no setter for: TF32 for float32 matmuls
//! on CUDA (`torch.backends.cuda.matmul.allow_tf32`, off by default in PyTorch and here).

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
