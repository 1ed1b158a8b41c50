//! The listener and accept loop: HTTP/1.1 and HTTP/2 (prior knowledge) on one
//! port, TCP_NODELAY, a header-read timeout, and a graceful drain on shutdown.
//!
//! Each connection's protocol is told by peeking at its first bytes, and the
//! connection goes straight to hyper's HTTP/1 or HTTP/2 server. (hyper-util's
//! auto builder reads those bytes instead and replays them into hyper's read
//! buffer, which makes that buffer grow from 8 KB to 16 KB on every connection.)

use crate::inline_wake::inline_wakes;
use crate::routes;
use crate::state::App;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use socket2::{Domain, Protocol, Socket, Type};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Pending-connection queue length; the kernel caps it at `somaxconn`.
const BACKLOG: i32 = 4096;
/// A client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
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

/// Serves until `shutdown` resolves, then stops accepting, marks the app draining
/// and lets open connections (streams included) finish for up to `grace`.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new());
    // Shared: each connection needs one of the two for as long as it lives.
    let builders = Arc::new((h1, h2));
    let graceful = GracefulShutdown::new();
    // Tells connections still being sniffed that no request will be taken any more.
    let (stop, stopping) = watch::channel(false);
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
                let app = app.clone();
                let builders = builders.clone();
                let watcher = graceful.watcher();
                let mut stopping = stopping.clone();
                // hyper wakes a connection's task from inside it once a request:
                // answered inline, that wake-up does not rouse another worker thread.
                tokio::spawn(inline_wakes(async move {
                    let proto = tokio::select! {
                        p = tokio::time::timeout(HEADER_READ_TIMEOUT, sniff(&stream)) => p,
                        _ = stopping.changed() => return,
                    };
                    let service = service_fn(move |req| routes::handle(app.clone(), req));
                    let io = TokioIo::new(stream);
                    let (h1, h2) = &*builders;
                    let served = match proto {
                        Ok(Ok(Proto::Http1)) => watcher.watch(h1.serve_connection(io, service)).await,
                        Ok(Ok(Proto::Http2)) => watcher.watch(h2.serve_connection(io, service)).await,
                        // Closed, failed or silent before its first bytes: nothing to answer.
                        _ => return,
                    };
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended with an error");
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
