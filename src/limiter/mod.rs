//! Per-deployment live state: requests in flight, this minute's request and token
//! counts, failures, cooldown, latency. Atomics only, so recording and admission
//! never take a lock, and kept by deployment id so a reload keeps them.
//!
//! Admission is a reservation: the request slot and the estimated tokens are taken
//! in atomic steps that never let a count pass its limit, and given back or settled
//! to the real usage when the call ends.

pub mod health;
pub mod lease;
pub mod redis;
pub mod shared;
pub mod window;

use crate::clock;
use health::{CooldownPolicy, Failure, Health};
use lease::Lease;
use shared::Link;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use window::Window;

/// The limits one deployment is held to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per calendar minute (only when limits are enforced).
    pub rpm: Option<u64>,
    /// Tokens per calendar minute (only when limits are enforced).
    pub tpm: Option<u64>,
    /// Concurrent requests, always enforced when set.
    pub max_parallel: Option<u32>,
}

/// Why a deployment cannot take a request now, and when it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Cooling down until this Unix ms.
    Cooldown { until_ms: u64 },
    /// This minute's requests are used up.
    Rpm { until_ms: u64 },
    /// This minute's tokens are used up (for this request's estimate).
    Tpm { until_ms: u64 },
    /// `max_parallel_requests` calls are in flight.
    Busy,
    /// This replica's lease is empty but the shared quota may have room: a refill
    /// from Redis is on its way.
    Pending,
}

impl Refusal {
    /// When the deployment may be usable again (`now_ms` for `Busy`: any moment).
    pub fn until_ms(self, now_ms: u64) -> u64 {
        match self {
            Refusal::Cooldown { until_ms }
            | Refusal::Rpm { until_ms }
            | Refusal::Tpm { until_ms } => until_ms,
            Refusal::Busy | Refusal::Pending => now_ms,
        }
    }
}

/// What one admitted call holds until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The calendar minute the request and tokens were counted in.
    pub minute: u64,
    /// Tokens reserved (estimate), to be settled to the real usage.
    pub tokens: u64,
    /// The tokens came from the shared (Redis) lease, so settling goes there too.
    pub shared_tokens: bool,
}

/// Live state of one deployment.
#[derive(Debug, Default)]
pub struct DeploymentStats {
    /// Calls admitted and not yet finished (response body included).
    in_flight: AtomicU32,
    /// Requests admitted this minute.
    requests: Window,
    /// Tokens reserved or used this minute.
    tokens: Window,
    /// Failures, successes and cooldown.
    pub health: Health,
    /// Smoothed seconds per output token (or per call when no tokens are known), as f64 bits; 0 = no data.
    latency: AtomicU64,
    /// Smoothed seconds to the first streamed event, as f64 bits; 0 = no data.
    ttft: AtomicU64,
    /// This replica's share of the quota when limits are shared through Redis.
    pub lease: Lease,
    /// The link to the shared state; unset without Redis.
    link: OnceLock<Link>,
}

/// Weight of a new latency sample in the moving average.
const EWMA_ALPHA: f64 = 0.2;

