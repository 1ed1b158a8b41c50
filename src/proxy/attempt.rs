//! The retry loop within one group: pick and admit a deployment, send, and on a
//! connect error, a timeout, a 408/429 or a 5xx record the failure (which may cool
//! the deployment down) and try again, on a deployment not tried yet while one is
//! usable; only when none is does the loop back off before retrying.

use super::headers::{self, strip_hop_by_hop, Trace};
use super::timer::{self, AttemptTimer};
use super::Ask;
use crate::body::{self, ProxyBody, Spliced, Tracked};
use crate::clock;
use crate::error::ProxyError;
use crate::limiter::health::Failure;
use crate::limiter::{Refusal, Reservation};
use crate::mock;
use crate::request::Parsed;
use crate::router::pick::{self, Pick};
use crate::state::{App, Deployment, Snapshot};
use crate::upstream::{self, Endpoint};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request waits for its replica's share to be refilled from Redis, and
/// how many times, before it is refused.
const REFILL_WAIT: Duration = Duration::from_millis(200);
const MAX_REFILL_WAITS: u32 = 5;

/// The longest an attempt waits: about 30 years, tokio's own "far future". A longer
/// timeout means none; past this, the deadline could overflow an `Instant`.
const NO_TIMEOUT: Duration = Duration::from_secs(30 * 365 * 86_400);

/// Tokens a mocked answer reports (prompt 10 + completion 20, as `mock` does).
const MOCK_TOKENS: u64 = 30;

/// Why a group could not answer.
pub enum Failed {
    /// An error sluice answers with itself.
    Own(ProxyError),
    /// The last upstream answer had a retryable status; passed through if final.
    Upstream(Response<upstream::Body>),
    /// No deployment could take the request; one may at this Unix ms.
    NoDeployments { until_ms: u64 },
    /// The prompt is larger than every deployment's context window.
    ContextWindow,
}

impl Failed {
    /// Whether a fallback group should be tried after this.
    pub fn falls_back(&self) -> bool {
        match self {
            Failed::Own(e) => matches!(
                e,
                ProxyError::UpstreamUnreachable(_)
                    | ProxyError::UpstreamTimeout { .. }
                    | ProxyError::MockRateLimit { .. }
                    | ProxyError::MockInternalError { .. }
            ),
            Failed::Upstream(_) | Failed::NoDeployments { .. } | Failed::ContextWindow => true,
        }
    }

    /// The answer for the client when nothing else is left to try.
    pub fn into_response(self, snap: &Snapshot, trace: &Trace) -> Response<ProxyBody> {
        let group = snap.groups[trace.group].name.clone();
        match self {
            Failed::Own(e) => e.into_response(),
            Failed::Upstream(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, ProxyBody::Upstream(body))
            }
            Failed::NoDeployments { until_ms } => {
                let wait = until_ms.saturating_sub(clock::now_ms());
                let retry_after_secs = wait.div_ceil(1000).max(1);
                ProxyError::NoDeployments {
                    group,
                    retry_after_secs,
                }
                .into_response()
            }
            Failed::ContextWindow => ProxyError::ContextWindowExceeded { group }.into_response(),
        }
    }
}

/// One request's view while it runs through groups.
pub struct Call<'a> {
    pub app: &'a App,
    pub snap: &'a Snapshot,
    pub endpoint: Endpoint,
    pub req: &'a Parsed,
    pub ask: &'a Ask,
    /// The client connection's timer for attempts, on HTTP/1 (see `timer.rs`).
    pub timer: Option<&'a AttemptTimer>,
}

