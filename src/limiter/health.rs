//! Failures and cooldowns, with LiteLLM's rules: a deployment cools down on a 429
//! (in a group of several), when its failures this minute pass `allowed_fails`, or
//! when more than half its calls this minute failed (in a group of several, over at
//! least `RATE_MIN_CALLS` calls). Connection errors and timeouts count as failures
//! too (LiteLLM does not count them; a dead upstream should stop getting traffic).

use super::window::Window;
use crate::clock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Calls in a minute before the failure-rate rule may apply, so one early failure
/// does not cool a deployment down by itself.
pub const RATE_MIN_CALLS: u64 = 5;

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The upstream answered with this status.
    Status(u16),
    /// No connection, or it broke before an answer.
    Connect,
    /// No answer within the timeout.
    Timeout,
}

impl Failure {
    /// Whether this failure counts towards a cooldown: 401, 404, 408, 429, any 5xx,
    /// connection errors and timeouts. A 400 is the client's fault, not the deployment's.
    pub fn counts(self) -> bool {
        match self {
            Failure::Status(s) => matches!(s, 401 | 404 | 408 | 429) || (500..600).contains(&s),
            Failure::Connect | Failure::Timeout => true,
        }
    }
}

/// The router-wide cooldown settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CooldownPolicy {
    /// Failures allowed per minute before a cooldown.
    pub allowed_fails: u32,
    /// Cooldown when neither the deployment nor the upstream says how long.
    pub cooldown: Duration,
    /// `disable_cooldowns`.
    pub disabled: bool,
}

/// Failure counts and cooldown of one deployment.
#[derive(Debug, Default)]
pub struct Health {
    /// Counted failures this minute.
    fails: Window,
    /// Successful calls this minute (for the failure rate).
    successes: Window,
    /// Unix ms until which the deployment gets no traffic (0: none).
    cooldown_until: AtomicU64,
}

impl Health {
    /// The end of the current cooldown, if one is running at `now_ms`.
    pub fn cooling_until(&self, now_ms: u64) -> Option<u64> {
        let until = self.cooldown_until.load(Ordering::Acquire);
        (until > now_ms).then_some(until)
    }

    /// Extends the cooldown to `until_ms` (a cooldown another replica started).
    pub fn extend_cooldown(&self, until_ms: u64) {
        self.cooldown_until.fetch_max(until_ms, Ordering::AcqRel);
    }

    /// Counts a successful call.
    pub fn record_success(&self, now_ms: u64) {
        self.successes.add(clock::minute(now_ms), 1);
    }

    /// Counts a failure; returns the cooldown end if this failure started one.
    ///
    /// Duration: the deployment's `cooldown_time`, else the upstream's `Retry-After`,
    /// else the router's `cooldown_time`.
    pub fn record_failure(
        &self,
        failure: Failure,
        retry_after: Option<Duration>,
        deployment_cooldown: Option<Duration>,
        policy: &CooldownPolicy,
        group_size: usize,
        now_ms: u64,
    ) -> Option<u64> {
        if !failure.counts() {
            return None;
        }
        let minute = clock::minute(now_ms);
        self.fails.add(minute, 1);
        if policy.disabled {
            return None;
        }
        let fails = self.fails.get(minute);
        let calls = fails + self.successes.get(minute);
        let several = group_size > 1;
        let cool = (several && failure == Failure::Status(429))
            || fails > u64::from(policy.allowed_fails)
            || (several && calls >= RATE_MIN_CALLS && fails * 2 > calls);
        if !cool {
            return None;
        }
        let duration = deployment_cooldown
            .or(retry_after)
            .unwrap_or(policy.cooldown);
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let until = now_ms.saturating_add(ms);
        self.cooldown_until.fetch_max(until, Ordering::AcqRel);
        // A deployment that comes back starts with a clean slate of allowed failures.
        self.fails.sub(minute, fails);
        self.successes.sub(minute, calls - fails);
        Some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;
    const POLICY: CooldownPolicy = CooldownPolicy {
        allowed_fails: 3,
        cooldown: Duration::from_secs(5),
        disabled: false,
    };

    fn fail(h: &Health, f: Failure, group: usize, at: u64) -> Option<u64> {
        h.record_failure(f, None, None, &POLICY, group, at)
    }

    #[test]
    fn a_429_cools_a_deployment_of_a_group_of_several_at_once() {
        let h = Health::default();
        assert_eq!(fail(&h, Failure::Status(429), 2, T0), Some(T0 + 5_000));
        assert_eq!(h.cooling_until(T0 + 4_999), Some(T0 + 5_000));
        assert_eq!(h.cooling_until(T0 + 5_000), None);
        // Alone in its group, a 429 only counts towards allowed_fails.
        let h = Health::default();
        assert_eq!(fail(&h, Failure::Status(429), 1, T0), None);
    }

    #[test]
    fn a_cooldown_past_the_end_of_time_ends_at_u64_max() {
        // 1e17 s is a valid Duration, but its milliseconds do not fit a u64.
        let h = Health::default();
        let forever = Some(Duration::from_secs(100_000_000_000_000_000));
        let until = h.record_failure(Failure::Status(429), forever, None, &POLICY, 2, T0);
        assert_eq!(until, Some(u64::MAX));
        assert_eq!(h.cooling_until(T0 + 1), Some(u64::MAX));
    }

    #[test]
    fn allowed_fails_then_cooldown() {
        let h = Health::default();
        for i in 0..3 {
            assert_eq!(fail(&h, Failure::Connect, 1, T0 + i), None, "failure {i}");
        }
        assert_eq!(fail(&h, Failure::Timeout, 1, T0 + 3), Some(T0 + 5_003));
        // Back after the cooldown, it gets its allowed failures again.
        assert_eq!(fail(&h, Failure::Status(500), 1, T0 + 6_000), None);
    }

    #[test]
    fn failure_rate_over_half_cools_in_a_group_of_several() {
        let h = Health::default();
        for _ in 0..3 {
            h.record_success(T0);
        }
        let policy = CooldownPolicy {
            allowed_fails: 100,
            ..POLICY
        };
        let f = |at| h.record_failure(Failure::Status(503), None, None, &policy, 3, at);
        assert_eq!(f(T0), None); // 1 of 4
        assert_eq!(f(T0), None); // 2 of 5: not over half
        assert_eq!(f(T0), None); // 3 of 6: not over half
        assert!(f(T0).is_some()); // 4 of 7
    }

    #[test]
    fn client_errors_do_not_count_and_durations_follow_precedence() {
        let h = Health::default();
        for _ in 0..10 {
            assert_eq!(fail(&h, Failure::Status(400), 2, T0), None);
        }
        let ra = Some(Duration::from_secs(30));
        let until = h.record_failure(Failure::Status(429), ra, None, &POLICY, 2, T0);
        assert_eq!(until, Some(T0 + 30_000));
        let h = Health::default();
        let dep = Some(Duration::from_secs(2));
        let until = h.record_failure(Failure::Status(429), ra, dep, &POLICY, 2, T0);
        assert_eq!(until, Some(T0 + 2_000));
        let h = Health::default();
        let off = CooldownPolicy {
            disabled: true,
            ..POLICY
        };
        assert_eq!(
            h.record_failure(Failure::Status(429), None, None, &off, 2, T0),
            None
        );
    }
}
