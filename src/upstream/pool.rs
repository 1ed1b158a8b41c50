//! Upstream connections: one [`Origin`] per scheme and authority, holding its idle
//! HTTP/1 connections (or its one shared HTTP/2 connection), and the [`Client`]
//! that checks them out, dials new ones, and sends requests on them.
//!
//! Each deployment holds its origins (found once, at config load), so a request
//! never hashes a pool key. A connection goes back to its origin when the answer's
//! body ends, straight from the body's last poll. A request that finds no idle
//! connection dials one and keeps it: it never races the dial against a
//! connection coming back, which would leave a spare connection behind each time
//! the other side won. The first requests to an HTTPS origin wait for one dial to
//! learn whether it speaks HTTP/2 (shared) or HTTP/1.1 (one connection each).

use super::body::Body;
use super::counted::CountedIo;
use crate::body::Spliced;
use crate::metrics::PoolMetrics;
use http::header::{self, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::client::conn::{http1, http2};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};
use tower_service::Service;

thread_local! {
    /// The worker this thread is (0 unless [`set_worker`] said otherwise).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Tells the pool that this thread is worker `i`, which keeps the connections it
/// dials to itself.
pub fn set_worker(i: usize) {
    WORKER.set(i);
}

/// Idle lists per origin: one per CPU (more workers than that share them).
fn shards() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// An idle connection older than this is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How often each origin drops its closed and expired idle connections.
const REAP_EVERY: Duration = Duration::from_secs(30);

/// One upstream scheme and authority, with its idle connections.
pub struct Origin {
    /// `scheme://authority/`: what the connector dials.
    base: Uri,
    /// The `Host` header of HTTP/1 requests: the authority without a default port.
    host: HeaderValue,
    /// Idle HTTP/1 connections, a list per worker thread (see [`set_worker`]): a
    /// connection's task runs on the thread that dialled it, and goes back to that
    /// thread's list, so a request never waits on another thread's connection. In
    /// each list the most recently used is last and is taken first, so connections
    /// beyond what the load needs age out.
    idle: Box<[Mutex<Vec<Idle>>]>,
    /// The HTTP/2 connection every request shares, when the upstream chose HTTP/2.
    h2: Mutex<Option<http2::SendRequest<Spliced>>>,
    /// Set once the upstream has chosen HTTP/2: from then on one request at a time
    /// dials (holding `one_dial`), and the others wait to share its connection.
    speaks_h2: AtomicBool,
    /// Held by the one request dialling while others wait for its connection: the
    /// shared HTTP/2 one, or the first, which tells the protocol (`probed`).
    one_dial: tokio::sync::Mutex<()>,
    /// Whether a dial has ended, so that the protocol is known: an HTTPS upstream
    /// picks HTTP/2 or HTTP/1.1 in its TLS handshake. Until then requests dial one
    /// at a time (holding `one_dial`). Plain HTTP is HTTP/1.1 from the start.
    probed: AtomicBool,
    /// Whether the task that drops expired idle connections runs.
    reaping: AtomicBool,
}

/// An idle HTTP/1 connection.
struct Idle {
    conn: http1::SendRequest<Spliced>,
    since: Instant,
}

impl Origin {
    /// The origin of an absolute `url` (its path is ignored).
    pub fn new(url: &Uri) -> Result<Origin, String> {
        let (Some(scheme), Some(authority)) = (url.scheme(), url.authority()) else {
            return Err(format!("{url} is not an absolute URL"));
        };
        let base = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| format!("{url}: {e}"))?;
        let host = host_header(url).ok_or_else(|| format!("{url} has no usable host"))?;
        Ok(Origin {
            base,
            host,
            idle: (0..shards()).map(|_| Mutex::default()).collect(),
            h2: Mutex::default(),
            speaks_h2: AtomicBool::new(false),
            one_dial: tokio::sync::Mutex::new(()),
            probed: AtomicBool::new(scheme != &Scheme::HTTPS),
            reaping: AtomicBool::new(false),
        })
    }

    /// `scheme://authority`, which names the origin (for sharing it between
    /// deployments and across reloads).
    pub fn key(url: &Uri) -> String {
        format!(
            "{}://{}",
            url.scheme_str().unwrap_or_default(),
            url.authority().map_or("", |a| a.as_str())
        )
    }

    /// The shared HTTP/2 connection, unless there is none or it closed.
    fn h2(&self) -> Option<http2::SendRequest<Spliced>> {
        let mut h2 = lock(&self.h2);
        if h2.as_ref().is_some_and(|c| c.is_closed()) {
            *h2 = None;
        }
        h2.clone()
    }

    /// The most recently used idle HTTP/1 connection that has not expired.
    fn checkout(&self) -> Option<http1::SendRequest<Spliced>> {
        let mut idle = self.own_idle();
        while let Some(i) = idle.pop() {
            if i.conn.is_closed() {
                continue;
            }
            if i.since.elapsed() >= IDLE_TIMEOUT {
                // The rest are older still.
                idle.clear();
                return None;
            }
            return Some(i.conn);
        }
        None
    }

    /// Puts a connection whose answer has ended back.
    pub(super) fn checkin(&self, conn: http1::SendRequest<Spliced>) {
        let since = Instant::now();
        self.own_idle().push(Idle { conn, since });
    }

    /// Drops closed and expired idle connections, and a closed HTTP/2 connection.
    fn reap(&self) {
        for idle in &self.idle {
            lock(idle).retain(|i| !i.conn.is_closed() && i.since.elapsed() < IDLE_TIMEOUT);
        }
        self.h2();
    }

    /// Idle HTTP/1 connections now (for tests).
    pub fn idle_count(&self) -> usize {
        self.idle.iter().map(|idle| lock(idle).len()).sum()
    }

    /// This worker thread's idle connections.
    fn own_idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        lock(&self.idle[WORKER.get() % self.idle.len()])
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin").field("base", &self.base).finish()
    }
}

