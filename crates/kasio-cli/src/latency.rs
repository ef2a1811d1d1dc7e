//! Latency percentiles and a histogram of them.

use std::time::Duration;

/// Latencies, sorted once for reading.
pub(crate) struct Latencies(Vec<Duration>);

impl Latencies {
    pub(crate) fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// The `p`-quantile (0.0..=1.0).
    pub(crate) fn at(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.0.len() - 1) as f64 * p).round() as usize;
        self.0[i.min(self.0.len() - 1)]
    }

    pub(crate) fn mean(&self) -> Duration {
        let n = u32::try_from(self.0.len()).unwrap_or(u32::MAX).max(1);
        self.0.iter().sum::<Duration>() / n
    }

    /// `p50 1.2 ms, p95 ..., p99 ..., p99.9 ..., max ...`.
    pub(crate) fn summary(&self) -> String {
        format!(
            "avg {}, p50 {}, p95 {}, p99 {}, p99.9 {}, max {}",
            ms(self.mean()),
            ms(self.at(0.5)),
            ms(self.at(0.95)),
            ms(self.at(0.99)),
            ms(self.at(0.999)),
            ms(self.at(1.0))
        )
    }

    /// One line per power-of-two bucket of milliseconds, with a bar of its share.
    pub(crate) fn histogram(&self) -> String {
        let mut buckets: Vec<(Duration, usize)> = Vec::new();
        let mut upper = Duration::from_micros(250);
        let mut i = 0;
        while i < self.0.len() {
            let n = self.0[i..].iter().take_while(|d| **d < upper).count();
            if n > 0 || !buckets.is_empty() {
                buckets.push((upper, n));
            }
            i += n;
            upper *= 2;
        }
        let total = self.0.len().max(1);
        let mut out = String::new();
        for (upper, n) in buckets {
            let bar = "#".repeat(n * 40 / total);
            out.push_str(&format!("  < {:>9}  {:>9}  {bar}\n", ms(upper), n));
        }
        out
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_buckets() {
        let l = Latencies::new((1..=100).map(Duration::from_millis).collect());
        assert_eq!(l.at(0.5), Duration::from_millis(51));
        assert_eq!(l.at(1.0), Duration::from_millis(100));
        let h = l.histogram();
        // 1 ms falls in the < 1.00 ms bucket? No: 1 ms is not below 1 ms, so < 2 ms.
        assert!(h.contains("<   2.00 ms          1"), "{h}");
        assert_eq!(
            h.lines()
                .map(|l| l
                    .split_whitespace()
                    .nth(3)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap())
                .sum::<usize>(),
            100
        );
    }
}
