//! Integration tests for `sluice::fake`, talking raw HTTP/1.1 over a TcpStream.

use sluice::fake::{FakeConfig, FakeLlm};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One parsed HTTP/1.1 response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// The JSON payloads of an SSE body, `[DONE]` included as a string.
    fn events(&self) -> Vec<String> {
        let text = self.text();
        assert!(text.ends_with("\n\n"), "stream must end with a blank line");
        text.split_terminator("\n\n")
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                    .to_owned()
            })
            .collect()
    }
}

fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: fake\r\n");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `buf` holds at least `n` bytes.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) {
    while buf.len() < n {
        let mut chunk = [0u8; 8192];
        let read = stream.read(&mut chunk).await.expect("read");
        assert!(read > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..read]);
    }
}

/// Reads one response (content-length or chunked) off a keep-alive stream.
async fn read_response(stream: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let len = buf.len();
        fill(stream, &mut buf, len + 1).await;
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    let mut rest = buf.split_off(head_end + 4);
    if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().unwrap();
        fill(stream, &mut rest, len).await;
        resp.body = rest[..len].to_vec();
    } else if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = find(&rest, b"\r\n") {
                    break i;
                }
                let len = rest.len();
                fill(stream, &mut rest, len + 1).await;
            };
            let size_text = std::str::from_utf8(&rest[..line_end]).unwrap();
            let size = usize::from_str_radix(size_text.trim(), 16).unwrap();
            fill(stream, &mut rest, line_end + 2 + size + 2).await;
            resp.body
                .extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    } else {
        panic!("response without length: {head}");
    }
    resp
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(&request_bytes(method, path, headers, body))
        .await
        .expect("write");
    read_response(&mut stream).await
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> Resp {
    send(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await
}

async fn start(cfg: FakeConfig) -> FakeLlm {
    FakeLlm::start(cfg).await.expect("start fake")
}

#[tokio::test]
async fn chat_completion_echoes_model_on_every_path() {
    let fake = start(FakeConfig {
        id: "upstream-a".into(),
        ..Default::default()
    })
    .await;
    assert!(fake.url().starts_with("http://127.0.0.1:"));
    for path in [
        "/chat/completions",
        "/v1/chat/completions",
        "/openai/deployments/my-gpt/chat/completions?api-version=2024-06-01",
    ] {
        let model = format!("model for {path} \"quoted\"");
        let body =
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let resp = post(fake.addr(), path, &body.to_string()).await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(resp.header("x-fake-llm-id"), Some("upstream-a"));
        let v = resp.json();
        assert_eq!(v["model"], model.as_str());
        assert_eq!(v["object"], "chat.completion");
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "\n\nHello there, how may I assist you today?"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["total_tokens"], 21);
    }
    assert_eq!(fake.stats().requests(), 3);
    assert_eq!(fake.stats().ok(), 3);
    assert_eq!(fake.stats().connections(), 3);
}

#[tokio::test]
async fn openai_headers_are_on_every_answer_when_asked() {
    let chat = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    let names = |r: &Resp| {
        let mut n: Vec<String> = r
            .headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        n.sort();
        n
    };
    let plain = start(FakeConfig::default()).await;
    let r = post(plain.addr(), "/v1/chat/completions", chat).await;
    assert_eq!(
        names(&r),
        ["content-length", "content-type", "date", "x-fake-llm-id"]
    );
    let openai = start(FakeConfig {
        openai_headers: true,
        ..Default::default()
    })
    .await;
    for path in ["/v1/chat/completions", "/nowhere"] {
        let r = post(openai.addr(), path, chat).await;
        let got = names(&r);
        assert_eq!(got.len(), 22, "{path}: {got:?}");
        let mut once = got.clone();
        once.dedup();
        assert_eq!(once, got, "{path}: a name twice");
        assert_eq!(
            r.header("x-ratelimit-remaining-requests"),
            Some("9999"),
            "{path}"
        );
        assert_eq!(
            r.header("alt-svc"),
            Some(r#"h3=":443"; ma=86400"#),
            "{path}"
        );
    }
}

#[tokio::test]
async fn text_completion_and_embeddings() {
    let fake = start(FakeConfig::default()).await;
    let v = post(
        fake.addr(),
        "/v1/completions",
        r#"{"model":"davinci","prompt":"x"}"#,
    )
    .await
    .json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "davinci");
    assert_eq!(
        v["choices"][0]["text"],
        "\n\nHello there, how may I assist you today?"
    );
    let resp = post(
        fake.addr(),
        "/openai/deployments/emb/embeddings?api-version=1",
        r#"{"model":"ada","input":"x"}"#,
    )
    .await;
    assert_eq!(resp.status, 200);
    let v = resp.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "ada");
    assert_eq!(v["data"][0]["object"], "embedding");
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert!(v["usage"]["prompt_tokens"].is_u64());
}

