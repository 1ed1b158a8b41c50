//! The response body type: either a ready buffer or a server-sent-events
//! stream whose events are produced lazily, as the connection polls for them,
//! sleeping `chunk_delay` between content chunks.

use super::json::{StreamPlan, DONE};
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A response body. `G` is dropped with the body, which lets the server count
/// a request as in flight until its body is fully sent (or abandoned).
pub(crate) struct FakeBody<G> {
    inner: Inner,
    guard: Option<G>,
}

enum Inner {
    Full(Option<Bytes>),
    Sse(Box<Sse>),
}

impl<G> FakeBody<G> {
    /// A body made of one buffer, sent with a `content-length`.
    pub(crate) fn full(bytes: Bytes) -> Self {
        let data = (!bytes.is_empty()).then_some(bytes);
        FakeBody {
            inner: Inner::Full(data),
            guard: None,
        }
    }

    /// An SSE stream: every event is `prefix` + a tail from `plan`.
    pub(crate) fn sse(
        prefix: Bytes,
        plan: Arc<StreamPlan>,
        include_usage: bool,
        delay: Duration,
    ) -> Self {
        let total = plan.content.len() + 2 + usize::from(include_usage);
        FakeBody {
            inner: Inner::Sse(Box::new(Sse {
                prefix,
                plan,
                include_usage,
                delay,
                next: 0,
                total,
                sleep: None,
                sleeping: false,
            })),
            guard: None,
        }
    }

    /// Attaches a value to be dropped when the body is.
    pub(crate) fn set_guard(&mut self, guard: G) {
        self.guard = Some(guard);
    }
}

struct Sse {
    prefix: Bytes,
    plan: Arc<StreamPlan>,
    include_usage: bool,
    delay: Duration,
    /// Index of the next event to write.
    next: usize,
    /// Number of events, `[DONE]` included.
    total: usize,
    /// Reused timer for the delays between content chunks.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether `sleep` must elapse before the next event.
    sleeping: bool,
}

impl Sse {
    fn tail(&self, i: usize) -> Option<&Bytes> {
        let n = self.plan.content.len();
        if i < n {
            Some(&self.plan.content[i])
        } else if i == n {
            Some(&self.plan.finish)
        } else if i == n + 1 && self.include_usage {
            Some(&self.plan.usage)
        } else {
            None
        }
    }

    fn event_len(&self, i: usize) -> usize {
        self.tail(i)
            .map_or(DONE.len(), |t| self.prefix.len() + t.len())
    }

    fn write_event(&self, i: usize, buf: &mut Vec<u8>) {
        match self.tail(i) {
            Some(tail) => {
                buf.extend_from_slice(&self.prefix);
                buf.extend_from_slice(tail);
            }
            None => buf.extend_from_slice(DONE),
        }
    }

    /// Whether a delay is due before event `i`: only between content chunks.
    fn delay_before(&self, i: usize) -> bool {
        !self.delay.is_zero() && i > 0 && i < self.plan.content.len()
    }

    /// Emits every event that is due now as one frame, then arms the timer
    /// if the next event must wait.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.sleeping {
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
            }
            self.sleeping = false;
        }
        if self.next >= self.total {
            return Poll::Ready(None);
        }
        let mut end = self.next + 1;
        while end < self.total && !self.delay_before(end) {
            end += 1;
        }
        let mut buf = Vec::with_capacity((self.next..end).map(|i| self.event_len(i)).sum());
        for i in self.next..end {
            self.write_event(i, &mut buf);
        }
        self.next = end;
        if end < self.total {
            let deadline = Instant::now() + self.delay;
            match self.sleep.as_mut() {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.sleeping = true;
        }
        Poll::Ready(Some(Bytes::from(buf)))
    }
}

impl<G: Unpin> Body for FakeBody<G> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let data = match &mut this.inner {
            Inner::Full(data) => data.take(),
            Inner::Sse(sse) => ready!(sse.poll_next(cx)),
        };
        Poll::Ready(data.map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(data) => data.is_none(),
            Inner::Sse(sse) => !sse.sleeping && sse.next >= sse.total,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::Sse(_) => SizeHint::default(),
        }
    }
}
