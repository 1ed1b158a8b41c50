//! A replica's share of a deployment's quota for one minute, claimed from Redis in
//! blocks (see `redis`). Requests take from it with one compare-and-swap, so the
//! request path never waits on Redis while the lease has budget. Budgets are packed
//! with their minute in one word: a budget from a past minute reads as empty.

use super::window::{count_in, pack};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

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
