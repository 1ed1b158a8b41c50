//! Counting upstream connections: established when counted, open until the count
//! is dropped. A connection exists exactly as long as its stream, so a count held
//! beside the stream (an HTTP/1 [`super::h1::Conn`]) or wrapped around it (an
//! HTTP/2 connection's [`CountedIo`]) is exact. Costs nothing per request.

use crate::metrics::PoolMetrics;
use hyper::rt::{Read, ReadBufCursor, Write};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

/// One upstream connection, counted as open until dropped.
pub struct Count(Arc<PoolMetrics>);

impl Count {
    /// Counts a connection as established and open.
    pub fn new(pool: Arc<PoolMetrics>) -> Count {
        pool.opened.fetch_add(1, Ordering::Relaxed);
        pool.open.fetch_add(1, Ordering::Relaxed);
        Count(pool)
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream counted as an open connection until dropped.
pub struct CountedIo<T> {
    /// The real stream.
    io: T,
    /// Its count.
    _count: Count,
}

impl<T> CountedIo<T> {
    /// Counts `io` as established and open.
    pub fn new(io: T, pool: Arc<PoolMetrics>) -> Self {
        CountedIo {
            io,
            _count: Count::new(pool),
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
