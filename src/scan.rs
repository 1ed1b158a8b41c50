//! Single-pass, validating, allocation-free scanner for proxied JSON request bodies.
//!
//! [`scan`] walks a request body once and
//! 1. decides whether it is JSON that `serde_json::from_slice::<serde_json::Value>` accepts,
//! 2. requires the top-level value to be an object, and
//! 3. records where the values of a few top-level keys (see [`TRACKED_KEYS`]) are, so the
//!    proxy can read or splice them without building a DOM.
//!
//! A tracked key that occurs twice at the top level is an error: the proxy rewrites the value it
//! found, and an upstream parser could pick a different occurrence.
//!
//! Nothing is allocated: container nesting is a 128-bit stack, strings are scanned sixteen
//! bytes at a time with word-sized bit tricks, and UTF-8 is validated only for strings that
//! hold non-ASCII bytes (a byte >= 0x80 anywhere else is a syntax error anyway).
//!
//! Valid JSON that is not an object, or that repeats a tracked top-level key, is refused with
//! [`ScanError::NotObject`] / [`ScanError::DuplicateKey`] (serde_json would keep the last
//! occurrence). Deliberate differences from serde_json (accept/reject is otherwise identical):
//! - A number is out of range when it rounds to ±infinity under correct rounding (Rust's
//!   `str::parse::<f64>`). serde_json's default float parser is approximate, so a literal
//!   within a rounding error of ±`f64::MAX` (about 1.797e308) may be decided differently.
//! - Error offsets and phrases are our own. When a body has several problems, the first one
//!   found in a left-to-right walk is reported, as serde_json does, except that invalid UTF-8
//!   inside a string is reported only once the string's closing quote has been found.

use std::borrow::Cow;
use std::fmt;

mod lexer;
#[cfg(test)]
mod tests;

use lexer::{invalid, key_index, tracked_index, unescape, Scanner};

/// Most containers that may be open at once. serde_json refuses the 128th nested level.
const MAX_DEPTH: u32 = 127;

/// The top-level keys that [`scan`] records, in the order of [`Fields`]' members.
pub const TRACKED_KEYS: [&str; 13] = [
    "model",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "mock_response",
    "mock_testing_rate_limit_error",
    "mock_testing_fallbacks",
    "num_retries",
    "timeout",
    "stream_options",
    "messages",
    "prompt",
    "input",
];

/// What kind of JSON value a span holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `escaped` is true when the string's text contains at least one backslash escape.
    String {
        escaped: bool,
    },
    Number,
    True,
    False,
    Null,
    Object,
    Array,
}

/// A top-level value's location in the body: `body[start..end]` is the value's exact text
/// (for strings, including the quotes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

impl Span {
    /// The value's text. Panics if `body` is shorter than the body that was scanned.
    pub fn text<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        &body[self.start..self.end]
    }

    /// Decoded string value (`Cow::Borrowed` when no escapes); `None` if not a string.
    pub fn as_str<'a>(&self, body: &'a [u8]) -> Option<Cow<'a, str>> {
        let Kind::String { escaped } = self.kind else {
            return None;
        };
        let inner = body.get(self.start + 1..self.end.checked_sub(1)?)?;
        let raw = std::str::from_utf8(inner).ok()?;
        if escaped {
            unescape(raw).map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(raw))
        }
    }

    /// `Some` for JSON `true` / `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            Kind::True => Some(true),
            Kind::False => Some(false),
            _ => None,
        }
    }

    /// Non-negative integer value written without fraction or exponent (`3`, not `3.0`,
    /// `3e0` or `-0`) that fits in a `u64`; `None` otherwise.
    pub fn as_u64(&self, body: &[u8]) -> Option<u64> {
        if self.kind != Kind::Number {
            return None;
        }
        // Digits only, folded by hand: no UTF-8 check or generic parse for a count.
        let digits = body.get(self.start..self.end)?;
        digits.iter().try_fold(0u64, |n, &c| {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            n.checked_mul(10)?.checked_add(u64::from(digit))
        })
    }

    /// Any number as the nearest `f64`; `None` if not a number.
    pub fn as_f64(&self, body: &[u8]) -> Option<f64> {
        self.number_text(body)?.parse().ok()
    }

    fn number_text<'a>(&self, body: &'a [u8]) -> Option<&'a str> {
        if self.kind != Kind::Number {
            return None;
        }
        std::str::from_utf8(body.get(self.start..self.end)?).ok()
    }
}

/// Spans of the tracked top-level keys' values.
#[derive(Default, Debug, Clone)]
pub struct Fields {
    pub model: Option<Span>,
    pub stream: Option<Span>,
    pub max_tokens: Option<Span>,
    pub max_completion_tokens: Option<Span>,
    pub mock_response: Option<Span>,
    pub mock_testing_rate_limit_error: Option<Span>,
    pub mock_testing_fallbacks: Option<Span>,
    pub num_retries: Option<Span>,
    pub timeout: Option<Span>,
    pub stream_options: Option<Span>,
    pub messages: Option<Span>,
    pub prompt: Option<Span>,
    pub input: Option<Span>,
}

impl Fields {
    /// True only if `stream` is present and is JSON `true`.
    pub fn stream(&self) -> bool {
        matches!(
            self.stream,
            Some(Span {
                kind: Kind::True,
                ..
            })
        )
    }

