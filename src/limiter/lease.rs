//! A replica's share of a deployment's quota for one minute, claimed from Redis in
//! blocks (see `redis`). Requests take from it with one compare-and-swap, so the
//! request path never waits on Redis while the lease has budget. Budgets are packed
//! with their minute in one word: a budget from a past minute reads as empty.

use super::shared::{Link, Mode, SyncState};
use super::window::{count_in, pack};
use super::{DeploymentStats, Limits, Refusal};
use crate::clock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Units left to hand out in one minute.
#[derive(Debug, Default)]
pub struct Budget(AtomicU64);

impl Budget {
    /// Takes `n` units of `minute`'s budget if that many are left.
    pub fn try_take(&self, minute: u64, n: u64) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                let left = count_in(w, minute);
                (left >= n).then(|| pack(minute, left - n))
            })
            .is_ok()
    }

    /// Takes up to `n` units of `minute`'s budget; returns how many were taken.
    pub fn take_up_to(&self, minute: u64, n: u64) -> u64 {
        let mut taken = 0;
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                let left = count_in(w, minute);
                taken = left.min(n);
                Some(pack(minute, left - taken))
            });
        taken
    }

    /// Adds `n` units to `minute`'s budget (a new minute replaces an old one's).
    pub fn add(&self, minute: u64, n: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                Some(pack(minute, count_in(w, minute).saturating_add(n)))
            });
    }

    /// Units left in `minute`.
    pub fn get(&self, minute: u64) -> u64 {
        count_in(self.0.load(Ordering::Acquire), minute)
    }
}

/// The shared-quota state of one deployment on this replica.
#[derive(Debug, Default)]
pub struct Lease {
    /// Requests this replica may still admit this minute.
    pub requests: Budget,
    /// Tokens this replica may still reserve this minute.
    pub tokens: Budget,
    /// The minute in which Redis reported the rpm fully granted (+1; 0: never).
    pub requests_exhausted: AtomicU64,
    /// The minute in which Redis reported the tpm fully granted (+1; 0: never).
    pub tokens_exhausted: AtomicU64,
    /// Tokens used beyond what was claimed (settlement overage), not yet counted in
    /// Redis.
    pub unreported_tokens: AtomicI64,
    /// Requests taken from the budget since the last claim: the demand that sizes
    /// the next block.
    pub taken_requests: AtomicU64,
    /// Tokens taken since the last claim.
    pub taken_tokens: AtomicU64,
    /// The minute (+1) of the last grant from Redis: while Redis is away in that
    /// minute, this replica spends only what it was granted.
    pub granted_minute: AtomicU64,
    /// Requests that found the budget empty and asked for a refill.
    pub wanted: AtomicBool,
    /// How many requests found it empty since the last claim: demand too.
    pub denied: AtomicU64,
}

impl Lease {
    /// Whether Redis said the rpm of `minute` is all granted.
    pub fn requests_gone(&self, minute: u64) -> bool {
        self.requests_exhausted.load(Ordering::Acquire) == minute + 1
    }

    /// Whether Redis said the tpm of `minute` is all granted.
    pub fn tokens_gone(&self, minute: u64) -> bool {
        self.tokens_exhausted.load(Ordering::Acquire) == minute + 1
    }
}

/// The parts of admission that involve the shared (Redis) lease.
impl DeploymentStats {
    /// Links this deployment to the shared limits (once; later calls are ignored).
    pub fn link(&self, sync: &Arc<SyncState>, id: &str) {
        let _ = self.link.set(Link {
            sync: sync.clone(),
            id: id.into(),
        });
    }

    /// The link when this deployment's lease decides admission right now: while
    /// Redis is reachable, and while it is away in a minute this replica was granted
    /// quota (then only what was granted is spent: anything more could pass the
    /// limit, since the other replicas' grants are unknown).
    pub(super) fn shared(&self, limits: &Limits, minute: u64) -> Option<&Link> {
        let link = self.link.get()?;
        if limits.rpm.is_none() && limits.tpm.is_none() {
            return None;
        }
        match link.sync.mode() {
            Mode::Shared => Some(link),
            Mode::LocalFallback
                if self.lease.granted_minute.load(Ordering::Acquire) == minute + 1 =>
            {
                Some(link)
            }
            _ => None,
        }
    }

