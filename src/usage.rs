//! Token `usage` of a proxied response, found while its body streams through.
//!
//! The proxy passes upstream bodies on frame by frame and never holds a whole one. A
//! [`UsageSniffer`] sees every frame as it passes and keeps only
//! - the newest frame (a reference, not a copy) and the last [`TAIL`] bytes before it, in a ring
//!   buffer allocated once a second frame arrives, where [`UsageSniffer::finish`] looks for the
//!   upstream's reported `"usage": {...}` object (a body in one frame, the usual non-streamed
//!   answer, is searched in place: nothing is copied or allocated); and
//! - for `text/event-stream` bodies, a small state machine that counts `data:` events and the
//!   bytes of generated text, so that a stream without usage can be estimated.
//!
//! Reported usage is the last non-null `"usage"` object in the tail whose braces are complete,
//! where `"usage"` is a real key (its opening quote is not escaped and a `:` follows it). Text that
//! merely mentions `\"usage\"` inside a JSON string is never taken for it. A usage object that
//! ends more than [`TAIL`] bytes before the body's end, or that starts before the tail, is not
//! found: the result is then an estimate, which is the accepted price of a bounded buffer.
//!
//! Estimates: the prompt count is the caller's; completion tokens are the decoded bytes of
//! generated text in an event stream (see [`TEXT_KEYS`]), or all bytes of any other body (a
//! deliberate over-estimate), divided by four and rounded up.

use crate::scan;
use bytes::Bytes;

mod sse;
#[cfg(test)]
mod tests;

use sse::Sse;

/// Bytes at the end of a body that are kept and searched for the reported usage.
///
/// OpenAI, Azure and vLLM put usage last or within a few hundred bytes of the end (after it come
/// at most `system_fingerprint`, `service_tier`, filter results or `data: [DONE]`).
pub const TAIL: usize = 4096;

/// Keys whose string values in an event stream are generated text and count toward the
/// completion estimate: message `content` (and `text` of content parts and text completions),
/// reasoning text, refusals, and streamed tool-call `arguments`.
pub const TEXT_KEYS: [&[u8]; 6] = [
    b"content",
    b"text",
    b"reasoning_content",
    b"reasoning",
    b"refusal",
    b"arguments",
];

/// Length of the longest name in [`TEXT_KEYS`].
const KEY_CAP: usize = 17;

/// The key searched for in the tail, quotes included.
const USAGE_KEY: &[u8] = b"\"usage\"";

/// Token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens of the request's input.
    pub prompt_tokens: u64,
    /// Tokens the upstream generated.
    pub completion_tokens: u64,
    /// Their sum, or what the upstream reported as the total.
    pub total_tokens: u64,
}

/// Where the numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The upstream's own `usage` object.
    Reported,
    /// The caller's prompt estimate and a completion estimate from the body.
    Estimated,
}

/// Watches a response body frame by frame and tells its token usage at the end.
#[derive(Debug)]
pub struct UsageSniffer {
    /// The newest frame, shared with the response (not copied).
    last: Bytes,
    /// The last bytes before `last`, at most [`TAIL`]; no capacity until a second frame.
    tail: Vec<u8>,
    /// Index in `tail` of its oldest byte once it is full (0 until then).
    head: usize,
    /// Bytes seen in all.
    bytes: u64,
    /// The event-stream scanner, for `text/event-stream` bodies only.
    sse: Option<Sse>,
}

impl UsageSniffer {
    /// `sse`: the response is text/event-stream.
    ///
    /// Allocates nothing; the tail buffer is allocated when a second frame arrives.
    pub fn new(sse: bool) -> Self {
        Self {
            last: Bytes::new(),
            tail: Vec::new(),
            head: 0,
            bytes: 0,
            sse: sse.then(Sse::new),
        }
    }

    /// Sees the next frame of body bytes, in order.
    pub fn feed(&mut self, bytes: &Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.bytes += bytes.len() as u64;
        if let Some(sse) = &mut self.sse {
            sse.scan(bytes);
        }
        let older = std::mem::replace(&mut self.last, bytes.clone());
        if !older.is_empty() {
            self.keep(&older);
        }
    }

    /// Total bytes seen.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// For SSE: number of events with a `data:` field that is not `[DONE]` seen so far
    /// (counted as soon as such a field's first byte arrives); 0 for other bodies.
    pub fn events(&self) -> u64 {
        self.sse.as_ref().map_or(0, |s| s.events)
    }

