//! One proxied call: resolve the model, then pick a deployment and send, retrying
//! on another deployment after a connect error, a timeout, a 429 or a 5xx, up to
//! `num_retries` times. The final upstream response passes through untouched except
//! for hop-by-hop headers and the `x-litellm-*` headers added here.

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::mock;
use crate::request::Parsed;
use crate::router::Route;
use crate::state::{App, Deployment, Snapshot};
use crate::upstream::Endpoint;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::time::{Duration, Instant};

/// Per-request overrides of the retry count, as LiteLLM reads them.
const NUM_RETRIES_HEADER: &str = "x-litellm-num-retries";

/// How one attempt ended, when it did not produce the final response.
enum Failure {
    /// Sluice-made error (mock 429/500, connect error, timeout).
    Own(ProxyError),
    /// A retryable upstream response; kept only when it is the last attempt.
    Upstream(Response<Incoming>),
}

/// What the response headers report about the call.
struct Trace<'a> {
    /// When sluice received the request.
    start: Instant,
    /// Time spent waiting on upstreams, summed over attempts.
    upstream: Duration,
    /// Attempts made so far.
    attempts: u32,
    /// The deployment of the last attempt.
    deployment: Option<&'a Deployment>,
    /// The group the request resolved to.
    group: Option<&'a HeaderValue>,
    /// `x-litellm-call-id`, also the id of mocked completions.
    call_id: String,
}

