//! The two body types on the request path: what sluice answers with, and the
//! spliced request body it sends upstream. Both are enums over `Bytes` so that no
//! response or request needs a boxed trait object.

use crate::clock;
use crate::limiter::health::{CooldownPolicy, Failure};
use crate::limiter::Reservation;
use crate::metrics::GroupMetrics;
use crate::state::Deployment;
use crate::upstream;
use crate::usage::UsageSniffer;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// A response body: a whole buffer (errors, info endpoints, mocks) or the upstream's
/// body passed through frame by frame.
pub enum ProxyBody {
    /// A complete body; `None` once sent.
    Full(Option<Bytes>),
    /// The upstream response body, streamed as it arrives.
    Upstream(upstream::Body),
    /// The upstream response body of an admitted call, streamed as it arrives while
    /// the call's bookkeeping watches it (boxed: it is large and the other variants
    /// are small).
    Tracked(Box<Tracked>),
}

impl ProxyBody {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        ProxyBody::Full(Some(bytes.into()))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = upstream::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, upstream::Error>>> {
        match self.get_mut() {
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(inc) => Pin::new(inc).poll_frame(cx),
            ProxyBody::Tracked(t) => t.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Upstream(inc) => inc.is_end_stream(),
            ProxyBody::Tracked(t) => t.call.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Upstream(inc) => inc.size_hint(),
            ProxyBody::Tracked(t) => t.inner.size_hint(),
        }
    }
}

/// An admitted call whose response is passing through: holds its in-flight slot and
/// token reservation until the body ends (or the client goes away), then settles
/// tokens to the reported usage, records latency and success, or the failure.
pub struct Tracked {
    /// The upstream body.
    inner: upstream::Body,
    /// Watches the bytes for `usage` and streamed events, keeping only a short tail.
    sniffer: UsageSniffer,
    /// The bookkeeping still to do; None once done.
    call: Option<Call>,
    /// The response is an event stream.
    sse: bool,
    /// The upstream failed mid-stream and the closing error event was sent.
    ended: bool,
}

/// How a tracked body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The whole body passed through.
    Complete,
    /// The upstream connection failed mid-body.
    Failed,
    /// The client went away first.
    Abandoned,
}

/// The last event of a stream whose upstream failed mid-way, as LiteLLM sends it.
const STREAM_ERROR_EVENT: &[u8] = b"data: {\"error\":{\"message\":\"The upstream connection failed while streaming.\",\"type\":\"api_connection_error\",\"param\":null,\"code\":\"502\"}}\n\n";

/// What a call must settle when its response ends.
pub struct Call {
    /// The deployment: its live state, counters and cooldown setting.
    pub dep: Arc<Deployment>,
    /// The request slot and tokens it holds.
    pub reservation: Reservation,
    /// When the request was sent upstream.
    pub sent: Instant,
    /// Estimated prompt tokens, used when the upstream reports no usage.
    pub prompt_estimate: u64,
    /// Cooldown rules, for a failure mid-body.
    pub policy: CooldownPolicy,
    /// Deployments in the group, for the cooldown rules.
    pub group_size: usize,
    /// Whether the time to the first event was recorded yet (streams only).
    pub ttft_seen: bool,
    /// The upstream answered with success; an error status passed through (401, 404)
    /// was already counted as a failure and records no latency or success.
    pub ok: bool,
    /// The attempt's metrics outcome was counted already (an error status such as
    /// 400, which does not count towards cooldowns but is no success either).
    pub counted: bool,
    /// When the request arrived and its group's counters, for the total latency;
    /// set once the response is decorated.
    pub request: Option<(Instant, Arc<GroupMetrics>)>,
}

