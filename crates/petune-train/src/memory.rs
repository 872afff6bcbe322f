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
