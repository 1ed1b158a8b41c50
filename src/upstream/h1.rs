//! sluice's HTTP/1.1 client connection. A request goes out in one vectored write;
//! the answer's head is parsed with httparse and its body read as the client's
//! response polls it, all in the request's own task. There is no connection task
//! and no channel to one: a connection is a socket, a read buffer and the room for
//! a request head, owned by the request using it or by its origin's idle list.

use super::chunked::Chunked;
use super::counted::Count;
use super::names::Names;
use super::origin::Origin;
use super::Error;
use crate::body::Spliced;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use smallvec::SmallVec;
use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::either::Either;

/// The socket: plain TCP, or TLS boxed (a TLS session is kilobytes; most
/// upstreams a load test meets are plain).
type Stream = Either<TcpStream, Box<TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>>>;

/// An answer's head may not be longer than this.
const MAX_HEAD: usize = 64 * 1024;
const TOO_LONG: Error = Error::Protocol("the upstream's answer head is over 64 KB");
/// Nor have more header lines than this (as hyper's client allows).
const MAX_HEADERS: usize = 100;
/// Room made in the read buffer when less than [`MIN_ROOM`] is left: a whole
/// answer of a chat completion fits.
const READ_ROOM: usize = 4096;
const MIN_ROOM: usize = 512;

/// An HTTP/1.1 connection to an upstream.
pub struct Conn {
    io: Stream,
    /// Bytes read and not yet handed on; empty between requests.
    buf: BytesMut,
    /// The request head being written (kept for its room).
    head: Vec<u8>,
    /// The header names of this upstream's answers.
    names: Names,
    _count: Count,
}

/// Why a request got no answer on a connection.
pub enum Failed {
    /// The connection failed before any of the request was written: on a reused
    /// connection, which the upstream may have just closed, another can take it
    /// (boxed: a rare path, and the request is large).
    Unsent(Box<Request<Spliced>>, io::Error),
    /// The request went out (or part of it), then the exchange failed.
    Broken(Error),
}

impl Conn {
    /// A connection over a dialled stream, counted as open until dropped.
    pub fn new(io: MaybeHttpsStream<TokioIo<TcpStream>>, count: Count) -> Box<Conn> {
        let io = match io {
            MaybeHttpsStream::Http(tcp) => Either::Left(tcp.into_inner()),
            tls => Either::Right(Box::new(TokioIo::new(tls))),
        };
        Box::new(Conn {
            io,
            buf: BytesMut::new(),
            head: Vec::new(),
            names: Names::default(),
            _count: count,
        })
    }

    /// Whether an idle connection can take a request: the upstream has neither
    /// closed it nor sent anything unasked. Costs no system call unless the socket
    /// became readable since the last answer (whose short read cleared that).
    pub fn is_usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [MaybeUninit::uninit()];
        let mut probe = ReadBuf::uninit(&mut byte);
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    /// Sends `req` to `path` on `host` and reads the answer's head; the body is
    /// read as the returned response's body is polled, and gives the connection
    /// back to `origin` when it ends.
    pub async fn send(
        mut self: Box<Conn>,
        req: Request<Spliced>,
        path: &str,
        host: &HeaderValue,
        origin: &Arc<Origin>,
    ) -> Result<Response<Body>, Failed> {
        self.encode_head(&req, path, host);
        match self.write_request(req.body().pieces()).await {
            Ok(()) => {}
            Err((e, true)) => return Err(Failed::Unsent(Box::new(req), e)),
            Err((e, false)) => return Err(Failed::Broken(Error::Io(e))),
        }
        let head_only = req.method() == Method::HEAD;
        // The request's header map, sized for an answer (see `Call::build`), takes
        // the answer's headers: no map is made per request.
        let mut map = req.into_parts().0.headers;
        map.clear();
        let read = self.read_head(head_only, &mut map).await;
        let (resp, framing, keep) = read.map_err(Failed::Broken)?;
        let body = Body {
            conn: Some(self),
            origin: origin.clone(),
            framing,
            keep,
        };
        Ok(resp.map(|()| body))
    }

