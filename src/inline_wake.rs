//! Runs a future so that a wake-up it gives itself while being polled is answered
//! by polling it again at once, instead of by the scheduler.
//!
//! tokio treats a task woken while it runs as a task that yields: it goes to the
//! back of its run queue, behind every other task ready on that thread, and on a
//! multi-threaded runtime an idle worker thread is woken (a futex or eventfd
//! write) to steal it. hyper's HTTP/1 server wakes its own connection each time a
//! handler starts reading a request body (the "body is wanted" signal), so every
//! request with a body took that detour. Answered inline, such a wake-up costs one
//! more poll on the same thread.

use futures_util::task::AtomicWaker;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// How many times in a row a future that keeps waking itself is polled again
/// before it is left to the scheduler (so that one that yields on purpose, or
/// has used up tokio's budget, does let other tasks run).
const MAX_INLINE_POLLS: usize = 4;

/// Not being polled: a wake-up goes to the task.
const IDLE: u8 = 0;
/// Being polled: a wake-up is noted and answered by polling again.
const POLLING: u8 = 1;
/// Woken while being polled.
const WOKEN: u8 = 2;

/// The waker the future sees.
struct Shared {
    state: AtomicU8,
    /// The waker of the task that runs the future, as of its latest poll.
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(WOKEN) => {}
            Err(_) => self.task.wake(),
        }
    }
}

/// Runs `fut`, polling it again at once (up to [`MAX_INLINE_POLLS`] times) when it
/// wakes itself while being polled. Costs one allocation per future.
pub async fn inline_wakes<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let shared = Arc::new(Shared {
        state: AtomicU8::new(IDLE),
        task: AtomicWaker::new(),
    });
    let waker = Waker::from(shared.clone());
    poll_fn(|cx| {
        shared.task.register(cx.waker());
        let mut inner = Context::from_waker(&waker);
        for _ in 0..MAX_INLINE_POLLS {
            shared.state.store(POLLING, Ordering::Release);
            let polled = fut.as_mut().poll(&mut inner);
            let woken = shared.state.swap(IDLE, Ordering::AcqRel) == WOKEN;
            if polled.is_ready() || !woken {
                return polled;
            }
        }
        // Still waking itself: let the scheduler decide when to poll it again.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Wakes itself `n` times while being polled, then is ready; counts its polls.
    struct SelfWaking {
        left: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for SelfWaking {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Counts the wake-ups that reach the task.
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>, task: &Arc<Counter>) -> Poll<F::Output> {
        let waker = Waker::from(task.clone());
        fut.poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn wakes_during_a_poll_are_answered_inline() {
        let polls = Arc::new(AtomicUsize::new(0));
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let fut = inline_wakes(SelfWaking {
            left: MAX_INLINE_POLLS - 1,
            polls: polls.clone(),
        });
        let mut fut = pin!(fut);
        assert!(poll_once(fut.as_mut(), &task).is_ready());
        assert_eq!(polls.load(Ordering::Relaxed), MAX_INLINE_POLLS);
        assert_eq!(
            task.0.load(Ordering::Relaxed),
            0,
            "the task was never woken"
        );
    }

    #[test]
    fn a_future_that_keeps_waking_itself_is_left_to_the_scheduler() {
        let polls = Arc::new(AtomicUsize::new(0));
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let fut = inline_wakes(SelfWaking {
            left: MAX_INLINE_POLLS + 1,
            polls: polls.clone(),
        });
        let mut fut = pin!(fut);
        assert!(poll_once(fut.as_mut(), &task).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), MAX_INLINE_POLLS);
        assert_eq!(task.0.load(Ordering::Relaxed), 1, "the task yields once");
        assert!(poll_once(fut.as_mut(), &task).is_ready());
        assert_eq!(polls.load(Ordering::Relaxed), MAX_INLINE_POLLS + 2);
    }

    #[test]
    fn wakes_between_polls_reach_the_task() {
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let fut = inline_wakes(poll_fn(move |cx| {
            tx.send(cx.waker().clone()).unwrap();
            Poll::<()>::Pending
        }));
        let mut fut = pin!(fut);
        assert!(poll_once(fut.as_mut(), &task).is_pending());
        let inner = rx.recv().unwrap();
        assert_eq!(task.0.load(Ordering::Relaxed), 0);
        // From another thread, as the I/O driver would.
        std::thread::spawn(move || inner.wake()).join().unwrap();
        assert_eq!(task.0.load(Ordering::Relaxed), 1);
    }
}