impl DeploymentStats {
    /// Reserves one request and `tokens` estimated tokens, or says why not.
    /// `enforce` says whether rpm/tpm apply (pre-call checks on, or a usage strategy).
    pub fn try_admit(
        &self,
        limits: &Limits,
        enforce: bool,
        tokens: u64,
        now_ms: u64,
    ) -> Result<Reservation, Refusal> {
        if let Some(until_ms) = self.health.cooling_until(now_ms) {
            return Err(Refusal::Cooldown { until_ms });
        }
        let minute = clock::minute(now_ms);
        let window_end = now_ms + clock::until_next_minute(now_ms);
        if let Some(max) = limits.max_parallel {
            let taken = self
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                });
            if taken.is_err() {
                return Err(Refusal::Busy);
            }
        } else {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        let shared = if enforce {
            self.shared(limits, minute)
        } else {
            None
        };
        if let Some(link) = shared {
            if let Err(r) = self.take_lease(link, limits, minute, tokens, window_end) {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Err(r);
            }
        }
        let (rpm, tpm) = if enforce {
            self.local_limits(limits, minute)
        } else {
            (None, None)
        };
        // Local limits with a link means a local share while Redis is away: Redis
        // will never count what is admitted now, so this minute finishes locally.
        if let Some(link) = self.link.get().filter(|_| rpm.is_some() || tpm.is_some()) {
            link.sync
                .rejoin_minute
                .fetch_max(minute + 1, Ordering::AcqRel);
        }
        let admitted_request = match rpm {
            Some(rpm) => self.requests.try_add(minute, 1, rpm),
            None => {
                self.requests.add(minute, 1);
                true
            }
        };
        if !admitted_request {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Rpm {
                until_ms: window_end,
            });
        }
        let admitted_tokens = match tpm {
            Some(tpm) => self.tokens.try_add(minute, tokens, tpm),
            None => {
                self.tokens.add(minute, tokens);
                true
            }
        };
        if !admitted_tokens {
            self.requests.sub(minute, 1);
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Tpm {
                until_ms: window_end,
            });
        }
        Ok(Reservation {
            minute,
            tokens,
            shared_tokens: shared.is_some() && limits.tpm.is_some(),
        })
    }

    /// Whether `try_admit` would admit now, without reserving anything.
    pub fn check(
        &self,
        limits: &Limits,
        enforce: bool,
        tokens: u64,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        if let Some(until_ms) = self.health.cooling_until(now_ms) {
            return Err(Refusal::Cooldown { until_ms });
        }
        if limits
            .max_parallel
            .is_some_and(|max| self.in_flight() >= max)
        {
            return Err(Refusal::Busy);
        }
        if enforce {
            let until_ms = now_ms + clock::until_next_minute(now_ms);
            let minute = clock::minute(now_ms);
            if let Some(link) = self.shared(limits, minute) {
                let lease = &self.lease;
                if limits.rpm.is_some() && lease.requests.get(minute) < 1 {
                    let gone = lease.requests_gone(minute);
                    return Err(self.empty(link, gone, Refusal::Rpm { until_ms }));
                }
                if limits.tpm.is_some() && lease.tokens.get(minute) < tokens {
                    let gone = lease.tokens_gone(minute);
                    return Err(self.empty(link, gone, Refusal::Tpm { until_ms }));
                }
            }
            let (rpm, tpm) = self.local_limits(limits, minute);
            if rpm.is_some_and(|rpm| self.requests_used(now_ms) >= rpm) {
                return Err(Refusal::Rpm { until_ms });
            }
            if tpm.is_some_and(|tpm| self.tokens_used(now_ms).saturating_add(tokens) > tpm) {
                return Err(Refusal::Tpm { until_ms });
            }
        }
        Ok(())
    }

    /// Counts a failure (see `Health::record_failure`) and shares a cooldown it starts.
    pub fn record_failure(
        &self,
        failure: Failure,
        retry_after: Option<Duration>,
        deployment_cooldown: Option<Duration>,
        policy: &CooldownPolicy,
        group_size: usize,
        now_ms: u64,
    ) -> Option<u64> {
        let until = self.health.record_failure(
            failure,
            retry_after,
            deployment_cooldown,
            policy,
            group_size,
            now_ms,
        )?;
        if let Some(link) = self.link.get() {
            link.sync.share_cooldown(link.id.clone(), until);
        }
        Some(until)
    }

    /// Ends a call that never reached the upstream's answer (connect error, timeout,
    /// retryable status): the request still counts, the reserved tokens are returned.
    pub fn release(&self, r: Reservation) {
        self.tokens.sub(r.minute, r.tokens);
        if r.shared_tokens {
            self.settle_shared(r.minute, -signed(r.tokens));
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Ends a call whose response is complete: tokens settle to `used`.
    pub fn settle(&self, r: Reservation, used: u64) {
        if r.shared_tokens {
            self.settle_shared(r.minute, signed(used) - signed(r.tokens));
        }
        if used > r.tokens {
            self.tokens.add(r.minute, used - r.tokens);
        } else {
            self.tokens.sub(r.minute, r.tokens - used);
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Requests admitted in the minute of `now_ms`.
    pub fn requests_used(&self, now_ms: u64) -> u64 {
        self.requests.get(clock::minute(now_ms))
    }

    /// Tokens reserved or used in the minute of `now_ms`.
    pub fn tokens_used(&self, now_ms: u64) -> u64 {
        self.tokens.get(clock::minute(now_ms))
    }

    /// Records a finished call's latency: seconds per output token when known.
    pub fn record_latency(&self, secs: f64, output_tokens: u64) {
        let sample = if output_tokens > 0 {
            secs / output_tokens as f64
        } else {
            secs
        };
        ewma(&self.latency, sample);
    }

    /// Records the time to the first streamed event.
    pub fn record_ttft(&self, secs: f64) {
        ewma(&self.ttft, secs);
    }

    /// Smoothed latency (per output token), None before the first sample.
    pub fn latency(&self) -> Option<f64> {
        read_f64(&self.latency)
    }

    /// Smoothed time to first token, None before the first streamed call.
    pub fn ttft(&self) -> Option<f64> {
        read_f64(&self.ttft)
    }
}

fn read_f64(a: &AtomicU64) -> Option<f64> {
    let v = f64::from_bits(a.load(Ordering::Relaxed));
    (v > 0.0).then_some(v)
}

/// Folds a sample into a moving average (lock-free; concurrent samples may race, and
/// one of them wins, which a moving average tolerates).
fn ewma(a: &AtomicU64, sample: f64) {
    let sample = sample.max(1e-9);
    let old = f64::from_bits(a.load(Ordering::Relaxed));
    let new = if old > 0.0 {
        old + EWMA_ALPHA * (sample - old)
    } else {
        sample
    };
    a.store(new.to_bits(), Ordering::Relaxed);
}

/// A token count as a signed delta: counts past `i64::MAX` (an upstream reporting
/// absurd usage, a request asking for `max_tokens` near `u64::MAX`) stop there.
pub(crate) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000; // a minute boundary (divisible by 60,000)

    #[test]
    fn token_deltas_past_i64_max_stop_there() {
        assert_eq!(signed(21), 21);
        assert_eq!(signed(1 << 63), i64::MAX);
        assert_eq!(signed(u64::MAX), i64::MAX);
        // What settle reports for absurd usage against a small reservation.
        assert_eq!(signed(u64::MAX) - signed(10), i64::MAX - 10);
    }

    #[test]
    fn rpm_admits_exactly_the_limit_then_refuses_until_the_window_ends() {
        let s = DeploymentStats::default();
        let l = Limits {
            rpm: Some(3),
            ..Limits::default()
        };
        for _ in 0..3 {
            let r = s.try_admit(&l, true, 0, T0 + 10).unwrap();
            s.settle(r, 0);
        }
        assert_eq!(
            s.try_admit(&l, true, 0, T0 + 20),
            Err(Refusal::Rpm {
                until_ms: T0 + 60_000
            })
        );
        // Not enforced: rpm is only a weight.
        assert!(s.try_admit(&l, false, 0, T0 + 20).is_ok());
        // The next minute starts afresh.
        assert!(s.try_admit(&l, true, 0, T0 + 60_000).is_ok());
    }

    #[test]
    fn tpm_reserves_then_settles_to_real_usage() {
        let s = DeploymentStats::default();
        let l = Limits {
            tpm: Some(100),
            ..Limits::default()
        };
        let r = s.try_admit(&l, true, 60, T0).unwrap();
        assert_eq!(s.tokens_used(T0), 60);
        // 60 reserved: a 50-token request does not fit, and its request slot is returned.
        assert_eq!(
            s.try_admit(&l, true, 50, T0),
            Err(Refusal::Tpm {
                until_ms: T0 + 60_000
            })
        );
        assert_eq!(s.requests_used(T0), 1);
        s.settle(r, 20);
        assert_eq!(s.tokens_used(T0), 20);
        let r = s.try_admit(&l, true, 80, T0).unwrap();
        s.release(r);
        assert_eq!(s.tokens_used(T0), 20);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn max_parallel_counts_in_flight_calls() {
        let s = DeploymentStats::default();
        let l = Limits {
            max_parallel: Some(2),
            ..Limits::default()
        };
        let a = s.try_admit(&l, false, 0, T0).unwrap();
        let _b = s.try_admit(&l, false, 0, T0).unwrap();
        assert_eq!(s.try_admit(&l, false, 0, T0), Err(Refusal::Busy));
        s.settle(a, 0);
        assert!(s.try_admit(&l, false, 0, T0).is_ok());
    }

    #[test]
    fn latency_is_a_moving_average_per_output_token() {
        let s = DeploymentStats::default();
        assert_eq!(s.latency(), None);
        s.record_latency(1.0, 10);
        assert_eq!(s.latency(), Some(0.1));
        s.record_latency(2.0, 10);
        assert!((s.latency().unwrap() - 0.12).abs() < 1e-9);
    }
}