#[tokio::test]
async fn chat_stream_has_chunks_and_done() {
    let fake = start(FakeConfig {
        stream_chunks: 3,
        ..Default::default()
    })
    .await;
    let resp = post(
        fake.addr(),
        "/v1/chat/completions",
        r#"{"model":"m-stream","stream":true}"#,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let events = resp.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    // 3 content chunks + 1 finish chunk, no usage chunk.
    assert_eq!(chunks.len(), 4);
    let mut content = String::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "m-stream");
        assert_eq!(c["id"], chunks[0]["id"]);
        assert!(c.get("usage").is_none());
        let delta = &c["choices"][0]["delta"];
        if i < 3 {
            assert_eq!(c["choices"][0]["finish_reason"], serde_json::Value::Null);
            content.push_str(delta["content"].as_str().unwrap());
        } else {
            assert_eq!(c["choices"][0]["finish_reason"], "stop");
            assert!(delta.as_object().unwrap().is_empty());
        }
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(content, "\n\nHello there, how may I assist you today?");
}

#[tokio::test]
async fn chat_stream_usage_chunk_when_asked() {
    let fake = start(FakeConfig {
        stream_chunks: 20,
        ..Default::default()
    })
    .await;
    let body =
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let events = post(fake.addr(), "/chat/completions", body).await.events();
    // 20 content + finish + usage + [DONE].
    assert_eq!(events.len(), 23);
    assert_eq!(events[22], "[DONE]");
    let usage: serde_json::Value = serde_json::from_str(&events[21]).unwrap();
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage["usage"]["prompt_tokens"], 9);
    assert_eq!(usage["usage"]["completion_tokens"], 20);
    assert_eq!(usage["usage"]["total_tokens"], 29);
}

