//! Response headers: hop-by-hop ones dropped from upstream answers, and the
//! `x-litellm-*` and `x-ratelimit-*` headers sluice adds.

use crate::body::ProxyBody;
use crate::router::Group;
use crate::state::{Deployment, Snapshot};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Response;
use std::time::{Duration, Instant};

// Names of the headers added to every answer, built once (a `&str` name is parsed
// and validated again on each insert).
const MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
const MODEL_API_BASE: HeaderName = HeaderName::from_static("x-litellm-model-api-base");
const MODEL_GROUP: HeaderName = HeaderName::from_static("x-litellm-model-group");
const ATTEMPTED_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
const ATTEMPTED_FALLBACKS: HeaderName = HeaderName::from_static("x-litellm-attempted-fallbacks");
const RESPONSE_DURATION_MS: HeaderName = HeaderName::from_static("x-litellm-response-duration-ms");
const OVERHEAD_DURATION_MS: HeaderName = HeaderName::from_static("x-litellm-overhead-duration-ms");
const CALL_ID: HeaderName = HeaderName::from_static("x-litellm-call-id");
const VERSION: HeaderName = HeaderName::from_static("x-litellm-version");
/// Headers `decorate` may add: the nine above and four `x-ratelimit-*`.
const ADDED: usize = 13;
/// Headers an answer's map is made ready for: [`ADDED`] and up to 11 of the upstream's
/// (the fake upstream sends 4; OpenAI about 20, for which the map grows once). 24 is
/// a size `HeaderMap` has anyway: its next smaller one holds 12.
pub const ANSWER_CAPACITY: usize = 24;

/// What the response headers report about the call.
pub struct Trace {
    /// When sluice received the request.
    pub start: Instant,
    /// Time spent waiting on upstreams, summed over attempts.
    pub upstream: Duration,
    /// Retries made in the group that produced the answer.
    pub retries: u32,
    /// Fallback groups tried.
    pub fallbacks: u32,
    /// The deployment of the last attempt.
    pub deployment: Option<usize>,
    /// The group of the last attempt.
    pub group: usize,
    /// The group the request asked for (before any fallback), for the metrics.
    pub requested: usize,
    /// `x-litellm-call-id`, also the id of mocked completions.
    pub call_id: CallId,
}

impl Trace {
    /// A trace for a request that resolved to `group`.
    pub fn new(start: Instant, group: usize) -> Trace {
        Trace {
            start,
            upstream: Duration::ZERO,
            retries: 0,
            fallbacks: 0,
            deployment: None,
            group,
            requested: group,
            call_id: CallId::random(),
        }
    }

    /// Adds the `x-litellm-*` headers, and `x-ratelimit-*` from sluice's own counters
    /// when the group has limits and the upstream sent none. Returns the overhead.
    pub fn decorate(&self, snap: &Snapshot, h: &mut HeaderMap) -> Duration {
        let total = self.start.elapsed();
        let overhead = total.saturating_sub(self.upstream);
        let group = &snap.groups[self.group];
        let dep = self.deployment.map(|i| &*snap.deployments[i]);
        // Room for all of them at once: one growth of the map instead of several.
        h.reserve(ADDED);
        if let Some(d) = dep {
            h.insert(MODEL_ID, d.id_header.clone());
            h.insert(MODEL_API_BASE, d.api_base_header.clone());
        }
        h.insert(MODEL_GROUP, group.header.clone());
        h.insert(ATTEMPTED_RETRIES, count(self.retries));
        h.insert(ATTEMPTED_FALLBACKS, count(self.fallbacks));
        let [total_ms, overhead_ms, call_id] = stamps(total, overhead, &self.call_id);
        h.insert(RESPONSE_DURATION_MS, total_ms);
        h.insert(OVERHEAD_DURATION_MS, overhead_ms);
        h.insert(CALL_ID, call_id);
        h.insert(VERSION, HeaderValue::from_static(crate::VERSION));
        if group.has_limits && !h.contains_key("x-ratelimit-remaining-requests") {
            rate_limit_headers(snap, group, dep, h);
        }
        overhead
    }
}

