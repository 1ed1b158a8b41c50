//! The listener: HTTP/1.1 and HTTP/2 with prior knowledge on one port, told apart
//! by the first bytes; and connections that never send a request, which must not
//! hold up a drain.

mod common;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const CONFIG: &str = r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/m, api_key: k, mock_response: "hi"}
"#;

#[tokio::test]
async fn http1_and_http2_share_the_port() {
    let s = Sluice::start(CONFIG).await;
    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("{}/v1/chat/completions", s.url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat("m"))))
        .unwrap();
    let resp = h2.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "hi");

    // An HTTP/1 request whose first byte could also start the HTTP/2 preface, sent
    // a byte at a time at first.
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"P").await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let body = chat("m");
    let head = format!(
        "OST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _, body) = raw_exchange(&mut conn, head.as_bytes()).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("\"hi\""));
}

#[tokio::test]
async fn silent_connections_do_not_hold_up_the_drain() {
    let s = Sluice::start(CONFIG).await;
    // Connected, nothing sent: one before any byte, one partway into the preface.
    let _silent = TcpStream::connect(s.addr).await.unwrap();
    let mut partial = TcpStream::connect(s.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    s.shutdown().await;
    // The drain's grace is 5 s; neither connection had a request to finish.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "drain took {:?}",
        started.elapsed()
    );
}