/// Locks `m`; a panic elsewhere while holding it leaves nothing half-done here.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops `origin`'s expired connections every `REAP_EVERY` until it is gone.
async fn reap(origin: Weak<Origin>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        match origin.upgrade() {
            Some(o) => o.reap(),
            None => return,
        }
    }
}

/// The `Host` header for requests to `url`: the host, and the port unless it is
/// the scheme's default.
pub fn host_header(url: &Uri) -> Option<HeaderValue> {
    let host = url.host()?;
    let default = if url.scheme() == Some(&Scheme::HTTPS) {
        443
    } else {
        80
    };
    let value = match url.port_u16() {
        Some(port) if port != default => HeaderValue::try_from(format!("{host}:{port}")),
        _ => HeaderValue::from_str(host),
    };
    value.ok()
}

/// Where one endpoint of a deployment sends its requests.
#[derive(Debug, Clone)]
pub struct Target {
    /// The absolute URL (HTTP/2 requests carry it; shown in logs).
    pub url: Uri,
    /// The path and query alone: the request target of HTTP/1 requests.
    path: Uri,
    /// The connections to its scheme and authority.
    pub origin: Arc<Origin>,
}

impl Target {
    /// A target for `url` on `origin` (which must be `url`'s origin).
    pub fn new(url: Uri, origin: Arc<Origin>) -> Target {
        let path = url
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Target {
            path: Uri::from(path),
            url,
            origin,
        }
    }

    /// `req` as an HTTP/1 request to this target.
    fn h1(&self, mut req: Request<Spliced>) -> Request<Spliced> {
        *req.uri_mut() = self.path.clone();
        req.headers_mut()
            .insert(header::HOST, self.origin.host.clone());
        req
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Error {
    /// No connection: DNS, TCP, TLS.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed during the HTTP handshake or the exchange.
    Http(hyper::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(_) => f.write_str("connect error"),
            Error::Http(_) => f.write_str("upstream connection error"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) => Some(e.as_ref()),
            Error::Http(e) => Some(e),
        }
    }
}

/// The connector: TCP, then TLS for https (HTTP/2 when the server picks it by ALPN).
type Connector = HttpsConnector<HttpConnector>;

/// Dials upstreams and sends requests over their origins' connections.
pub struct Client {
    connector: Connector,
    pool: Arc<PoolMetrics>,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl Client {
    /// A client dialling with `connector`, counting connections into `pool`.
    pub fn new(connector: Connector, pool: Arc<PoolMetrics>) -> Client {
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new());
        Client {
            connector,
            pool,
            h1: http1::Builder::new(),
            h2,
        }
    }