/// Limit and remaining of requests and tokens this minute: the answering
/// deployment's, or the group's sums when none answered.
fn rate_limit_headers(snap: &Snapshot, group: &Group, dep: Option<&Deployment>, h: &mut HeaderMap) {
    let now = crate::clock::now_ms();
    // The answering deployment, or else every member of the group.
    let deps = || {
        let members = dep
            .is_none()
            .then_some(&group.members)
            .into_iter()
            .flatten();
        dep.into_iter()
            .chain(members.map(|&i| &*snap.deployments[i]))
    };
    // (limit, remaining) summed over the deployments that have the limit.
    let sum = |limit: fn(&Deployment) -> Option<u64>, used: fn(&Deployment, u64) -> u64| {
        deps().fold(None, |total: Option<(u64, u64)>, d| match limit(d) {
            Some(l) => {
                let (tl, tr) = total.unwrap_or((0, 0));
                let left = l.saturating_sub(used(d, now));
                Some((tl.saturating_add(l), tr.saturating_add(left)))
            }
            None => total,
        })
    };
    if let Some((limit, remaining)) = sum(|d| d.limits.rpm, |d, n| d.stats.requests_used(n)) {
        h.insert("x-ratelimit-limit-requests", HeaderValue::from(limit));
        h.insert(
            "x-ratelimit-remaining-requests",
            HeaderValue::from(remaining),
        );
    }
    if let Some((limit, remaining)) = sum(|d| d.limits.tpm, |d, n| d.stats.tokens_used(n)) {
        h.insert("x-ratelimit-limit-tokens", HeaderValue::from(limit));
        h.insert("x-ratelimit-remaining-tokens", HeaderValue::from(remaining));
    }
}

/// Headers that describe one hop only and must not be forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

/// Drops hop-by-hop headers, and those the upstream named in `Connection`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One look at the (few) names present first: most answers carry none of them,
    // and eight removals would hash and probe eight times for nothing.
    if !h.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        h.remove(name);
    }
}

/// A response with decorated headers, counted in the metrics: its status under
/// the group asked for, the overhead under the deployment that answered, and the
/// total latency now, or at the end of the body for a passed-through answer.
pub fn finish(
    mut resp: Response<ProxyBody>,
    trace: &Trace,
    snap: &Snapshot,
) -> Response<ProxyBody> {
    let overhead = trace.decorate(snap, resp.headers_mut());
    let group = &snap.group_metrics[trace.requested];
    group.answered(resp.status().as_u16());
    if let Some(d) = trace.deployment {
        snap.deployments[d].metrics.overhead.observe(overhead);
    }
    match resp.body_mut() {
        ProxyBody::Tracked(t) => t.on_end(trace.start, group.clone()),
        _ => group.total_latency.observe(trace.start.elapsed()),
    }
    resp
}

/// Room for a duration in milliseconds with three decimals: `u64::MAX` microseconds
/// take 21 characters.
const MILLIS_MAX: usize = 24;

/// The three values that differ on every answer: the response and overhead
/// durations in milliseconds, and the call id. They are written into one buffer
/// that the three share, so they cost one allocation instead of three.
fn stamps(total: Duration, overhead: Duration, id: &CallId) -> [HeaderValue; 3] {
    let mut buf = [0u8; 2 * MILLIS_MAX + 36];
    let (durations, call_id) = buf.split_at_mut(2 * MILLIS_MAX);
    let (a, b) = durations.split_at_mut(MILLIS_MAX);
    let total_at = write_millis(total, a.try_into().expect("MILLIS_MAX bytes"));
    let overhead_at = MILLIS_MAX + write_millis(overhead, b.try_into().expect("MILLIS_MAX bytes"));
    call_id.copy_from_slice(&id.0);
    let shared = Bytes::from_owner(buf);
    let value = |at: std::ops::Range<usize>| {
        HeaderValue::from_maybe_shared(shared.slice(at))
            .expect("digits, points, hex digits and dashes are valid header values")
    };
    [
        value(total_at..MILLIS_MAX),
        value(overhead_at..2 * MILLIS_MAX),
        value(2 * MILLIS_MAX..buf.len()),
    ]
}

