//! A connector wrapper that counts upstream connections: established, failed and
//! open now. The pooled client exposes no statistics of its own, and a connection
//! only exists between the connector's answer and the drop of its stream, so
//! counting there is exact. Costs one allocation per new connection, nothing per
//! request.

use crate::metrics::PoolMetrics;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// Wraps a connector; its streams decrement the open count when dropped.
#[derive(Clone)]
pub struct Counted<C> {
    /// The real connector.
    inner: C,
    /// Where connections are counted.
    pool: Arc<PoolMetrics>,
}

impl<C> Counted<C> {
    /// Counts the connections `inner` makes into `pool`.
    pub fn new(inner: C, pool: Arc<PoolMetrics>) -> Self {
        Counted { inner, pool }
    }
}

/// The connection future: boxed, because the client wants it `Unpin`.
type Connecting<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<C> Service<Uri> for Counted<C>
where
    C: Service<Uri>,
    C::Future: Send + 'static,
    C::Response: Send + 'static,
    C::Error: 'static,
{
    type Response = CountedIo<C::Response>;
    type Error = C::Error;
    type Future = Connecting<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let pool = self.pool.clone();
        Box::pin(async move {
            match connecting.await {
                Ok(io) => {
                    pool.opened.fetch_add(1, Ordering::Relaxed);
                    pool.open.fetch_add(1, Ordering::Relaxed);
                    Ok(CountedIo { io, pool })
                }
                Err(e) => {
                    pool.failed.fetch_add(1, Ordering::Relaxed);
                    Err(e)
                }
            }
        })
    }
}

/// An upstream connection that is counted as open until dropped.
pub struct CountedIo<T> {
    /// The real stream.
    io: T,
    /// Where it is counted.
    pool: Arc<PoolMetrics>,
}

impl<T> Drop for CountedIo<T> {
    fn drop(&mut self) {
        self.pool.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T: Connection> Connection for CountedIo<T> {
    /// What the pool needs to know (proxied, HTTP/2 by ALPN), without the extras the
    /// inner connectors attach (addresses, TLS details). The client copies those
    /// into every response's extensions: two allocations a request that nothing in
    /// sluice reads.
    fn connected(&self) -> Connected {
        let inner = self.io.connected();
        let bare = Connected::new().proxy(inner.is_proxied());
        if inner.is_negotiated_h2() {
            bare.negotiated_h2()
        } else {
            bare
        }
    }
}

impl<T: Read + Unpin> Read for CountedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for CountedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