    /// The usage reported by the upstream if found in the tail, else an estimate.
    ///
    /// Reported: the last non-null `"usage": {...}` object in the tail whose braces are complete
    /// and that has at least one of `prompt_tokens`, `completion_tokens` and `total_tokens` as a
    /// non-negative integer. A missing total is prompt + completion, a missing completion is
    /// total - prompt, a missing prompt is total - completion (both saturating).
    ///
    /// Estimated: prompt = `prompt_estimate`; completion = generated text bytes (SSE) or all
    /// bytes (other bodies) / 4, rounded up; total = their sum.
    pub fn finish(&self, prompt_estimate: u64) -> (Usage, Source) {
        let last = &self.last[self.last.len().saturating_sub(TAIL)..];
        let found = if last.len() == TAIL || self.tail.is_empty() {
            find_usage(last, self.bytes > last.len() as u64)
        } else {
            // Ring (oldest first) then the newest frame, trimmed to the last TAIL bytes.
            let mut joined = [0u8; TAIL];
            let (newer, older) = self.tail.split_at(self.head);
            let len = (self.tail.len() + last.len()).min(TAIL);
            let mut at = len - last.len();
            joined[at..len].copy_from_slice(last);
            for part in [newer, older] {
                let n = part.len().min(at);
                joined[at - n..at].copy_from_slice(&part[part.len() - n..]);
                at -= n;
            }
            find_usage(&joined[..len], self.bytes > len as u64)
        };
        if let Some(usage) = found {
            return (usage, Source::Reported);
        }
        let basis = self.sse.as_ref().map_or(self.bytes, |s| s.text_bytes);
        let completion = basis.div_ceil(4);
        let usage = Usage {
            prompt_tokens: prompt_estimate,
            completion_tokens: completion,
            total_tokens: prompt_estimate.saturating_add(completion),
        };
        (usage, Source::Estimated)
    }

    /// Appends `bytes` to the ring buffer, dropping the oldest beyond [`TAIL`].
    fn keep(&mut self, mut bytes: &[u8]) {
        if self.tail.capacity() == 0 {
            self.tail.reserve_exact(TAIL);
        }
        if bytes.len() >= TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - TAIL..]);
            self.head = 0;
            return;
        }
        let room = TAIL - self.tail.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.tail.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        while !bytes.is_empty() {
            let n = (TAIL - self.head).min(bytes.len());
            self.tail[self.head..self.head + n].copy_from_slice(&bytes[..n]);
            self.head = (self.head + n) % TAIL;
            bytes = &bytes[n..];
        }
    }
}

/// The last usable `"usage": {...}` in `tail`; `cut` says bytes before `tail` were dropped.
fn find_usage(tail: &[u8], cut: bool) -> Option<Usage> {
    let mut end = tail.len();
    while let Some(at) = rfind_key(&tail[..end]) {
        // An earlier occurrence overlapping this one (sharing its quote) is followed by `u`,
        // not `:`, so searching before `at` is enough.
        end = at;
        let backslashes = tail[..at].iter().rev().take_while(|&&c| c == b'\\').count();
        if backslashes % 2 == 1 || (cut && backslashes == at) {
            // An escaped quote, or one whose preceding bytes are gone: not known to be a key.
            continue;
        }
        if let Some(usage) = usage_after_key(&tail[at + USAGE_KEY.len()..]) {
            return Some(usage);
        }
    }
    None
}

/// Where the last `"usage"` in `hay` starts. Candidates are the places of its rarest
/// letter, `g`, found from the end by the vectorised `memrchr`. A reverse substring
/// search (`memmem::FinderRev`) goes byte by byte: on the fake upstream's answer it
/// took about 430 instructions where this takes about 70 (callgrind).
fn rfind_key(hay: &[u8]) -> Option<usize> {
    const G: usize = 4; // `"usage"[G] == b'g'`
    memchr::memrchr_iter(b'g', hay)
        .filter_map(|g| g.checked_sub(G))
        .find(|&at| hay[at..].starts_with(USAGE_KEY))
}

/// The usage object in `rest`, the bytes after a `"usage"` key: `: {...}` with complete braces.
fn usage_after_key(rest: &[u8]) -> Option<Usage> {
    let rest = skip_space(rest).strip_prefix(b":")?;
    let [prompt, completion, total] = counts(skip_space(rest))?;
    if prompt.is_none() && completion.is_none() && total.is_none() {
        return None;
    }
    let prompt =
        prompt.unwrap_or_else(|| total.unwrap_or(0).saturating_sub(completion.unwrap_or(0)));
    let completion = completion.unwrap_or_else(|| total.unwrap_or(0).saturating_sub(prompt));
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total.unwrap_or(prompt.saturating_add(completion)),
    })
}

/// Member names of the counts in a usage object, in the order [`counts`] returns them.
const COUNT_KEYS: [&[u8]; 3] = [b"prompt_tokens", b"completion_tokens", b"total_tokens"];

/// Prompt, completion and total count of the usage object `text` starts with, read
/// with the request scanner; `None` unless that is a valid object whose braces close
/// within `text`. Each count is its member's value if that is a non-negative integer
/// written without sign, fraction or exponent (the last one if the member repeats);
/// other members are validated and skipped. Nothing is allocated.
fn counts(text: &[u8]) -> Option<[Option<u64>; 3]> {
    let mut counts = [None; 3];
    scan::leading_object(text, |key, escaped, value| {
        let known = |k: &[u8]| COUNT_KEYS.iter().position(|&name| name == k);
        if let Some(i) = scan::decode_key(key, escaped, known) {
            counts[i] = value.as_u64(text);
        }
    })
    .ok()?;
    Some(counts)
}

/// `s` without leading JSON whitespace.
fn skip_space(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(s.len());
    &s[start..]
}
