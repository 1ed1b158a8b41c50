//! `usage-based-routing` and `-v2`: the deployment with the fewest tokens used this
//! minute. Deployments without room for the request were already filtered out by
//! the limiter (limits are always enforced under these strategies).

/// Position with the lowest token usage this minute; ties at random.
pub fn choose(n: usize, tokens_used: impl Fn(usize) -> u64) -> Option<usize> {
    super::lowest(n, tokens_used)
}