impl Tracked {
    /// Watches `inner` for `call`; `sse` when the response is an event stream.
    pub fn new(inner: upstream::Body, sse: bool, call: Call) -> Tracked {
        Tracked {
            inner,
            sniffer: UsageSniffer::new(sse),
            call: Some(call),
            sse,
            ended: false,
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, upstream::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sniffer.feed(data);
                    if let Some(call) = self.call.as_mut().filter(|c| !c.ttft_seen) {
                        if self.sniffer.events() > 0 {
                            call.ttft_seen = true;
                            call.dep
                                .stats
                                .record_ttft(call.sent.elapsed().as_secs_f64());
                        }
                    }
                    // A body of known length is dropped by the server as soon as its
                    // last byte is written, never polled to its end: settle it now.
                    if self.inner.is_end_stream() {
                        self.finish(End::Complete);
                    }
                }
            }
            Poll::Ready(None) => self.finish(End::Complete),
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "upstream body failed mid-way");
                self.finish(End::Failed);
                if self.sse {
                    // A stream ends with an error event the client can read, not a cut.
                    self.ended = true;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                        STREAM_ERROR_EVENT,
                    )))));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    /// Starts the total-latency clock's reading at the end of this body.
    pub fn on_end(&mut self, arrived: Instant, group: Arc<GroupMetrics>) {
        if let Some(call) = self.call.as_mut() {
            call.request = Some((arrived, group));
        }
    }

    /// Settles the call once: tokens to the usage seen (or estimated); latency and
    /// success on a complete body, a failure on a broken one.
    fn finish(&mut self, end: End) {
        let Some(call) = self.call.take() else { return };
        let (usage, _) = self.sniffer.finish(call.prompt_estimate);
        let stats = &call.dep.stats;
        let metrics = &call.dep.metrics;
        stats.settle(call.reservation, usage.total_tokens);
        let now = clock::now_ms();
        // One reading of the monotonic clock serves both latencies below.
        let ended = Instant::now();
        match end {
            End::Complete if !call.ok => {}
            End::Complete => {
                let elapsed = ended.saturating_duration_since(call.sent);
                stats.record_latency(elapsed.as_secs_f64(), usage.completion_tokens);
                stats.health.record_success(now);
                if !call.counted {
                    metrics.succeeded();
                    metrics.llm_latency.observe(elapsed);
                }
            }
            End::Failed => {
                let cooled = stats.record_failure(
                    Failure::Connect,
                    None,
                    call.dep.cfg.cooldown_time,
                    &call.policy,
                    call.group_size,
                    now,
                );
                if !call.counted {
                    metrics.failed(Failure::Connect);
                }
                if cooled.is_some() {
                    metrics.cooled(Failure::Connect);
                }
            }
            End::Abandoned => {}
        }
        if let (Some((arrived, group)), false) = (&call.request, end == End::Abandoned) {
            group
                .total_latency
                .observe(ended.saturating_duration_since(*arrived));
        }
    }
}

impl Drop for Tracked {
    /// A client that goes away mid-body still frees the slot and settles tokens.
    fn drop(&mut self) {
        self.finish(End::Abandoned);
    }
}

/// A request body made of up to three pieces sent as they are: the client's bytes
/// before the model value, the deployment's model, the client's bytes after it.
/// Cloning is cheap (reference counts), which is what makes retries free.
///
/// The pieces are boxed: the request waits in a slot of the upstream connection's
/// queue, and every connection keeps a block of 32 such slots (two when busy), so
/// 96 bytes inline here cost ~6 KB per open upstream connection (`perf/memory.sh`).
#[derive(Clone, Default)]
pub struct Spliced {
    /// Pieces still to send, in order; empty pieces are skipped.
    parts: Box<[Bytes; 3]>,
    /// Index of the next piece to send.
    next: usize,
}

impl Spliced {
    /// A body of the given pieces, in order.
    pub fn new(parts: [Bytes; 3]) -> Self {
        Spliced {
            parts: Box::new(parts),
            next: 0,
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.parts[self.next.min(3)..].iter().map(Bytes::len).sum()
    }

    /// The pieces still to send, in order (some may be empty).
    pub fn pieces(&self) -> &[Bytes] {
        &self.parts[self.next.min(3)..]
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
