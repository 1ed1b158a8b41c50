//! The accept loop and the request handler.

use super::body::FakeBody;
use super::json::{self, Api, StreamPlan};
use super::rate::RpmLimiter;
use super::request::Fields;
use super::{FakeConfig, FakeStats, Recorded};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
const X_FAKE_LLM_ID: HeaderName = HeaderName::from_static("x-fake-llm-id");
const RATE_LIMITED: &[u8] = br#"{"detail":"Rate Limited!"}"#;
const HEALTH: &[u8] = br#"{"status":"ok"}"#;
/// Model echoed when a request names none.
const DEFAULT_MODEL: &str = "fake-model";
/// The headers an answer from OpenAI's API carries besides `content-type`,
/// `content-length` and `date`: those its API reference documents (request id,
/// organization, processing time, version, rate limits) and those of the CDN in
/// front of it. Values are fixed; only the names and their number matter to a
/// benchmark of the proxy reading them.
const OPENAI_HEADERS: [(&str, &str); 18] = [
    ("access-control-expose-headers", "X-Request-ID"),
    ("openai-organization", "org-fake"),
    ("openai-processing-ms", "180"),
    ("openai-project", "proj_fake"),
    ("openai-version", "2020-10-01"),
    ("x-ratelimit-limit-requests", "10000"),
    ("x-ratelimit-limit-tokens", "2000000"),
    ("x-ratelimit-remaining-requests", "9999"),
    ("x-ratelimit-remaining-tokens", "1999950"),
    ("x-ratelimit-reset-requests", "6ms"),
    ("x-ratelimit-reset-tokens", "1ms"),
    ("x-request-id", "req_0123456789abcdef0123456789abcdef"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains; preload",
    ),
    ("cf-cache-status", "DYNAMIC"),
    ("x-content-type-options", "nosniff"),
    ("server", "cloudflare"),
    ("cf-ray", "0123456789abcdef-AMS"),
    ("alt-svc", "h3=\":443\"; ma=86400"),
];

