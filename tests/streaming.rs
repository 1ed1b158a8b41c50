//! Streams pass through as they arrive, byte for byte, never buffered whole.
//! The upstream here is a raw socket writing a fixed chunked SSE response with
//! pauses, so the exact bytes and their timing are known.

mod common;
use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const EVENTS: [&str; 3] = [
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\"lo \\u00e9\"}}]}\n\n",
    "data: [DONE]\n\n",
];
const PAUSE: Duration = Duration::from_millis(400);

/// Accepts one connection, reads one request head+body, answers with EVENTS as
/// separate chunks, PAUSE apart.
async fn sse_upstream() -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut c, _) = l.accept().await.unwrap();
        let req = read_request(&mut c).await;
        c.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-upstream: yes\r\nconnection: keep-alive, x-hop\r\nx-hop: per-connection\r\nkeep-alive: timeout=5\r\ntransfer-encoding: chunked\r\n\r\n").await.unwrap();
        for e in EVENTS {
            c.write_all(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes())
                .await
                .unwrap();
            c.flush().await.unwrap();
            tokio::time::sleep(PAUSE).await;
        }
        c.write_all(b"0\r\n\r\n").await.unwrap();
        req
    });
    (url, task)
}

#[tokio::test]
async fn sse_stream_arrives_incrementally_and_byte_for_byte() {
    let (up, upstream) = sse_upstream().await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/x, api_base: \"{up}\"}}\n"
    ))
    .await;
    let body = r#"{"model":"m","stream":true,"messages":[]}"#;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(
        format!(
            "POST /chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut first_event_at = None;
    while !got.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&chunk[..n]);
        if first_event_at.is_none() && contains(&got, EVENTS[0].as_bytes()) {
            first_event_at = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    // The first event came well before the upstream finished: not buffered.
    let first = first_event_at.unwrap();
    assert!(total >= PAUSE * 2, "stream ended too soon: {total:?}");
    assert!(
        first + PAUSE <= total,
        "first event at {first:?}, end at {total:?}"
    );
    let text = String::from_utf8_lossy(&got).to_string();
    let (head, chunked) = text.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"));
    assert!(head.contains("x-upstream: yes"));
    assert!(head.contains("x-litellm-model-group: m"));
    // Hop-by-hop headers, and those the upstream's Connection header names, stay behind.
    assert!(!head.contains("x-hop"), "{head}");
    assert!(!head.contains("keep-alive"), "{head}");
    // The event bytes, de-chunked, are exactly what the upstream sent.
    assert_eq!(dechunk(chunked.as_bytes()), EVENTS.concat().as_bytes());
    // And the request reached the upstream with only the model changed.
    assert_eq!(
        upstream.await.unwrap(),
        br#"{"model":"x","stream":true,"messages":[]}"#
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let len =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap().trim(), 16).unwrap();
        b = &b[line_end + 2..];
        if len == 0 {
            return out;
        }
        out.extend_from_slice(&b[..len]);
        b = &b[len + 2..];
    }
}

/// An upstream that starts a stream, then drops the connection mid-way; counts
/// the connections it accepted.
async fn breaking_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut c, _) = l.accept().await.unwrap();
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                read_request(&mut c).await;
                c.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n").await.unwrap();
                let e = EVENTS[0];
                c.write_all(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes())
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                // Dropped without the last chunk: the stream breaks mid-way.
            });
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_started_stream_is_never_retried_and_ends_with_an_error_event() {
    let (up, accepted) = breaking_upstream().await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/x, api_base: \"{up}\"}}\n  - model_name: m\n    litellm_params: {{model: openai/y, api_base: \"{up}\"}}\nrouter_settings: {{num_retries: 3}}\n"
    ))
    .await;
    let r = post(
        &format!("{}/chat/completions", s.url()),
        r#"{"model":"m","stream":true}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(text.starts_with(EVENTS[0]), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    let err: serde_json::Value =
        serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(err["error"]["code"], "502");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the stream was retried"
    );
}
