//! The [`Client`] that sends requests upstream: it checks connections out of
//! their [`Origin`] (see `origin.rs`), dials new ones, and sends on them.
//!
//! Each deployment holds its origins (found once, at config load), so a request
//! never hashes a pool key. A connection goes back to its origin when the answer's
//! body ends, straight from the body's last poll. A request that finds no idle
//! connection dials one and keeps it: it never races the dial against a
//! connection coming back, which would leave a spare connection behind each time
//! the other side won. The first requests to an HTTPS origin wait for one dial to
//! learn whether it speaks HTTP/2 (shared) or HTTP/1.1 (one connection each).

use super::body::Body;
use super::counted::{Count, CountedIo};
use super::h1::{Conn, Failed};
use super::origin::{lock, reap, Origin};
use crate::body::Spliced;
use crate::metrics::PoolMetrics;
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use hyper::client::conn::http2;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tower_service::Service;

/// Where one endpoint of a deployment sends its requests.
#[derive(Debug, Clone)]
pub struct Target {
    /// The absolute URL (HTTP/2 requests carry it; shown in logs).
    pub url: Uri,
    /// The path and query alone: the request target of HTTP/1 requests.
    path: PathAndQuery,
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
        Target { path, url, origin }
    }

    /// Sends `req` on the HTTP/1 connection `conn`.
    async fn send_h1(
        &self,
        conn: Box<Conn>,
        req: Request<Spliced>,
    ) -> Result<Response<Body>, Failed> {
        let (path, host) = (self.path.as_str(), &self.origin.host);
        let resp = conn.send(req, path, host, &self.origin).await?;
        Ok(resp.map(Body::h1))
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Error {
    /// No connection: DNS, TCP, TLS.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// An HTTP/2 connection failed during the handshake or the exchange.
    Http(hyper::Error),
    /// An HTTP/1 connection failed to write or read.
    Io(io::Error),
    /// An HTTP/1 answer broke the protocol, or the upstream hung up mid-way.
    Protocol(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(_) => f.write_str("connect error"),
            Error::Http(_) | Error::Io(_) => f.write_str("upstream connection error"),
            Error::Protocol(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) => Some(e.as_ref()),
            Error::Http(e) => Some(e),
            Error::Io(e) => Some(e),
            Error::Protocol(_) => None,
        }
    }
}

/// The connector: TCP, then TLS for https (HTTP/2 when the server picks it by ALPN).
type Connector = HttpsConnector<HttpConnector>;

/// Dials upstreams and sends requests over their origins' connections.
pub struct Client {
    connector: Connector,
    pool: Arc<PoolMetrics>,
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
            h2,
        }
    }

    /// Sends `req` to `target` (the method, headers and body are the caller's; the
    /// URI and, for HTTP/1, `Host` are set here). A request that finds its idle
    /// connection closed moves on to the next one, then to a new connection.
    ///
    /// Only the path of a request reusing an HTTP/1 connection is inline: every
    /// client connection's task holds its request's future, so whatever else is
    /// inline (a TLS handshake's state is kilobytes) would cost memory per
    /// connection. The other paths are boxed, an allocation next to a dial or an
    /// HTTP/2 stream.
    pub async fn send(
        &self,
        target: &Target,
        mut req: Request<Spliced>,
    ) -> Result<Response<Body>, Error> {
        let origin = &target.origin;
        if origin.speaks_h2.load(Ordering::Relaxed) {
            return Box::pin(self.send_h2(target, req, None)).await;
        }
        while let Some(conn) = origin.checkout() {
            match target.send_h1(conn, req).await {
                Ok(resp) => return Ok(resp),
                // Closed before the request was written: it is whole, try another.
                Err(Failed::Unsent(unsent, e)) => {
                    tracing::debug!(error = %e, "idle upstream connection was closed");
                    req = *unsent;
                }
                Err(Failed::Broken(e)) => return Err(e),
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
        if io.connected().is_negotiated_h2() {
            // The stream lives inline in its connection's task. A TLS session is
            // about a kilobyte: boxed, so that plain-TCP connections don't each
            // carry its room.
            return match io {
                MaybeHttpsStream::Http(tcp) => self.handshake_h2(origin, tcp).await,
                MaybeHttpsStream::Https(tls) => self.handshake_h2(origin, Box::new(tls)).await,
            };
        }
        Ok(Fresh::Http1(Conn::new(io, Count::new(self.pool.clone()))))
    }

    /// Starts HTTP/2 (which the server chose by ALPN) on a new connection, and
    /// spawns the connection's task.
    async fn handshake_h2<I>(&self, origin: &Origin, io: I) -> Result<Fresh, Error>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let io = CountedIo::new(io, self.pool.clone());
        let (conn, task) = self.h2.handshake(io).await.map_err(Error::Http)?;
        drive(task, "upstream HTTP/2 connection failed");
        *lock(&origin.h2) = Some(conn.clone());
        origin.speaks_h2.store(true, Ordering::Relaxed);
        Ok(Fresh::Http2(conn))
    }
}

/// Sends on a new HTTP/1 connection, which joins the pool when the answer ends.
async fn send_h1_fresh(
    conn: Box<Conn>,
    target: &Target,
    req: Request<Spliced>,
) -> Result<Response<Body>, Error> {
    match target.send_h1(conn, req).await {
        Ok(resp) => Ok(resp),
        // A new connection takes no second try.
        Err(Failed::Unsent(_, e)) => Err(Error::Io(e)),
        Err(Failed::Broken(e)) => Err(e),
    }
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
    Http1(Box<Conn>),
    Http2(http2::SendRequest<Spliced>),
}
