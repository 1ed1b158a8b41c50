//! A latency histogram with fixed buckets: one atomic counter per bucket and one
//! for the sum, so observing is two relaxed atomic adds and never a lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in seconds, LiteLLM's latency buckets, so dashboards built on its
/// `le` values keep working. `+Inf` is the extra last counter.
pub const BOUNDS: [f64; 35] = [
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0,
    240.0, 300.0,
];

/// Observations per bucket (not cumulative) and their sum.
#[derive(Debug)]
pub struct Histogram {
    /// `counts[i]`: observations in `(BOUNDS[i-1], BOUNDS[i]]`; the last one is `+Inf`.
    counts: [AtomicU64; BOUNDS.len() + 1],
    /// Sum of all observations in microseconds (whole seconds would lose the
    /// overhead latency, which is well under a millisecond).
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: super::zeros(),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BOUNDS.partition_point(|b| *b < secs);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Writes `name_bucket`, `name_sum` and `name_count` lines for one label set
    /// (`labels` is empty or ends without a comma: `a="1",b="2"`).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = BOUNDS.get(i).map_or("+Inf".to_string(), |b| le(*b));
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// A bound as Python's client writes it (`1.0`, `0.005`), so `le` label values are
/// the same as LiteLLM's.
fn le(b: f64) -> String {
    if b.fract() == 0.0 {
        format!("{b:.1}")
    } else {
        b.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_inclusive_and_cumulative_when_rendered() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(5)); // exactly the first bound
        h.observe(Duration::from_micros(5_001)); // just above it
        h.observe(Duration::from_secs(1000)); // beyond the last bound
        assert_eq!(h.count(), 3);
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"1\"");
        assert!(out.contains("x_bucket{a=\"1\",le=\"0.005\"} 1\n"), "{out}");
        assert!(
            out.contains("x_bucket{a=\"1\",le=\"0.00625\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{a=\"1\",le=\"300.0\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"1\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{a=\"1\"} 1000.010001\n"), "{out}");
        assert!(out.contains("x_count{a=\"1\"} 3\n"), "{out}");
    }
}
