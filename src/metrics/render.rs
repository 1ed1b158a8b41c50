//! The text exposition (format 0.0.4) of every metric, written at scrape time from
//! the current snapshot: counters from the handles, gauges from live state.

use super::{slot_labels, DeploymentMetrics, GroupMetrics, FIRST_STATUS};
use crate::clock;
use crate::limiter::shared::Mode;
use crate::state::{App, Deployment, Snapshot};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The whole exposition for `snap`.
pub fn render(app: &App, snap: &Snapshot) -> String {
    let mut out = String::with_capacity(8192 + snap.deployments.len() * 8192);
    proxy_families(&mut out, app, snap);
    deployment_counters(&mut out, snap);
    deployment_gauges(&mut out, snap);
    process_families(&mut out, app, snap);
    out
}

/// `# HELP` and `# TYPE` of a family (a counter's samples add `_total`).
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line; `labels` may be empty.
fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

fn proxy_families(out: &mut String, app: &App, snap: &Snapshot) {
    let groups: Vec<&GroupMetrics> = snap
        .group_metrics
        .iter()
        .map(|g| &**g)
        .chain([&app.metrics.unrouted])
        .collect();
    let name = "litellm_proxy_total_requests_metric";
    family(
        out,
        name,
        "counter",
        "Requests answered, by the model group asked for and the HTTP status sent back.",
    );
    for g in &groups {
        for (i, n) in nonzero(&g.statuses) {
            let status = FIRST_STATUS as usize + i;
            let labels = format!("{},status_code=\"{status}\"", g.labels);
            sample(out, &format!("{name}_total"), &labels, n);
        }
    }
    let name = "litellm_request_total_latency_metric";
    family(
        out,
        name,
        "histogram",
        "Seconds from a request's arrival to the end of its response body.",
    );
    for g in &groups {
        g.total_latency.render(out, name, &g.labels);
    }
}

/// Each deployment's handles, in snapshot order.
fn handles(snap: &Snapshot) -> impl Iterator<Item = (&Deployment, &DeploymentMetrics)> {
    snap.deployments.iter().map(|d| (&**d, &*d.metrics))
}

/// The counters of `counters` that are not zero, with their index.
fn nonzero(counters: &[AtomicU64]) -> impl Iterator<Item = (usize, u64)> + '_ {
    counters
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .enumerate()
        .filter(|(_, n)| *n > 0)
}

fn deployment_counters(out: &mut String, snap: &Snapshot) {
    let plain: [(&str, &str, Count); 2] = [
        (
            "litellm_deployment_total_requests",
            "Attempts sent to a deployment (each retry counts).",
            DeploymentMetrics::total,
        ),
        (
            "litellm_deployment_success_responses",
            "Attempts on a deployment that ended well.",
            DeploymentMetrics::successes,
        ),
    ];
    for (name, help, read) in plain {
        family(out, name, "counter", help);
        for (_, m) in handles(snap) {
            sample(out, &format!("{name}_total"), &m.labels, read(m));
        }
    }
    let name = "litellm_deployment_failure_responses";
    let help = "Attempts on a deployment that failed, by status and LiteLLM exception class.";
    family(out, name, "counter", help);
    for (_, m) in handles(snap) {
        for (slot, n) in nonzero(&m.failures) {
            let (status, class) = slot_labels(slot);
            let labels = format!(
                "{},exception_status=\"{status}\",exception_class=\"{}.{class}\"",
                m.labels, m.provider_class
            );
            sample(out, &format!("{name}_total"), &labels, n);
        }
    }
    let name = "litellm_deployment_cooled_down";
    let help = "Cooldowns started, by the status of the failure that started them.";
    family(out, name, "counter", help);
    for (_, m) in handles(snap) {
        for (slot, n) in nonzero(&m.cooled_down) {
            let labels = format!("{},exception_status=\"{}\"", m.labels, slot_labels(slot).0);
            sample(out, &format!("{name}_total"), &labels, n);
        }
    }
    let name = "litellm_llm_api_latency_metric";
    family(
        out,
        name,
        "histogram",
        "Seconds from sending to a deployment to the end of its answer.",
    );
    for (d, m) in handles(snap) {
        let labels = format!("model=\"{}\",{}", super::escape(&d.cfg.model), m.labels);
        m.llm_latency.render(out, name, &labels);
    }
    let name = "litellm_overhead_latency_metric";
    family(
        out,
        name,
        "histogram",
        "Seconds sluice added before the response head (total minus upstream wait).",
    );
    for (d, m) in handles(snap) {
        m.overhead.render(out, name, &group_labels(d, m));
    }
}

/// `model_group` plus the deployment's labels, as LiteLLM's budget and overhead metrics have.
fn group_labels(d: &Deployment, m: &DeploymentMetrics) -> String {
    format!(
        "model_group=\"{}\",{}",
        super::escape(&d.cfg.model_name),
        m.labels
    )
}

