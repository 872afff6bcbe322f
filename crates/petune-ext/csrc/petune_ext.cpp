// petune-ext: the few libtorch 2.13 calls that tch 0.26 does not expose (see src/lib.rs).
//
// Every entry point is `extern "C"`, takes tch's tensors as `at::Tensor*` (what
// `tch::Tensor::as_ptr` gives), catches every C++ exception and returns it as a message
// (nullptr on success) allocated here and freed by `petune_ext_free_error`, so no
// exception ever unwinds into Rust. Only ATen headers are included (not <torch/torch.h>),
// plus glibc's <malloc.h> for the heap trim: the file compiles in seconds.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_fused_adamw.h>
#include <ATen/ops/linalg_vector_norm.h>
#include <ATen/ops/stack.h>
#include <c10/core/GradMode.h>

#include "petune_guard.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

using petune::guarded;

namespace {

// The list of `n` tensors behind `ptrs` (tch's raw pointers), each one defined.
std::vector<at::Tensor> list(at::Tensor* const* ptrs, size_t n, const char* what) {
  TORCH_CHECK(n == 0 || ptrs != nullptr, what, ": null list");
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TORCH_CHECK(ptrs[i] != nullptr, what, "[", i, "]: null tensor");
    TORCH_CHECK(ptrs[i]->defined(), what, "[", i, "]: undefined tensor");
    out.push_back(*ptrs[i]);
  }
  return out;
}

at::ScalarType dtype_code(int32_t code) {
  switch (code) {
    case 0:
      return at::kHalf;
    case 1:
      return at::kBFloat16;
    case 2:
      return at::kFloat;
    default:
      TORCH_CHECK(false, "unknown dtype code ", code);
  }
  return at::kFloat;  // not reached: TORCH_CHECK(false) throws
}

int32_t code_of(at::ScalarType t) {
  switch (t) {
    case at::kHalf:
      return 0;
    case at::kBFloat16:
      return 1;
    case at::kFloat:
      return 2;
    default:
      return -1;
  }
}

at::DeviceType device_code(int32_t code) {
  TORCH_CHECK(code == 0 || code == 1, "unknown device code ", code, " (0 = CPU, 1 = CUDA)");
  return code == 0 ? at::kCPU : at::kCUDA;
}

}  // namespace

