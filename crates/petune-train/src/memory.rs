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
