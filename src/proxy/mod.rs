//! One proxied call: resolve the model, run the retry loop on its group
//! (`attempt`), and when the group fails, its fallback groups in order. The final
//! upstream response passes through untouched except for hop-by-hop headers and the
//! headers added in `headers`.

mod attempt;
pub mod headers;
mod timer;

pub use timer::AttemptTimer;

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::request::{self, Parsed};
use crate::router::pick::Need;
use crate::router::Route;
use crate::state::{App, Snapshot};
use crate::upstream::Endpoint;
use attempt::Failed;
use headers::Trace;
use http::header::{HeaderMap, HeaderName, CONTENT_LENGTH};
use http::Response;
use hyper::body::Incoming;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-request override of the retry count, as LiteLLM reads it.
const NUM_RETRIES_HEADER: HeaderName = HeaderName::from_static("x-litellm-num-retries");

/// The most retries a request may ask for itself, unless the router allows more: a
/// client must not turn one request into thousands of upstream calls.
const MAX_ASKED_RETRIES: u32 = 10;

/// Rough bytes per token for estimates made before the upstream reports usage.
const BYTES_PER_TOKEN: u64 = 4;

/// Everything a request asks for, read once from its body and headers.
pub struct Ask {
    /// Retries after the first attempt, per group.
    pub retries: u32,
    /// Token needs and streaming, for the pick.
    pub need: Need,
    /// The request's own `timeout`.
    pub timeout: Option<Duration>,
    /// `mock_response` from the body.
    pub mock: Option<String>,
    /// `mock_testing_rate_limit_error`: each attempt fails with a 429.
    pub mock_429: bool,
    /// `mock_testing_fallbacks`: the first group fails with a 500.
    pub mock_500: bool,
}

/// What a proxied call needs from the request's head, read before its body so that
/// the head can be let go: its header values share hyper's read buffer, which hyper
/// reuses to watch the connection while the answer is awaited, instead of
/// allocating another.
pub struct Head {
    /// `Content-Length`, when it is a number.
    pub content_length: Option<u64>,
    /// The `x-litellm-num-retries` header, when it is a number.
    pub num_retries: Option<u64>,
}

impl Head {
    /// Reads the head's headers.
    pub fn read(headers: &HeaderMap) -> Head {
        let number = |name| headers.get(name)?.to_str().ok()?.trim().parse().ok();
        Head {
            content_length: number(CONTENT_LENGTH),
            num_retries: number(NUM_RETRIES_HEADER),
        }
    }
}

impl Ask {
    fn new(req: &Parsed, head: &Head, snap: &Snapshot) -> Ask {
        let f = &req.fields;
        let b = &req.body;
        let prompt_bytes: usize = [f.messages, f.prompt, f.input]
            .iter()
            .flatten()
            .map(|s| s.end - s.start)
            .sum();
        let prompt_tokens = (prompt_bytes as u64).div_ceil(BYTES_PER_TOKEN);
        let max_tokens = f
            .max_tokens
            .or(f.max_completion_tokens)
            .and_then(|s| s.as_u64(b))
            .unwrap_or(0);
        let flag = |s: Option<crate::scan::Span>| s.and_then(|s| s.as_bool()).unwrap_or(false);
        Ask {
            retries: f
                .num_retries
                .and_then(|s| s.as_u64(b))
                .or(head.num_retries)
                .map_or(snap.settings.num_retries, |n| {
                    let most = snap.settings.num_retries.max(MAX_ASKED_RETRIES);
                    n.min(u64::from(most)) as u32
                }),
            need: Need {
                prompt_tokens,
                reserve_tokens: prompt_tokens.saturating_add(max_tokens),
                stream: f.stream(),
            },
            timeout: f
                .timeout
                .and_then(|s| s.as_f64(b))
                .filter(|t| *t > 0.0)
                // Longer than a Duration holds (or infinite): no timeout at all.
                .map(|t| Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)),
            mock: f
                .mock_response
                .and_then(|s| s.as_str(b))
                .map(|s| s.into_owned()),
            mock_429: flag(f.mock_testing_rate_limit_error),
            mock_500: flag(f.mock_testing_fallbacks),
        }
    }
}

