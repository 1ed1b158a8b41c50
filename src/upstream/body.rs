//! An upstream answer's body, which gives its HTTP/1 connection back to the
//! pool from its last poll: no task watches for the end.

use super::origin::Origin;
use crate::body::Spliced;
use bytes::Bytes;
use http::Response;
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// An upstream answer's body. An HTTP/1 connection goes back to its origin as soon
/// as the body has ended; one dropped before its end is closed.
pub struct Body {
    inner: Incoming,
    /// The connection to give back, and where.
    back: Option<(http1::SendRequest<Spliced>, Arc<Origin>)>,
}

impl Body {
    /// An answer on an HTTP/1 connection, which goes back to `origin` at the end.
    pub(super) fn pooled(
        resp: Response<Incoming>,
        conn: http1::SendRequest<Spliced>,
        origin: &Arc<Origin>,
    ) -> Response<Body> {
        let back = Some((conn, origin.clone()));
        resp.map(|inner| Body { inner, back })
    }

    /// An answer on a shared HTTP/2 connection: nothing to give back.
    pub(super) fn shared(resp: Response<Incoming>) -> Response<Body> {
        resp.map(|inner| Body { inner, back: None })
    }

    /// Returns the connection to its origin.
    fn release(&mut self) {
        if let Some((conn, origin)) = self.back.take() {
            origin.checkin(conn);
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(_)) if !this.inner.is_end_stream() => {}
            Some(Ok(_)) | None => this.release(),
            // The connection is broken: let it close.
            Some(Err(_)) => this.back = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // An empty body nobody polled has still ended.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
