//! Path and method -> handler, and authentication. Every answer sluice makes itself
//! goes out through `ProxyError` or `info`, so shapes stay consistent.

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::health;
use crate::info;
use crate::metrics;
use crate::proxy::{self, AttemptTimer};
use crate::state::{App, Snapshot};
use crate::upstream::Endpoint;
use futures_util::future::{self, Either, FutureExt, Ready};
use http::header::{self, HeaderMap};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use subtle::ConstantTimeEq;

/// What a path serves.
#[derive(Clone, Copy)]
enum Target {
    Proxy(Endpoint),
    Models,
    ModelInfo,
    ModelGroupInfo,
    Liveness,
    Readiness,
    Health,
    Metrics,
}

impl Target {
    fn of(path: &str) -> Option<Target> {
        Some(match path {
            "/chat/completions" | "/v1/chat/completions" => {
                Target::Proxy(Endpoint::ChatCompletions)
            }
            "/completions" | "/v1/completions" => Target::Proxy(Endpoint::Completions),
            "/embeddings" | "/v1/embeddings" => Target::Proxy(Endpoint::Embeddings),
            "/models" | "/v1/models" => Target::Models,
            "/model/info" | "/v1/model/info" => Target::ModelInfo,
            "/model_group/info" | "/v1/model_group/info" => Target::ModelGroupInfo,
            "/health/liveliness" | "/health/liveness" => Target::Liveness,
            "/health/readiness" => Target::Readiness,
            "/health" => Target::Health,
            "/metrics" | "/metrics/" => Target::Metrics,
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Target::Proxy(_) => Method::POST,
            _ => Method::GET,
        }
    }

    /// Health probes and metrics answer without a key, as in LiteLLM.
    fn open(self) -> bool {
        matches!(self, Target::Liveness | Target::Readiness | Target::Metrics)
    }
}

/// The hyper service: never fails, every problem becomes a response. Each request
/// is logged at debug level, once its response head is ready. `timer` is the
/// connection's timer for attempts, on HTTP/1 (see `proxy/timer.rs`).
///
/// Everything but a proxied call is answered before this returns; a proxied call is
/// one future, with no `async fn` layers around it. hyper keeps the future of each
/// connection's open request in a box the size of that future, and every `async fn`
/// layer would hold its own copy of the request in it (perf/RESULTS.md, round
/// eleven).
pub fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    timer: Option<Arc<AttemptTimer>>,
) -> impl Future<Output = Response<ProxyBody>> + Send {
    let start = Instant::now();
    // Copied only when the line will be written: no work per request otherwise.
    let logged = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (req.method().clone(), req.uri().path().to_string()));
    respond(app, req, start, timer).map(move |resp| {
        if let Some((method, path)) = logged {
            tracing::debug!(
                %method,
                path,
                status = resp.status().as_u16(),
                deployment = resp.headers().get("x-litellm-model-id").and_then(|v| v.to_str().ok()),
                ms = start.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
        }
        resp
    })
}

/// Routes and authenticates a request: the answer itself, or the proxied call that
/// will make it.
fn respond(
    app: Arc<App>,
    req: Request<Incoming>,
    start: Instant,
    timer: Option<Arc<AttemptTimer>>,
) -> Either<Ready<Response<ProxyBody>>, impl Future<Output = Response<ProxyBody>> + Send> {
    let now = |resp| Either::Left(future::ready(resp));
    let snap = app.snapshot.load_full();
    let Some(target) = Target::of(req.uri().path()) else {
        return now(ProxyError::NotFound(req.uri().path().to_string()).into_response());
    };
    let method = req.method();
    let is_head = method == Method::HEAD && target.method() == Method::GET;
    if method != target.method() && !is_head {
        let allow = if target.method() == Method::POST {
            "POST"
        } else {
            "GET, HEAD"
        };
        return now(ProxyError::MethodNotAllowed { allow }.into_response());
    }
    if !target.open() {
        if let Err(e) = authorize(&snap, req.headers()) {
            if let Target::Proxy(_) = target {
                app.metrics.unrouted.record(e.status().as_u16(), start);
            }
            return now(e.into_response());
        }
    }
    let resp = match target {
        Target::Proxy(endpoint) => {
            let (parts, body) = req.into_parts();
            // What the call needs from the head is read here; the rest of the head
            // is let go, and its header map kept for the upstream request.
            let head = proxy::Head::read(&parts.headers);
            return Either::Right(proxy::handle(
                app,
                snap,
                endpoint,
                head,
                parts.headers,
                body,
                proxy::Arrival { start, timer },
            ));
        }
        Target::Models => info::models(&snap),
        Target::ModelInfo => info::model_info(&snap),
        Target::ModelGroupInfo => info::model_group_info(&snap),
        Target::Liveness => info::liveness(),
        Target::Readiness => info::readiness(&app, &snap),
        Target::Health => health::health(&snap),
        Target::Metrics => {
            let mut r = Response::new(ProxyBody::full(metrics::render(&app, &snap)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            r
        }
    };
    now(resp)
}

/// Headers a client key may arrive in, in LiteLLM's order of preference.
const KEY_HEADERS: [&str; 3] = ["x-litellm-api-key", "api-key", "x-api-key"];

/// Checks the client's key against the master key (if one is set) in constant time.
fn authorize(snap: &Snapshot, headers: &HeaderMap) -> Result<(), ProxyError> {
    let Some(expected) = &snap.settings.master_key_sha else {
        return Ok(());
    };
    let key = client_key(headers).ok_or(ProxyError::NoApiKey)?;
    // Comparing digests keeps both the time and the length of the key secret.
    let got: [u8; 32] = Sha256::digest(key).into();
    if bool::from(got.ct_eq(expected)) {
        Ok(())
    } else {
        Err(ProxyError::InvalidApiKey)
    }
}

/// The key a client sent: `Authorization: Bearer <key>` or one of `KEY_HEADERS`.
fn client_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.as_bytes();
        let key = match v.get(..7) {
            Some(p) if p.eq_ignore_ascii_case(b"bearer ") => &v[7..],
            _ => v,
        };
        let key = key.trim_ascii();
        if !key.is_empty() {
            return Some(key);
        }
    }
    KEY_HEADERS
        .iter()
        .filter_map(|h| headers.get(*h))
        .map(|v| v.as_bytes().trim_ascii())
        .find(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_comes_from_any_accepted_header() {
        let mut h = HeaderMap::new();
        assert_eq!(client_key(&h), None);
        h.insert("x-api-key", "k3".parse().unwrap());
        assert_eq!(client_key(&h), Some(&b"k3"[..]));
        h.insert("api-key", "k2".parse().unwrap());
        assert_eq!(client_key(&h), Some(&b"k2"[..]));
        h.insert(header::AUTHORIZATION, "bearer  k1".parse().unwrap());
        assert_eq!(client_key(&h), Some(&b"k1"[..]));
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(client_key(&h), Some(&b"k2"[..]));
    }
}
