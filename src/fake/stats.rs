//! Counters a test or benchmark reads to see what the fake server did.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of a fake server, updated atomically by every connection.
#[derive(Debug, Default)]
pub struct FakeStats {
    /// Every request received, whatever its answer.
    pub(crate) requests: AtomicU64,
    /// Requests answered with a 2xx status.
    pub(crate) ok: AtomicU64,
    /// Requests refused with 429 by the `rpm` limit.
    pub(crate) rate_limited: AtomicU64,
    /// Requests answered with the injected error (`error_rate`).
    pub(crate) errors: AtomicU64,
    /// Requests whose response is not fully sent yet.
    pub(crate) in_flight: AtomicU64,
    /// Highest value `in_flight` reached.
    pub(crate) max_in_flight: AtomicU64,
    /// TCP connections accepted.
    pub(crate) connections: AtomicU64,
}

impl FakeStats {
    /// Every request received, whatever its answer.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests answered with a 2xx status (`/health` included).
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Requests refused with 429 by the `rpm` limit.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Requests answered with the injected error status.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Requests being handled now, counted until their body is fully sent.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Highest number of requests that were in flight at once.
    pub fn max_in_flight(&self) -> u64 {
        self.max_in_flight.load(Ordering::Relaxed)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn enter(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Display for FakeStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests={} ok={} rate_limited={} errors={} in_flight={} max_in_flight={} connections={}",
            self.requests(),
            self.ok(),
            self.rate_limited(),
            self.errors(),
            self.in_flight(),
            self.max_in_flight(),
            self.connections()
        )
    }
}