    /// Sends `req` to `target` (the method, headers and body are the caller's; the
    /// URI and, for HTTP/1, `Host` are set here). A request that finds its idle
    /// connection closed moves on to the next one, then to a new connection.
    ///
    /// Only the path of a request reusing an HTTP/1 connection is inline: every
    /// connection's task holds its request's future, so whatever else is inline
    /// (a TLS handshake's state is kilobytes) would cost memory per connection.
    /// The other paths are boxed, an allocation next to a dial or an HTTP/2 stream.
    pub async fn send(
        &self,
        target: &Target,
        mut req: Request<Spliced>,
    ) -> Result<Response<Body>, Error> {
        let origin = &target.origin;
        if origin.speaks_h2.load(Ordering::Relaxed) {
            return Box::pin(self.send_h2(target, req, None)).await;
        }
        while let Some(mut conn) = origin.checkout() {
            if conn.ready().await.is_err() {
                continue;
            }
            req = target.h1(req);
            match conn.try_send_request(req).await {
                Ok(resp) => return Ok(Body::pooled(resp, conn, origin)),
                Err(mut e) => match e.take_message() {
                    // Closed before the request was written: it is whole, try another.
                    Some(unsent) => req = unsent,
                    None => return Err(Error::Http(e.into_error())),
                },
            }
        }
        if !origin.probed.load(Ordering::Acquire) {
            return Box::pin(self.probe_and_send(target, req)).await;
        }
        Box::pin(self.dial_and_send(target, req)).await
    }

    /// Sends the first requests to an HTTPS origin, whose protocol only a dial
    /// tells: one request dials while the others wait. Then, if the upstream chose
    /// HTTP/2, they share its connection; otherwise each dials its own, side by
    /// side. A burst before the first answer would otherwise open a TLS connection
    /// per request, to keep one of them if the upstream speaks HTTP/2. Only the
    /// first dial waits: if it fails, the waiting requests dial on their own.
    async fn probe_and_send(
        &self,
        target: &Target,
        req: Request<Spliced>,
    ) -> Result<Response<Body>, Error> {
        let origin = &target.origin;
        let probing = origin.one_dial.lock().await;
        if origin.probed.load(Ordering::Acquire) {
            drop(probing);
            return self.send(target, req).await;
        }
        let fresh = self.connect(origin).await;
        origin.probed.store(true, Ordering::Release);
        drop(probing);
        self.send_fresh(fresh?, target, req).await
    }

    /// Sends on a new connection.
    async fn dial_and_send(
        &self,
        target: &Target,
        req: Request<Spliced>,
    ) -> Result<Response<Body>, Error> {
        let fresh = self.connect(&target.origin).await?;
        self.send_fresh(fresh, target, req).await
    }

    /// Sends the first request of a connection just dialled.
    async fn send_fresh(
        &self,
        fresh: Fresh,
        target: &Target,
        req: Request<Spliced>,
    ) -> Result<Response<Body>, Error> {
        match fresh {
            Fresh::Http1(conn) => send_h1_fresh(conn, target, req).await,
            Fresh::Http2(conn) => self.send_h2(target, req, Some(conn)).await,
        }
    }

