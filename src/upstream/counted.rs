//! An upstream stream that counts itself: established when wrapped, open until
//! dropped. A connection exists exactly as long as its stream, so counting there
//! is exact. Costs nothing per request.

use crate::metrics::PoolMetrics;
use hyper::rt::{Read, ReadBufCursor, Write};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

/// An upstream connection that is counted as open until dropped.
pub struct CountedIo<T> {
    /// The real stream.
    io: T,
    /// Where it is counted.
    pool: Arc<PoolMetrics>,
}

impl<T> CountedIo<T> {
    /// Counts `io` as established and open.
    pub fn new(io: T, pool: Arc<PoolMetrics>) -> Self {
        pool.opened.fetch_add(1, Ordering::Relaxed);
        pool.open.fetch_add(1, Ordering::Relaxed);
        CountedIo { io, pool }
    }
}

impl<T> Drop for CountedIo<T> {
    fn drop(&mut self) {
        self.pool.open.fetch_sub(1, Ordering::Relaxed);
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