    /// The span recorded for a tracked key, by name (see [`TRACKED_KEYS`]).
    pub fn get(&self, key: &str) -> Option<Span> {
        Some(match key_index(key.as_bytes())? {
            0 => self.model,
            1 => self.stream,
            2 => self.max_tokens,
            3 => self.max_completion_tokens,
            4 => self.mock_response,
            5 => self.mock_testing_rate_limit_error,
            6 => self.mock_testing_fallbacks,
            7 => self.num_retries,
            8 => self.timeout,
            9 => self.stream_options,
            10 => self.messages,
            11 => self.prompt,
            _ => self.input,
        })
        .flatten()
    }

    fn slot(&mut self, i: usize) -> &mut Option<Span> {
        match i {
            0 => &mut self.model,
            1 => &mut self.stream,
            2 => &mut self.max_tokens,
            3 => &mut self.max_completion_tokens,
            4 => &mut self.mock_response,
            5 => &mut self.mock_testing_rate_limit_error,
            6 => &mut self.mock_testing_fallbacks,
            7 => &mut self.num_retries,
            8 => &mut self.timeout,
            9 => &mut self.stream_options,
            10 => &mut self.messages,
            11 => &mut self.prompt,
            _ => &mut self.input,
        }
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanError {
    /// Not valid JSON; `offset` is the byte where the problem was found, `what` a short human phrase
    /// like "expected ',' or '}'" / "invalid escape" / "unexpected end of input" / "invalid UTF-8".
    Invalid { offset: usize, what: &'static str },
    /// Valid JSON but the top level is not an object.
    NotObject,
    /// A tracked top-level key appears twice.
    DuplicateKey(&'static str),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Invalid { offset, what } => {
                write!(f, "invalid JSON at byte {offset}: {what}")
            }
            ScanError::NotObject => f.write_str("request body must be a JSON object"),
            ScanError::DuplicateKey(key) => write!(f, "duplicate key \"{key}\" in request body"),
        }
    }
}

impl std::error::Error for ScanError {}

/// Validates `body` as JSON, requires a top-level object and records the tracked keys' values.
pub fn scan(body: &[u8]) -> Result<Fields, ScanError> {
    let mut fields = Fields::default();
    let mut duplicate = None;
    members(body, |key, escaped, span| {
        if let Some(i) = tracked_index(key, escaped) {
            let slot = fields.slot(i);
            if slot.is_some() {
                duplicate.get_or_insert(TRACKED_KEYS[i]);
            } else {
                *slot = Some(span);
            }
        }
    })?;
    match duplicate {
        Some(key) => Err(ScanError::DuplicateKey(key)),
        None => Ok(fields),
    }
}

/// Validates `body` as JSON and requires a top-level object, handing each of its
/// members to `each` in order: the key's raw text (between the quotes; `escaped`
/// when it holds a backslash escape, see [`decode_key`]) and the value's span.
pub fn members<'b>(
    body: &'b [u8],
    each: impl FnMut(&'b [u8], bool, Span),
) -> Result<(), ScanError> {
    let mut s = Scanner::new(body);
    s.skip_ws();
    match s.peek() {
        Some(b'{') => {}
        Some(_) => {
            s.value()?;
            s.finish()?;
            return Err(ScanError::NotObject);
        }
        None => return Err(s.eof()),
    }
    walk_object(&mut s, each)?;
    s.finish()
}

/// Like [`members`] for the object that `text` starts with, whatever follows it:
/// returns the object's length in bytes.
pub fn leading_object<'b>(
    text: &'b [u8],
    each: impl FnMut(&'b [u8], bool, Span),
) -> Result<usize, ScanError> {
    let mut s = Scanner::new(text);
    if s.peek() != Some(b'{') {
        return Err(ScanError::NotObject);
    }
    walk_object(&mut s, each)?;
    Ok(s.pos)
}

/// Scans the object at `s.pos` (its `{` is next), handing `each` its members.
fn walk_object<'b>(
    s: &mut Scanner<'b>,
    mut each: impl FnMut(&'b [u8], bool, Span),
) -> Result<(), ScanError> {
    let body = s.b;
    s.open(true)?;
    if s.peek() == Some(b'}') {
        s.pos += 1;
        return Ok(());
    }
    let mut after_comma = false;
    loop {
        let key_start = s.pos + 1;
        let escaped = s.key(after_comma)?;
        let key = &body[key_start..s.pos - 1];
        s.colon()?;
        let start = s.pos;
        let kind = s.value()?;
        each(
            key,
            escaped,
            Span {
                start,
                end: s.pos,
                kind,
            },
        );
        s.skip_ws();
        match s.peek() {
            Some(b',') => {
                s.pos += 1;
                s.skip_ws();
                after_comma = true;
            }
            Some(b'}') => {
                s.pos += 1;
                return Ok(());
            }
            Some(_) => return Err(invalid(s.pos, "expected ',' or '}'")),
            None => return Err(s.eof()),
        }
    }
}

/// `known` applied to a member key as [`members`] reports it: escaped keys are
/// decoded first, into a stack buffer. Keys longer than 32 decoded bytes, or with
/// escapes above `\u00ff`, are never known, which suits short ASCII names.
pub fn decode_key<T>(raw: &[u8], escaped: bool, known: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
    if escaped {
        lexer::with_decoded(raw, known)
    } else {
        known(raw)
    }
}