    /// Writes the request line and headers of `req` into `self.head`, with
    /// `Host` and the body's `Content-Length` (`Call::build` sets neither).
    fn encode_head(&mut self, req: &Request<Spliced>, path: &str, host: &HeaderValue) {
        let h = &mut self.head;
        h.clear();
        h.extend_from_slice(req.method().as_str().as_bytes());
        h.push(b' ');
        h.extend_from_slice(path.as_bytes());
        h.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        h.extend_from_slice(host.as_bytes());
        h.extend_from_slice(b"\r\n");
        for (name, value) in req.headers() {
            h.extend_from_slice(name.as_str().as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        h.extend_from_slice(b"content-length: ");
        h.extend_from_slice(itoa::Buffer::new().format(req.body().len()).as_bytes());
        h.extend_from_slice(b"\r\n\r\n");
    }

    /// Writes the head and `body` with as few system calls as the socket allows.
    /// On failure, also says whether nothing at all was written.
    async fn write_request(&mut self, body: &[Bytes]) -> Result<(), (io::Error, bool)> {
        let mut slices: SmallVec<[IoSlice<'_>; 4]> = SmallVec::new();
        slices.push(IoSlice::new(&self.head));
        slices.extend(
            body.iter()
                .filter(|b| !b.is_empty())
                .map(|b| IoSlice::new(b)),
        );
        let mut bufs = &mut slices[..];
        let mut sent = false;
        while !bufs.is_empty() {
            match self.io.write_vectored(bufs).await {
                Ok(0) => return Err((io::ErrorKind::WriteZero.into(), !sent)),
                Ok(n) => {
                    sent = true;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) => return Err((e, !sent)),
            }
        }
        self.io.flush().await.map_err(|e| (e, false))
    }

    /// Reads until the answer's head is whole (skipping 1xx interim answers) and
    /// returns it, its headers in the empty `map`, with its body's framing and
    /// whether the connection stays open after it.
    async fn read_head(
        &mut self,
        head_only: bool,
        map: &mut HeaderMap,
    ) -> Result<(Response<()>, Framing, bool), Error> {
        // Each answer starts with `READ_ROOM` of room: the block the last answer was
        // read into again, with no allocation, once nothing holds that answer's
        // head or body any more (a new block otherwise).
        if self.buf.capacity() < READ_ROOM {
            self.buf.reserve(READ_ROOM);
        }
        loop {
            if let Some(head) = self.parse_head(head_only, map)? {
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(TOO_LONG);
            }
            let read = std::future::poll_fn(|cx| self.poll_fill(cx)).await;
            if read.map_err(Error::Io)? == 0 {
                return Err(Error::Protocol(if self.buf.is_empty() {
                    "the upstream closed the connection without answering"
                } else {
                    "the upstream closed the connection in the middle of its answer's head"
                }));
            }
        }
    }

    /// The head, if `buf` holds a whole one (an interim 1xx one is dropped).
    fn parse_head(
        &mut self,
        head_only: bool,
        map: &mut HeaderMap,
    ) -> Result<Option<(Response<()>, Framing, bool)>, Error> {
        const BAD: Error = Error::Protocol("the upstream's answer is not valid HTTP/1.1");
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let len =
            match config.parse_response_with_uninit_headers(&mut parsed, &self.buf, &mut slots) {
                Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
                Ok(httparse::Status::Complete(_)) => return Err(TOO_LONG),
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(_) => return Err(BAD),
            };
        let code = parsed.code.unwrap_or(0);
        if (100..200).contains(&code) {
            if code == 101 {
                return Err(Error::Protocol("the upstream switched protocols"));
            }
            self.buf.advance(len);
            return self.parse_head(head_only, map);
        }
        let status = StatusCode::from_u16(code).map_err(|_| BAD)?;
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Names now; values, which share the head's bytes, once it is split off.
        // Room on the stack for the 22 lines of an OpenAI answer and some more.
        let start = self.buf.as_ptr() as usize;
        let mut lines: SmallVec<[(HeaderName, usize, usize); 32]> = SmallVec::new();
        let mut seen = HeadLines::new(version);
        self.names.start();
        for h in parsed.headers.iter() {
            let name = self.names.name(h.name.as_bytes()).map_err(|_| BAD)?;
            seen.see(&name, h.value)?;
            lines.push((name, h.value.as_ptr() as usize - start, h.value.len()));
        }
        let raw = self.buf.split_to(len).freeze();
        let mut headers = std::mem::take(map);
        headers.reserve(lines.len());
        for (name, at, n) in lines {
            let value = HeaderValue::from_maybe_shared(raw.slice(at..at + n)).map_err(|_| BAD)?;
            headers.append(name, value);
        }
        let no_body = head_only || code == 204 || code == 304;
        let (framing, keep) = seen.framing(no_body);
        let mut resp = Response::new(());
        *resp.status_mut() = status;
        *resp.version_mut() = version;
        *resp.headers_mut() = headers;
        Ok(Some((resp, framing, keep)))
    }

    /// Reads what the socket has into `buf`: the bytes read, 0 at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < MIN_ROOM {
            self.buf.reserve(READ_ROOM);
        }
        let read = self.io.read_buf(&mut self.buf);
        std::pin::pin!(read).poll(cx)
    }
}

/// What an answer's header lines say about its body and its connection.
struct HeadLines {
    length: Option<u64>,
    chunked: bool,
    transfer_encoding: bool,
    close: bool,
}

impl HeadLines {
    fn new(version: Version) -> HeadLines {
        HeadLines {
            length: None,
            chunked: false,
            transfer_encoding: false,
            // HTTP/1.0 closes unless the answer asks to keep the connection.
            close: version == Version::HTTP_10,
        }
    }

