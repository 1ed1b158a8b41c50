//! The two body types on the request path: what sluice answers with, and the
//! spliced request body it sends upstream. Both are enums over `Bytes` so that no
//! response or request needs a boxed trait object.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A response body: a whole buffer (errors, info endpoints, mocks) or the upstream's
/// body passed through frame by frame.
pub enum ProxyBody {
    /// A complete body; `None` once sent.
    Full(Option<Bytes>),
    /// The upstream response body, streamed as it arrives.
    Upstream(Incoming),
}

impl ProxyBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ProxyBody::Full(Some(bytes.into()))
    }

    /// An empty body.
    pub fn empty() -> Self {
        ProxyBody::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(inc) => Pin::new(inc).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Upstream(inc) => inc.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Upstream(inc) => inc.size_hint(),
        }
    }
}

/// A request body made of up to three pieces sent as they are: the client's bytes
/// before the model value, the deployment's model, the client's bytes after it.
/// Cloning is cheap (reference counts), which is what makes retries free.
#[derive(Clone, Default)]
pub struct Spliced {
    /// Pieces still to send, in order; empty pieces are skipped.
    parts: [Bytes; 3],
    /// Index of the next piece to send.
    next: usize,
}

impl Spliced {
    /// A body of the given pieces, in order.
    pub fn new(parts: [Bytes; 3]) -> Self {
        Spliced { parts, next: 0 }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.parts[self.next.min(3)..].iter().map(Bytes::len).sum()
    }

    /// True when nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Body for Spliced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        while this.next < 3 {
            let part = std::mem::take(&mut this.parts[this.next]);
            this.next += 1;
            if !part.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(part))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len() as u64)
    }
}