impl Call<'_> {
    /// Runs the retry loop on `group` (on the `pinned` deployment only, if set).
    /// `primary` is false for fallback groups (`mock_testing_fallbacks` fails only the first).
    /// `spare` is a header map the first request sent upstream may take (see `build`).
    pub async fn group(
        &self,
        group: usize,
        pinned: Option<usize>,
        primary: bool,
        trace: &mut Trace,
        spare: &mut Option<HeaderMap>,
    ) -> Result<Response<ProxyBody>, Failed> {
        let snap = self.snap;
        let g = &snap.groups[group];
        let mut tried = pick::Members::new();
        let mut last: Option<Failed> = None;
        let mut backoffs = 0;
        let mut refills = 0;
        let mut attempt = 0;
        while attempt <= self.ask.retries {
            let rounds = self.app.sync.as_ref().map_or(0, |s| s.rounds());
            let now = clock::now_ms();
            let picked = match pinned {
                None => pick::pick(snap, g, &tried, &self.ask.need, now),
                Some(d) => {
                    let dep = &snap.deployments[d];
                    let s = &snap.settings;
                    match dep.stats.try_admit(
                        &dep.limits,
                        s.enforce_limits,
                        self.ask.need.reserve_tokens,
                        now,
                    ) {
                        Ok(reservation) => Pick::Admitted {
                            deployment: d,
                            reservation,
                            fresh: !tried.contains(&d),
                        },
                        Err(Refusal::Pending) => Pick::Pending,
                        Err(r) => Pick::Unavailable {
                            until_ms: r.until_ms(now),
                        },
                    }
                }
            };
            let (idx, reservation) = match picked {
                Pick::Admitted {
                    deployment,
                    reservation,
                    fresh,
                } => {
                    if attempt > 0 && !fresh {
                        // Nothing else is usable: wait before hitting the same one again.
                        tokio::time::sleep(backoff(backoffs, snap.settings.retry_after)).await;
                        backoffs += 1;
                    }
                    (deployment, reservation)
                }
                Pick::Unavailable { until_ms } => {
                    return Err(last.unwrap_or(Failed::NoDeployments { until_ms }));
                }
                Pick::ContextWindow => return Err(Failed::ContextWindow),
                Pick::Pending => {
                    // This replica's share ran dry; the refill is one Redis round away.
                    if refills < MAX_REFILL_WAITS {
                        refills += 1;
                        if let Some(sync) = &self.app.sync {
                            sync.wait_round(rounds, REFILL_WAIT).await;
                        }
                        continue;
                    }
                    return Err(last.unwrap_or(Failed::NoDeployments {
                        until_ms: now + 1_000,
                    }));
                }
            };
            tried.push(idx);
            trace.retries = attempt;
            trace.deployment = Some(idx);
            let dep = &snap.deployments[idx];
            match self
                .attempt(dep, reservation, g.members.len(), primary, trace, spare)
                .await
            {
                Ok(resp) => return Ok(resp),
                Err(f) => last = Some(f),
            }
            attempt += 1;
        }
        Err(last.expect("the loop runs at least once"))
    }

    /// One attempt on an admitted deployment.
    async fn attempt(
        &self,
        dep: &Arc<Deployment>,
        reservation: Reservation,
        group_size: usize,
        primary: bool,
        trace: &mut Trace,
        spare: &mut Option<HeaderMap>,
    ) -> Result<Response<ProxyBody>, Failed> {
        let ask = self.ask;
        let stats = &dep.stats;
        dep.metrics.sent();
        if let Some(text) = ask.mock.as_deref().or(dep.cfg.mock_response.as_deref()) {
            stats.settle(reservation, MOCK_TOKENS);
            stats.health.record_success(clock::now_ms());
            dep.metrics.succeeded();
            let m = mock::respond(
                self.endpoint,
                self.req.model(),
                text,
                ask.need.stream,
                trace.call_id.as_str(),
            );
            let mut resp = Response::new(ProxyBody::full(m.body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(m.content_type),
            );
            return Ok(resp);
        }
        // Test hooks fail the attempt without calling the upstream or cooling it down.
        let group = || self.snap.groups[dep.group].name.clone();
        if ask.mock_429 || (ask.mock_500 && primary) {
            stats.release(reservation);
            dep.metrics
                .failed(Failure::Status(if ask.mock_429 { 429 } else { 500 }));
            return Err(Failed::Own(if ask.mock_429 {
                ProxyError::MockRateLimit { group: group() }
            } else {
                ProxyError::MockInternalError { group: group() }
            }));
        }

        let s = &self.snap.settings;
        let stream = ask.need.stream;
        let timeout = ask
            .timeout
            .or(if stream { dep.cfg.stream_timeout } else { None })
            .or(dep.cfg.timeout)
            .unwrap_or(if stream { s.stream_timeout } else { s.timeout })
            .min(NO_TIMEOUT);
        let sent = Instant::now();
        let target = &dep.targets[self.endpoint.index()];
        let outcome = timer::until(
            self.timer,
            sent + timeout,
            self.app.client.send(target, self.build(dep, spare.take())),
        )
        .await;
        trace.upstream += sent.elapsed();
        let (failure, retry_after, failed) = match outcome {
            Some(Ok(resp)) if !retryable(resp.status()) => {
                let failure = Failure::Status(resp.status().as_u16());
                let ok = !failure.counts();
                // A 4xx is no success either, though only some count towards cooldowns.
                let counted = resp.status().as_u16() >= 400;
                if counted {
                    dep.metrics.failed(failure);
                }
                if !ok {
                    self.record(dep, failure, None, group_size);
                }
                let outcome = Outcome { ok, counted };
                return Ok(self.track(resp, dep, reservation, sent, group_size, outcome));
            }
            Some(Ok(resp)) => {
                let retry_after = retry_after(&resp);
                tracing::debug!(deployment = %dep.cfg.id, status = %resp.status(), "retryable status");
                (
                    Failure::Status(resp.status().as_u16()),
                    retry_after,
                    Failed::Upstream(resp),
                )
            }
            Some(Err(e)) => {
                tracing::debug!(deployment = %dep.cfg.id, error = %e, "upstream error");
                (
                    Failure::Connect,
                    None,
                    Failed::Own(ProxyError::UpstreamUnreachable(describe(&e))),
                )
            }
            None => {
                tracing::debug!(deployment = %dep.cfg.id, ?timeout, "upstream timeout");
                let e = ProxyError::UpstreamTimeout {
                    secs: timeout.as_secs_f64(),
                };
                (Failure::Timeout, None, Failed::Own(e))
            }
        };
        stats.release(reservation);
        dep.metrics.failed(failure);
        self.record(dep, failure, retry_after, group_size);
        Err(failed)
    }

    /// Counts a failure against the deployment (which may start its cooldown).
    fn record(
        &self,
        dep: &Deployment,
        failure: Failure,
        retry_after: Option<Duration>,
        group_size: usize,
    ) {
        let s = &self.snap.settings;
        let now = clock::now_ms();
        let until = dep.stats.record_failure(
            failure,
            retry_after,
            dep.cfg.cooldown_time,
            &s.cooldown,
            group_size,
            now,
        );
        if let Some(until) = until {
            dep.metrics.cooled(failure);
            tracing::info!(deployment = %dep.cfg.id, ?failure, cooldown_ms = until - now, "deployment cooling down");
        }
    }

    /// The upstream request: the deployment's key, the client's body with the
    /// deployment's model spliced in (the client sets the URL and `Host`). No client
    /// header is forwarded (the client's key must never reach an upstream).
    fn build(&self, dep: &Deployment, spare: Option<HeaderMap>) -> Request<Spliced> {
        let mut r = Request::new(self.req.spliced(&dep.model_json));
        *r.method_mut() = Method::POST;
        // Once the request is written, sluice's HTTP/1 client reads the answer's
        // headers into this map, and hyper's server reads the client's next
        // request into the map that answer was written from. The first attempt
        // takes the client's request map, emptied, so that a map goes round and a
        // request costs none; later attempts make their own. Either way it is
        // sized here to take the answer's headers and the ones sluice adds without
        // growing (made at its final size, not made small and grown).
        let mut map = spare.unwrap_or_default();
        map.clear();
        map.reserve(headers::ANSWER_CAPACITY);
        *r.headers_mut() = map;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some((name, value)) = &dep.auth {
            h.insert(name.clone(), value.clone());
        }
        r
    }

    /// The upstream's answer, passed through with the call's bookkeeping attached.
    fn track(
        &self,
        resp: Response<upstream::Body>,
        dep: &Arc<Deployment>,
        reservation: Reservation,
        sent: Instant,
        group_size: usize,
        outcome: Outcome,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let sse = parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let call = body::Call {
            dep: dep.clone(),
            reservation,
            sent,
            prompt_estimate: self.ask.need.prompt_tokens,
            policy: self.snap.settings.cooldown,
            group_size,
            ttft_seen: false,
            ok: outcome.ok,
            counted: outcome.counted,
            request: None,
        };
        Response::from_parts(
            parts,
            ProxyBody::Tracked(Box::new(Tracked::new(body, sse, call))),
        )
    }
}

