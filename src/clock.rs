//! Wall-clock time as the limiter sees it: Unix milliseconds, and calendar minutes
//! (UTC) numbered from the epoch. Everything time-dependent in the router takes
//! `now_ms` as an argument, so tests control time exactly.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds in one rate-limit window.
pub const MINUTE_MS: u64 = 60_000;

/// Redis's clock minus this machine's, in ms, so that replicas sharing limits
/// number their windows by one clock (0 without Redis).
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Now, in Unix milliseconds, on the shared clock.
pub fn now_ms() -> u64 {
    system_ms().saturating_add_signed(OFFSET_MS.load(Ordering::Relaxed))
}

/// Now on this machine's clock.
pub fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sets the shared clock's offset from this machine's.
pub fn set_offset(ms: i64) {
    OFFSET_MS.store(ms, Ordering::Relaxed);
}

/// The calendar minute (UTC) containing `ms`.
pub fn minute(ms: u64) -> u64 {
    ms / MINUTE_MS
}

/// Milliseconds from `ms` to the start of the next calendar minute (1 to 60,000).
pub fn until_next_minute(ms: u64) -> u64 {
    MINUTE_MS - ms % MINUTE_MS
}
