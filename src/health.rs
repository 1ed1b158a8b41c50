//! GET /health: every deployment with the state the router sees it in now. Unlike
//! LiteLLM's, it calls no upstream: it reports what live traffic has shown
//! (cooldowns, this minute's use against the limits, calls in flight), which is
//! what decides where the next request goes. Keys never appear.

use crate::body::ProxyBody;
use crate::clock;
use crate::limiter::Refusal;
use crate::metrics::public_base;
use crate::state::{Deployment, Snapshot};
use http::{header, HeaderValue, Response};
use serde_json::{json, Value};

/// GET /health.
pub fn health(snap: &Snapshot) -> Response<ProxyBody> {
    let now = clock::now_ms();
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    let mut deployments = Vec::new();
    for d in &snap.deployments {
        let entry = describe(snap, d, now);
        let endpoint = json!({
            "model": d.cfg.model,
            "model_name": d.cfg.model_name,
            "model_id": d.cfg.id,
            "api_base": entry["api_base"],
        });
        if entry["state"] == "cooling_down" {
            unhealthy.push(endpoint);
        } else {
            healthy.push(endpoint);
        }
        deployments.push(entry);
    }
    let body = json!({
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "deployments": deployments,
        "config_hash": snap.hash,
    });
    let mut r = Response::new(ProxyBody::full(
        serde_json::to_vec(&body).expect("a json value always serialises"),
    ));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// One deployment's state: `healthy`, `cooling_down` (until when), `over_limit`
/// (rpm or tpm used up until the minute ends) or `busy` (at max_parallel_requests).
fn describe(snap: &Snapshot, d: &Deployment, now: u64) -> Value {
    let s = &d.stats;
    let (state, until, limit) = match s.check(&d.limits, snap.settings.enforce_limits, 0, now) {
        // A shared lease being refilled from Redis: usable, momentarily empty here.
        Ok(()) | Err(Refusal::Pending) => ("healthy", None, None),
        Err(Refusal::Cooldown { until_ms }) => ("cooling_down", Some(until_ms), None),
        Err(Refusal::Rpm { until_ms }) => ("over_limit", Some(until_ms), Some("rpm")),
        Err(Refusal::Tpm { until_ms }) => ("over_limit", Some(until_ms), Some("tpm")),
        Err(Refusal::Busy) => ("busy", None, Some("max_parallel_requests")),
    };
    json!({
        "model_name": d.cfg.model_name,
        "model": d.cfg.model,
        "model_id": d.cfg.id,
        "api_base": public_base(d.cfg.api_base.as_deref().unwrap_or(crate::upstream::provider::OPENAI_DEFAULT_BASE)),
        "api_provider": d.cfg.provider_name,
        "state": state,
        "until": until.map(|ms| ms as f64 / 1000.0),
        "seconds_left": until.map(|ms| ms.saturating_sub(now) as f64 / 1000.0),
        "limit": limit,
        "last_call_failed": d.metrics.last_failed(),
        "in_flight": s.in_flight(),
        "requests_this_minute": s.requests_used(now),
        "tokens_this_minute": s.tokens_used(now),
        "rpm": d.limits.rpm,
        "tpm": d.limits.tpm,
        "max_parallel_requests": d.limits.max_parallel,
        "limits_enforced": snap.settings.enforce_limits,
    })
}
