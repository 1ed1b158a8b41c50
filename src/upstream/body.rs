//! An upstream answer's body: read from sluice's own HTTP/1.1 connection (which
//! goes back to the pool from the body's last poll: no task watches for the end),
//! or from hyper's shared HTTP/2 connection.

use super::{h1, Error};
use bytes::Bytes;
use http::Response;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An upstream answer's body.
pub struct Body(Inner);

enum Inner {
    H1(h1::Body),
    H2(Incoming),
}

impl Body {
    /// An answer on an HTTP/1 connection.
    pub(super) fn h1(body: h1::Body) -> Body {
        Body(Inner::H1(body))
    }

    /// An answer on a shared HTTP/2 connection: nothing to give back.
    pub(super) fn shared(resp: Response<Incoming>) -> Response<Body> {
        resp.map(|inner| Body(Inner::H2(inner)))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.get_mut().0 {
            Inner::H1(b) => b.poll_data(cx).map(|d| d.map(|d| d.map(Frame::data))),
            Inner::H2(b) => Pin::new(b).poll_frame(cx).map_err(Error::Http),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::H1(b) => b.is_end_stream(),
            Inner::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::H1(b) => b
                .exact_len()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
            Inner::H2(b) => b.size_hint(),
        }
    }
}
