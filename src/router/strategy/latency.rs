//! `latency-based-routing`: the deployment with the lowest smoothed latency (per
//! output token; time to first token for streams). Deployments with no data yet are
//! tried first, so every deployment gets measured. With `lowest_latency_buffer` b,
//! any deployment within (1 + b) times the lowest is equally likely.

use smallvec::SmallVec;

/// Position chosen by latency; `latency(p)` is None before the first sample.
pub fn choose(n: usize, buffer: f64, latency: impl Fn(usize) -> Option<f64>) -> Option<usize> {
    // Each latency is read once: other requests update them meanwhile, and a second
    // reading could leave no deployment within the buffer that the first one found.
    let keys: SmallVec<[f64; 16]> = (0..n).map(|p| latency(p).unwrap_or(0.0)).collect();
    let key = |p: usize| keys[p];
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn each_latency_is_read_once_while_others_change_them() {
        // Deployment 0 reads 1.0 the first time and 5.0 after that, as if a slow
        // answer had just been counted: a pick that read it again could find no
        // deployment within the buffer of the best it had found.
        let reads = [Cell::new(0), Cell::new(0)];
        let latency = |p: usize| {
            reads[p].set(reads[p].get() + 1);
            Some(match (p, reads[p].get()) {
                (0, 1) => 1.0,
                (0, _) => 5.0,
                _ => 2.0,
            })
        };
        assert_eq!(choose(2, 0.1, latency), Some(0));
        assert_eq!([reads[0].get(), reads[1].get()], [1, 1]);
    }

    #[test]
    fn the_buffer_spreads_picks_over_close_latencies() {
        let lat = [Some(1.0), Some(1.05), Some(2.0), None];
        let mut seen = [0; 4];
        for _ in 0..1000 {
            seen[choose(3, 0.1, |p| lat[p]).unwrap()] += 1;
        }
        assert!(seen[0] > 0 && seen[1] > 0 && seen[2] == 0, "{seen:?}");
        // A deployment with no sample yet goes first.
        assert_eq!(choose(4, 0.1, |p| lat[p]), Some(3));
    }
}