/// How a passed-through answer counts (see `body::Call`).
struct Outcome {
    /// A success for cooldowns and latency.
    ok: bool,
    /// Already counted as a failure in the metrics.
    counted: bool,
}

/// Statuses worth another deployment: overloaded, throttled or broken upstreams.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// The upstream's `Retry-After` in seconds (HTTP dates are ignored).
fn retry_after(resp: &Response<upstream::Body>) -> Option<Duration> {
    let v = resp.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    // Negative, NaN, infinite or beyond a Duration: not a usable wait.
    Duration::try_from_secs_f64(secs).ok()
}

/// Exponential backoff with jitter: 0.5 s doubling up to 8 s, each wait drawn from
/// its upper half, and never under the router's `retry_after`.
fn backoff(n: u32, at_least: Duration) -> Duration {
    let cap = Duration::from_millis(500u64.saturating_mul(1 << n.min(4)).min(8_000));
    cap.mul_f64(0.5 + fastrand::f64() * 0.5).max(at_least)
}

/// A short description of a client error, with its source chain.
fn describe(e: &upstream::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_to_eight() {
        for n in 0..8 {
            let cap = [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000][n as usize];
            let d = backoff(n, Duration::ZERO).as_millis() as u64;
            assert!(d >= cap / 2 && d <= cap, "{n}: {d}");
        }
        assert_eq!(backoff(0, Duration::from_secs(3)), Duration::from_secs(3));
    }
}
