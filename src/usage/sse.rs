//! The streamed-text counter behind the usage estimate: a small state machine over
//! SSE `data:` lines that counts the bytes of text values (`TEXT_KEYS`) across
//! frame boundaries, without parsing each event.

use super::{KEY_CAP, TEXT_KEYS};

/// Where the event-stream scanner is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At a line's start, with this many bytes of `data:` matched.
    Field(u8),
    /// Right after `data:`, where one space may follow.
    Colon,
    /// In a data value, with this many bytes of `[DONE]` matched and nothing else yet.
    Done(u8),
    /// In a data value that is not `[DONE]`: JSON, scanned by [`Json`].
    Value,
    /// In a line of no interest (a comment, another field, the rest of `[DONE]`).
    Skip,
}

/// Where the JSON scanner is within a data value. Only strings are tracked: outside them, a
/// `"` starts one and everything else is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Json {
    /// Outside strings.
    Outside,
    /// In a string whose bytes so far are in `Sse::key` and may name one of [`TEXT_KEYS`].
    Key,
    /// In a string that is not of interest.
    Str,
    /// Right after a backslash in a string that is not of interest.
    StrEscape,
    /// After a string naming one of [`TEXT_KEYS`], expecting `:`.
    AfterKey,
    /// After a text key's `:`, expecting the opening quote of its value.
    AfterColon,
    /// In a text value, counting its bytes.
    Text,
    /// Right after a backslash in a text value.
    TextEscape,
    /// In a `\uXXXX` escape of a text value.
    TextUnicode {
        /// Hex digits still expected.
        left: u8,
        /// The code unit so far.
        unit: u16,
    },
}

/// Incremental scanner of an event stream: counts events and generated text bytes.
#[derive(Debug, Clone)]
pub(super) struct Sse {
    /// Position within the current line.
    line: Line,
    /// Position within the current data value's JSON.
    json: Json,
    /// The first bytes of the string being read while it may still be a text key.
    key: [u8; KEY_CAP],
    /// Bytes used in `key`.
    key_len: usize,
    /// Decoded bytes of text values seen (an escape counts as the bytes it stands for).
    pub(super) text_bytes: u64,
    /// Events with a data field other than `[DONE]`.
    pub(super) events: u64,
    /// The current event (since the last blank line) has already been counted.
    counted: bool,
}

impl Sse {
    /// A scanner at the start of a stream.
    pub(super) fn new() -> Self {
        Self {
            line: Line::Field(0),
            json: Json::Outside,
            key: [0; KEY_CAP],
            key_len: 0,
            text_bytes: 0,
            events: 0,
            counted: false,
        }
    }