    /// Notes one header line.
    fn see(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), Error> {
        if name == header::CONTENT_LENGTH {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(Error::Protocol(
                    "the upstream's Content-Length is not a number",
                ))?;
            if self.length.is_some_and(|m| m != n) {
                return Err(Error::Protocol("the upstream sent two Content-Lengths"));
            }
            self.length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            self.transfer_encoding = true;
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            self.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name == header::CONNECTION {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.close = false;
                }
            }
        }
        Ok(())
    }

    /// The body's framing (RFC 9112 §6.3), and whether the connection stays open.
    fn framing(self, no_body: bool) -> (Framing, bool) {
        if no_body {
            (Framing::Length(0), !self.close)
        } else if self.transfer_encoding {
            // A length beside a transfer coding may have misled someone on the way.
            let keep = self.chunked && self.length.is_none() && !self.close;
            if self.chunked {
                (Framing::Chunked(Chunked::new()), keep)
            } else {
                (Framing::UntilClose, false)
            }
        } else if let Some(n) = self.length {
            (Framing::Length(n), !self.close)
        } else {
            (Framing::UntilClose, false)
        }
    }
}

/// How an answer's body ends.
#[derive(Debug)]
enum Framing {
    /// After this many more bytes.
    Length(u64),
    /// With its last chunk.
    Chunked(Chunked),
    /// When the upstream closes the connection.
    UntilClose,
}

/// An HTTP/1 answer's body, read from its connection as it is polled. The
/// connection goes back to its origin once the body has ended; one dropped
/// before its end, or broken, is closed.
pub struct Body {
    /// The connection, until the body ends.
    conn: Option<Box<Conn>>,
    origin: Arc<Origin>,
    framing: Framing,
    /// The connection may serve another request after this answer.
    keep: bool,
}

impl Body {
    /// True once every byte of the body has been handed on.
    pub fn is_end_stream(&self) -> bool {
        self.conn.is_none() || matches!(self.framing, Framing::Length(0))
    }

    /// The exact length, when the answer gave one.
    pub fn exact_len(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }

    /// The next piece of the body: `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let data = match &mut self.framing {
                Framing::Length(0) => None,
                Framing::Length(left) if !conn.buf.is_empty() => {
                    let n = (*left).min(conn.buf.len() as u64);
                    *left -= n;
                    Some(conn.buf.split_to(n as usize).freeze())
                }
                Framing::Chunked(chunks) => match chunks.decode(&mut conn.buf) {
                    Ok(data) => data,
                    Err(why) => {
                        self.conn = None;
                        return Poll::Ready(Some(Err(Error::Protocol(why))));
                    }
                },
                Framing::UntilClose if !conn.buf.is_empty() => Some(conn.buf.split().freeze()),
                Framing::Length(_) | Framing::UntilClose => None,
            };
            if let Some(data) = data {
                if self.is_end_stream() {
                    self.finish();
                }
                return Poll::Ready(Some(Ok(data)));
            }
            if self.ended() {
                self.finish();
                return Poll::Ready(None);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if matches!(self.framing, Framing::UntilClose) => {
                    self.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    self.conn = None;
                    let why = "the upstream closed the connection in the middle of its answer";
                    return Poll::Ready(Some(Err(Error::Protocol(why))));
                }
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(Error::Io(e))));
                }
            }
        }
    }

    /// The framing says the body is over (with no data left to hand on).
    fn ended(&self) -> bool {
        match &self.framing {
            Framing::Length(n) => *n == 0,
            Framing::Chunked(c) => c.is_done(),
            Framing::UntilClose => false,
        }
    }

    /// Gives the connection back if it can serve again: kept open, and nothing
    /// read past this answer. It keeps its read buffer, empty, for the next answer
    /// (see `read_head`): an idle connection holds one read block, `READ_ROOM`
    /// unless it once read a longer head.
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.keep && conn.buf.is_empty() {
                self.origin.checkin(conn);
            }
        }
        self.framing = Framing::Length(0);
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // A body that ended unpolled (empty, or read whole) still frees its connection.
        if self.conn.is_some() && self.ended() {
            self.finish();
        }
    }
}
