//! Which deployments need a claim this round, for how much, and what to do with
//! the answer.

use super::{Seen, COUNTER_TTL_MS};
use crate::limiter::signed;
use crate::state::Deployment;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A block covers about this much demand.
const AHEAD_MS: u64 = 1_000;
/// A lease is refilled once less than this much demand is left.
const LOW_WATER_MS: u64 = 300;

/// One deployment's claim: what to ask for and what to report.
pub struct Claim {
    /// The minute it is for.
    minute: u64,
    /// Requests wanted (0: none).
    want_requests: u64,
    /// Tokens wanted (0: none).
    want_tokens: u64,
    /// Tokens used beyond claims or without Redis, now reported (may be negative).
    extra_tokens: i64,
    /// The deployment's limits (None: not limited).
    rpm: Option<u64>,
    tpm: Option<u64>,
}

impl Claim {
    /// The script's arguments, in its order.
    pub fn args(&self) -> [i64; 7] {
        let limit = |l: Option<u64>| l.map_or(-1, signed);
        [
            signed(self.want_requests),
            limit(self.rpm),
            0,
            signed(self.want_tokens),
            limit(self.tpm),
            self.extra_tokens,
            COUNTER_TTL_MS as i64,
        ]
    }

    /// Adds what was granted to the lease; marks a quota used up when Redis could
    /// grant nothing more, so requests are refused at once instead of waiting.
    pub fn apply(
        &self,
        d: &Deployment,
        [granted_req, used_req, granted_tok, used_tok]: [u64; 4],
        seen: &mut Seen,
    ) {
        let lease = &d.stats.lease;
        lease
            .granted_minute
            .store(self.minute + 1, Ordering::Release);
        lease.requests.add(self.minute, granted_req);
        lease.tokens.add(self.minute, granted_tok);
        seen.requests = used_req;
        seen.tokens = used_tok;
        let gone = |limit: Option<u64>, want: u64, granted: u64, used: u64| {
            limit.is_some_and(|l| used >= l || (want > 0 && granted == 0))
        };
        if gone(self.rpm, self.want_requests, granted_req, used_req) {
            lease
                .requests_exhausted
                .store(self.minute + 1, Ordering::Release);
        }
        if gone(self.tpm, self.want_tokens, granted_tok, used_tok) {
            lease
                .tokens_exhausted
                .store(self.minute + 1, Ordering::Release);
        }
    }
}

/// The claim `d` needs this round, if any. Demand is measured as a rate: what
/// was taken or turned away since the last claim, over the time since. A lease is
/// refilled before it runs dry, once less than `LOW_WATER` of demand is left (or
/// when requests wait on an empty one), with about `AHEAD` of demand, capped at a
/// fair share: half of what is left of the quota, divided among the replicas. So a
/// steady load claims about once per `AHEAD`, and the last units of a minute are
/// handed out in small blocks. Token blocks are the fair share (request sizes vary
/// too much to follow demand); a reported debt is a reason to claim too.
pub fn plan(d: &Deployment, minute: u64, replicas: u64, seen: &mut Seen) -> Option<Claim> {
    let (rpm, tpm) = (d.limits.rpm, d.limits.tpm);
    if rpm.is_none() && tpm.is_none() {
        return None;
    }
    let lease = &d.stats.lease;
    if seen.minute != minute {
        *seen = Seen {
            minute,
            requests: 0,
            tokens: 0,
            last_claim_ms: seen.last_claim_ms,
        };
    }
    let now = crate::clock::now_ms();
    let elapsed = now.saturating_sub(seen.last_claim_ms).clamp(50, 60_000);
    let wanted = lease.wanted.load(Ordering::Acquire);
    let taken_req = lease.taken_requests.load(Ordering::Acquire);
    let taken_tok = lease.taken_tokens.load(Ordering::Acquire);
    let denied = lease.denied.load(Ordering::Acquire);
    // Demand over a span of ms, at the rate seen since the last claim.
    let demand = |taken: u64, span: u64| (taken * span).div_ceil(elapsed);
    let left_req = lease.requests.get(minute);
    let left_tok = lease.tokens.get(minute);
    let need_req = rpm.is_some()
        && !lease.requests_gone(minute)
        && ((wanted && left_req == 0) || left_req < demand(taken_req + denied, LOW_WATER_MS));
    let need_tok = tpm.is_some()
        && !lease.tokens_gone(minute)
        && (wanted || left_tok < demand(taken_tok, LOW_WATER_MS));
    let unreported = lease.unreported_tokens.load(Ordering::Acquire) != 0;
    if !need_req && !need_tok && !unreported {
        return None;
    }
    let fair = |limit: u64, used: u64| limit.saturating_sub(used).div_ceil(2 * replicas).max(1);
    let want_requests = match rpm {
        Some(l) if need_req => fair(l, seen.requests).min(demand(taken_req + denied, AHEAD_MS) + 1),
        _ => 0,
    };
    let want_tokens = match tpm {
        Some(l) if need_tok => fair(l, seen.tokens),
        _ => 0,
    };
    seen.last_claim_ms = now;
    lease.denied.fetch_sub(denied, Ordering::AcqRel);
    lease.wanted.store(false, Ordering::Release);
    lease.taken_requests.fetch_sub(taken_req, Ordering::AcqRel);
    lease.taken_tokens.fetch_sub(taken_tok, Ordering::AcqRel);
    Some(Claim {
        minute,
        want_requests,
        want_tokens,
        extra_tokens: lease.unreported_tokens.swap(0, Ordering::AcqRel),
        rpm,
        tpm,
    })
}

/// Puts back what failed claims were to report, so the next round reports it.
pub fn undo(claims: &[(Arc<Deployment>, Claim)]) {
    for (d, c) in claims {
        let lease = &d.stats.lease;
        lease
            .unreported_tokens
            .fetch_add(c.extra_tokens, Ordering::AcqRel);
    }
}
