//! The `rpm` limiter: a fixed window per calendar minute, shared by all
//! clients, exact under concurrency (a single compare-and-swap word).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts admitted requests per minute in one atomic word:
/// the minute number in the high 32 bits, the count in the low 32 bits.
#[derive(Debug)]
pub(crate) struct RpmLimiter {
    limit: u64,
    state: AtomicU64,
}

const LOW: u64 = 0xFFFF_FFFF;

impl RpmLimiter {
    /// A limiter admitting `limit` requests per minute (capped at `u32::MAX`).
    pub(crate) fn new(limit: u64) -> Self {
        RpmLimiter {
            limit: limit.min(LOW),
            state: AtomicU64::new(0),
        }
    }

    /// Admits one request in minute `minute` (minutes since the Unix epoch)
    /// if fewer than `limit` were admitted in that minute. A caller with a
    /// stale minute (it read the clock just before the window moved) counts
    /// against the newest window, so a window is never reopened.
    pub(crate) fn try_acquire(&self, minute: u64) -> bool {
        let minute = minute & LOW;
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let (window, count) = (cur >> 32, cur & LOW);
            let new = if minute > window {
                if self.limit == 0 {
                    return false;
                }
                (minute << 32) | 1
            } else if count >= self.limit {
                return false;
            } else {
                cur + 1
            };
            match self
                .state
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn window_resets_each_minute() {
        let l = RpmLimiter::new(2);
        assert!(l.try_acquire(10));
        assert!(l.try_acquire(10));
        assert!(!l.try_acquire(10));
        assert!(
            !l.try_acquire(9),
            "a stale minute must not reopen the window"
        );
        assert!(l.try_acquire(11));
        assert!(!RpmLimiter::new(0).try_acquire(10));
    }

    #[test]
    fn exact_under_concurrency() {
        let l = Arc::new(RpmLimiter::new(500));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || (0..1000).filter(|_| l.try_acquire(7)).count())
            })
            .collect();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(admitted, 500);
    }
}
