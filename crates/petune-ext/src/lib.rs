//! petune's C++ extension on the libtorch that tch links (issue #16): the few libtorch
//! 2.13 functions that tch 0.26 does not expose, each in one short `extern "C"` function
//! of `csrc/petune_ext.cpp`, compiled by `build.rs` with the `cc` crate against the same
//! headers torch-sys uses.
//!
//! | function | libtorch call | what tch lacks |
//! |---|---|---|
//! | [`fused_adamw_`] | `at::_foreach_add_` + `at::_fused_adamw_` (with its `grad_scale`) | tch's generator skips every `_fused_adam*` op; `torch.optim.AdamW(fused=True)`'s multi-tensor kernel (CPU and CUDA) |
//! | [`total_norm`] | `at::_foreach_norm` + `linalg_vector_norm(stack)` | every `_foreach_*` op is skipped too; `clip_grad_norm_(foreach=True)`'s norm |
//! | [`foreach_mul_`], [`foreach_mul_scalar_`] | `at::_foreach_mul_` | the same; clipping and loss-scale removal in one call |
//! | [`grads_to_none`] | `Tensor::mutable_grad().reset()` | tch can zero a gradient but not release it (`zero_grad(set_to_none=True)`) |
//! | [`AutocastGuard`] | `at::autocast::set_autocast_dtype` / `set_autocast_enabled` | tch switches CUDA autocast on in float16 only: no bfloat16, no CPU autocast |
//! | [`ProcessGroup`] | `c10d::ProcessGroupGloo` over a `c10d::TCPStore`: sum all-reduce / broadcast / barrier | tch has no `torch.distributed`; data-parallel training (#17). The wheel ships no gloo headers: `csrc/gloo-abi/` declares the few names c10d's header needs |
//! | [`release_free_heap`] | glibc `malloc_trim(0)` | Rust's std has no way to return freed heap pages (after a bf16 base load) |
//! | [`set_allow_tf32_cublas`] | `at::globalContext().setAllowTF32CuBLAS` | torch-sys has no setter (`torch.backends.cuda.matmul.allow_tf32`) |
//!
//! When tch grows one of these, the function here should go. Every entry point catches
//! C++ exceptions and returns their message, which becomes
//! [`petune_core::Error::Extension`]: no exception or abort crosses into Rust.

mod autocast;
mod context;
mod dist;
mod ffi;
mod foreach;
mod rendezvous;

pub use autocast::{autocast, autocast_state, AutocastDtype, AutocastGuard};
pub use context::{allow_tf32_cublas, release_free_heap, set_allow_tf32_cublas};
pub use dist::ProcessGroup;
pub use foreach::{
    foreach_mul_, foreach_mul_scalar_, fused_adamw_, grads_to_none, total_norm, AdamWHyper,
};
pub use rendezvous::{first_host, Rendezvous, DEFAULT_SLURM_PORT};
