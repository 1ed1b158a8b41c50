//! The lexer behind [`scan`](super::scan): a cursor over the body that validates
//! every JSON value it steps over, sixteen bytes at a time inside strings.

use super::{Kind, ScanError, MAX_DEPTH};

#[cold]
pub(super) fn invalid(offset: usize, what: &'static str) -> ScanError {
    ScanError::Invalid { offset, what }
}

pub(super) struct Scanner<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
    /// Containers open around `pos`.
    pub(super) depth: u32,
    /// Bit `d` is set when the container at nesting level `d` (0-based) is an object.
    pub(super) stack: u128,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `b`, outside any container.
    pub(super) fn new(b: &'a [u8]) -> Self {
        Scanner {
            b,
            pos: 0,
            depth: 0,
            stack: 0,
        }
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    #[cold]
    pub(super) fn eof(&self) -> ScanError {
        invalid(self.b.len(), "unexpected end of input")
    }

    /// After the top-level value: only whitespace may follow.
    pub(super) fn finish(&mut self) -> Result<(), ScanError> {
        self.skip_ws();
        if self.pos < self.b.len() {
            return Err(invalid(self.pos, "trailing characters"));
        }
        Ok(())
    }

    /// Enters the container whose opening bracket is at `pos`, then skips whitespace.
    pub(super) fn open(&mut self, object: bool) -> Result<(), ScanError> {
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
    pub(super) fn key(&mut self, after_comma: bool) -> Result<bool, ScanError> {
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
    pub(super) fn colon(&mut self) -> Result<(), ScanError> {
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
    pub(super) fn value(&mut self) -> Result<Kind, ScanError> {
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
    pub(super) fn scalar(&mut self, c: u8) -> Result<Kind, ScanError> {
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

    pub(super) fn literal(&mut self, word: &'static [u8], kind: Kind) -> Result<Kind, ScanError> {
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
    pub(super) fn number(&mut self) -> Result<(), ScanError> {
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
    pub(super) fn number_error(&self, at: usize) -> ScanError {
        if at >= self.b.len() {
            self.eof()
        } else {
            invalid(at, "invalid number")
        }
    }

    /// Scans string contents starting at `pos` (just past the opening quote) and leaves `pos`
    /// past the closing quote. Returns whether the string holds any escape.
    pub(super) fn string(&mut self) -> Result<bool, ScanError> {
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
    pub(super) fn escape(&self, i: usize) -> Result<usize, ScanError> {
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

    pub(super) fn hex4(&self, at: usize) -> Result<u32, ScanError> {
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
pub(super) fn key_index(key: &[u8]) -> Option<usize> {
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

/// Index into [`TRACKED_KEYS`] of a validated raw key (the text between its quotes).
pub(super) fn tracked_index(raw: &[u8], escaped: bool) -> Option<usize> {
    super::decode_key(raw, escaped, key_index)
}

/// `known` applied to a validated raw key with its escapes decoded into a stack buffer;
/// the keys looked for are short and ASCII.
pub(super) fn with_decoded<T>(raw: &[u8], known: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
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
    known(&buf[..n])
}

/// Decodes the text between a valid string's quotes; `None` if it is not valid.
pub(super) fn unescape(raw: &str) -> Option<String> {
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
