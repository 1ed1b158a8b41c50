//! The listener and accept loop: HTTP/1.1 and HTTP/2 (prior knowledge) on one
//! port, TCP_NODELAY, an idle timeout that also drops clients too slow to send
//! their headers, and a graceful drain on shutdown.
//!
//! Each connection's protocol is told by peeking at its first bytes, and the
//! connection goes straight to hyper's HTTP/1 or HTTP/2 server. (hyper-util's
//! auto builder reads those bytes instead and replays them into hyper's read
//! buffer, which makes that buffer grow from 8 KB to 16 KB on every connection.)

use crate::body::ProxyBody;
use crate::inline_wake::inline_wakes;
use crate::proxy::AttemptTimer;
use crate::routes;
use crate::state::App;
use crate::upstream;
use bytes::Bytes;
use futures_util::FutureExt;
use http_body::{Body, Frame, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use socket2::{Domain, Protocol, Socket, Type};
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::Instant;

/// Pending-connection queue length; the kernel caps it at `somaxconn`.
const BACKLOG: i32 = 4096;
/// What an HTTP/2 client with prior knowledge sends first (RFC 9113, section 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Binds a listener with address reuse and a large backlog. Port 0 picks a free port.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// How long connections may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// After shutdown begins, how long open connections (streams included) get to
    /// finish.
    pub grace: Duration,
    /// An HTTP/1 connection with no request open is closed once it has gone this
    /// long without a request head arriving or a response finishing: an idle
    /// keep-alive connection, or a client too slow to finish its headers. It is
    /// checked once a period, so such a connection goes after between one and two
    /// periods. A connection that sends nothing at all goes after one.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            grace: Duration::from_secs(30),
            idle: Duration::from_secs(30),
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting, marks the app draining
/// and lets open connections finish for up to `timeouts.grace`. Connections are
/// served on the runtime this runs on.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    timeouts: Timeouts,
) {
    run_on(listener, app, shutdown, timeouts, &[]).await;
}

/// Like [`run`], with each accepted connection served on one of `workers` (on
/// this runtime when `workers` is empty): the one with the fewest connections
/// open, the next in turn among equals. A connection stays on its worker for as
/// long as it lives, with the upstream connections its requests use: none of its
/// work crosses threads.
pub async fn run_on(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    timeouts: Timeouts,
    workers: &[Handle],
) {
    let Timeouts { grace, idle } = timeouts;
    // No header-read timeout from hyper: it arms a timer for every request, which
    // cost about 1,150 instructions a request (perf/instructions.sh). The connection's
    // watchdog (`unless_quiet`) does that job with one timer a period.
    let mut h1 = http1::Builder::new();
    h1.header_read_timeout(None).keep_alive(true);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    // Tells connections still being sniffed that no request will be taken any more.
    let (stop, stopping) = watch::channel(false);
    let conns = Arc::new(Connections {
        app: app.clone(),
        h1,
        h2,
        stopping,
        idle,
    });
    // Connections open on each worker.
    let open: Arc<[AtomicUsize]> = workers.iter().map(|_| AtomicUsize::new(0)).collect();
    let mut turn = 0usize;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let watcher = graceful.watcher();
                let conns = conns.clone();
                // hyper wakes a connection's task from inside it once a request:
                // answered inline (`inline_wakes`), that wake-up costs one more poll
                // instead of a trip through the scheduler.
                if workers.is_empty() {
                    tokio::spawn(inline_wakes(conns.serve(stream, watcher)));
                    continue;
                }
                let assigned = Assigned::to_least_busy(&open, turn);
                turn = (turn + 1) % workers.len();
                // Its readiness must come from the worker's own event loop: the
                // socket leaves this runtime's and joins the worker's.
                let stream = match stream.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot hand a connection over");
                        continue;
                    }
                };
                workers[assigned.worker].spawn(inline_wakes(async move {
                    let _assigned = assigned;
                    match TcpStream::from_std(stream) {
                        Ok(stream) => conns.serve(stream, watcher).await,
                        Err(e) => tracing::debug!(error = %e, "cannot take a connection over"),
                    }
                }));
            }
            _ = &mut shutdown => break,
        }
    }
    let _ = stop.send(true);
    app.draining.store(true, Ordering::Relaxed);
    drop(listener);
    tracing::info!(grace_secs = grace.as_secs_f64(), "draining connections");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!("grace period over, closing remaining connections"),
    }
}

