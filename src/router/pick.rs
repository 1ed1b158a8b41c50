//! Choosing and admitting one deployment of a group for one attempt.
//!
//! 1. Candidates: members that fit the request's context window.
//! 2. Usable: not cooling down, and (when limits apply) with room for one more
//!    request and the estimated tokens, and under `max_parallel_requests`. Among
//!    those, the ones this request has not tried yet, if any.
//! 3. Only the lowest `order` tier among the usable ones.
//! 4. The group's strategy chooses; admission reserves atomically. If another
//!    request took the last room meanwhile, that deployment drops out and we choose again.

use super::strategy::{self, View};
use super::Group;
use crate::limiter::{Refusal, Reservation};
use crate::state::Snapshot;

/// What the request needs from a deployment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Need {
    /// Estimated prompt tokens (for the context-window check).
    pub prompt_tokens: u64,
    /// Tokens to reserve against tpm: prompt estimate plus `max_tokens`.
    pub reserve_tokens: u64,
    /// Whether the request streams.
    pub stream: bool,
}

/// The outcome of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Admitted on this deployment; `fresh` if this request had not tried it yet.
    Admitted {
        deployment: usize,
        reservation: Reservation,
        fresh: bool,
    },
    /// No member can take the request now; one may at `until_ms`.
    Unavailable { until_ms: u64 },
    /// The prompt is larger than every member's `max_input_tokens`.
    ContextWindow,
}

/// Picks and admits a deployment of `group`, avoiding `tried` while others remain.
pub fn pick(snap: &Snapshot, group: &Group, tried: &[usize], need: &Need, now_ms: u64) -> Pick {
    let deps = &snap.deployments;
    let fits = |i: &usize| {
        deps[*i]
            .max_input_tokens
            .is_none_or(|max| need.prompt_tokens <= max)
    };
    let mut candidates: Vec<usize> = group.members.iter().copied().filter(fits).collect();
    if candidates.is_empty() {
        return Pick::ContextWindow;
    }
    let s = &snap.settings;
    let mut until_ms = u64::MAX;
    let mut refused = |r: Refusal| until_ms = until_ms.min(r.until_ms(now_ms));
    // Drop what is visibly unusable before choosing, so strategies see real options.
    candidates.retain(|&i| {
        let d = &deps[i];
        match d
            .stats
            .check(&d.limits, s.enforce_limits, need.reserve_tokens, now_ms)
        {
            Ok(()) => true,
            Err(r) => {
                refused(r);
                false
            }
        }
    });
    let fresh = candidates.iter().any(|i| !tried.contains(i));
    if fresh {
        candidates.retain(|i| !tried.contains(i));
    }
    let view = View {
        deployments: deps,
        now_ms,
        stream: need.stream,
        latency_buffer: s.latency_buffer,
    };
    while !candidates.is_empty() {
        let best_order = candidates.iter().map(|&i| deps[i].order).min().unwrap_or(0);
        let tier: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| deps[i].order == best_order)
            .collect();
        let Some(pos) = strategy::choose(s.strategy, &tier, &view) else {
            break;
        };
        let chosen = tier[pos];
        let d = &deps[chosen];
        match d
            .stats
            .try_admit(&d.limits, s.enforce_limits, need.reserve_tokens, now_ms)
        {
            Ok(reservation) => {
                return Pick::Admitted {
                    deployment: chosen,
                    reservation,
                    fresh,
                }
            }
            Err(r) => {
                refused(r);
                candidates.retain(|&i| i != chosen);
            }
        }
    }
    Pick::Unavailable { until_ms }
}