/// Proxies one request whose body has been read and scanned.
pub async fn handle(
    app: &App,
    snap: &Snapshot,
    endpoint: Endpoint,
    headers: &HeaderMap,
    req: Parsed,
    start: Instant,
) -> Response<ProxyBody> {
    let mut trace = Trace {
        start,
        upstream: Duration::ZERO,
        attempts: 0,
        deployment: None,
        group: None,
        call_id: call_id(),
    };
    let route = match snap.route(&req.model) {
        Some(r) => r,
        None => return ProxyError::UnknownModel(req.model).into_response(),
    };
    let group = match route {
        Route::Group(g) => &snap.groups[g],
        Route::Deployment(d) => &snap.groups[snap.deployments[d].group],
    };
    trace.group = Some(&group.header);
    let retries = req
        .fields
        .num_retries
        .and_then(|s| s.as_u64(&req.body))
        .or_else(|| {
            headers
                .get(NUM_RETRIES_HEADER)?
                .to_str()
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .map_or(snap.settings.num_retries, |n| n.min(u32::MAX as u64) as u32);
    let stream = req.stream();
    let request_mock = req.fields.mock_response.and_then(|s| s.as_str(&req.body));
    let mock_429 = flag(req.fields.mock_testing_rate_limit_error);
    let mock_500 = flag(req.fields.mock_testing_fallbacks);

    let mut tried: Vec<usize> = Vec::new();
    let mut last: Option<Failure> = None;
    while trace.attempts <= retries {
        let idx = match route {
            Route::Deployment(d) => d,
            Route::Group(_) => match group.pick(&tried) {
                Some(i) => i,
                None => break,
            },
        };
        tried.push(idx);
        let dep = &*snap.deployments[idx];
        trace.attempts += 1;
        trace.deployment = Some(dep);

        if let Some(text) = request_mock.as_deref().or(dep.cfg.mock_response.as_deref()) {
            let m = mock::respond(endpoint, &req.model, text, stream, &trace.call_id);
            let mut resp = Response::new(ProxyBody::full(m.body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(m.content_type),
            );
            trace.decorate(resp.headers_mut());
            return resp;
        }
        if mock_429 || mock_500 {
            let group = group.name.clone();
            let e = if mock_429 {
                ProxyError::MockRateLimit { group }
            } else {
                ProxyError::MockInternalError { group }
            };
            last = Some(Failure::Own(e));
            continue;
        }

        let timeout = req
            .fields
            .timeout
            .and_then(|s| s.as_f64(&req.body))
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(Duration::from_secs_f64)
            .or(if stream { dep.cfg.stream_timeout } else { None })
            .or(dep.cfg.timeout)
            .unwrap_or(if stream {
                snap.settings.stream_timeout
            } else {
                snap.settings.timeout
            });
        let upstream_req = build_request(dep, endpoint, &req);
        let sent = Instant::now();
        let outcome = tokio::time::timeout(timeout, app.client.request(upstream_req)).await;
        trace.upstream += sent.elapsed();
        match outcome {
            Ok(Ok(resp)) if !retryable(resp.status()) || trace.attempts > retries => {
                return passthrough(resp, &trace);
            }
            Ok(Ok(resp)) => {
                tracing::debug!(deployment = %dep.cfg.id, status = %resp.status(), "retryable status");
                last = Some(Failure::Upstream(resp));
            }
            Ok(Err(e)) => {
                tracing::debug!(deployment = %dep.cfg.id, error = %e, "upstream error");
                last = Some(Failure::Own(ProxyError::UpstreamUnreachable(describe(&e))));
            }
            Err(_) => {
                tracing::debug!(deployment = %dep.cfg.id, ?timeout, "upstream timeout");
                last = Some(Failure::Own(ProxyError::UpstreamTimeout {
                    secs: timeout.as_secs_f64(),
                }));
            }
        }
    }
    match last {
        Some(Failure::Upstream(resp)) => passthrough(resp, &trace),
        Some(Failure::Own(e)) => {
            let mut resp = e.into_response();
            trace.decorate(resp.headers_mut());
            resp
        }
        None => ProxyError::NoDeployments {
            group: group.name.clone(),
            retry_after_secs: 1,
        }
        .into_response(),
    }
}

/// True when a body field is JSON `true`.
fn flag(span: Option<crate::scan::Span>) -> bool {
    span.and_then(|s| s.as_bool()).unwrap_or(false)
}

/// Statuses worth another deployment: overloaded, throttled or broken upstreams.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// The upstream request: the deployment's URL and key, the client's body with the
/// deployment's model spliced in. No client header is forwarded (the client's key
/// must never reach an upstream).
fn build_request(
    dep: &Deployment,
    endpoint: Endpoint,
    req: &Parsed,
) -> Request<crate::body::Spliced> {
    let body = req.spliced(&dep.model_json);
    let mut r = Request::new(body);
    *r.method_mut() = Method::POST;
    *r.uri_mut() = dep.urls[endpoint.index()].clone();
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

fn passthrough(resp: Response<Incoming>, trace: &Trace) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    let h = &mut parts.headers;
    // Headers the upstream listed in `Connection` are hop-by-hop too.
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
    trace.decorate(h);
    Response::from_parts(parts, ProxyBody::Upstream(body))
}

impl Trace<'_> {
    /// Adds the `x-litellm-*` headers.
    fn decorate(&self, h: &mut HeaderMap) {
        let total = self.start.elapsed();
        let overhead = total.saturating_sub(self.upstream);
        if let Some(d) = self.deployment {
            h.insert("x-litellm-model-id", d.id_header.clone());
            h.insert("x-litellm-model-api-base", d.api_base_header.clone());
        }
        if let Some(g) = self.group {
            h.insert("x-litellm-model-group", g.clone());
        }
        h.insert(
            "x-litellm-attempted-retries",
            HeaderValue::from(self.attempts.saturating_sub(1)),
        );
        h.insert("x-litellm-attempted-fallbacks", HeaderValue::from(0u32));
        h.insert("x-litellm-response-duration-ms", millis(total));
        h.insert("x-litellm-overhead-duration-ms", millis(overhead));
        if let Ok(v) = HeaderValue::from_str(&self.call_id) {
            h.insert("x-litellm-call-id", v);
        }
        h.insert(
            "x-litellm-version",
            HeaderValue::from_static(crate::VERSION),
        );
    }
}

fn millis(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("{:.3}", d.as_secs_f64() * 1000.0))
        .expect("a decimal number is a valid header value")
}

/// A random UUID (version 4 layout) identifying the call.
fn call_id() -> String {
    let v = fastrand::u128(..) & !(0xf000 << 64) | (0x4000 << 64);
    let v = v & !(0xc000 << 48) | (0x8000 << 48);
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A short description of a client error, with its source chain.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
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