fn deployment_gauges(out: &mut String, snap: &Snapshot) {
    let now = clock::now_ms();
    let name = "litellm_deployment_state";
    family(
        out,
        name,
        "gauge",
        "0 healthy, 1 partial outage (the last attempt failed), 2 cooling down.",
    );
    for (d, m) in handles(snap) {
        let state = if d.stats.health.cooling_until(now).is_some() {
            2
        } else {
            u8::from(m.last_failed())
        };
        sample(out, name, &m.labels, state);
    }
    let remaining = [
        (
            "litellm_remaining_requests",
            "Requests left this minute under the deployment's rpm.",
            d_rpm as Budget,
        ),
        (
            "litellm_remaining_tokens",
            "Tokens left this minute under the deployment's tpm.",
            d_tpm,
        ),
    ];
    for (name, help, budget) in remaining {
        family(out, name, "gauge", help);
        for (d, m) in handles(snap) {
            if let Some((limit, used)) = budget(d, now) {
                sample(out, name, &group_labels(d, m), limit.saturating_sub(used));
            }
        }
    }
    let gauges = [
        (
            "sluice_deployment_in_flight",
            "Calls admitted to the deployment whose response has not ended.",
            in_flight as Reading,
        ),
        (
            "sluice_deployment_requests_this_minute",
            "Requests admitted to the deployment in this calendar minute.",
            requests_used,
        ),
        (
            "sluice_deployment_tokens_this_minute",
            "Tokens reserved or used on the deployment in this calendar minute.",
            tokens_used,
        ),
        (
            "sluice_deployment_lease_requests",
            "Requests this replica may still admit this minute from its Redis lease.",
            lease_requests,
        ),
        (
            "sluice_deployment_lease_tokens",
            "Tokens this replica may still reserve this minute from its Redis lease.",
            lease_tokens,
        ),
    ];
    for (name, help, read) in gauges {
        family(out, name, "gauge", help);
        for (d, m) in handles(snap) {
            sample(out, name, &m.labels, read(d, now));
        }
    }
}

/// A deployment's limit and what is used of it this minute, if it has that limit.
type Budget = fn(&Deployment, u64) -> Option<(u64, u64)>;
/// A counter of a deployment's handles.
type Count = fn(&DeploymentMetrics) -> u64;
/// A live reading of a deployment.
type Reading = fn(&Deployment, u64) -> u64;

fn d_rpm(d: &Deployment, now: u64) -> Option<(u64, u64)> {
    Some((d.limits.rpm?, d.stats.requests_used(now)))
}
fn d_tpm(d: &Deployment, now: u64) -> Option<(u64, u64)> {
    Some((d.limits.tpm?, d.stats.tokens_used(now)))
}
fn in_flight(d: &Deployment, _: u64) -> u64 {
    u64::from(d.stats.in_flight())
}
fn requests_used(d: &Deployment, now: u64) -> u64 {
    d.stats.requests_used(now)
}
fn tokens_used(d: &Deployment, now: u64) -> u64 {
    d.stats.tokens_used(now)
}

fn lease_requests(d: &Deployment, now: u64) -> u64 {
    d.stats.lease.requests.get(clock::minute(now))
}
fn lease_tokens(d: &Deployment, now: u64) -> u64 {
    d.stats.lease.tokens.get(clock::minute(now))
}

/// Where limits are counted, and the Redis sync's own numbers.
fn redis_families(out: &mut String, app: &App) {
    let name = "sluice_redis_mode";
    family(
        out,
        name,
        "gauge",
        "1 for the mode in force: none, shared or local_fallback.",
    );
    let mode = app.limit_mode();
    for m in [Mode::None, Mode::Shared, Mode::LocalFallback] {
        sample(
            out,
            name,
            &format!("mode=\"{}\"", m.as_str()),
            u8::from(m == mode),
        );
    }
    let Some(sync) = &app.sync else { return };
    let name = "sluice_redis_replicas";
    family(
        out,
        name,
        "gauge",
        "Replicas seen alive at the last Redis heartbeat.",
    );
    sample(out, name, "", sync.replicas());
    let name = "sluice_redis_commands";
    family(
        out,
        name,
        "counter",
        "Commands sent to Redis by this replica (a script counts once).",
    );
    sample(
        out,
        &format!("{name}_total"),
        "",
        sync.commands.load(Ordering::Relaxed),
    );
}

fn process_families(out: &mut String, app: &App, snap: &Snapshot) {
    redis_families(out, app);
    let m = &app.metrics;
    let name = "sluice_config_reloads";
    family(out, name, "counter", "Config reloads (SIGHUP), by result.");
    let (ok, failed) = m.reloads();
    sample(out, "sluice_config_reloads_total", "result=\"success\"", ok);
    sample(
        out,
        "sluice_config_reloads_total",
        "result=\"error\"",
        failed,
    );
    family(
        out,
        "sluice_config_info",
        "gauge",
        "The config being served, by its hash.",
    );
    sample(
        out,
        "sluice_config_info",
        &format!("config_hash=\"{}\"", super::escape(&snap.hash)),
        1,
    );
    let loaded = snap
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    family(
        out,
        "sluice_config_loaded_timestamp_seconds",
        "gauge",
        "When the config being served was loaded (Unix seconds).",
    );
    sample(out, "sluice_config_loaded_timestamp_seconds", "", loaded);
    family(
        out,
        "sluice_limits_enforced",
        "gauge",
        "1 when rpm/tpm are enforced (pre-call checks or a usage-based strategy).",
    );
    sample(
        out,
        "sluice_limits_enforced",
        "",
        u8::from(snap.settings.enforce_limits),
    );
    family(
        out,
        "sluice_draining",
        "gauge",
        "1 once shutdown began and the listener stopped accepting.",
    );
    sample(
        out,
        "sluice_draining",
        "",
        u8::from(app.draining.load(Ordering::Relaxed)),
    );
    let p = &m.pool;
    let counters = [
        (
            "sluice_upstream_connections_opened",
            "Upstream connections established.",
            &p.opened,
        ),
        (
            "sluice_upstream_connect_errors",
            "Upstream connection attempts that failed.",
            &p.failed,
        ),
    ];
    for (name, help, c) in counters {
        family(out, name, "counter", help);
        sample(out, &format!("{name}_total"), "", c.load(Ordering::Relaxed));
    }
    let name = "sluice_upstream_connections_open";
    family(
        out,
        name,
        "gauge",
        "Upstream connections open now, idle in the pool or in use.",
    );
    sample(out, name, "", p.open.load(Ordering::Relaxed));
}
