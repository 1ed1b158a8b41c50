//! `least-busy`: the deployment with the fewest calls in flight.

/// Position with the fewest in-flight calls; ties at random.
pub fn choose(n: usize, in_flight: impl Fn(usize) -> u32) -> Option<usize> {
    super::lowest(n, in_flight)
}
