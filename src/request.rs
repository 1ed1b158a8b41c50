//! Reading a request body under a size cap, scanning it once for the fields the
//! proxy needs, and splicing a deployment's model into it without copying the rest.

use crate::body::Spliced;
use crate::error::ProxyError;
use crate::scan::{self, Fields, Span};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::borrow::Cow;

/// How much of an oversized body is read and thrown away so the connection can be
/// reused; past this the connection is closed instead.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// A scanned request body.
pub struct Parsed {
    /// The body exactly as received.
    pub body: Bytes,
    /// Where the fields of interest are in `body`.
    pub fields: Fields,
    /// Span of the model value in `body`.
    pub model_span: Span,
    /// The requested model decoded, when its JSON string has escapes. Most names have
    /// none: they are read in place, between the quotes at `model_span`, and cost no
    /// allocation.
    decoded_model: Option<String>,
}

impl Parsed {
    /// Scans a body; errors are the 400s a client should see.
    pub fn new(body: Bytes) -> Result<Parsed, ProxyError> {
        let fields = scan::scan(&body).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
        let model_span = fields.model.ok_or(ProxyError::MissingModel)?;
        let decoded_model = match model_span.as_str(&body) {
            Some(Cow::Borrowed(_)) => None,
            Some(Cow::Owned(name)) => Some(name),
            None => {
                return Err(ProxyError::BadRequest(format!(
                    "\"model\" must be a string, got {}",
                    String::from_utf8_lossy(model_span.text(&body))
                )))
            }
        };
        Ok(Parsed {
            body,
            fields,
            model_span,
            decoded_model,
        })
    }

    /// The requested model, decoded.
    pub fn model(&self) -> &str {
        match &self.decoded_model {
            Some(name) => name,
            // Without escapes the name is the string's bytes between its quotes.
            None => {
                std::str::from_utf8(&self.body[self.model_span.start + 1..self.model_span.end - 1])
                    .expect("checked to be UTF-8 when scanned")
            }
        }
    }

    /// The body to send upstream: the model value replaced by `model_json` (a JSON
    /// string literal), everything else the client's bytes, uncopied.
    pub fn spliced(&self, model_json: &Bytes) -> Spliced {
        let s = &self.model_span;
        Spliced::new([
            self.body.slice(..s.start),
            model_json.clone(),
            self.body.slice(s.end..),
        ])
    }

    /// Whether the client asked for a stream.
    pub fn stream(&self) -> bool {
        self.fields.stream()
    }
}

/// Reads a whole body, refusing more than `limit` bytes with a 413.
///
/// A single-frame body (the common case) is copied once out of hyper's buffer;
/// one in several frames is gathered into a buffer of its announced length.
pub async fn read_body(
    mut body: Incoming,
    content_length: Option<u64>,
    limit: usize,
    limit_mb: f64,
) -> Result<Bytes, ProxyError> {
    let too_large = ProxyError::PayloadTooLarge { limit_mb };
    if content_length.is_some_and(|n| n > limit as u64) {
        drain(body).await;
        return Err(too_large);
    }
    let mut first: Option<Bytes> = None;
    let mut buf: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ProxyError::BadRequest(format!("reading body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total > limit {
            drain(body).await;
            return Err(too_large);
        }
        match (&mut first, &mut buf) {
            (None, None) => first = Some(data),
            (Some(_), None) => {
                let head = first.take().expect("checked Some");
                let cap = content_length.map_or(head.len() + data.len(), |n| n as usize);
                let mut b = BytesMut::with_capacity(cap);
                b.extend_from_slice(&head);
                b.extend_from_slice(&data);
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&data),
        }
    }
    Ok(match (first, buf) {
        (_, Some(b)) => b.freeze(),
        // Copied (a small body: about as cheap as the allocation it saves): the
        // frame shares hyper's read buffer, which hyper reuses only once nothing
        // else holds it. Otherwise every request in flight costs a second buffer.
        (Some(f), None) => Bytes::copy_from_slice(&f),
        (None, None) => Bytes::new(),
    })
}

/// Reads and discards the rest of a body, up to `DRAIN_LIMIT` bytes of it.
async fn drain(mut body: Incoming) {
    let mut drained = 0;
    while drained <= DRAIN_LIMIT {
        match body.frame().await {
            Some(Ok(f)) => drained += f.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn splice_replaces_only_the_model_value() {
        let body = Bytes::from_static(br#"{"messages":[{"model":"x"}], "model" : "gpt-4", "n":1}"#);
        let p = Parsed::new(body).unwrap();
        assert_eq!(p.model(), "gpt-4");
        let out = p.spliced(&Bytes::from_static(b"\"my-model\""));
        let expected = br#"{"messages":[{"model":"x"}], "model" : "my-model", "n":1}"#;
        assert_eq!(out.len(), expected.len());
        let sent = out.collect().await.unwrap().to_bytes();
        assert_eq!(&sent[..], expected);
    }

    #[test]
    fn the_model_is_read_in_place_or_decoded_when_escaped() {
        let model = |b: &'static [u8]| {
            let p = Parsed::new(Bytes::from_static(b)).unwrap();
            (p.model().to_owned(), p.decoded_model.is_none())
        };
        assert_eq!(model(br#"{"model":"gpt-4o"}"#), ("gpt-4o".into(), true));
        assert_eq!(model(br#"{ "model" : "" }"#), ("".into(), true));
        assert_eq!(
            model("{\"model\":\"modèle\"}".as_bytes()),
            ("modèle".into(), true)
        );
        assert_eq!(
            model(br#"{"model":"gpt\u002d4o"}"#),
            ("gpt-4o".into(), false)
        );
        assert_eq!(model(br#"{"model":"a\"b"}"#), ("a\"b".into(), false));
    }

    #[test]
    fn bad_bodies_are_400s_with_reasons() {
        let err = |b: &'static [u8]| Parsed::new(Bytes::from_static(b)).err().unwrap();
        assert_eq!(err(b"{\"messages\":[]}"), ProxyError::MissingModel);
        assert!(
            matches!(err(b"{\"model\":5}"), ProxyError::BadRequest(m) if m.contains("must be a string"))
        );
        assert!(matches!(err(b"{\"model\":"), ProxyError::BadRequest(m) if m.contains("JSON")));
        assert!(matches!(err(b"[1]"), ProxyError::BadRequest(_)));
        assert!(matches!(err(b""), ProxyError::BadRequest(_)));
    }
}
