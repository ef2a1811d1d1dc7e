//! Benchmarks live in `benches/` and `src/bin/`; what the binaries share is here.

/// The process's user and system CPU time so far, in seconds (10 ms ticks).
pub fn cpu_seconds() -> f64 {
    // utime and stime, in clock ticks, are fields 14 and 15 of /proc/self/stat.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}
