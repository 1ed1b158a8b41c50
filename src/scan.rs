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

#[cfg(test)]
mod tests;

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
        let text = self.number_text(body)?;
        if text.bytes().all(|c| c.is_ascii_digit()) {
            text.parse().ok()
        } else {
            None
        }
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
    let mut s = Scanner {
        b: body,
        pos: 0,
        depth: 0,
        stack: 0,
    };
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
    s.open(true)?;
    let mut fields = Fields::default();
    let mut duplicate = None;
    if s.peek() == Some(b'}') {
        s.pos += 1;
    } else {
        let mut after_comma = false;
        loop {
            let key_start = s.pos + 1;
            let escaped = s.key(after_comma)?;
            let key = &body[key_start..s.pos - 1];
            s.colon()?;
            let start = s.pos;
            let kind = s.value()?;
            if let Some(i) = tracked_index(key, escaped) {
                let slot = fields.slot(i);
                if slot.is_some() {
                    duplicate.get_or_insert(TRACKED_KEYS[i]);
                } else {
                    *slot = Some(Span {
                        start,
                        end: s.pos,
                        kind,
                    });
                }
            }
            s.skip_ws();
            match s.peek() {
                Some(b',') => {
                    s.pos += 1;
                    s.skip_ws();
                    after_comma = true;
                }
                Some(b'}') => {
                    s.pos += 1;
                    break;
                }
                Some(_) => return Err(invalid(s.pos, "expected ',' or '}'")),
                None => return Err(s.eof()),
            }
        }
    }
    s.finish()?;
    match duplicate {
        Some(key) => Err(ScanError::DuplicateKey(key)),
        None => Ok(fields),
    }
}