#[tokio::test]
async fn text_stream() {
    let fake = start(FakeConfig {
        stream_chunks: 2,
        ..Default::default()
    })
    .await;
    let events = post(
        fake.addr(),
        "/openai/deployments/d/completions",
        r#"{"model":"t","stream":true}"#,
    )
    .await
    .events();
    assert_eq!(events.len(), 4);
    let first: serde_json::Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["object"], "text_completion");
    assert_eq!(first["model"], "t");
    assert!(first["choices"][0]["text"].is_string());
    let finish: serde_json::Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn stream_is_sent_incrementally_with_chunk_delay() {
    let delay = Duration::from_millis(100);
    let fake = start(FakeConfig {
        stream_chunks: 4,
        chunk_delay: delay,
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(fake.addr()).await.unwrap();
    let req = request_bytes(
        "POST",
        "/v1/chat/completions",
        &[],
        br#"{"model":"m","stream":true}"#,
    );
    stream.write_all(&req).await.unwrap();
    let mut seen = Vec::new();
    while find(&seen, b"data: ").is_none() {
        let len = seen.len();
        fill(&mut stream, &mut seen, len + 1).await;
    }
    assert!(
        find(&seen, b"[DONE]").is_none(),
        "the first chunk must arrive before the stream ends"
    );
    let in_flight = fake.stats().in_flight();
    assert_eq!(in_flight, 1, "a stream counts as in flight until it ends");
    loop {
        let len = seen.len();
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        seen.extend_from_slice(&chunk[..n]);
        if n == 0 || find(&seen[len.saturating_sub(16)..], b"0\r\n\r\n").is_some() {
            break;
        }
    }
    assert!(started.elapsed() >= delay * 3, "3 delays between 4 chunks");
    assert!(find(&seen, b"data: [DONE]").is_some());
}

#[tokio::test]
async fn rpm_allows_exactly_n_then_429() {
    // A fixed calendar-minute window: avoid straddling a minute boundary.
    let sec = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if sec > 57_000 {
        tokio::time::sleep(Duration::from_millis(60_100 - sec as u64)).await;
    }
    let fake = start(FakeConfig {
        rpm: Some(3),
        retry_after: Some(7),
        ..Default::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let resp = post(fake.addr(), "/v1/chat/completions", r#"{"model":"m"}"#).await;
        if resp.status == 429 {
            assert_eq!(resp.json(), serde_json::json!({"detail": "Rate Limited!"}));
            assert_eq!(resp.header("retry-after"), Some("7"));
        } else {
            assert_eq!(resp.header("retry-after"), None);
        }
        statuses.push(resp.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(fake.stats().rate_limited(), 2);
    assert_eq!(fake.stats().ok(), 3);
    // Health checks are not rate limited.
    assert_eq!(
        send(fake.addr(), "GET", "/health", &[], b"").await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_is_exact_under_concurrency() {
    let sec = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if sec > 57_000 {
        tokio::time::sleep(Duration::from_millis(60_100 - sec as u64)).await;
    }
    let fake = start(FakeConfig {
        rpm: Some(25),
        ..Default::default()
    })
    .await;
    let addr = fake.addr();
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            tokio::spawn(async move {
                post(addr, "/v1/embeddings", r#"{"model":"e"}"#)
                    .await
                    .status
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 25);
    assert_eq!(fake.stats().rate_limited(), 35);
}

#[tokio::test]
async fn error_rate_one_always_fails_with_status() {
    let fake = start(FakeConfig {
        error_rate: 1.0,
        error_status: 503,
        ..Default::default()
    })
    .await;
    for _ in 0..5 {
        let resp = post(fake.addr(), "/v1/chat/completions", r#"{"model":"m"}"#).await;
        assert_eq!(resp.status, 503);
        let v = resp.json();
        assert!(v["error"]["message"].is_string());
        assert_eq!(v["error"]["type"], "server_error");
    }
    assert_eq!(fake.stats().errors(), 5);
    assert_eq!(fake.stats().ok(), 0);
    let fake = start(FakeConfig {
        error_rate: 1.0,
        error_status: 429,
        retry_after: Some(2),
        ..Default::default()
    })
    .await;
    let resp = post(fake.addr(), "/v1/chat/completions", r#"{"model":"m"}"#).await;
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("2"));
    assert_eq!(resp.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn record_captures_requests_byte_for_byte() {
    let fake = start(FakeConfig {
        record: true,
        ..Default::default()
    })
    .await;
    let body = "{ \"model\" : \"gpt-4o\",\n \"messages\": [{\"role\":\"user\",\"content\":\"h\u{e9}llo \\u00e9 \\\"q\\\"\"}] }  ";
    let resp = send(
        fake.addr(),
        "POST",
        "/openai/deployments/dep/chat/completions?api-version=2024-06-01",
        &[("api-key", "secret-1"), ("x-custom", "v")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 200);
    send(fake.addr(), "GET", "/nope?x=1", &[], b"").await;
    let rec = fake.recorded();
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0].method, "POST");
    assert_eq!(
        rec[0].path_and_query,
        "/openai/deployments/dep/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(rec[0].headers.get("api-key").unwrap(), "secret-1");
    assert_eq!(rec[0].headers.get("x-custom").unwrap(), "v");
    assert_eq!(&rec[0].body[..], body.as_bytes());
    assert_eq!(rec[1].method, "GET");
    assert_eq!(rec[1].path_and_query, "/nope?x=1");
    fake.clear_recorded();
    assert!(fake.recorded().is_empty());

    let plain = start(FakeConfig::default()).await;
    post(plain.addr(), "/v1/chat/completions", r#"{"model":"m"}"#).await;
    assert!(
        plain.recorded().is_empty(),
        "nothing is kept without `record`"
    );
}

#[tokio::test]
async fn latency_delays_the_response() {
    let latency = Duration::from_millis(150);
    let fake = start(FakeConfig {
        latency,
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let resp = post(fake.addr(), "/v1/chat/completions", r#"{"model":"m"}"#).await;
    assert_eq!(resp.status, 200);
    assert!(started.elapsed() >= latency, "took {:?}", started.elapsed());

    let fake = start(FakeConfig {
        latency: Duration::from_millis(50),
        latency_max: Some(Duration::from_millis(120)),
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        let started = Instant::now();
        post(fake.addr(), "/v1/completions", r#"{"model":"m"}"#).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}

#[tokio::test]
async fn not_found_method_not_allowed_and_bad_json() {
    let fake = start(FakeConfig::default()).await;
    let resp = post(fake.addr(), "/v2/chat/completions", r#"{"model":"m"}"#).await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json()["error"]["type"], "invalid_request_error");

    let resp = send(fake.addr(), "GET", "/v1/chat/completions", &[], b"").await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
    assert!(resp.json()["error"]["message"].is_string());
    let resp = post(fake.addr(), "/health", "{}").await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET"));

    for bad in ["{not json", "", r#"{"model": 5}"#] {
        let resp = post(fake.addr(), "/v1/chat/completions", bad).await;
        assert_eq!(resp.status, 400, "body {bad:?}");
        let v = resp.json();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], serde_json::Value::Null);
    }

    let resp = send(fake.addr(), "GET", "/health", &[], b"").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), serde_json::json!({"status": "ok"}));
    assert_eq!(resp.header("x-fake-llm-id"), Some("fake"));
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let fake = start(FakeConfig {
        stream_chunks: 2,
        ..Default::default()
    })
    .await;
    let mut stream = TcpStream::connect(fake.addr()).await.unwrap();
    for i in 0..3 {
        let body = format!(r#"{{"model":"m{i}","stream":{}}}"#, i == 1);
        let req = request_bytes("POST", "/v1/chat/completions", &[], body.as_bytes());
        stream.write_all(&req).await.unwrap();
        let resp = read_response(&mut stream).await;
        assert_eq!(resp.status, 200);
        if i == 1 {
            assert_eq!(resp.events().len(), 4);
        } else {
            assert_eq!(resp.json()["model"], format!("m{i}"));
        }
    }
    assert_eq!(fake.stats().connections(), 1);
    assert_eq!(fake.stats().requests(), 3);
    assert_eq!(fake.stats().max_in_flight(), 1);
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let fake = start(FakeConfig::default()).await;
    let addr = fake.addr();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(&request_bytes("GET", "/health", &[], b""))
        .await
        .unwrap();
    assert_eq!(read_response(&mut idle).await.status, 200);
    fake.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener must be closed"
    );
    let mut buf = [0u8; 16];
    let closed = matches!(idle.read(&mut buf).await, Ok(0) | Err(_));
    assert!(closed, "open keep-alive connections must be closed");

    let fake = start(FakeConfig::default()).await;
    let addr = fake.addr();
    drop(fake);
    let mut refused = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "dropping the handle must stop the server");
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let bad_rate = FakeLlm::start(FakeConfig {
        error_rate: 1.5,
        ..Default::default()
    })
    .await;
    assert!(bad_rate.is_err());
    let bad_status = FakeLlm::start(FakeConfig {
        error_status: 42,
        ..Default::default()
    })
    .await;
    assert!(bad_status.is_err());
    let bad_id = FakeLlm::start(FakeConfig {
        id: "a\nb".into(),
        ..Default::default()
    })
    .await;
    assert!(bad_id.is_err());
}