/// A connection counted as open on its worker until it ends.
struct Assigned {
    open: Arc<[AtomicUsize]>,
    worker: usize,
}

impl Assigned {
    /// The worker with the fewest connections open, the first from `turn` on among
    /// equals (`turn` < the number of workers). Counting connections, not handing
    /// them out in turn, keeps the workers even when some connections close at once
    /// and others stay (a load balancer's health checks beside its pooled
    /// connections, say).
    fn to_least_busy(open: &Arc<[AtomicUsize]>, turn: usize) -> Assigned {
        let n = open.len();
        let worker = (0..n)
            .map(|k| (turn + k) % n)
            .min_by_key(|&i| open[i].load(Ordering::Relaxed))
            .expect("at least one worker");
        open[worker].fetch_add(1, Ordering::Relaxed);
        Assigned {
            open: open.clone(),
            worker,
        }
    }
}

impl Drop for Assigned {
    fn drop(&mut self) {
        self.open[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

/// What serving a connection needs, shared by all of them.
struct Connections {
    app: Arc<App>,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    /// Becomes true once no request will be taken any more.
    stopping: watch::Receiver<bool>,
    idle: Duration,
}

impl Connections {
    /// Serves one accepted connection to its end.
    async fn serve(self: Arc<Self>, stream: TcpStream, watcher: Watcher) {
        let mut stopping = self.stopping.clone();
        let proto = tokio::select! {
            p = tokio::time::timeout(self.idle, sniff(&stream)) => p,
            _ = stopping.changed() => return,
        };
        let activity = Arc::new(Activity::default());
        // HTTP/1 serves one request at a time: its attempts can share a timer.
        let timer = matches!(proto, Ok(Ok(Proto::Http1))).then(Arc::<AttemptTimer>::default);
        let service = {
            let activity = activity.clone();
            let app = self.app.clone();
            service_fn(move |req| {
                // The request counts as open until its response body is done.
                let open = Open::begin(&activity);
                routes::handle(app.clone(), req, timer.clone()).map(|resp| {
                    Ok::<_, Infallible>(resp.map(|body| OpenBody { body, _open: open }))
                })
            })
        };
        let io = TokioIo::new(stream);
        let served = match proto {
            Ok(Ok(Proto::Http1)) => {
                let conn = pin!(watcher.watch(self.h1.serve_connection(io, service)));
                match unless_quiet(conn, &activity, self.idle).await {
                    Some(served) => served,
                    None => {
                        tracing::debug!("closed an idle or slow HTTP/1 connection");
                        return;
                    }
                }
            }
            // Boxed, and polled through a `dyn Future`: inlined beside HTTP/1's, the
            // HTTP/2 connection's code made the stack frame this task's every poll
            // runs in 12 KB, not 8, and each HTTP/1 request touched about 33 more
            // 64-byte lines of memory (perf/footprint.sh).
            Ok(Ok(Proto::Http2)) => {
                watcher
                    .watch(self.h2.serve_connection(io, service))
                    .boxed()
                    .await
            }
            // Closed, failed or silent before its first bytes: nothing to answer.
            _ => return,
        };
        if let Err(e) = served {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// What a connection's watchdog reads.
#[derive(Default)]
struct Activity {
    /// Request heads that have arrived plus responses that have finished, so far.
    events: AtomicUsize,
    /// Requests whose response has not finished.
    open: AtomicUsize,
}

/// Drives `conn` to its end, unless a whole `period` goes by with no request open,
/// no request head arriving and no response finishing: the connection is idle, or
/// its client is too slow to finish the headers it has begun. Then it returns
/// None, and dropping `conn` closes the connection. (hyper's header-read timeout
/// does this job with a timer armed for every request; this one is armed once a
/// period.)
///
/// `conn` comes pinned so that it is stored once, in the caller's state: moved in
/// and pinned here, it would take room both as the argument and as the local.
async fn unless_quiet<F: Future>(
    mut conn: Pin<&mut F>,
    activity: &Activity,
    period: Duration,
) -> Option<F::Output> {
    let mut timer = pin!(tokio::time::sleep(period));
    let mut armed = false;
    let mut events = activity.events.load(Ordering::Relaxed);
    poll_fn(|cx| {
        if let Poll::Ready(out) = conn.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        // This runs on every wake-up of the connection, and polling the timer each
        // time cost some 650 instructions a request (callgrind): it is polled only
        // to arm it and once it has fired. The waker it keeps still wakes this task.
        if !armed || timer.is_elapsed() {
            while timer.as_mut().poll(cx).is_ready() {
                let now = activity.events.load(Ordering::Relaxed);
                if now == events && activity.open.load(Ordering::Relaxed) == 0 {
                    return Poll::Ready(None);
                }
                events = now;
                timer.as_mut().reset(Instant::now() + period);
            }
            armed = true;
        }
        Poll::Pending
    })
    .await
}

/// A request counted as open from its head's arrival until its response body is
/// sent or dropped.
struct Open(Arc<Activity>);

impl Open {
    fn begin(activity: &Arc<Activity>) -> Open {
        activity.events.fetch_add(1, Ordering::Relaxed);
        activity.open.fetch_add(1, Ordering::Relaxed);
        Open(activity.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.events.fetch_add(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request open until it is done.
struct OpenBody {
    body: ProxyBody,
    _open: Open,
}

impl Body for OpenBody {
    type Data = Bytes;
    type Error = upstream::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, upstream::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The protocol a connection speaks.
#[derive(Debug, PartialEq)]
enum Proto {
    Http1,
    Http2,
    /// Closed before sending anything.
    Closed,
}

/// Tells the protocol from the connection's first bytes without consuming them:
/// HTTP/2 if they are the preface, HTTP/1 as soon as they differ from it. A client
/// that stops partway into the preface is polled every millisecond until it
/// decides (the caller bounds the wait).
async fn sniff(stream: &TcpStream) -> std::io::Result<Proto> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(Proto::Closed);
        }
        if buf[..n] != H2_PREFACE[..n] {
            return Ok(Proto::Http1);
        }
        if n == H2_PREFACE.len() {
            return Ok(Proto::Http2);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Sends `parts` with a pause between them and sniffs the accepted side.
    async fn sniffed(parts: &[&[u8]]) -> Proto {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let writer = tokio::spawn(async move {
            for p in parts {
                client.write_all(&p).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            client.shutdown().await.unwrap();
        });
        let proto = sniff(&server).await.unwrap();
        writer.await.unwrap();
        proto
    }

    #[tokio::test]
    async fn sniff_tells_the_protocol_from_the_first_bytes() {
        assert_eq!(sniffed(&[b"POST / HTTP/1.1\r\n"]).await, Proto::Http1);
        assert_eq!(sniffed(&[H2_PREFACE]).await, Proto::Http2);
        // "P" could start either: the next bytes decide.
        assert_eq!(sniffed(&[b"P", b"UT / HTTP/1.1\r\n"]).await, Proto::Http1);
        assert_eq!(
            sniffed(&[b"PRI * HTTP", b"/2.0\r\n\r\nSM\r\n\r\n"]).await,
            Proto::Http2
        );
        // Anything that is not the preface is left to the HTTP/1 parser to refuse.
        assert_eq!(sniffed(&[b"\x16\x03\x01"]).await, Proto::Http1);
        assert_eq!(sniffed(&[]).await, Proto::Closed);
    }
}
