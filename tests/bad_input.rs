//! Each bad input gets its status and an OpenAI-shaped error, and the connection
//! it came on stays usable.

mod common;
use common::*;
use http::Method;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const CONFIG: &str = r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/m1, mock_response: "hello"}
general_settings:
  max_request_size_mb: 0.001
"#;

fn error_of(r: &Reply, status: u16, needle: &str) {
    assert_eq!(
        r.status,
        status,
        "body: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], status.to_string());
    assert!(v["error"]["type"].is_string());
    assert!(v["error"]["param"].is_null());
    let msg = r.error_message();
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
}

#[tokio::test]
async fn each_bad_input_has_its_status_and_message() {
    let s = Sluice::start(CONFIG).await;
    let url = format!("{}/v1/chat/completions", s.url());
    // Not JSON at all: says where it broke.
    error_of(&post(&url, "{\"model\": \"m\", ").await, 400, "JSON");
    error_of(&post(&url, "not json").await, 400, "JSON");
    // JSON but not an object.
    error_of(&post(&url, "[\"m\"]").await, 400, "object");
    // Empty body.
    error_of(&post(&url, "").await, 400, "JSON");
    // No model / model not a string / model null.
    error_of(&post(&url, r#"{"messages":[]}"#).await, 400, "model");
    error_of(
        &post(&url, r#"{"model":42}"#).await,
        400,
        "must be a string",
    );
    error_of(
        &post(&url, r#"{"model":null}"#).await,
        400,
        "must be a string",
    );
    // Two model keys: refused rather than guessing which one the upstream reads.
    error_of(
        &post(&url, r#"{"model":"m","model":"x"}"#).await,
        400,
        "model",
    );
    // Unknown model, in LiteLLM's words.
    error_of(
        &post(&url, &chat("nope")).await,
        400,
        "Invalid model name passed in model=nope",
    );
    // Body over max_request_size_mb (0.001 MB = 1048 bytes).
    let big = format!(r#"{{"model":"m","pad":"{}"}}"#, "x".repeat(2000));
    error_of(&post(&url, &big).await, 413, "too large");
    // Wrong method on a known path, with Allow.
    let r = send(Method::GET, &url, &[], "").await;
    error_of(&r, 405, "Method Not Allowed");
    assert_eq!(r.header("allow"), "POST");
    let r = send(Method::POST, &format!("{}/v1/models", s.url()), &[], "").await;
    error_of(&r, 405, "Method Not Allowed");
    // Unknown path.
    error_of(
        &get(&format!("{}/v2/nothing", s.url())).await,
        404,
        "/v2/nothing",
    );
    // A good request still works after all that.
    assert_eq!(post(&url, &chat("m")).await.status, 200);
}

#[tokio::test]
async fn a_content_length_near_u64_max_is_413() {
    let s = Sluice::start(CONFIG).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    // The largest length hyper takes. As for any body over the limit, up to 16 MB
    // of it are read and dropped (so that the client sees the answer) before the 413.
    let head = "POST /chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 18446744073709551613\r\n\r\n";
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut rx, mut tx) = conn.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..17 {
            if tx.write_all(&chunk).await.is_err() {
                break;
            }
        }
        tx
    });
    let (status, _, body) = read_response(&mut rx).await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    drop(writer.await.unwrap());
    // The server still answers.
    let url = format!("{}/v1/chat/completions", s.url());
    assert_eq!(post(&url, &chat("m")).await.status, 200);
}

#[tokio::test]
async fn limits_summed_past_u64_max_stop_there() {
    let s = Sluice::start(
        r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/m1, mock_response: "hi", rpm: 18446744073709551615, tpm: 18446744073709551615}
  - model_name: m
    litellm_params: {model: openai/m2, mock_response: "hi", rpm: 10, tpm: 10}
"#,
    )
    .await;
    let r = get(&format!("{}/v1/model_group/info", s.url())).await;
    assert_eq!(r.status, 200);
    let group = &r.json()["data"][0];
    assert_eq!(group["rpm"], u64::MAX, "{group}");
    assert_eq!(group["tpm"], u64::MAX, "{group}");
}

#[tokio::test]
async fn a_timeout_too_large_for_a_duration_means_no_timeout() {
    // A real upstream, so that each timeout is armed for the attempt.
    let up = fake(|_| {}).await;
    let s = Sluice::start(&one_deployment(&up, "", "")).await;
    let url = format!("{}/v1/chat/completions", s.url());
    // 1e300 s does not fit in a Duration; it is taken as "wait as long as it takes".
    for timeout in ["1e300", "1.8446744073709552e19", "9.2e18", "600"] {
        let body = format!(r#"{{"model":"m","messages":[],"timeout":{timeout}}}"#);
        let r = post(&url, &body).await;
        assert_eq!(r.status, 200, "timeout {timeout}");
    }
    // Zero, negative and non-numeric timeouts are ignored as before.
    for timeout in ["0", "-5", "\"soon\"", "null"] {
        let body = format!(r#"{{"model":"m","messages":[],"timeout":{timeout}}}"#);
        assert_eq!(post(&url, &body).await.status, 200, "timeout {timeout}");
    }
}

#[tokio::test]
async fn connection_stays_usable_after_each_error() {
    let s = Sluice::start(CONFIG).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let req = |method: &str, path: &str, body: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let big = format!(r#"{{"model":"m","pad":"{}"}}"#, "x".repeat(3000));
    let cases: Vec<(String, u16)> = vec![
        (req("POST", "/chat/completions", "{oops"), 400),
        (req("POST", "/chat/completions", r#"{"messages":[]}"#), 400),
        (req("POST", "/chat/completions", &chat("nope")), 400),
        (req("POST", "/chat/completions", &big), 413),
        (req("GET", "/chat/completions", ""), 405),
        (req("GET", "/nowhere", ""), 404),
        (req("POST", "/chat/completions", &chat("m")), 200),
    ];
    for (request, status) in cases {
        let (got, head, body) = raw_exchange(&mut conn, request.as_bytes()).await;
        assert_eq!(got, status, "{head}{}", String::from_utf8_lossy(&body));
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
    }
    // The same connection, chunked and over the limit: 413, still usable.
    let chunked = format!(
        "POST /chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let (got, _, _) = raw_exchange(&mut conn, chunked.as_bytes()).await;
    assert_eq!(got, 413);
    let (got, _, _) = raw_exchange(
        &mut conn,
        req("POST", "/chat/completions", &chat("m")).as_bytes(),
    )
    .await;
    assert_eq!(got, 200);
}

#[tokio::test]
async fn unreachable_upstream_is_502_after_retries() {
    // Port 1 on loopback refuses connections.
    let s = Sluice::start(
        r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/x, api_base: "http://127.0.0.1:1", api_key: k}
router_settings: {num_retries: 2}
"#,
    )
    .await;
    let r = post(&format!("{}/chat/completions", s.url()), &chat("m")).await;
    error_of(&r, 502, "nreachable");
    assert_eq!(r.header("x-litellm-attempted-retries"), "2");
}