    /// The limits this replica applies to its own counters: the whole limit without
    /// Redis, its share (limit / replicas last seen) in a minute Redis is away and
    /// granted nothing, and none while the lease decides.
    pub(super) fn local_limits(&self, limits: &Limits, minute: u64) -> (Option<u64>, Option<u64>) {
        if self.shared(limits, minute).is_some() {
            return (None, None);
        }
        match self.link.get().map(|l| (l.sync.mode(), l.sync.replicas())) {
            Some((Mode::LocalFallback, n)) => {
                (limits.rpm.map(|v| v / n), limits.tpm.map(|v| v / n))
            }
            _ => (limits.rpm, limits.tpm),
        }
    }

    /// An empty lease: a refill is coming while Redis is reachable (`Pending`);
    /// otherwise, or when Redis said the quota is all granted, the minute is over
    /// for this deployment here.
    pub(super) fn empty(&self, link: &Link, gone: bool, refusal: Refusal) -> Refusal {
        if gone || link.sync.mode() != Mode::Shared {
            refusal
        } else {
            self.want(link)
        }
    }

    /// Asks the sync task for a refill; the request may wait for it.
    pub(super) fn want(&self, link: &Link) -> Refusal {
        self.lease.wanted.store(true, Ordering::Release);
        self.lease.denied.fetch_add(1, Ordering::AcqRel);
        link.sync.wake.notify_one();
        Refusal::Pending
    }

    /// Takes one request and `tokens` from this replica's lease, or says why not.
    pub(super) fn take_lease(
        &self,
        link: &Link,
        limits: &Limits,
        minute: u64,
        tokens: u64,
        window_end: u64,
    ) -> Result<(), Refusal> {
        let lease = &self.lease;
        let until_ms = window_end;
        if limits.rpm.is_some() {
            if !lease.requests.try_take(minute, 1) {
                let gone = lease.requests_gone(minute);
                return Err(self.empty(link, gone, Refusal::Rpm { until_ms }));
            }
            lease.taken_requests.fetch_add(1, Ordering::AcqRel);
        }
        if limits.tpm.is_some() && tokens > 0 {
            if !lease.tokens.try_take(minute, tokens) {
                if limits.rpm.is_some() {
                    lease.requests.add(minute, 1);
                }
                let gone = lease.tokens_gone(minute);
                return Err(self.empty(link, gone, Refusal::Tpm { until_ms }));
            }
            lease.taken_tokens.fetch_add(tokens, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Moves `delta` tokens (positive: used beyond the reservation) into the shared
    /// accounting: from the lease while it has them, else as a debt reported to Redis.
    pub(super) fn settle_shared(&self, minute: u64, delta: i64) {
        let Some(link) = self.link.get() else { return };
        let lease = &self.lease;
        if link.sync.mode() != Mode::Shared {
            // Redis is away: the minute finishes on local counts, which have it.
            return;
        }
        if delta > 0 {
            let owed = delta as u64 - lease.tokens.take_up_to(minute, delta as u64);
            lease
                .unreported_tokens
                .fetch_add(owed as i64, Ordering::AcqRel);
        } else if minute == clock::minute(clock::now_ms()) {
            lease.tokens.add(minute, delta.unsigned_abs());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_belongs_to_its_minute() {
        let b = Budget::default();
        assert!(!b.try_take(5, 1));
        b.add(5, 3);
        assert!(b.try_take(5, 2));
        assert!(!b.try_take(5, 2));
        assert_eq!(b.take_up_to(5, 4), 1);
        b.add(5, 2);
        // The next minute starts empty; what was left of the last one is gone.
        assert_eq!(b.get(6), 0);
        b.add(6, 1);
        assert_eq!(b.get(6), 1);
        assert_eq!(b.get(5), 0);
    }
}
