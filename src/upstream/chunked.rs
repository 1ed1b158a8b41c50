//! Decoding a chunked HTTP/1.1 body (RFC 9112 §7.1) as its bytes arrive: the data
//! of each chunk is handed on as soon as any of it is read, without copying;
//! chunk extensions and trailers are skipped.

use bytes::{Buf, Bytes, BytesMut};

/// A chunk size's hex digits past this many would overflow.
const MAX_SIZE_DIGITS: u8 = 15;

/// Where the decoder is in the chunked framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Reading a chunk size: the value so far, and its digits.
    Size(u64, u8),
    /// Skipping a chunk extension (or whitespace) after the size.
    Ext(u64),
    /// After a size line's CR.
    SizeLf(u64),
    /// Inside a chunk: its bytes left.
    Data(u64),
    /// After a chunk's data: its CR.
    DataCr,
    /// After a chunk's data: its LF.
    DataLf,
    /// After the last chunk: at the start of a trailer line (or the final CRLF)
    /// when false, inside a trailer line when true.
    Trailer(bool),
    /// After a trailer line's CR (true) or the final CR (false).
    TrailerLf(bool),
    /// The body has ended.
    Done,
}

impl Chunked {
    /// A decoder at the start of a body.
    pub fn new() -> Chunked {
        Chunked::Size(0, 0)
    }

    /// True once the last chunk and the trailers are read.
    pub fn is_done(&self) -> bool {
        *self == Chunked::Done
    }

    /// Consumes framing from the front of `buf` up to the next chunk data, and
    /// returns that data (as much of it as `buf` holds). `None` when `buf` ran out
    /// first or the body has ended ([`Chunked::is_done`]).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, &'static str> {
        while !buf.is_empty() {
            match *self {
                Chunked::Done => return Ok(None),
                Chunked::Data(left) => {
                    let n = left.min(buf.len() as u64);
                    *self = if n == left {
                        Chunked::DataCr
                    } else {
                        Chunked::Data(left - n)
                    };
                    return Ok(Some(buf.split_to(n as usize).freeze()));
                }
                _ => {
                    *self = self.next(buf[0])?;
                    buf.advance(1);
                }
            }
        }
        Ok(None)
    }

    /// The state after one framing byte.
    fn next(self, b: u8) -> Result<Chunked, &'static str> {
        Ok(match (self, b) {
            (Chunked::Size(n, digits), _) if b.is_ascii_hexdigit() => {
                if digits == MAX_SIZE_DIGITS {
                    return Err("chunk size too large");
                }
                let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                Chunked::Size(n << 4 | d, digits + 1)
            }
            (Chunked::Size(n, 1..), b'\r') => Chunked::SizeLf(n),
            (Chunked::Size(n, 1..), b';' | b' ' | b'\t') => Chunked::Ext(n),
            (Chunked::Ext(n), b'\r') => Chunked::SizeLf(n),
            (Chunked::Ext(n), _) => Chunked::Ext(n),
            (Chunked::SizeLf(0), b'\n') => Chunked::Trailer(false),
            (Chunked::SizeLf(n), b'\n') => Chunked::Data(n),
            (Chunked::DataCr, b'\r') => Chunked::DataLf,
            (Chunked::DataLf, b'\n') => Chunked::Size(0, 0),
            (Chunked::Trailer(line), b'\r') => Chunked::TrailerLf(line),
            (Chunked::Trailer(_), _) => Chunked::Trailer(true),
            (Chunked::TrailerLf(true), b'\n') => Chunked::Trailer(false),
            (Chunked::TrailerLf(false), b'\n') => Chunked::Done,
            _ => return Err("malformed chunked body"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed `step` bytes at a time: the data, and whether it ended.
    fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, bool), &'static str> {
        let mut d = Chunked::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(data) = d.decode(&mut buf)? {
                out.extend_from_slice(&data);
            }
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn whole_and_split_anywhere() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        for step in 1..=body.len() {
            let (data, done) = decode(body, step).unwrap();
            assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            assert!(done, "step {step}");
        }
    }

    #[test]
    fn trailers_are_skipped_and_bytes_after_the_end_are_left() {
        let mut d = Chunked::new();
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\nx-usage: 1\r\nx-b: 2\r\n\r\nNEXT"[..]);
        assert_eq!(d.decode(&mut buf).unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert!(d.is_done());
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        for cut in ["5\r\nhel", "5\r\nhello\r\n", "0\r\n", "0\r\nx: y\r\n"] {
            let (_, done) = decode(cut.as_bytes(), 64).unwrap();
            assert!(!done, "{cut:?}");
        }
    }

    #[test]
    fn bad_framing_is_an_error() {
        for bad in [
            "\r\n",                     // no size
            "g\r\n",                    // not hex
            "5\nhello\r\n0\r\n\r\n",    // bare LF after the size
            "5\r\nhelloX\r\n0\r\n\r\n", // data longer than said
            "1000000000000000\r\n",     // 16 hex digits
        ] {
            assert!(decode(bad.as_bytes(), 64).is_err(), "{bad:?}");
        }
    }
}
