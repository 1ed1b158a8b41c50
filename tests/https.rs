//! HTTPS upstreams through rustls: a self-signed certificate made at test time is
//! trusted through `SSL_CERT_FILE`, the upstream is reached by DNS name and by IP
//! address (both checked against the certificate's SANs), and a server whose
//! certificate names another host is refused with a 502. An upstream that picks
//! HTTP/2 by ALPN gets every request, concurrent ones included, on one connection;
//! when it closes that connection, a burst of requests replaces it with one dial.

mod common;
use common::*;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// One request as the TLS upstream saw it.
#[derive(Clone, Debug)]
struct Seen {
    version: http::Version,
    path: String,
    authorization: String,
    body: Bytes,
}

/// A certificate and its key, as DER for rustls and as PEM for the trust file.
struct Identity {
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
    cert_pem: String,
}

/// A self-signed certificate whose SANs are `names` (IP addresses become IP SANs).
fn self_signed(names: &[&str]) -> Identity {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).expect("rcgen makes a certificate");
    Identity {
        cert_der: ck.cert.der().clone(),
        key_der: ck.signing_key.serialize_der(),
        cert_pem: ck.cert.pem(),
    }
}

/// An HTTP/1.1- or HTTP/2-over-TLS upstream on 127.0.0.1:0 that answers
/// POST /v1/chat/completions with a completion echoing the request's model and
/// records every request it answers.
struct TlsUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// TLS handshakes completed: the connections it has served.
    accepted: Arc<AtomicUsize>,
    /// Sending on it makes every HTTP/2 connection open at that moment say GOAWAY
    /// and close once its streams are done.
    hang_up: watch::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsUpstream {
    /// A server with certificate `id`, speaking HTTP/2 if `h2`, else HTTP/1.1.
    async fn start(id: &Identity, h2: bool) -> TlsUpstream {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![id.cert_der.clone()], key)
            .expect("the key matches the certificate");
        // sluice offers h2 and http/1.1; this server picks one.
        config.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let hang_up = watch::Sender::new(());
        let hung_up = hang_up.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let record = record.clone();
                let count = count.clone();
                // Subscribed now, so it hears only hang-ups that come later.
                let mut hung_up = hung_up.subscribe();
                tokio::spawn(async move {
                    // A client that rejects the certificate aborts the handshake here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    let service = service_fn(move |req| answer(req, record.clone()));
                    let io = TokioIo::new(tls);
                    if !h2 {
                        let _ = http1::Builder::new().serve_connection(io, service).await;
                        return;
                    }
                    let conn =
                        http2::Builder::new(TokioExecutor::new()).serve_connection(io, service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => return,
                        _ = hung_up.changed() => conn.as_mut().graceful_shutdown(),
                    }
                    let _ = conn.await;
                });
            }
        });
        TlsUpstream {
            addr,
            seen,
            accepted,
            hang_up,
            task,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Closes every HTTP/2 connection open now, as a server does when it restarts
    /// or rotates its connections: GOAWAY, then the close once no stream is left.
    fn hang_up(&self) {
        self.hang_up.send_replace(());
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The upstream's handler.
async fn answer(
    req: Request<Incoming>,
    record: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let version = req.version();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let authorization = req
        .headers()
        .get("authorization")
        .map_or(String::new(), |v| {
            v.to_str().unwrap_or_default().to_string()
        });
    let body = req
        .into_body()
        .collect()
        .await
        .map_or(Bytes::new(), |b| b.to_bytes());
    record.lock().unwrap().push(Seen {
        version,
        path: path.clone(),
        authorization,
        body: body.clone(),
    });
    if method != Method::POST || path != "/v1/chat/completions" {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"not here")));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(resp);
    }
    let model = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["model"].as_str().map(str::to_string))
        .unwrap_or_default();
    let completion = serde_json::json!({
        "id": "chatcmpl-tls",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "over tls"},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    });
    let mut resp = Response::new(Full::new(Bytes::from(completion.to_string())));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(resp)
}

/// The certificates the tests here trust. `SSL_CERT_FILE` is one variable for the
/// whole process, so the tests share one trust file, made once.
struct Trust {
    /// Names `localhost` and 127.0.0.1, as the upstreams are reached.
    good: Identity,
    /// Trusted too, but names another host.
    wrong: Identity,
    /// The file `SSL_CERT_FILE` names, holding both certificates.
    path: PathBuf,
    /// Tests holding the file now; the last one to end removes it.
    holders: Mutex<usize>,
}

