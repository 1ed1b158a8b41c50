//! A counter for one calendar minute in one atomic word: the minute's number in the
//! high bits, the count in the low bits. A new minute resets the count in the same
//! compare-and-swap that adds to it, so admission is one atomic decision: under any
//! concurrency the count never passes the limit, and the limit-th unit is admitted.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits for the count: up to about 1.1e12 per minute.
const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// The minute number is kept modulo 2^24 (about 31 years of minutes).
const MINUTE_MASK: u64 = (1 << (64 - COUNT_BITS)) - 1;

/// Units counted in the current calendar minute.
#[derive(Debug, Default)]
pub struct Window(AtomicU64);

/// One word holding a minute number and a count.
pub(super) fn pack(minute: u64, count: u64) -> u64 {
    ((minute & MINUTE_MASK) << COUNT_BITS) | count.min(COUNT_MASK)
}

/// The count in `word` if it belongs to `minute`, else 0.
pub(super) fn count_in(word: u64, minute: u64) -> u64 {
    if word >> COUNT_BITS == minute & MINUTE_MASK {
        word & COUNT_MASK
    } else {
        0
    }
}

impl Window {
    /// The count for `minute` (0 if the stored count belongs to another minute).
    pub fn get(&self, minute: u64) -> u64 {
        count_in(self.0.load(Ordering::Acquire), minute)
    }

    /// Adds `n` if the count stays within `limit`; true if added.
    pub fn try_add(&self, minute: u64, n: u64, limit: u64) -> bool {
        self.update(minute, |c| c.checked_add(n).filter(|&sum| sum <= limit))
    }

    /// Adds `n` unconditionally.
    pub fn add(&self, minute: u64, n: u64) {
        self.update(minute, |c| Some(c.saturating_add(n)));
    }

    /// Takes back `n` counted in `minute`; nothing if that minute is over.
    pub fn sub(&self, minute: u64, n: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w >> COUNT_BITS == minute & MINUTE_MASK)
                    .then(|| pack(minute, count_in(w, minute).saturating_sub(n)))
            });
    }

    /// Applies `f` to the current minute's count in one compare-and-swap loop.
    fn update(&self, minute: u64, f: impl Fn(u64) -> Option<u64>) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                f(count_in(w, minute)).map(|c| pack(minute, c))
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn an_amount_past_u64_max_is_never_added() {
        let w = Window::default();
        assert!(w.try_add(10, 30, 100));
        // 30 + u64::MAX wraps to 29, under the limit: it must be refused instead.
        assert!(!w.try_add(10, u64::MAX, 100));
        assert_eq!(w.get(10), 30);
    }

    #[test]
    fn a_new_minute_starts_from_zero() {
        let w = Window::default();
        assert!(w.try_add(10, 3, 3));
        assert!(!w.try_add(10, 1, 3));
        assert_eq!(w.get(10), 3);
        assert_eq!(w.get(11), 0);
        assert!(w.try_add(11, 1, 3));
        assert_eq!(w.get(11), 1);
        assert_eq!(w.get(10), 0);
        w.sub(10, 1); // a past minute: no effect
        assert_eq!(w.get(11), 1);
        w.sub(11, 5);
        assert_eq!(w.get(11), 0);
    }

    #[test]
    fn concurrent_admission_reaches_the_limit_and_never_passes_it() {
        for limit in [1u64, 7, 100, 1000] {
            let w = Arc::new(Window::default());
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let w = w.clone();
                    std::thread::spawn(move || (0..500).filter(|_| w.try_add(5, 1, limit)).count())
                })
                .collect();
            let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(admitted as u64, limit.min(4000));
            assert_eq!(w.get(5), limit.min(4000));
        }
    }
}
