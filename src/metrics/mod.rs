//! Prometheus metrics: LiteLLM's names and labels (so its dashboards keep working)
//! and sluice's own under `sluice_`.
//!
//! Recording is lock-free: every handle is built with the snapshot, holds its label
//! set already rendered, and counts with relaxed atomic adds. Handles are kept across
//! reloads by label set (deployments) or name (groups), so counters only grow while
//! what they describe exists. Gauges (state, remaining budget, in flight) are read
//! at scrape time from the limiter's live state; `render` writes the exposition.

pub mod histogram;
mod render;

pub use render::{render, CONTENT_TYPE};

use crate::config::DeploymentConfig;
use crate::limiter::health::Failure;
use crate::router::Group;
use crate::state::Deployment;
use crate::upstream::provider;
use histogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Failure slots: one per status 400..=599, then connection errors, then timeouts.
const STATUS_SLOTS: usize = 200;
/// Slot of a connection error (no answer at all).
const CONNECT_SLOT: usize = STATUS_SLOTS;
/// Slot of a timeout waiting for the answer.
const TIMEOUT_SLOT: usize = STATUS_SLOTS + 1;
/// All failure slots.
const FAILURE_SLOTS: usize = STATUS_SLOTS + 2;
/// Lowest HTTP status counted per group.
const FIRST_STATUS: u16 = 100;
/// Statuses 100..=599 counted per group.
const GROUP_STATUSES: usize = 500;

/// Counters of one deployment.
#[derive(Debug)]
pub struct DeploymentMetrics {
    /// `litellm_model_name`, `model_id`, `api_base`, `api_provider`, `requested_model`,
    /// escaped and joined, ready to print.
    pub labels: String,
    /// The provider as LiteLLM prefixes exception classes with (`Openai`).
    provider_class: String,
    /// Attempts sent (or answered by `mock_response`).
    total: AtomicU64,
    /// Attempts whose answer ended well.
    success: AtomicU64,
    /// Failed attempts by failure slot.
    failures: [AtomicU64; FAILURE_SLOTS],
    /// Cooldowns started, by the slot of the failure that started them.
    cooled_down: [AtomicU64; FAILURE_SLOTS],
    /// Upstream time, from sending to the end of the answer's body.
    pub llm_latency: Histogram,
    /// Time sluice added before the response head (total minus upstream wait).
    pub overhead: Histogram,
    /// The last attempt failed: LiteLLM's "partial outage" state until one succeeds.
    last_failed: AtomicBool,
}

impl DeploymentMetrics {
    fn new(labels: String, provider_class: String) -> Self {
        DeploymentMetrics {
            labels,
            provider_class,
            total: AtomicU64::new(0),
            success: AtomicU64::new(0),
            failures: zeros(),
            cooled_down: zeros(),
            llm_latency: Histogram::default(),
            overhead: Histogram::default(),
            last_failed: AtomicBool::new(false),
        }
    }

    /// An attempt goes out.
    pub fn sent(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt ended well.
    pub fn succeeded(&self) {
        self.success.fetch_add(1, Ordering::Relaxed);
        // Read first: the common case writes nothing to a line other cores read.
        if self.last_failed.load(Ordering::Relaxed) {
            self.last_failed.store(false, Ordering::Relaxed);
        }
    }

    /// An attempt failed.
    pub fn failed(&self, f: Failure) {
        self.failures[slot(f)].fetch_add(1, Ordering::Relaxed);
        if !self.last_failed.load(Ordering::Relaxed) {
            self.last_failed.store(true, Ordering::Relaxed);
        }
    }

    /// A failure started a cooldown.
    pub fn cooled(&self, f: Failure) {
        self.cooled_down[slot(f)].fetch_add(1, Ordering::Relaxed);
    }

    /// Attempts counted so far.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Successful attempts so far.
    pub fn successes(&self) -> u64 {
        self.success.load(Ordering::Relaxed)
    }

    /// Whether the last finished attempt failed.
    pub fn last_failed(&self) -> bool {
        self.last_failed.load(Ordering::Relaxed)
    }
}

/// Where a failure is counted.
fn slot(f: Failure) -> usize {
    match f {
        Failure::Status(s) if (400..600).contains(&s) => usize::from(s - 400),
        Failure::Status(_) => 100, // not an error status: filed with 500
        Failure::Connect => CONNECT_SLOT,
        Failure::Timeout => TIMEOUT_SLOT,
    }
}

/// `exception_status` and the class name LiteLLM raises for a failure slot.
fn slot_labels(slot: usize) -> (u16, &'static str) {
    match slot {
        CONNECT_SLOT => (500, "APIConnectionError"),
        TIMEOUT_SLOT => (408, "Timeout"),
        s => {
            let status = 400 + s as u16;
            let class = match status {
                400 => "BadRequestError",
                401 => "AuthenticationError",
                403 => "PermissionDeniedError",
                404 => "NotFoundError",
                408 | 504 => "Timeout",
                422 => "UnprocessableEntityError",
                429 => "RateLimitError",
                500 => "InternalServerError",
                502 => "BadGatewayError",
                503 => "ServiceUnavailableError",
                _ => "APIError",
            };
            (status, class)
        }
    }
}

/// Answers to requests for one model group (or to requests no group was found for).
#[derive(Debug)]
pub struct GroupMetrics {
    /// `requested_model="..."`, escaped, ready to print.
    pub labels: String,
    /// Responses by status, 100..=599.
    statuses: [AtomicU64; GROUP_STATUSES],
    /// From the request's arrival to the end of the response body.
    pub total_latency: Histogram,
}

impl GroupMetrics {
    /// Handles for requests that asked for `requested_model`.
    pub fn new(requested_model: &str) -> Self {
        GroupMetrics {
            labels: format!("requested_model=\"{}\"", escape(requested_model)),
            statuses: zeros(),
            total_latency: Histogram::default(),
        }
    }