/// When a request arrived, and its client connection's timer for attempts where
/// it has one (HTTP/1; see `timer.rs`).
pub struct Arrival {
    /// When sluice received the request.
    pub start: Instant,
    /// The timer the connection's attempts share; None on HTTP/2.
    pub timer: Option<Arc<AttemptTimer>>,
}

/// Reads, scans and proxies one request. `client_headers` is the map of the client's
/// request head, read into `head` already: it is reused for the request sent upstream.
///
/// An `async` block, not an `async fn`: an `async fn` keeps each argument twice in
/// its future, as given and as moved into its body (2,352 bytes against 2,192), and
/// hyper moves this future whole into the connection's slot for each request.
pub fn handle(
    app: Arc<App>,
    snap: Arc<Snapshot>,
    endpoint: Endpoint,
    head: Head,
    client_headers: HeaderMap,
    body: Incoming,
    arrival: Arrival,
) -> impl Future<Output = Response<ProxyBody>> + Send {
    let mut spare = Some(client_headers);
    async move {
        let (app, snap) = (&*app, &*snap);
        let s = &snap.settings;
        let read = request::read_body(body, head.content_length, s.max_body_bytes, s.max_body_mb);
        let req = match read.await.and_then(Parsed::new) {
            Ok(p) => p,
            Err(e) => {
                app.metrics
                    .unrouted
                    .record(e.status().as_u16(), arrival.start);
                return e.into_response();
            }
        };
        let (first, pinned) = match snap.route(req.model()) {
            Some(Route::Group(g)) => (g, None),
            Some(Route::Deployment(d)) => (snap.deployments[d].group, Some(d)),
            None => {
                let resp = ProxyError::UnknownModel(req.model().to_owned()).into_response();
                app.metrics
                    .unrouted
                    .record(resp.status().as_u16(), arrival.start);
                return resp;
            }
        };
        let ask = Ask::new(&req, &head, snap);
        let mut trace = Trace::new(arrival.start, first);
        let call = attempt::Call {
            app,
            snap,
            endpoint,
            req: &req,
            ask: &ask,
            timer: arrival.timer.as_deref(),
        };

        let mut failure = match call
            .group(first, pinned, true, &mut trace, &mut spare)
            .await
        {
            Ok(resp) => return headers::finish(resp, &trace, snap),
            Err(f) => f,
        };
        // Fallbacks: the chain of the group first asked for (a request pinned to one
        // deployment has none); context-window failures take their own chain.
        let chain: &[usize] = match (&failure, pinned) {
            (_, Some(_)) => &[],
            (Failed::ContextWindow, _) => &snap.groups[first].context_fallbacks,
            _ => &snap.groups[first].fallbacks,
        };
        for &group in chain {
            if !failure.falls_back() {
                break;
            }
            trace.fallbacks += 1;
            trace.group = group;
            trace.deployment = None;
            trace.retries = 0;
            // Boxed: a second group's future inline would make every connection's
            // request future larger, for the few requests that fall back.
            failure = match Box::pin(call.group(group, None, false, &mut trace, &mut spare)).await {
                Ok(resp) => return headers::finish(resp, &trace, snap),
                Err(f) => f,
            };
        }
        headers::finish(failure.into_response(snap, &trace), &trace, snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_keeps_numbers_and_drops_anything_else() {
        let head = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            let head = Head::read(&h);
            (head.content_length, head.num_retries)
        };
        assert_eq!(head(&[]), (None, None));
        assert_eq!(
            head(&[("content-length", "42"), ("x-litellm-num-retries", " 2 ")]),
            (Some(42), Some(2))
        );
        // Not a number, negative, or past u64: as if the header were absent, so the
        // router's num_retries applies.
        for bad in ["two", "-1", "18446744073709551616", ""] {
            assert_eq!(
                head(&[("x-litellm-num-retries", bad)]),
                (None, None),
                "{bad}"
            );
        }
    }
}
