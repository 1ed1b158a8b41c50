//! `latency-based-routing`: the deployment with the lowest smoothed latency (per
//! output token; time to first token for streams). Deployments with no data yet are
//! tried first, so every deployment gets measured. With `lowest_latency_buffer` b,
//! any deployment within (1 + b) times the lowest is equally likely.

/// Position chosen by latency; `latency(p)` is None before the first sample.
pub fn choose(n: usize, buffer: f64, latency: impl Fn(usize) -> Option<f64>) -> Option<usize> {
    let key = |p: usize| latency(p).unwrap_or(0.0);
    let best = key(super::lowest(n, key)?);
    if buffer <= 0.0 || best == 0.0 {
        return super::lowest(n, key);
    }
    let limit = best * (1.0 + buffer);
    let within = (0..n).filter(|&p| key(p) <= limit).count();
    (0..n)
        .filter(|&p| key(p) <= limit)
        .nth(fastrand::usize(..within))
}
