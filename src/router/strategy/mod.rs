//! The routing strategies, one module each behind one function: given the usable
//! deployments of a group (already filtered for cooldowns, limits and order tier),
//! choose one. Choosing reads atomics only and never waits on another request.

mod cost;
mod latency;
mod least_busy;
mod shuffle;
mod usage;

use crate::config::Strategy;
use crate::state::Deployment;
use std::sync::Arc;

/// What a strategy may look at besides the candidates.
pub struct View<'a> {
    /// All deployments of the snapshot; candidates index into it.
    pub deployments: &'a [Arc<Deployment>],
    /// Now, in Unix ms.
    pub now_ms: u64,
    /// Whether the request streams (latency routing then uses time to first token).
    pub stream: bool,
    /// `routing_strategy_args.lowest_latency_buffer` (0: strict lowest).
    pub latency_buffer: f64,
}

/// Picks one of `candidates` (deployment indices, not empty) by `strategy`; returns
/// its position in `candidates`.
pub fn choose(strategy: Strategy, candidates: &[usize], view: &View) -> Option<usize> {
    if candidates.len() <= 1 {
        return candidates.len().checked_sub(1);
    }
    let dep = |pos: usize| &*view.deployments[candidates[pos]];
    match strategy {
        Strategy::SimpleShuffle => shuffle::choose(candidates.len(), |p| dep(p).weight),
        Strategy::LeastBusy => least_busy::choose(candidates.len(), |p| dep(p).stats.in_flight()),
        Strategy::UsageBasedRouting | Strategy::UsageBasedRoutingV2 => {
            usage::choose(candidates.len(), |p| dep(p).stats.tokens_used(view.now_ms))
        }
        Strategy::LatencyBasedRouting => {
            latency::choose(candidates.len(), view.latency_buffer, |p| {
                let s = &dep(p).stats;
                if view.stream {
                    s.ttft().or_else(|| s.latency())
                } else {
                    s.latency()
                }
            })
        }
        Strategy::CostBasedRouting => cost::choose(candidates.len(), |p| dep(p).cost_per_token),
    }
}

/// Position of the smallest key; ties broken uniformly at random without allocating
/// (reservoir sampling over the tied positions).
fn lowest<K: PartialOrd + Copy>(n: usize, key: impl Fn(usize) -> K) -> Option<usize> {
    let mut best: Option<(usize, K)> = None;
    let mut ties = 0u32;
    for p in 0..n {
        let k = key(p);
        match best {
            Some((_, b)) if k > b => {}
            Some((_, b)) if k == b => {
                ties += 1;
                if fastrand::u32(..ties) == 0 {
                    best = Some((p, k));
                }
            }
            _ => {
                best = Some((p, k));
                ties = 1;
            }
        }
    }
    best.map(|(p, _)| p)
}

#[cfg(test)]
mod tests;