/// Everything a request handler needs, built once per server from its config.
pub(crate) struct Shared {
    /// Counters, shared with the [`super::FakeLlm`] handle or `serve`'s caller.
    pub(crate) stats: Arc<FakeStats>,
    /// Requests received, when `record` is on.
    pub(crate) recorded: Option<Mutex<Vec<Recorded>>>,
    /// `x-fake-llm-id` value, cloned into every response.
    id: HeaderValue,
    /// [`OPENAI_HEADERS`], when `openai_headers` is on, added to every response.
    extra: Vec<(HeaderName, HeaderValue)>,
    /// Minimum (or fixed) delay before answering.
    latency: Duration,
    /// Upper bound of a random delay, only when above `latency`.
    latency_max: Option<Duration>,
    /// The `rpm` window, when limited.
    rpm: Option<RpmLimiter>,
    /// `Retry-After` value for 429s.
    retry_after: Option<HeaderValue>,
    /// Fraction of requests answered with `error_status`.
    error_rate: f64,
    /// Status of injected errors.
    error_status: StatusCode,
    /// Pre-built body of injected errors.
    error_body: Bytes,
    /// Delay between streamed content chunks.
    chunk_delay: Duration,
    /// Pre-built event tails of chat streams.
    chat_plan: Arc<StreamPlan>,
    /// Pre-built event tails of text-completion streams.
    text_plan: Arc<StreamPlan>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Shared {
    pub(crate) fn new(cfg: &FakeConfig, stats: Arc<FakeStats>) -> io::Result<Shared> {
        let id = HeaderValue::from_str(&cfg.id)
            .map_err(|_| invalid(format!("id {:?} is not a valid header value", cfg.id)))?;
        let error_status = StatusCode::from_u16(cfg.error_status)
            .map_err(|_| invalid(format!("error_status {} is not valid", cfg.error_status)))?;
        if !(0.0..=1.0).contains(&cfg.error_rate) {
            return Err(invalid(format!(
                "error_rate {} is not in 0..=1",
                cfg.error_rate
            )));
        }
        let kind = if error_status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        let error_body = json::error_body(
            &format!("fake-llm injected error (status {})", error_status.as_u16()),
            kind,
        );
        Ok(Shared {
            stats,
            recorded: cfg.record.then(|| Mutex::new(Vec::new())),
            id,
            extra: if cfg.openai_headers {
                OPENAI_HEADERS
                    .iter()
                    .map(|&(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
                    .collect()
            } else {
                Vec::new()
            },
            latency: cfg.latency,
            latency_max: cfg.latency_max.filter(|max| *max > cfg.latency),
            rpm: cfg.rpm.map(RpmLimiter::new),
            retry_after: cfg.retry_after.map(HeaderValue::from),
            error_rate: cfg.error_rate,
            error_status,
            error_body,
            chunk_delay: cfg.chunk_delay,
            chat_plan: Arc::new(StreamPlan::new(Api::Chat, cfg.stream_chunks)),
            text_plan: Arc::new(StreamPlan::new(Api::Text, cfg.stream_chunks)),
        })
    }

    fn latency(&self) -> Duration {
        match self.latency_max {
            Some(max) => {
                let (lo, hi) = (self.latency.as_nanos() as u64, max.as_nanos() as u64);
                Duration::from_nanos(fastrand::u64(lo..=hi))
            }
            None => self.latency,
        }
    }
}

/// Counts a request as in flight while alive; travels inside the response
/// body so streams count until their last byte.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.stats.leave();
    }
}

type Body = FakeBody<InFlight>;

/// Accepts connections until `shutdown` completes, then closes the listener
/// and every open connection.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Keep idle keep-alive connections open for as long as the client wants:
    // a fake that closes pooled connections would cause spurious proxy errors.
    builder.http1().keep_alive(true).header_read_timeout(None);
    let builder = Arc::new(builder);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.stats.connections.fetch_add(1, Relaxed);
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let builder = Arc::clone(&builder);
                    conns.spawn(async move {
                        let svc = service_fn(move |req| handle(Arc::clone(&shared), req));
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
                // Out of file descriptors or a connection reset before accept: back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    shared.stats.requests.fetch_add(1, Relaxed);
    shared.stats.enter();
    let guard = InFlight(shared);
    let mut resp = respond(&guard.0, req).await;
    if resp.status().is_success() {
        guard.0.stats.ok.fetch_add(1, Relaxed);
    }
    let headers = resp.headers_mut();
    headers.insert(X_FAKE_LLM_ID, guard.0.id.clone());
    for (name, value) in &guard.0.extra {
        headers.append(name.clone(), value.clone());
    }
    resp.body_mut().set_guard(guard);
    Ok(resp)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Api(Api),
    Health,
    NotFound,
}

fn route(path: &str) -> Route {
    match path {
        "/chat/completions" | "/v1/chat/completions" => Route::Api(Api::Chat),
        "/completions" | "/v1/completions" => Route::Api(Api::Text),
        "/embeddings" | "/v1/embeddings" => Route::Api(Api::Embed),
        "/health" => Route::Health,
        _ => match path
            .strip_prefix("/openai/deployments/")
            .and_then(|rest| rest.split_once('/'))
        {
            Some((name, op)) if !name.is_empty() => match op {
                "chat/completions" => Route::Api(Api::Chat),
                "completions" => Route::Api(Api::Text),
                "embeddings" => Route::Api(Api::Embed),
                _ => Route::NotFound,
            },
            _ => Route::NotFound,
        },
    }
}

fn response(status: StatusCode, content_type: HeaderValue, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    resp
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    response(status, JSON, FakeBody::full(body))
}

fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, json::error_body(message, "invalid_request_error"))
}

