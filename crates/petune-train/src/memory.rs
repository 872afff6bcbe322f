//! Process memory figures from /proc (Linux): current and peak resident set size.
//! On other systems they read as 0.

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

/// Current resident set size in MiB.
pub fn rss_mib() -> f64 {
    status_kb("VmRSS:") as f64 / 1024.0
}

/// Peak resident set size of the process so far, in MiB.
pub fn peak_rss_mib() -> f64 {
    status_kb("VmHWM:") as f64 / 1024.0
}

/// GPU memory in use on the current CUDA device, MiB (`cudaMemGetInfo`: total − free,
/// so the CUDA context and every process's allocations count). `None` when the CUDA
/// runtime is not loaded or answers with an error. Call it only once CUDA is in use: on
/// a machine without a GPU it would only return `None`, after a failed CUDA start.
pub fn cuda_used_mib() -> Option<f64> {
    #[cfg(unix)]
    {
        type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> i32;
        // SAFETY: the symbol, when the CUDA runtime is loaded (libtorch links it), is
        // `cudaError_t cudaMemGetInfo(size_t* free, size_t* total)`; both pointers are
        // to live locals and the call only writes them.
        unsafe {
            let sym = libc::dlsym(libc::RTLD_DEFAULT, c"cudaMemGetInfo".as_ptr());
            if sym.is_null() {
                return None;
            }
            let mem_get_info: MemGetInfo =
                std::mem::transmute::<*mut libc::c_void, MemGetInfo>(sym);
            let (mut free, mut total) = (0usize, 0usize);
            if mem_get_info(&mut free, &mut total) != 0 {
                return None;
            }
            Some(total.saturating_sub(free) as f64 / (1024.0 * 1024.0))
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Resets the peak-RSS counter to the current RSS (Linux `clear_refs` value 5), so a
/// later [`peak_rss_mib`] measures one phase (training) and not an earlier one (model
/// loading). Returns whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// Tunes glibc's allocator for training loops (docs/benchmarks.md): a fixed mmap
/// threshold of 32 MiB (glibc's maximum) instead of the dynamic one, and no trimming of
/// the heap top, so the same large activation and gradient buffers are reused step
/// after step instead of being unmapped and page-faulted back in. Measured on MiniLM
/// training steps (docs/benchmarks.md): 2–7 % faster per step, the same peak memory.
/// A process-wide setting: the `petune` CLI and the examples call it at start; library
/// users may. Returns whether glibc accepted every parameter (false on other platforms).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only sets allocator parameters; it is thread-safe in glibc
        // and has no memory-safety preconditions.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TOP_PAD, 64 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