    /// Counts a response with this status.
    pub fn answered(&self, status: u16) {
        let i = usize::from(status.clamp(FIRST_STATUS, 599) - FIRST_STATUS);
        self.statuses[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a response sent whole, `arrived` being when its request came in.
    pub fn record(&self, status: u16, arrived: std::time::Instant) {
        self.answered(status);
        self.total_latency.observe(arrived.elapsed());
    }

    /// Responses with this status so far.
    pub fn answers(&self, status: u16) -> u64 {
        status
            .checked_sub(FIRST_STATUS)
            .and_then(|i| self.statuses.get(usize::from(i)))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Process-wide counters: not tied to a deployment or group of the config.
#[derive(Debug)]
pub struct Metrics {
    /// Requests that never reached a model group: unreadable body, unknown model,
    /// missing key. Their `requested_model` is empty (the client's text would let
    /// anyone create series at will).
    pub unrouted: GroupMetrics,
    /// Config reloads that were applied.
    reloads_ok: AtomicU64,
    /// Config reloads refused (invalid config, unreadable file).
    reloads_failed: AtomicU64,
    /// Upstream connections: opened, failed to open, open now.
    pub pool: Arc<PoolMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            unrouted: GroupMetrics::new(""),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            pool: Arc::default(),
        }
    }
}

impl Metrics {
    /// Counts a reload by its result.
    pub fn reloaded(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads applied and refused so far.
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }
}

/// Upstream connections, counted by the upstream pool as they open and close.
#[derive(Debug, Default)]
pub struct PoolMetrics {
    /// Connections established (TCP, and TLS where used).
    pub opened: AtomicU64,
    /// Connection attempts that failed.
    pub failed: AtomicU64,
    /// Connections open now, idle in the pool or carrying a request.
    pub open: AtomicU64,
}

/// The handles of a deployment: those of the previous snapshot's deployment with
/// the same labels (so a weight or limit change keeps its counters), else new ones.
pub fn for_deployment(
    dep: &DeploymentConfig,
    previous: &[Arc<Deployment>],
) -> Arc<DeploymentMetrics> {
    let base = dep
        .api_base
        .as_deref()
        .unwrap_or(provider::OPENAI_DEFAULT_BASE);
    let labels = format!(
        "litellm_model_name=\"{}\",model_id=\"{}\",api_base=\"{}\",api_provider=\"{}\",requested_model=\"{}\"",
        escape(&dep.model),
        escape(&dep.id),
        escape(&public_base(base)),
        escape(&dep.provider_name),
        escape(&dep.model_name),
    );
    if let Some(d) = previous.iter().find(|d| d.metrics.labels == labels) {
        return d.metrics.clone();
    }
    let mut class = dep.provider_name.clone();
    if let Some(first) = class.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    Arc::new(DeploymentMetrics::new(labels, escape(&class)))
}

/// One handle per group, in group order; a group of the same name in `previous`
/// keeps its counters.
pub fn for_groups(
    groups: &[Group],
    previous: Option<&[Arc<GroupMetrics>]>,
) -> Vec<Arc<GroupMetrics>> {
    groups
        .iter()
        .map(|g| {
            let fresh = GroupMetrics::new(&g.name);
            previous
                .and_then(|p| p.iter().find(|m| m.labels == fresh.labels))
                .map_or_else(|| Arc::new(fresh), Arc::clone)
        })
        .collect()
}

/// An upstream base URL without credentials or query: `https://user:pw@h/v1?k=x`
/// becomes `https://h/v1`. Metric labels must never carry a secret.
pub fn public_base(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(host_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// A label value escaped for the text format: backslash, quote and newline.
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// An array of zeroed counters (`Default` stops at 32 elements).
fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_lose_credentials_and_queries() {
        assert_eq!(
            public_base("https://u:secret@h:8/v1?key=k"),
            "https://h:8/v1"
        );
        assert_eq!(
            public_base("http://127.0.0.1:9/v1"),
            "http://127.0.0.1:9/v1"
        );
        assert_eq!(public_base("h/a@b"), "h/a@b");
    }

    #[test]
    fn failures_map_to_litellm_statuses_and_classes() {
        assert_eq!(
            slot_labels(slot(Failure::Status(429))),
            (429, "RateLimitError")
        );
        assert_eq!(
            slot_labels(slot(Failure::Connect)),
            (500, "APIConnectionError")
        );
        assert_eq!(slot_labels(slot(Failure::Timeout)), (408, "Timeout"));
        assert_eq!(slot_labels(slot(Failure::Status(599))), (599, "APIError"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