/// The trust file in place for as long as this lives, pass or fail.
struct Trusted(&'static Trust);

/// Sets `SSL_CERT_FILE` once for the process, and writes the file it names unless
/// another test holds it already. Each test calls this before anything else, so
/// the variable is set before any sluice exists, and so before any thread that
/// could read the environment at the same time: the first caller sets it while
/// any other test waits here. sluice reads `SSL_CERT_FILE` once, when `App::new`
/// builds the upstream client inside `Sluice::start`.
fn trusted() -> Trusted {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    let trust = TRUST.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("sluice-https-test-{}.pem", std::process::id()));
        std::env::set_var("SSL_CERT_FILE", &path);
        Trust {
            good: self_signed(&["localhost", "127.0.0.1"]),
            wrong: self_signed(&["other.example"]),
            path,
            holders: Mutex::new(0),
        }
    });
    let mut holders = holders(trust);
    if *holders == 0 {
        let pem = format!("{}{}", trust.good.cert_pem, trust.wrong.cert_pem);
        std::fs::write(&trust.path, pem).unwrap();
    }
    *holders += 1;
    Trusted(trust)
}

/// The count of holders (a test that panicked while holding it changed nothing).
fn holders(trust: &Trust) -> MutexGuard<'_, usize> {
    trust.holders.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Trusted {
    fn drop(&mut self) {
        let mut holders = holders(self.0);
        *holders -= 1;
        if *holders == 0 {
            let _ = std::fs::remove_file(&self.0.path);
        }
    }
}

#[tokio::test]
async fn https_upstream_through_rustls_with_ssl_cert_file() {
    // Both certificates are trusted, so the only thing wrong with the second server
    // is that its certificate names another host: the refusal below comes from the
    // name check, not from an unknown issuer.
    let trust = trusted();
    let (good, wrong) = (&trust.0.good, &trust.0.wrong);

    let up = TlsUpstream::start(good, false).await;
    let imposter = TlsUpstream::start(wrong, false).await;
    let up2 = TlsUpstream::start(good, true).await;

    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: secure
    litellm_params: {{model: openai/secure-model, api_base: "https://localhost:{port}/v1", api_key: k}}
  - model_name: secure-ip
    litellm_params: {{model: openai/secure-model-ip, api_base: "https://127.0.0.1:{port}/v1", api_key: k}}
  - model_name: wrong-name
    litellm_params: {{model: openai/secure-model, api_base: "https://localhost:{bad}/v1", api_key: k}}
  - model_name: secure-h2
    litellm_params: {{model: openai/secure-model-h2, api_base: "https://localhost:{h2}/v1", api_key: k}}
router_settings: {{num_retries: 0}}
"#,
        port = up.port(),
        bad = imposter.port(),
        h2 = up2.port(),
    ))
    .await;
    let url = format!("{}/v1/chat/completions", s.url());

    // By DNS name: the certificate's DNS SAN `localhost` matches.
    let r = post(&url, &chat("secure")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["model"], "secure-model");
    assert_eq!(r.json()["choices"][0]["message"]["content"], "over tls");
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].version, http::Version::HTTP_11);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].authorization, "Bearer k");
    assert_eq!(seen[0].body, chat("secure-model").as_bytes());

    // By IP address: the certificate's IP SAN 127.0.0.1 matches.
    let r = post(&url, &chat("secure-ip")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["model"], "secure-model-ip");
    let seen = up.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].body, chat("secure-model-ip").as_bytes());

    // A trusted certificate for another name: the handshake is refused, nothing is
    // sent upstream, and sluice answers 502 saying why.
    let r = post(&url, &chat("wrong-name")).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.json()["error"]["type"], "api_connection_error");
    // The message carries the rustls error chain, e.g. "Upstream unreachable after
    // retries: client error (Connect): invalid peer certificate: certificate not
    // valid for name "localhost"; certificate is only valid for
    // DnsName("other.example")".
    let message = r.error_message();
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert!(message.contains("not valid for name"), "{message}");
    assert!(imposter.seen().is_empty(), "{:?}", imposter.seen());

    // HTTP/2: the first request finds out, then a burst of 8 shares its connection.
    let opened = || async {
        metric(
            &scrape(&s).await,
            "sluice_upstream_connections_opened_total",
            &[],
        )
    };
    let before = opened().await;
    let r = post(&url, &chat("secure-h2")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["model"], "secure-model-h2");
    let burst = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { post(&url, &chat("secure-h2")).await.status })
    });
    for status in futures_util::future::join_all(burst).await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(opened().await - before, 1.0, "one HTTP/2 connection");
    let seen = up2.seen();
    assert_eq!(seen.len(), 9, "{seen:?}");
    assert!(seen.iter().all(|s| s.version == http::Version::HTTP_2));
    assert!(seen.iter().all(|s| s.path == "/v1/chat/completions"));
    assert_eq!(seen[0].body, chat("secure-model-h2").as_bytes());

    s.shutdown().await;
}