#[cold]
fn invalid(offset: usize, what: &'static str) -> ScanError {
    ScanError::Invalid { offset, what }
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    /// Containers open around `pos`.
    depth: u32,
    /// Bit `d` is set when the container at nesting level `d` (0-based) is an object.
    stack: u128,
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    #[cold]
    fn eof(&self) -> ScanError {
        invalid(self.b.len(), "unexpected end of input")
    }

    /// After the top-level value: only whitespace may follow.
    fn finish(&mut self) -> Result<(), ScanError> {
        self.skip_ws();
        if self.pos < self.b.len() {
            return Err(invalid(self.pos, "trailing characters"));
        }
        Ok(())
    }

    /// Enters the container whose opening bracket is at `pos`, then skips whitespace.
    fn open(&mut self, object: bool) -> Result<(), ScanError> {
        if self.depth >= MAX_DEPTH {
            return Err(invalid(self.pos, "nesting too deep"));
        }
        let bit = 1u128 << self.depth;
        if object {
            self.stack |= bit;
        } else {
            self.stack &= !bit;
        }
        self.depth += 1;
        self.pos += 1;
        self.skip_ws();
        Ok(())
    }

    /// Scans an object key at `pos` (a comma may just have been passed); returns whether it
    /// holds escapes and leaves `pos` past the closing quote.
    fn key(&mut self, after_comma: bool) -> Result<bool, ScanError> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.string()
            }
            Some(b'}') if after_comma => Err(invalid(self.pos, "trailing comma")),
            Some(_) => Err(invalid(self.pos, "key must be a string")),
            None => Err(self.eof()),
        }
    }

    /// Skips whitespace, a ':' and whitespace.
    fn colon(&mut self) -> Result<(), ScanError> {
        self.skip_ws();
        match self.peek() {
            Some(b':') => {
                self.pos += 1;
                self.skip_ws();
                Ok(())
            }
            Some(_) => Err(invalid(self.pos, "expected ':'")),
            None => Err(self.eof()),
        }
    }

    /// Scans the value starting at `pos` (no leading whitespace) and leaves `pos` just past it.
    /// Nested containers are walked with a loop, not recursion.
    fn value(&mut self) -> Result<Kind, ScanError> {
        let base = self.depth;
        let kind = match self.peek() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(c) => return self.scalar(c),
            None => return Err(self.eof()),
        };
        loop {
            // `pos` is at the start of a value.
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    let object = c == b'{';
                    self.open(object)?;
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        self.depth -= 1;
                    } else {
                        if object {
                            self.key(false)?;
                            self.colon()?;
                        }
                        continue;
                    }
                }
                Some(c) => {
                    self.scalar(c)?;
                }
                None => return Err(self.eof()),
            }
            // A value just ended: close containers until another value is due.
            loop {
                if self.depth == base {
                    return Ok(kind);
                }
                self.skip_ws();
                let object = (self.stack >> (self.depth - 1)) & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                        if object {
                            self.key(true)?;
                            self.colon()?;
                        } else if self.peek() == Some(b']') {
                            return Err(invalid(self.pos, "trailing comma"));
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        self.depth -= 1;
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        self.depth -= 1;
                    }
                    Some(_) if object => return Err(invalid(self.pos, "expected ',' or '}'")),
                    Some(_) => return Err(invalid(self.pos, "expected ',' or ']'")),
                    None => return Err(self.eof()),
                }
            }
        }
    }

    /// Scans a string, number or literal whose first byte `c` is at `pos`.
    fn scalar(&mut self, c: u8) -> Result<Kind, ScanError> {
        match c {
            b'"' => {
                self.pos += 1;
                let escaped = self.string()?;
                Ok(Kind::String { escaped })
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
                Ok(Kind::Number)
            }
            b't' => self.literal(b"true", Kind::True),
            b'f' => self.literal(b"false", Kind::False),
            b'n' => self.literal(b"null", Kind::Null),
            _ => Err(invalid(self.pos, "expected value")),
        }
    }

    fn literal(&mut self, word: &'static [u8], kind: Kind) -> Result<Kind, ScanError> {
        for (i, &want) in word.iter().enumerate() {
            match self.b.get(self.pos + i) {
                Some(&c) if c == want => {}
                Some(_) => return Err(invalid(self.pos + i, "invalid literal")),
                None => return Err(self.eof()),
            }
        }
        self.pos += word.len();
        Ok(kind)
    }

    /// Scans `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` at `pos` and refuses values that
    /// overflow an `f64`, as serde_json does.
    fn number(&mut self) -> Result<(), ScanError> {
        let b = self.b;
        let start = self.pos;
        let mut i = start + usize::from(b[start] == b'-');
        let int_start = i;
        match b.get(i) {
            Some(b'0') => {
                i += 1;
                if let Some(b'0'..=b'9') = b.get(i) {
                    return Err(invalid(i, "invalid number"));
                }
            }
            Some(b'1'..=b'9') => i = digits(b, i + 1),
            Some(_) => return Err(invalid(i, "invalid number")),
            None => return Err(self.eof()),
        }
        let int_digits = i - int_start;
        if b.get(i) == Some(&b'.') {
            let end = digits(b, i + 1);
            if end == i + 1 {
                return Err(self.number_error(end));
            }
            i = end;
        }
        let mut exponent: i64 = 0;
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            let negative = b.get(i) == Some(&b'-');
            if let Some(b'-' | b'+') = b.get(i) {
                i += 1;
            }
            let end = digits(b, i);
            if end == i {
                return Err(self.number_error(end));
            }
            for &c in &b[i..end] {
                if exponent < 1 << 40 {
                    exponent = exponent * 10 + i64::from(c - b'0');
                }
            }
            if negative {
                exponent = -exponent;
            }
            i = end;
        }
        self.pos = i;
        // |value| < 10^(int_digits + exponent), so only rare literals need the exact check.
        if exponent.saturating_add(int_digits as i64) > 300 {
            let text = std::str::from_utf8(&b[start..i]).unwrap_or("inf");
            if text.parse::<f64>().map_or(true, f64::is_infinite) {
                return Err(invalid(start, "number out of range"));
            }
        }
        Ok(())
    }

    #[cold]
    fn number_error(&self, at: usize) -> ScanError {
        if at >= self.b.len() {
            self.eof()
        } else {
            invalid(at, "invalid number")
        }
    }

    /// Scans string contents starting at `pos` (just past the opening quote) and leaves `pos`
    /// past the closing quote. Returns whether the string holds any escape.
    fn string(&mut self) -> Result<bool, ScanError> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        let mut escaped = false;
        // OR of every byte looked at; its high bits say whether UTF-8 needs checking.
        let mut seen: u64 = 0;
        loop {
            while let Some(chunk) = b[i..].first_chunk::<16>() {
                let both = u128::from_le_bytes(*chunk);
                let (lo, hi) = (both as u64, (both >> 64) as u64);
                seen |= lo | hi;
                let (mlo, mhi) = (special(lo), special(hi));
                if mlo | mhi != 0 {
                    i += if mlo != 0 {
                        mlo.trailing_zeros() as usize / 8
                    } else {
                        8 + mhi.trailing_zeros() as usize / 8
                    };
                    break;
                }
                i += 16;
            }
            match b.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i = self.escape(i)?;
                }
                Some(&c) if c < 0x20 => return Err(invalid(i, "control character in string")),
                Some(&c) => {
                    seen |= u64::from(c);
                    i += 1;
                }
                None => return Err(self.eof()),
            }
        }
        if seen & HIGH != 0 {
            if let Err(e) = std::str::from_utf8(&b[start..i]) {
                return Err(invalid(start + e.valid_up_to(), "invalid UTF-8"));
            }
        }
        self.pos = i + 1;
        Ok(escaped)
    }

    /// Checks the escape whose backslash is at `i`; returns the index just past it. Like
    /// serde_json, a `\u` surrogate must be a high one immediately followed by a low one.
    fn escape(&self, i: usize) -> Result<usize, ScanError> {
        const LONE: &str = "lone surrogate in \\u escape";
        match self.b.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
            Some(b'u') => match self.hex4(i + 2)? {
                0xDC00..=0xDFFF => Err(invalid(i, LONE)),
                0xD800..=0xDBFF => {
                    for (k, want) in [b'\\', b'u'].into_iter().enumerate() {
                        match self.b.get(i + 6 + k) {
                            Some(&c) if c == want => {}
                            Some(_) => return Err(invalid(i, LONE)),
                            None => return Err(self.eof()),
                        }
                    }
                    match self.hex4(i + 8)? {
                        0xDC00..=0xDFFF => Ok(i + 12),
                        _ => Err(invalid(i, LONE)),
                    }
                }
                _ => Ok(i + 6),
            },
            Some(_) => Err(invalid(i + 1, "invalid escape")),
            None => Err(self.eof()),
        }
    }

    fn hex4(&self, at: usize) -> Result<u32, ScanError> {
        let mut v = 0;
        for k in at..at + 4 {
            let c = *self.b.get(k).ok_or_else(|| self.eof())?;
            v = v << 4 | hex_digit(c).ok_or_else(|| invalid(k, "invalid \\u escape"))?;
        }
        Ok(v)
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is `"`, `\` or below 0x20. Bytes above the lowest
/// flagged one may be flagged spuriously (borrows), so only the lowest is meaningful.
#[inline(always)]
fn special(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let zero_quote = quote.wrapping_sub(ONES) & !quote;
    let zero_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    (zero_quote | zero_backslash | control) & HIGH
}

/// Index of the first non-digit at or after `i`.
#[inline]
fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

fn hex_digit(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

fn hex4_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?
        .iter()
        .try_fold(0, |v, &c| Some(v << 4 | hex_digit(c)?))
}

/// Index into [`TRACKED_KEYS`] of an unescaped key.
fn key_index(key: &[u8]) -> Option<usize> {
    Some(match key {
        b"model" => 0,
        b"stream" => 1,
        b"max_tokens" => 2,
        b"max_completion_tokens" => 3,
        b"mock_response" => 4,
        b"mock_testing_rate_limit_error" => 5,
        b"mock_testing_fallbacks" => 6,
        b"num_retries" => 7,
        b"timeout" => 8,
        b"stream_options" => 9,
        b"messages" => 10,
        b"prompt" => 11,
        b"input" => 12,
        _ => return None,
    })
}

/// Index into [`TRACKED_KEYS`] of a validated raw key (the text between its quotes). Keys
/// with escapes are decoded into a stack buffer first; tracked keys are short and ASCII.
fn tracked_index(raw: &[u8], escaped: bool) -> Option<usize> {
    if !escaped {
        return key_index(raw);
    }
    let mut buf = [0u8; 32];
    let mut n = 0;
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        let (byte, len) = if c == b'\\' {
            match *raw.get(i + 1)? {
                b'u' => (u8::try_from(hex4_at(raw, i + 2)?).ok()?, 6),
                b'b' => (0x08, 2),
                b'f' => (0x0c, 2),
                b'n' => (b'\n', 2),
                b'r' => (b'\r', 2),
                b't' => (b'\t', 2),
                other => (other, 2),
            }
        } else {
            (c, 1)
        };
        *buf.get_mut(n)? = byte;
        n += 1;
        i += len;
    }
    key_index(&buf[..n])
}

/// Decodes the text between a valid string's quotes; `None` if it is not valid.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let b = rest.as_bytes();
        let (ch, len) = match *b.get(i + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => {
                let high = hex4_at(b, i + 2)?;
                if (0xD800..0xDC00).contains(&high) {
                    if b.get(i + 6..i + 8)? != b"\\u" {
                        return None;
                    }
                    let low = hex4_at(b, i + 8)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    (char::from_u32(c)?, 12)
                } else {
                    (char::from_u32(high)?, 6)
                }
            }
            _ => return None,
        };
        out.push(ch);
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    Some(out)
}