    /// Sends on `conn`, else on the origin's shared HTTP/2 connection; if that is
    /// gone, one request dials while the others wait to share its connection.
    async fn send_h2(
        &self,
        target: &Target,
        mut req: Request<Spliced>,
        conn: Option<http2::SendRequest<Spliced>>,
    ) -> Result<Response<Body>, Error> {
        let origin = &target.origin;
        let mut conn = match conn.or_else(|| origin.h2()) {
            Some(conn) => conn,
            None => {
                let _dialling = origin.one_dial.lock().await;
                match origin.h2() {
                    Some(conn) => conn,
                    None => match self.connect(origin).await? {
                        Fresh::Http2(conn) => conn,
                        // The upstream changed its mind: HTTP/1 from now on.
                        Fresh::Http1(conn) => {
                            origin.speaks_h2.store(false, Ordering::Relaxed);
                            return send_h1_fresh(conn, target, req).await;
                        }
                    },
                }
            }
        };
        *req.uri_mut() = target.url.clone();
        conn.ready().await.map_err(Error::Http)?;
        let resp = conn.send_request(req).await.map_err(Error::Http)?;
        Ok(Body::shared(resp))
    }

    /// Dials a new connection to `origin` and starts its task.
    async fn connect(&self, origin: &Arc<Origin>) -> Result<Fresh, Error> {
        let mut connector = self.connector.clone();
        let dialled = async {
            std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
            connector.call(origin.base.clone()).await
        };
        let io = match dialled.await {
            Ok(io) => io,
            Err(e) => {
                self.pool.failed.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Connect(e));
            }
        };
        if !origin.reaping.swap(true, Ordering::Relaxed) {
            tokio::spawn(reap(Arc::downgrade(origin)));
        }
        // The stream lives inline in its connection's task. A TLS session is about a
        // kilobyte: boxed, so that plain-TCP connections don't each carry its room.
        let h2 = io.connected().is_negotiated_h2();
        match io {
            MaybeHttpsStream::Http(tcp) => self.handshake(origin, tcp, h2).await,
            MaybeHttpsStream::Https(tls) => self.handshake(origin, Box::new(tls), h2).await,
        }
    }

    /// Starts HTTP/2 (when the server chose it by ALPN) or HTTP/1 on a new
    /// connection, and spawns the connection's task.
    async fn handshake<I>(&self, origin: &Origin, io: I, h2: bool) -> Result<Fresh, Error>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let io = CountedIo::new(io, self.pool.clone());
        if h2 {
            let (conn, task) = self.h2.handshake(io).await.map_err(Error::Http)?;
            drive(task, "upstream HTTP/2 connection failed");
            *lock(&origin.h2) = Some(conn.clone());
            origin.speaks_h2.store(true, Ordering::Relaxed);
            Ok(Fresh::Http2(conn))
        } else {
            let (conn, task) = self.h1.handshake(io).await.map_err(Error::Http)?;
            drive(task, "upstream connection failed");
            Ok(Fresh::Http1(conn))
        }
    }
}

/// Sends on a new HTTP/1 connection, which joins the pool when the answer ends.
async fn send_h1_fresh(
    mut conn: http1::SendRequest<Spliced>,
    target: &Target,
    req: Request<Spliced>,
) -> Result<Response<Body>, Error> {
    let resp = conn
        .send_request(target.h1(req))
        .await
        .map_err(Error::Http)?;
    Ok(Body::pooled(resp, conn, &target.origin))
}

/// Runs a new connection's task until the connection closes.
fn drive<F>(task: F, failed: &'static str)
where
    F: std::future::Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::debug!(error = %e, "{failed}");
        }
    });
}

/// A new connection, by the protocol the upstream chose.
enum Fresh {
    Http1(http1::SendRequest<Spliced>),
    Http2(http2::SendRequest<Spliced>),
}

#[cfg(test)]
mod tests {
    use super::host_header;

    #[test]
    fn host_header_is_the_authority_without_a_default_port() {
        for (url, want) in [
            ("http://127.0.0.1:8080/v1", "127.0.0.1:8080"),
            ("http://example.com/v1", "example.com"),
            ("http://example.com:80/v1", "example.com"),
            ("https://example.com/v1", "example.com"),
            ("https://example.com:443/v1", "example.com"),
            ("https://example.com:8443/v1", "example.com:8443"),
            ("https://example.com:80/v1", "example.com:80"),
            ("http://[::1]:9000/", "[::1]:9000"),
            ("http://user:pw@example.com:81/", "example.com:81"),
        ] {
            let got = host_header(&url.parse().unwrap()).unwrap();
            assert_eq!(got.to_str().unwrap(), want, "{url}");
        }
    }
}