/// When the upstream closes the shared HTTP/2 connection, sluice dials a new one,
/// and a burst of requests that all find the connection gone dials it once: one
/// request dials while the others wait for its connection and share it, rather
/// than each opening a connection that is dropped again as soon as the next one
/// takes its place as the shared one.
#[tokio::test]
async fn a_closed_http2_connection_is_replaced_by_one_dial() {
    let trust = trusted();
    let up = TlsUpstream::start(&trust.0.good, true).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: h2
    litellm_params: {{model: openai/h2-model, api_base: "https://localhost:{port}/v1", api_key: k}}
router_settings: {{num_retries: 0}}
"#,
        port = up.port(),
    ))
    .await;
    let url = format!("{}/v1/chat/completions", s.url());
    let gauge = |name: &'static str| {
        let s = &s;
        async move { metric(&scrape(s).await, name, &[]) }
    };

    // The first request opens the shared connection.
    let r = post(&url, &chat("h2")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(up.accepted(), 1);
    assert_eq!(gauge("sluice_upstream_connections_open").await, 1.0);

    // The upstream closes it. Once the connection is gone on sluice's side too (its
    // count of open upstream connections drops to 0), the next request cannot use
    // it and must dial.
    up.hang_up();
    let deadline = Instant::now() + Duration::from_secs(5);
    while gauge("sluice_upstream_connections_open").await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "sluice still counts the closed connection as open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A burst arrives to find no connection: exactly one new one serves it all.
    let before = gauge("sluice_upstream_connections_opened_total").await;
    let burst = (0..16).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { post(&url, &chat("h2")).await })
    });
    for r in futures_util::future::join_all(burst).await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.json()["model"], "h2-model");
    }
    let opened = gauge("sluice_upstream_connections_opened_total").await - before;
    assert_eq!(opened, 1.0, "connections sluice opened for the burst");
    assert_eq!(up.accepted(), 2, "connections the upstream accepted in all");
    let seen = up.seen();
    assert_eq!(seen.len(), 17, "{seen:?}");
    assert!(seen.iter().all(|s| s.version == http::Version::HTTP_2));

    s.shutdown().await;
}

/// The first requests to an HTTPS upstream cannot know whether it will choose
/// HTTP/2. A burst that arrives before any connection exists waits for one dial to
/// find out: against an HTTP/2 upstream it then shares that one connection, instead
/// of opening a TLS connection per request that is dropped once its answer ends.
/// Against an HTTP/1.1 upstream the same burst is served whole, on connections of
/// its own.
#[tokio::test]
async fn a_cold_burst_to_an_https_upstream_waits_for_one_dial_to_learn_its_protocol() {
    let trust = trusted();
    let h2 = TlsUpstream::start(&trust.0.good, true).await;
    let h1 = TlsUpstream::start(&trust.0.good, false).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: h2
    litellm_params: {{model: openai/h2-model, api_base: "https://localhost:{h2}/v1", api_key: k}}
  - model_name: h1
    litellm_params: {{model: openai/h1-model, api_base: "https://localhost:{h1}/v1", api_key: k}}
router_settings: {{num_retries: 0}}
"#,
        h2 = h2.port(),
        h1 = h1.port(),
    ))
    .await;
    let url = format!("{}/v1/chat/completions", s.url());
    let burst = |model: &'static str| {
        let url = url.clone();
        futures_util::future::join_all((0..16).map(move |_| {
            let url = url.clone();
            tokio::spawn(async move { post(&url, &chat(model)).await })
        }))
    };

    for r in burst("h2").await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.json()["model"], "h2-model");
    }
    assert_eq!(h2.accepted(), 1, "connections the HTTP/2 upstream accepted");
    assert_eq!(h2.seen().len(), 16);
    assert!(h2.seen().iter().all(|s| s.version == http::Version::HTTP_2));

    for r in burst("h1").await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.json()["model"], "h1-model");
    }
    assert_eq!(h1.seen().len(), 16);
    assert!(h1
        .seen()
        .iter()
        .all(|s| s.version == http::Version::HTTP_11));
    // One connection per request at most, and more than one: after the first dial
    // the rest dial side by side, not one after another on a shared connection.
    let accepted = h1.accepted();
    assert!((2..=16).contains(&accepted), "{accepted} connections");

    s.shutdown().await;
}