extern "C" {

void petune_ext_free_error(char* msg) {
  if (msg != petune::oom_message) {
    delete[] msg;
  }
}

// torch.optim.AdamW(fused=True)'s step for one parameter group: the step counters (float32
// scalars, one per parameter, on the parameters' device) are incremented, then
// at::_fused_adamw_ updates parameters and both moments in place, as torch.optim.adam's
// _fused_adam does. `grad_scale` (nullable, a float32 scalar on the device) is the
// kernel's own divisor of the gradients, applied as it reads them (it also writes the
// divided gradients back): petune passes 1 / clip coefficient there, so clipping costs
// no separate pass over the gradients. Checks what the kernel assumes but does not check.
char* petune_ext_fused_adamw(at::Tensor* const* params, at::Tensor* const* grads,
                             at::Tensor* const* exp_avgs, at::Tensor* const* exp_avg_sqs,
                             at::Tensor* const* steps, size_t n, double lr, double beta1,
                             double beta2, double weight_decay, double eps,
                             const at::Tensor* grad_scale) {
  return guarded([&] {
    auto p = list(params, n, "params");
    auto g = list(grads, n, "grads");
    auto m = list(exp_avgs, n, "exp_avgs");
    auto v = list(exp_avg_sqs, n, "exp_avg_sqs");
    auto s = list(steps, n, "state_steps");
    TORCH_CHECK(n > 0, "fused AdamW: no parameters");
    c10::NoGradGuard no_grad;  // optimizer updates are not part of the graph
    const auto device = p[0].device();
    for (size_t i = 0; i < n; ++i) {
      TORCH_CHECK(p[i].is_floating_point(), "params[", i, "]: not floating point (", p[i].scalar_type(), ")");
      for (const auto* t : {&g[i], &m[i], &v[i]}) {
        TORCH_CHECK(t->device() == device && p[i].device() == device, "tensor ", i,
                    ": every tensor must be on ", device);
        TORCH_CHECK(t->scalar_type() == p[i].scalar_type(), "tensor ", i, ": dtype ",
                    t->scalar_type(), " where the parameter is ", p[i].scalar_type());
        TORCH_CHECK(t->sizes() == p[i].sizes(), "tensor ", i, ": shape ", t->sizes(),
                    " where the parameter is ", p[i].sizes());
        TORCH_CHECK(t->is_contiguous(), "tensor ", i, ": not contiguous");
      }
      TORCH_CHECK(p[i].is_contiguous(), "params[", i, "]: not contiguous");
      TORCH_CHECK(s[i].scalar_type() == at::kFloat && s[i].numel() == 1 && s[i].device() == device,
                  "state_steps[", i, "]: must be a float32 scalar on ", device);
    }
    std::optional<at::Tensor> scale;
    if (grad_scale != nullptr) {
      TORCH_CHECK(grad_scale->defined() && grad_scale->scalar_type() == at::kFloat &&
                      grad_scale->numel() == 1 && grad_scale->device() == device,
                  "grad_scale: must be a float32 scalar on ", device);
      scale = *grad_scale;
    }
    at::_foreach_add_(s, 1);
    at::_fused_adamw_(p, g, m, v, {}, s, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false, scale);
  });
}

// clip_grad_norm_(foreach=True)'s total norm: the 2-norm of the per-tensor 2-norms from
// at::_foreach_norm, as a new float32 scalar on the first tensor's device (no host sync).
char* petune_ext_total_norm(at::Tensor* const* tensors, size_t n, at::Tensor** out) {
  return guarded([&] {
    TORCH_CHECK(out != nullptr, "null output");
    *out = nullptr;
    auto t = list(tensors, n, "tensors");
    TORCH_CHECK(n > 0, "total norm of no tensors");
    const auto device = t[0].device();
    for (size_t i = 0; i < n; ++i) {
      TORCH_CHECK(t[i].is_floating_point(), "tensors[", i, "]: not floating point");
    }
    c10::NoGradGuard no_grad;
    auto norms = at::_foreach_norm(t, 2);
    for (auto& x : norms) {
      x = x.to(device, at::kFloat);
    }
    *out = new at::Tensor(at::linalg_vector_norm(at::stack(norms), 2));
  });
}

// In-place multiplication of every tensor by one scalar tensor (at::_foreach_mul_'s
// Tensor overload: the factor stays on the device, so clipping needs no host sync).
char* petune_ext_foreach_mul_tensor_(at::Tensor* const* tensors, size_t n, const at::Tensor* factor) {
  return guarded([&] {
    TORCH_CHECK(factor != nullptr && factor->defined(), "undefined factor");
    TORCH_CHECK(factor->numel() == 1, "factor must hold one value, not ", factor->numel());
    auto t = list(tensors, n, "tensors");
    if (n == 0) return;
    c10::NoGradGuard no_grad;
    at::_foreach_mul_(t, *factor);
  });
}

// Releases the gradients of `tensors` (their .grad becomes undefined), as
// `optimizer.zero_grad()` does by default in PyTorch (set_to_none=True): no pass that
// writes zeros over every gradient, and the next backward's AccumulateGrad takes the
// incoming gradient as it is instead of adding it to zeros. tch can only zero a gradient.
char* petune_ext_grads_to_none(at::Tensor* const* tensors, size_t n) {
  return guarded([&] {
    auto t = list(tensors, n, "tensors");
    for (auto& x : t) {
      x.mutable_grad().reset();
    }
  });
}

// In-place multiplication of every tensor by a number (loss-scale removal).
char* petune_ext_foreach_mul_scalar_(at::Tensor* const* tensors, size_t n, double factor) {
  return guarded([&] {
    auto t = list(tensors, n, "tensors");
    if (n == 0) return;
    c10::NoGradGuard no_grad;
    at::_foreach_mul_(t, factor);
  });
}

// Autocast for a device (0 = CPU, 1 = CUDA) with a chosen lower-precision dtype (0 = f16,
// 1 = bf16): tch can only switch CUDA autocast on, in float16. `prev_*` receive the state
// to restore with petune_ext_autocast_exit.
char* petune_ext_autocast_enter(int32_t device, int32_t dtype, bool* prev_enabled,
                                int32_t* prev_dtype) {
  return guarded([&] {
    TORCH_CHECK(prev_enabled != nullptr && prev_dtype != nullptr, "null output");
    const auto d = device_code(device);
    const auto t = dtype_code(dtype);
    TORCH_CHECK(t != at::kFloat, "autocast's lower-precision dtype cannot be float32");
    *prev_enabled = at::autocast::is_autocast_enabled(d);
    *prev_dtype = code_of(at::autocast::get_autocast_dtype(d));
    at::autocast::set_autocast_dtype(d, t);
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::increment_nesting();
  });
}

// Leaves an autocast region: the cast cache is cleared when the outermost region ends
// (as torch.autocast's __exit__), then the previous state is restored.
char* petune_ext_autocast_exit(int32_t device, bool prev_enabled, int32_t prev_dtype) {
  return guarded([&] {
    const auto d = device_code(device);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(d, prev_enabled);
    if (prev_dtype >= 0) {
      at::autocast::set_autocast_dtype(d, dtype_code(prev_dtype));
    }
  });
}

// Autocast's current state for a device: enabled, and its dtype code (-1 if not one of ours).
char* petune_ext_autocast_state(int32_t device, bool* enabled, int32_t* dtype) {
  return guarded([&] {
    TORCH_CHECK(enabled != nullptr && dtype != nullptr, "null output");
    const auto d = device_code(device);
    *enabled = at::autocast::is_autocast_enabled(d);
    *dtype = code_of(at::autocast::get_autocast_dtype(d));
  });
}

// TF32 for float32 matmuls on CUDA (torch.backends.cuda.matmul.allow_tf32).
char* petune_ext_set_allow_tf32_cublas(bool allow) {
  return guarded([&] { at::globalContext().setAllowTF32CuBLAS(allow); });
}

char* petune_ext_allow_tf32_cublas(bool* allow) {
  return guarded([&] {
    TORCH_CHECK(allow != nullptr, "null output");
    *allow = at::globalContext().allowTF32CuBLAS();
  });
}

// Returns the heap's free pages to the OS (glibc's malloc_trim): after a bfloat16 base is
// loaded, the float32 copies it was cast from are freed but stay in the process's heap
// (glibc keeps freed chunks below its mmap threshold), so the resident set would not
// show the saving. `released` = whether any memory went back; false off glibc.
char* petune_ext_release_free_heap(bool* released) {
  return guarded([&] {
    TORCH_CHECK(released != nullptr, "null output");
#if defined(__GLIBC__)
    *released = malloc_trim(0) == 1;
#else
    *released = false;
#endif
  });
}

}  // extern "C"
