//! `simple-shuffle`: weighted random. Weights are computed per group at config load
//! with LiteLLM's precedence (see `crate::router::weights`).

/// A position with probability proportional to its weight; equal odds when all
/// weights are zero.
pub fn choose(n: usize, weight: impl Fn(usize) -> f64) -> Option<usize> {
    let total: f64 = (0..n).map(&weight).sum();
    if total <= 0.0 {
        return (n > 0).then(|| fastrand::usize(..n));
    }
    let mut x = fastrand::f64() * total;
    let mut last = None;
    for p in (0..n).filter(|&p| weight(p) > 0.0) {
        last = Some(p);
        x -= weight(p);
        if x < 0.0 {
            return Some(p);
        }
    }
    last
}
