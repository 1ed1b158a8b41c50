//! Wall-clock time as the limiter sees it: Unix milliseconds, and calendar minutes
//! (UTC) numbered from the epoch. Everything time-dependent in the router takes
//! `now_ms` as an argument, so tests control time exactly.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds in one rate-limit window.
pub const MINUTE_MS: u64 = 60_000;

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The calendar minute (UTC) containing `ms`.
pub fn minute(ms: u64) -> u64 {
    ms / MINUTE_MS
}

/// Milliseconds from `ms` to the start of the next calendar minute (1 to 60,000).
pub fn until_next_minute(ms: u64) -> u64 {
    MINUTE_MS - ms % MINUTE_MS
}
