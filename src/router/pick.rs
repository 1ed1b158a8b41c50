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
    /// No member can take it until this replica's share is refilled from Redis,
    /// which is under way.
    Pending,
    /// The prompt is larger than every member's `max_input_tokens`.
    ContextWindow,
}

/// Deployment indexes: on the stack for groups of up to 16, so a pick allocates nothing.
pub type Members = smallvec::SmallVec<[usize; 16]>;

/// Picks and admits a deployment of `group`, avoiding `tried` while others remain.
pub fn pick(snap: &Snapshot, group: &Group, tried: &[usize], need: &Need, now_ms: u64) -> Pick {
    let mut refused = Members::new();
    loop {
        let (tier, fresh, until_ms) = match usable_tier(snap, group, tried, &refused, need, now_ms)
        {
            Ok(t) => t,
            Err(p) => return p,
        };
        let view = View {
            deployments: &snap.deployments,
            now_ms,
            stream: need.stream,
            latency_buffer: snap.settings.latency_buffer,
        };
        let Some(pos) = strategy::choose(snap.settings.strategy, &tier, &view) else {
            return Pick::Unavailable { until_ms };
        };
        let chosen = tier[pos];
        let d = &snap.deployments[chosen];
        match d.stats.try_admit(
            &d.limits,
            snap.settings.enforce_limits,
            need.reserve_tokens,
            now_ms,
        ) {
            Ok(reservation) => {
                return Pick::Admitted {
                    deployment: chosen,
                    reservation,
                    fresh,
                }
            }
            // Another request took the last room since the check: choose again without it.
            Err(Refusal::Pending) if tier.len() == 1 => return Pick::Pending,
            Err(_) => refused.push(chosen),
        }
    }
}

/// One pass over the members: the usable ones of the lowest `order` tier, untried
/// ones if any (`fresh`), and the earliest time a refused one may become usable.
fn usable_tier(
    snap: &Snapshot,
    group: &Group,
    tried: &[usize],
    refused: &[usize],
    need: &Need,
    now_ms: u64,
) -> Result<(Members, bool, u64), Pick> {
    let s = &snap.settings;
    let mut until_ms = u64::MAX;
    let mut pending = false;
    let mut fits_any = false;
    let mut fresh: (u32, Members) = (u32::MAX, Members::new());
    let mut retried: (u32, Members) = (u32::MAX, Members::new());
    for &i in &group.members {
        let d = &snap.deployments[i];
        if d.max_input_tokens
            .is_some_and(|max| need.prompt_tokens > max)
        {
            continue;
        }
        fits_any = true;
        if refused.contains(&i) {
            continue;
        }
        if let Err(r) = d
            .stats
            .check(&d.limits, s.enforce_limits, need.reserve_tokens, now_ms)
        {
            pending |= r == Refusal::Pending;
            until_ms = until_ms.min(r.until_ms(now_ms));
            continue;
        }
        let tier = if tried.contains(&i) {
            &mut retried
        } else {
            &mut fresh
        };
        if d.order < tier.0 {
            tier.0 = d.order;
            tier.1.clear();
        }
        if d.order == tier.0 {
            tier.1.push(i);
        }
    }
    if !fits_any {
        return Err(Pick::ContextWindow);
    }
    if !fresh.1.is_empty() {
        Ok((fresh.1, true, until_ms))
    } else if !retried.1.is_empty() {
        Ok((retried.1, false, until_ms))
    } else if pending {
        Err(Pick::Pending)
    } else {
        Err(Pick::Unavailable { until_ms })
    }
}
