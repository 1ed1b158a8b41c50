//! Response headers: hop-by-hop ones dropped from upstream answers, and the
//! `x-litellm-*` and `x-ratelimit-*` headers sluice adds.

use crate::body::ProxyBody;
use crate::router::Group;
use crate::state::{Deployment, Snapshot};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Response;
use std::time::{Duration, Instant};

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
    pub call_id: String,
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
            call_id: call_id(),
        }
    }

    /// Adds the `x-litellm-*` headers, and `x-ratelimit-*` from sluice's own counters
    /// when the group has limits and the upstream sent none. Returns the overhead.
    pub fn decorate(&self, snap: &Snapshot, h: &mut HeaderMap) -> Duration {
        let total = self.start.elapsed();
        let overhead = total.saturating_sub(self.upstream);
        let group = &snap.groups[self.group];
        let dep = self.deployment.map(|i| &*snap.deployments[i]);
        if let Some(d) = dep {
            h.insert("x-litellm-model-id", d.id_header.clone());
            h.insert("x-litellm-model-api-base", d.api_base_header.clone());
        }
        h.insert("x-litellm-model-group", group.header.clone());
        h.insert(
            "x-litellm-attempted-retries",
            HeaderValue::from(self.retries),
        );
        h.insert(
            "x-litellm-attempted-fallbacks",
            HeaderValue::from(self.fallbacks),
        );
        h.insert("x-litellm-response-duration-ms", millis(total));
        h.insert("x-litellm-overhead-duration-ms", millis(overhead));
        if let Ok(v) = HeaderValue::from_str(&self.call_id) {
            h.insert("x-litellm-call-id", v);
        }
        h.insert(
            "x-litellm-version",
            HeaderValue::from_static(crate::VERSION),
        );
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
                Some((tl + l, tr + l.saturating_sub(used(d, now))))
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

fn millis(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("{:.3}", d.as_secs_f64() * 1000.0))
        .expect("a decimal number is a valid header value")
}

/// A random UUID (version 4 layout) identifying the call, formatted once.
fn call_id() -> String {
    let v = fastrand::u128(..) & !(0xf000 << 64) | (0x4000 << 64);
    let v = v & !(0xc000 << 48) | (0x8000 << 48);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        v >> 96,
        (v >> 80) & 0xffff,
        (v >> 64) & 0xffff,
        (v >> 48) & 0xffff,
        v & 0xffff_ffff_ffff
    )
}
