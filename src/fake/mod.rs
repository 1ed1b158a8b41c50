//! `fake-llm`: a fake OpenAI-compatible upstream for sluice's integration
//! tests (as a library, [`FakeLlm`]) and benchmarks (the `fake-llm` binary,
//! which runs [`serve`]).
//!
//! Endpoints, each also under `/v1/...` and Azure's
//! `/openai/deployments/{name}/...`:
//! - `POST /chat/completions` — a canned chat completion echoing the request's
//!   `model`; with `"stream": true`, server-sent events: `stream_chunks`
//!   content chunks (the first also carries `role`), `chunk_delay` apart, then
//!   a chunk with `finish_reason: "stop"`, then (if
//!   `stream_options.include_usage`) a `choices: []` chunk with `usage`, then
//!   `data: [DONE]`.
//! - `POST /completions` — the same for legacy text completions.
//! - `POST /embeddings` — one 8-dimensional embedding.
//! - `GET /health` — `{"status":"ok"}`.
//!
//! Any other path gets 404, a wrong method 405, a body that is not JSON 400,
//! all with an OpenAI-shaped error body. Every response carries
//! `x-fake-llm-id: <id>` so a test can tell instances apart.
//!
//! For an LLM endpoint the order is: the `rpm` limit (429
//! `{"detail":"Rate Limited!"}`, at once), then the latency, then the
//! injected error (`error_rate`), then body parsing and the answer.

mod body;
mod json;
mod rate;
mod request;
mod server;
mod stats;

pub use stats::FakeStats;

use bytes::Bytes;
use server::Shared;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How a fake server behaves. `FakeConfig { rpm: Some(3), ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Address to bind, an IP or a host name; tests keep the loopback default.
    pub host: String,
    /// Port to bind; 0 (the default here, unlike the binary's 8080) picks a
    /// free one, so tests can run many servers side by side.
    pub port: u16,
    /// Value of the `x-fake-llm-id` response header, so a test can tell which
    /// upstream answered.
    pub id: String,
    /// Delay before answering an LLM endpoint, to simulate a slow upstream.
    pub latency: Duration,
    /// If set and above `latency`, each delay is drawn uniformly between the
    /// two, to simulate jittery upstreams.
    pub latency_max: Option<Duration>,
    /// Requests per calendar minute (UTC, fixed window, all clients) answered
    /// normally; beyond it 429, to exercise the proxy's rate-limit handling.
    pub rpm: Option<u64>,
    /// Seconds sent in a `Retry-After` header on every 429, to test that the
    /// proxy honours it.
    pub retry_after: Option<u64>,
    /// Content chunks in a streamed answer, to size streams in tests and
    /// benchmarks.
    pub stream_chunks: usize,
    /// Delay between two content chunks, to simulate token generation.
    pub chunk_delay: Duration,
    /// Fraction (0.0–1.0) of LLM requests answered with `error_status`,
    /// decided at random per request, to exercise retries and failover.
    pub error_rate: f64,
    /// Status of the injected errors.
    pub error_status: u16,
    /// Add the eighteen headers an OpenAI answer carries (request id, rate
    /// limits, CDN headers, ...) to every answer, so that a benchmark reads as
    /// many header lines through the proxy as a real upstream sends.
    pub openai_headers: bool,
    /// Keep every request received, readable with [`FakeLlm::recorded`], so a
    /// test can check exactly what the proxy sent upstream.
    pub record: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            host: "127.0.0.1".to_owned(),
            port: 0,
            id: "fake".to_owned(),
            latency: Duration::ZERO,
            latency_max: None,
            rpm: None,
            retry_after: None,
            stream_chunks: 5,
            chunk_delay: Duration::ZERO,
            error_rate: 0.0,
            error_status: 500,
            openai_headers: false,
            record: false,
        }
    }
}

/// One request as the fake server received it (kept when `record` is on).
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request method, e.g. `POST`, to check what the proxy used.
    pub method: String,
    /// Path and query, e.g. `/openai/deployments/x/chat/completions?api-version=1`,
    /// to check how the proxy rewrote the URL.
    pub path_and_query: String,
    /// All request headers, to check auth and forwarded headers.
    pub headers: http::HeaderMap,
    /// The request body byte for byte, to check what the proxy forwarded.
    pub body: Bytes,
}

/// A running fake server. Dropping it (or [`FakeLlm::shutdown`]) stops the
/// accept loop and closes every open connection.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeLlm {
    /// Binds `cfg.host:cfg.port`, spawns the server on the current tokio
    /// runtime and returns once it is listening.
    pub async fn start(cfg: FakeConfig) -> io::Result<FakeLlm> {
        let listener = TcpListener::bind((cfg.host.as_str(), cfg.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(&cfg, Arc::default())?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, Arc::clone(&shared), async {
            let _ = stopped.await;
        }));
        Ok(FakeLlm {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address (with the real port when `port` was 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Live counters of this server.
    pub fn stats(&self) -> &Arc<FakeStats> {
        &self.shared.stats
    }

    /// Every request received so far, in arrival order; empty unless
    /// `cfg.record` was set.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.recorded.as_ref().map_or_else(Vec::new, |r| {
            r.lock().unwrap_or_else(|e| e.into_inner()).clone()
        })
    }

    /// Forgets the requests recorded so far.
    pub fn clear_recorded(&self) {
        if let Some(r) = &self.shared.recorded {
            r.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Stops accepting, closes every open connection and waits until the
    /// listening socket is closed (so new connections are refused).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl std::fmt::Debug for FakeLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLlm")
            .field("addr", &self.addr)
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Runs a fake server on `listener` until `shutdown` completes, then closes
/// the listener and every open connection. Counters go to `stats`. Requests
/// are recorded only through [`FakeLlm`]; `cfg.host`/`cfg.port` are ignored.
/// Fails at once if `cfg` is invalid (bad `id` header value, `error_status`
/// or `error_rate`).
pub async fn serve(
    listener: TcpListener,
    cfg: FakeConfig,
    stats: Arc<FakeStats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let cfg = FakeConfig {
        record: false,
        ..cfg
    };
    let shared = Arc::new(Shared::new(&cfg, stats)?);
    server::run(listener, shared, shutdown).await;
    Ok(())
}
