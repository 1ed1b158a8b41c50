//! `cost-based-routing`: the cheapest deployment by input + output cost per token.
//! A deployment whose cost is unknown is treated as the most expensive.

/// Position with the lowest cost per token; ties at random.
pub fn choose(n: usize, cost: impl Fn(usize) -> Option<f64>) -> Option<usize> {
    super::lowest(n, |p| cost(p).unwrap_or(f64::INFINITY))
}