/// Writes a duration in milliseconds with three decimals (whole microseconds) at the
/// end of `buf`, without a formatter; returns where it starts.
fn write_millis(d: Duration, buf: &mut [u8; MILLIS_MAX]) -> usize {
    let mut n = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut i = buf.len();
    for digit in 0.. {
        if digit == 3 {
            i -= 1;
            buf[i] = b'.';
        }
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 && digit >= 3 {
            break;
        }
    }
    i
}

/// A small count: single digits are static values, so they cost no allocation.
fn count(n: u32) -> HeaderValue {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match DIGITS.get(n as usize) {
        Some(d) => HeaderValue::from_static(d),
        None => HeaderValue::from(n),
    }
}

/// A random UUID (version 4 layout) identifying the call, kept as its 36 characters.
#[derive(Clone, Copy)]
pub struct CallId([u8; 36]);

impl CallId {
    fn random() -> CallId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Where the two digits of each of the 16 bytes go, around dashes at 8, 13, 18, 23.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        let mut bytes = fastrand::u128(..).to_be_bytes();
        bytes[6] = bytes[6] & 0x0f | 0x40; // version 4
        bytes[8] = bytes[8] & 0x3f | 0x80; // RFC 9562 variant
        let mut out = [b'-'; 36];
        // A byte at a time from a table: shifting a u128 by a variable amount for
        // each of the 32 digits cost about 370 instructions a request (callgrind).
        for (b, at) in bytes.into_iter().zip(AT) {
            out[at] = HEX[usize::from(b >> 4)];
            out[at + 1] = HEX[usize::from(b & 0xf)];
        }
        CallId(out)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits and dashes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_three_decimals_and_share_one_buffer_with_the_call_id() {
        let id = CallId::random();
        for (us, text) in [
            (0, "0.000"),
            (7, "0.007"),
            (1_234, "1.234"),
            (120_000, "120.000"),
            (u64::MAX, "18446744073709551.615"),
        ] {
            let d = Duration::from_micros(us);
            let [total, overhead, call_id] = stamps(d, Duration::from_micros(42), &id);
            assert_eq!(total, text);
            assert_eq!(overhead, "0.042");
            assert_eq!(call_id, id.as_str());
            // All three point into one buffer of 2 * MILLIS_MAX + 36 bytes.
            let first = total.as_bytes().as_ptr() as usize;
            let end = call_id.as_bytes().as_ptr() as usize + call_id.len();
            assert!(end - first <= 2 * MILLIS_MAX + 36, "{us}: not one buffer");
        }
    }

    #[test]
    fn counts_are_decimal() {
        for n in [0, 1, 9, 10, 4_000_000_000] {
            assert_eq!(count(n), n.to_string().as_str());
        }
    }

    #[test]
    fn call_ids_are_version_4_uuids() {
        let mut seen = std::collections::HashSet::new();
        // The digits each position took: every one but the version's is random.
        let mut digits = vec![std::collections::HashSet::new(); 36];
        for _ in 0..1000 {
            let id = CallId::random();
            for (i, &c) in id.0.iter().enumerate() {
                digits[i].insert(c);
            }
            let s = id.as_str();
            let parts: Vec<&str> = s.split('-').collect();
            let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{s}");
            assert!(s
                .bytes()
                .all(|c| c == b'-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert!(parts[2].starts_with('4'), "{s}");
            assert!("89ab".contains(&parts[3][..1]), "{s}");
            assert!(seen.insert(s.to_string()), "{s} repeated");
        }
        for (i, d) in digits.iter().enumerate() {
            let expected = match i {
                8 | 13 | 18 | 23 => 1, // dashes
                14 => 1,               // the version
                19 => 4,               // the variant: 8, 9, a or b
                _ => 16,
            };
            assert_eq!(d.len(), expected, "position {i} took {d:?}");
        }
    }
}
