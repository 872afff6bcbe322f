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