    /// Scans the next bytes of the stream.
    pub(super) fn scan(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            i += match self.line {
                Line::Value => self.value(rest),
                Line::Skip => match rest.iter().position(|&c| c == b'\n') {
                    Some(at) => {
                        self.line = Line::Field(0);
                        at + 1
                    }
                    None => rest.len(),
                },
                _ => usize::from(self.line_byte(rest[0])),
            };
        }
    }

    /// Handles one byte outside a JSON value; false when it was not consumed and must be seen
    /// again as the start of a JSON value.
    fn line_byte(&mut self, c: u8) -> bool {
        const DATA: &[u8] = b"data:";
        const DONE: &[u8] = b"[DONE]";
        match self.line {
            Line::Field(0) if c == b'\n' => self.counted = false,
            Line::Field(0) if c == b'\r' => {}
            Line::Field(n) if DATA[usize::from(n)] == c => {
                self.line = if usize::from(n) + 1 == DATA.len() {
                    Line::Colon
                } else {
                    Line::Field(n + 1)
                };
            }
            Line::Field(_) if c == b'\n' => self.line = Line::Field(0),
            Line::Field(_) => self.line = Line::Skip,
            Line::Colon => {
                self.line = Line::Done(0);
                return c == b' ';
            }
            Line::Done(n) if DONE[usize::from(n)] == c => {
                self.line = if usize::from(n) + 1 == DONE.len() {
                    Line::Skip
                } else {
                    Line::Done(n + 1)
                };
            }
            Line::Done(0) if c == b'\r' => {}
            Line::Done(0) if c == b'\n' => self.line = Line::Field(0),
            Line::Done(_) => {
                if !self.counted {
                    self.counted = true;
                    self.events += 1;
                }
                self.line = Line::Value;
                self.json = Json::Outside;
                return false;
            }
            Line::Value | Line::Skip => unreachable!("handled in bulk by scan"),
        }
        true
    }

    /// Scans a data value's JSON up to a line end or a state change; returns bytes consumed.
    fn value(&mut self, rest: &[u8]) -> usize {
        match self.json {
            Json::Outside => {
                let Some(at) = rest.iter().position(|&c| c == b'"' || c == b'\n') else {
                    return rest.len();
                };
                if rest[at] == b'"' {
                    self.json = Json::Key;
                    self.key_len = 0;
                } else {
                    self.line = Line::Field(0);
                }
                at + 1
            }
            Json::Key | Json::Str | Json::Text => {
                let at = rest
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c == b'\n');
                let run = &rest[..at.unwrap_or(rest.len())];
                match self.json {
                    Json::Text => self.text_bytes += run.len() as u64,
                    Json::Key if self.key_len + run.len() <= KEY_CAP => {
                        self.key[self.key_len..self.key_len + run.len()].copy_from_slice(run);
                        self.key_len += run.len();
                    }
                    Json::Key => self.json = Json::Str,
                    _ => {}
                }
                let Some(at) = at else {
                    return rest.len();
                };
                self.json = match (rest[at], self.json) {
                    (b'\n', _) => {
                        self.line = Line::Field(0);
                        Json::Outside
                    }
                    (b'\\', Json::Text) => Json::TextEscape,
                    (b'\\', _) => Json::StrEscape,
                    (_, Json::Key) if TEXT_KEYS.contains(&&self.key[..self.key_len]) => {
                        Json::AfterKey
                    }
                    _ => Json::Outside,
                };
                at + 1
            }
            _ => usize::from(self.json_byte(rest[0])),
        }
    }

    /// Handles one byte in a JSON state that moves byte by byte; false when it was not
    /// consumed and must be seen again in the new state.
    fn json_byte(&mut self, c: u8) -> bool {
        if c == b'\n' {
            self.line = Line::Field(0);
            self.json = Json::Outside;
            return true;
        }
        self.json = match self.json {
            Json::StrEscape => Json::Str,
            Json::TextEscape if c == b'u' => Json::TextUnicode { left: 4, unit: 0 },
            Json::TextEscape => {
                self.text_bytes += 1;
                Json::Text
            }
            Json::TextUnicode { left, unit } => {
                let Some(digit) = char::from(c).to_digit(16) else {
                    // Not valid JSON: count what was read as one byte and go on as text.
                    self.text_bytes += 1;
                    self.json = Json::Text;
                    return false;
                };
                let unit = (unit << 4) | digit as u16;
                if left > 1 {
                    Json::TextUnicode {
                        left: left - 1,
                        unit,
                    }
                } else {
                    self.text_bytes += utf8_len(unit);
                    Json::Text
                }
            }
            Json::AfterKey | Json::AfterColon if matches!(c, b' ' | b'\t' | b'\r') => self.json,
            Json::AfterKey if c == b':' => Json::AfterColon,
            Json::AfterColon if c == b'"' => Json::Text,
            _ => {
                self.json = Json::Outside;
                return false;
            }
        };
        true
    }
}

/// UTF-8 bytes of a `\uXXXX` escape's code unit (a surrogate is half of a four-byte character).
fn utf8_len(unit: u16) -> u64 {
    match unit {
        0..=0x7f => 1,
        0x80..=0x7ff => 2,
        0xd800..=0xdfff => 2,
        _ => 3,
    }
}