async fn respond(sh: &Shared, req: Request<Incoming>) -> Response<Body> {
    let route = route(req.uri().path());
    let allowed = match route {
        Route::Api(_) => Method::POST,
        Route::Health => Method::GET,
        Route::NotFound => Method::OPTIONS,
    };
    let method_ok = route == Route::NotFound || *req.method() == allowed;
    let (parts, incoming) = req.into_parts();
    let body = if sh.recorded.is_some() || (method_ok && matches!(route, Route::Api(_))) {
        match incoming.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("could not read the request body: {e}"),
                )
            }
        }
    } else {
        Bytes::new()
    };
    if let Some(recorded) = &sh.recorded {
        let entry = Recorded {
            method: parts.method.as_str().to_owned(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            headers: parts.headers,
            body: body.clone(),
        };
        recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }
    match route {
        Route::NotFound => error_response(
            StatusCode::NOT_FOUND,
            &format!("Invalid URL ({} {})", parts.method, parts.uri.path()),
        ),
        _ if !method_ok => {
            let mut resp = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!(
                    "Method {} not allowed on {}",
                    parts.method,
                    parts.uri.path()
                ),
            );
            let allow = if allowed == Method::GET {
                "GET"
            } else {
                "POST"
            };
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            resp
        }
        Route::Health => json_response(StatusCode::OK, Bytes::from_static(HEALTH)),
        Route::Api(api) => answer(sh, api, &body).await,
    }
}

fn with_retry_after(sh: &Shared, mut resp: Response<Body>) -> Response<Body> {
    if let (StatusCode::TOO_MANY_REQUESTS, Some(value)) = (resp.status(), &sh.retry_after) {
        resp.headers_mut().insert(RETRY_AFTER, value.clone());
    }
    resp
}

/// An LLM endpoint: rate limit, latency, error injection, then the answer.
async fn answer(sh: &Shared, api: Api, body: &[u8]) -> Response<Body> {
    if let Some(rpm) = &sh.rpm {
        if !rpm.try_acquire(json::unix_now() / 60) {
            sh.stats.rate_limited.fetch_add(1, Relaxed);
            let resp = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                Bytes::from_static(RATE_LIMITED),
            );
            return with_retry_after(sh, resp);
        }
    }
    let latency = sh.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if sh.error_rate > 0.0 && fastrand::f64() < sh.error_rate {
        sh.stats.errors.fetch_add(1, Relaxed);
        return with_retry_after(sh, json_response(sh.error_status, sh.error_body.clone()));
    }
    let fields: Fields<'_> = match serde_json::from_slice(body) {
        Ok(fields) => fields,
        Err(e) => {
            let msg = format!("We could not parse the JSON body of your request. ({e})");
            return error_response(StatusCode::BAD_REQUEST, &msg);
        }
    };
    let model = fields.model.as_ref().map_or(DEFAULT_MODEL, |m| m.as_str());
    let plan = match api {
        Api::Chat if fields.stream == Some(true) => &sh.chat_plan,
        Api::Text if fields.stream == Some(true) => &sh.text_plan,
        _ => return json_response(StatusCode::OK, json::full_body(api, model)),
    };
    let include_usage = fields
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let body = FakeBody::sse(
        json::chunk_prefix(api, model),
        Arc::clone(plan),
        include_usage,
        sh.chunk_delay,
    );
    response(StatusCode::OK, EVENT_STREAM, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/v1/chat/completions"), Route::Api(Api::Chat));
        assert_eq!(
            route("/openai/deployments/gpt-4o/chat/completions"),
            Route::Api(Api::Chat)
        );
        assert_eq!(
            route("/openai/deployments/x/completions"),
            Route::Api(Api::Text)
        );
        assert_eq!(
            route("/openai/deployments/x/embeddings"),
            Route::Api(Api::Embed)
        );
        assert_eq!(route("/openai/deployments//embeddings"), Route::NotFound);
        assert_eq!(route("/openai/deployments/x/y/embeddings"), Route::NotFound);
        assert_eq!(route("/v2/chat/completions"), Route::NotFound);
        assert_eq!(route("/health"), Route::Health);
    }
}
