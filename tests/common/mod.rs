//! Test harness: sluice started in-process on port 0 from YAML text, a small HTTP
//! client over real sockets, and raw-socket helpers for byte-level checks.
#![allow(dead_code)]

pub mod redis;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
pub use sluice::server::Timeouts;
use sluice::state::{App, Snapshot};
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A running in-process sluice.
pub struct Sluice {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Shared state (to inspect the snapshot).
    pub app: Arc<App>,
    /// Dropping it starts the graceful shutdown.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server task.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sluice {
    /// Starts sluice on 127.0.0.1:0 with a config given as YAML text.
    pub async fn start(yaml: &str) -> Sluice {
        Self::start_with_env(yaml, &[]).await
    }

    /// Like `start`, with environment variables visible to `os.environ/` only.
    pub async fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Sluice {
        let timeouts = Timeouts {
            grace: Duration::from_secs(5),
            ..Timeouts::default()
        };
        Self::start_with(yaml, env, timeouts).await
    }

    /// Like `start_with_env`, with the given connection timeouts.
    pub async fn start_with(yaml: &str, env: &[(&str, &str)], timeouts: Timeouts) -> Sluice {
        Self::start_on(yaml, env, timeouts, Vec::new()).await
    }

    /// Like `start_with`, serving each connection on the least busy of `workers`
    /// (on the test's runtime when empty), as the `sluice` command does.
    pub async fn start_on(
        yaml: &str,
        env: &[(&str, &str)],
        timeouts: Timeouts,
        workers: Vec<tokio::runtime::Handle>,
    ) -> Sluice {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let loaded = sluice::config::load_str(yaml, &lookup)
            .unwrap_or_else(|e| panic!("test config is invalid: {e:?}"));
        let snapshot = Snapshot::build(loaded, None).expect("test config builds");
        let app = App::new(snapshot);
        let listener = sluice::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = app.clone();
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = rx.await;
            };
            sluice::server::run_on(listener, serving, stop, timeouts, &workers).await;
        });
        Sluice {
            addr,
            app,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Begins the graceful shutdown and waits for the drain to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// A complete response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// The OpenAI error message of an error body.
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

type TestClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

thread_local! {
    /// One pooled client per test thread (each test has its own runtime and thread),
    /// so load tests reuse connections instead of opening thousands.
    static CLIENT: TestClient = Client::builder(TokioExecutor::new()).build_http();
}

/// Sends one request and reads the whole response.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let client = CLIENT.with(|c| c.clone());
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("response within 30 s")
        .expect("request succeeds at the HTTP level");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body reads").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// POST a JSON body.
pub async fn post(url: &str, body: &str) -> Reply {
    send(
        Method::POST,
        url,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

/// POST with extra headers.
pub async fn post_with(url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    send(Method::POST, url, headers, body.to_string()).await
}

/// GET.
pub async fn get(url: &str) -> Reply {
    send(Method::GET, url, &[], Bytes::new()).await
}

/// A chat request body for `model`.
pub fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

/// A config with one deployment, model group `m`, at the upstream `url`, and no retries.
pub fn no_retry_config(url: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: m
    litellm_params: {{model: openai/m, api_base: "{url}/v1", api_key: k}}
router_settings: {{num_retries: 0}}
"#
    )
}

/// A chat completion request as HTTP/1.1 bytes.
pub fn raw_post(body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Writes raw bytes on a connection and reads one HTTP/1.1 response (head and a
/// content-length body), returning (status, head text, body).
pub async fn raw_exchange(conn: &mut TcpStream, request: &[u8]) -> (u16, String, Vec<u8>) {
    conn.write_all(request).await.unwrap();
    read_response(conn).await
}

/// Reads one HTTP/1.1 response with a content-length body.
pub async fn read_response(
    conn: &mut (impl tokio::io::AsyncRead + Unpin),
) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .expect("response within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed before a full response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("test responses carry content-length");
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, head, buf[head_end..head_end + len].to_vec())
}

/// Waits for the next calendar minute if fewer than `secs` seconds of this one are
/// left, so a test that counts within one rate-limit window is not split by its end.
pub async fn within_one_minute(secs: u64) {
    let left = sluice::clock::until_next_minute(sluice::clock::now_ms());
    if left < secs * 1000 {
        tokio::time::sleep(Duration::from_millis(left + 50)).await;
    }
}

/// Starts a fake-llm upstream on port 0, recording requests, configured by `f`.
pub async fn fake(f: impl FnOnce(&mut sluice::fake::FakeConfig)) -> sluice::fake::FakeLlm {
    let mut cfg = sluice::fake::FakeConfig {
        port: 0,
        record: true,
        ..Default::default()
    };
    f(&mut cfg);
    sluice::fake::FakeLlm::start(cfg).await.unwrap()
}

/// A config serving model `m` from one deployment on `up` (`openai/a`), with
/// `params` added to its `litellm_params` (`, tpm: 10`) and `rest` after the model
/// list (`router_settings: {...}`).
pub fn one_deployment(up: &sluice::fake::FakeLlm, params: &str, rest: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\"{params}}}\n{rest}\n",
        up.url()
    )
}

/// Writes `yaml` to a file of its own under the temp dir and returns the path.
pub fn config_file(tag: &str, yaml: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sluice-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{tag}-{n}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// GET /metrics as text.
pub async fn scrape(s: &Sluice) -> String {
    let r = get(&format!("{}/metrics", s.url())).await;
    assert_eq!(r.status, 200);
    String::from_utf8(r.body.to_vec()).unwrap()
}

/// The label pairs of a sample's `{...}` part (values unescaped).
fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').to_string(), value));
        rest = &after[end..];
    }
    out
}

/// Sum of the samples named `name` whose labels include every pair of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let (n, l) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let have = parse_labels(l);
        if labels
            .iter()
            .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
        {
            sum += value.parse::<f64>().expect("a sample value is a number");
        }
    }
    sum
}

