//! The deadline of an attempt, the wait for an upstream's answer head.
//!
//! A timer armed for each attempt is filed into tokio's timer wheel when first
//! polled and taken out again when the answer comes, each time under the wheel's
//! lock: with the wheel's own turn, about 580 instructions a request (callgrind).
//! An HTTP/1 connection serves one request at a time, so its attempts never
//! overlap and can share one [`AttemptTimer`], moved forward for each. A tokio
//! timer moved later is not refiled then: the wheel finds the new time when the
//! old one comes, so it sees a connection's timer about once a timeout, not once
//! a request. Requests on HTTP/2 streams run side by side; each of their attempts
//! arms a timer of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::time::Sleep;

/// The timer an HTTP/1 connection's attempts share, made at its first attempt.
#[derive(Default)]
pub struct AttemptTimer(Mutex<Option<Pin<Box<Sleep>>>>);

/// Runs `fut` until `deadline`: its output, or None if the deadline came first.
/// `shared` is the connection's timer where it has one; without it, a timer is
/// armed for this call alone.
pub fn until<F: Future>(shared: Option<&AttemptTimer>, deadline: Instant, fut: F) -> Until<'_, F> {
    Until {
        fut,
        shared,
        own: None,
        deadline: deadline.into(),
        armed: false,
    }
}

pin_project_lite::pin_project! {
    /// The future [`until`] returns. A struct, not an `async fn`: that would hold
    /// `fut` twice (as its argument and pinned in its body), and every client
    /// connection's request future holds this one.
    pub struct Until<'a, F> {
        #[pin]
        fut: F,
        shared: Option<&'a AttemptTimer>,
        own: Option<Pin<Box<Sleep>>>,
        deadline: tokio::time::Instant,
        armed: bool,
    }
}

impl<F: Future> Future for Until<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        let mut guard = this
            .shared
            .map(|t| t.0.lock().unwrap_or_else(PoisonError::into_inner));
        let slot = guard.as_deref_mut().unwrap_or(this.own);
        let sleep = match slot {
            Some(sleep) if !*this.armed => {
                sleep.as_mut().reset(*this.deadline);
                sleep
            }
            Some(sleep) => {
                // Armed already, and its waker is this task's: only a look at
                // whether it has fired.
                return if sleep.is_elapsed() {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                };
            }
            None => slot.insert(Box::pin(tokio::time::sleep_until(*this.deadline))),
        };
        *this.armed = true;
        // Polled once, to file it if it is new or has fired, and to leave it this
        // task's waker.
        sleep.as_mut().poll(cx).map(|()| None)
    }
}