/// Scrapes until `done` holds for the exposition (counters of a body's end are
/// recorded as the last bytes go out, a moment after a client may have read them),
/// at most two seconds; returns the last scrape.
pub async fn scrape_until(s: &Sluice, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let text = scrape(s).await;
        if done(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fake-llm upstream that answers every request with `status`.
pub async fn failing_fake(status: u16) -> sluice::fake::FakeLlm {
    fake(|c| {
        c.error_rate = 1.0;
        c.error_status = status;
    })
    .await
}

/// A raw upstream on port 0: every connection it accepts goes to `serve` on a task
/// of its own. Returns its URL and the count of connections accepted so far.
pub async fn raw_upstream<F, Fut>(serve: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (c, _) = l.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(c));
        }
    });
    (url, accepted)
}

/// Reads one request on a raw upstream socket; false when the connection closed
/// instead.
pub async fn request_arrives(c: &mut TcpStream) -> bool {
    let mut first = [0u8; 1];
    if c.peek(&mut first).await.unwrap_or(0) == 0 {
        return false;
    }
    read_request(c).await;
    true
}

/// Reads one HTTP/1 request (with a `content-length` body, if any) from a raw
/// upstream socket; returns its body.
pub async fn read_request(c: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = c.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a whole request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < p + 4 + len {
                let n = c.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed before a whole request");
                buf.extend_from_slice(&chunk[..n]);
            }
            return buf[p + 4..].to_vec();
        }
    }
}

/// The `sluice` binary serving `config` on 127.0.0.1 and a free port, its log on
/// stderr, piped (read the port with [`port_from`]); callers add what else they need.
pub fn sluice_command(config: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.args(["--config", config.to_str().unwrap()])
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stderr(std::process::Stdio::piped());
    c
}

/// A new directory under the system's temporary one.
pub fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sluice-test-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts a child and returns the port from its "http://127.0.0.1:PORT" line.
pub fn port_from(child: &mut std::process::Child, stderr: bool) -> u16 {
    let reader: Box<dyn Read + Send> = if stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let mut lines = BufReader::new(reader).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let line = lines.next().expect("child printed its port").unwrap();
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
            // Keep draining the pipe so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return port.parse().unwrap();
        }
    }
    panic!("no port line");
}
