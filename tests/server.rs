//! The listener: HTTP/1.1 and HTTP/2 with prior knowledge on one port, told apart
//! by the first bytes; connections that never send a request, which must not
//! hold up a drain; the worker threads connections are handed to, pinned to CPUs
//! or not.

mod common;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sluice::worker::Worker;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    let rest = &raw_post(&chat("m"))[1..];
    let (status, _, body) = raw_exchange(&mut conn, rest.as_bytes()).await;
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

/// Reads from `conn` until the server closes it; panics on data or after `limit`.
async fn closed_within(conn: &mut TcpStream, limit: Duration) {
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(limit, conn.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("still open after {limit:?}"))
        .unwrap_or(0);
    assert_eq!(n, 0, "got {:?}", String::from_utf8_lossy(&buf[..n]));
}

const IDLE: Duration = Duration::from_millis(300);

fn short_idle() -> Timeouts {
    Timeouts {
        grace: Duration::from_secs(5),
        idle: IDLE,
    }
}

#[tokio::test]
async fn idle_and_slow_http1_connections_are_closed() {
    let s = Sluice::start_with(CONFIG, &[], short_idle()).await;
    let opened = Instant::now();
    // Sends nothing at all: closed after one period.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    // Begins a request head and stalls.
    let mut stalled = TcpStream::connect(s.addr).await.unwrap();
    stalled
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // One request answered, then nothing: an idle keep-alive connection.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    let request = raw_post(&chat("m"));
    let (status, _, _) = raw_exchange(&mut idle, request.as_bytes()).await;
    assert_eq!(status, 200);
    // Sends its head a byte every 50 ms: never idle, never done.
    let mut trickle = TcpStream::connect(s.addr).await.unwrap();
    let trickling = tokio::spawn(async move {
        for b in b"POST /v1/chat/completions HTTP/1.1\r\nx-padding: "
            .iter()
            .cycle()
        {
            if trickle.write_all(&[*b]).await.is_err() {
                return trickle;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!()
    });
    // Each goes after one to two periods (plus scheduling slack), none before one.
    let limit = IDLE * 2 + Duration::from_secs(2);
    for (name, conn) in [
        ("silent", &mut silent),
        ("stalled", &mut stalled),
        ("idle", &mut idle),
    ] {
        closed_within(conn, limit).await;
        assert!(opened.elapsed() >= IDLE, "{name} closed too soon");
    }
    let trickle = tokio::time::timeout(limit, trickling)
        .await
        .expect("the trickling client was cut off")
        .unwrap();
    drop(trickle);
    // The server itself is fine.
    let (status, _, _) = raw_exchange(
        &mut TcpStream::connect(s.addr).await.unwrap(),
        request.as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn busy_http1_connections_outlive_the_idle_timeout() {
    // A slow upstream (four periods to answer) and a slow stream (five chunks a
    // period apart).
    let slow = fake(|c| c.latency = IDLE * 4).await;
    let streaming = fake(|c| {
        c.stream_chunks = 5;
        c.chunk_delay = IDLE;
    })
    .await;
    let config = format!(
        "model_list:\n  - model_name: slow\n    litellm_params: {{model: openai/m, api_key: k, api_base: \"{}/v1\"}}\n  - model_name: streaming\n    litellm_params: {{model: openai/m, api_key: k, api_base: \"{}/v1\"}}\n  - model_name: m\n    litellm_params: {{model: openai/m, api_key: k, mock_response: hi}}\n",
        slow.url(),
        streaming.url()
    );
    let s = Sluice::start_with(&config, &[], short_idle()).await;
    let request = |model: &str, stream: bool| {
        raw_post(&format!(
            r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
        ))
    };

    // After a long response, a client that comes back within a period finds its
    // connection open: quiet means no response finishing either. A quarter period
    // leaves the client three quarters (225 ms) to be late by on a busy machine.
    let pause = IDLE / 4;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let (status, _, body) = raw_exchange(&mut conn, request("slow", false).as_bytes()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    tokio::time::sleep(pause).await;

    // The stream is chunked: read until its last event.
    conn.write_all(request("streaming", true).as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("data: [DONE]") {
        let n = tokio::time::timeout(IDLE * 20, conn.read(&mut buf))
            .await
            .expect("stream went quiet")
            .unwrap();
        assert!(
            n > 0,
            "closed mid-stream: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    tokio::time::sleep(pause).await;

    // Requests a quarter period apart for four periods: the same connection serves
    // them all.
    let started = Instant::now();
    while started.elapsed() < IDLE * 4 {
        let (status, _, _) = raw_exchange(&mut conn, request("m", false).as_bytes()).await;
        assert_eq!(status, 200);
        tokio::time::sleep(pause).await;
    }
}

/// Two worker threads, as the `sluice` command runs them on two CPUs (stopped
/// when dropped), and their handles.
fn two_workers() -> (Vec<Worker>, Vec<tokio::runtime::Handle>) {
    let workers: Vec<Worker> = (0..2).map(|i| Worker::start(i, None).unwrap()).collect();
    let handles = workers.iter().map(|w| w.handle().clone()).collect();
    (workers, handles)
}

/// Connections are handed to the workers and served there to their end:
/// each worker dials its own upstream connection and reuses it, and a shutdown
/// waits for a request still running on a worker.
#[tokio::test]
async fn connections_are_served_on_the_workers_they_are_handed_to() {
    let fast = fake(|_| {}).await;
    let slow = fake(|c| c.latency = Duration::from_millis(400)).await;
    let config = format!(
        "model_list:\n  - model_name: fast\n    litellm_params: {{model: openai/m, api_key: k, api_base: \"{}/v1\"}}\n  - model_name: slow\n    litellm_params: {{model: openai/m, api_key: k, api_base: \"{}/v1\"}}\n",
        fast.url(),
        slow.url()
    );
    let (_workers, handles) = two_workers();
    let timeouts = Timeouts {
        grace: Duration::from_secs(5),
        ..Timeouts::default()
    };
    let s = Sluice::start_on(&config, &[], timeouts, handles.clone()).await;

    // Four connections, three requests on each, one request at a time.
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(TcpStream::connect(s.addr).await.unwrap());
    }
    for _ in 0..3 {
        for conn in &mut conns {
            let (status, _, body) = raw_exchange(conn, raw_post(&chat("fast")).as_bytes()).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        }
    }
    // Each worker runs two of the client connections, a task each; one of them
    // also runs the task that reaps the upstream's idle connections. An upstream
    // connection has no task of its own: its requests' tasks read and write it.
    let tasks: Vec<usize> = handles
        .iter()
        .map(|h| h.metrics().num_alive_tasks())
        .collect();
    assert!(tasks.iter().all(|&n| n >= 2), "tasks per worker: {tasks:?}");
    assert_eq!(
        tasks.iter().sum::<usize>(),
        5,
        "tasks per worker: {tasks:?}"
    );
    // One upstream connection per worker, each reused for its six requests (the
    // two workers share one idle list on a one-CPU machine).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opened = metric(
        &scrape(&s).await,
        "sluice_upstream_connections_opened_total",
        &[],
    );
    assert_eq!(opened, cpus.min(2) as f64, "upstream connections opened");

    // A request on a worker is still answered after the shutdown begins.
    let mut conn = conns.swap_remove(0);
    let running =
        tokio::spawn(
            async move { raw_exchange(&mut conn, raw_post(&chat("slow")).as_bytes()).await },
        );
    // Shut down once the upstream holds the request (it answers 400 ms later).
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow.stats().requests() == 0 {
        assert!(
            Instant::now() < deadline,
            "the slow request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.shutdown().await;
    let (status, _, body) = running.await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// A new connection goes to the worker with the fewest open: after a short
/// connection on one worker has closed, the next one goes there again, rather
/// than joining the long one on the other worker.
#[tokio::test]
async fn a_connection_goes_to_the_worker_with_the_fewest_open() {
    let (_workers, handles) = two_workers();
    let s = Sluice::start_on(CONFIG, &[], Timeouts::default(), handles.clone()).await;
    let tasks = |i: usize| handles[i].metrics().num_alive_tasks();
    let ask = |conn: TcpStream| async move {
        let mut conn = conn;
        let (status, _, body) = raw_exchange(&mut conn, raw_post(&chat("m")).as_bytes()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        conn
    };

    let stays = ask(TcpStream::connect(s.addr).await.unwrap()).await;
    let short = ask(TcpStream::connect(s.addr).await.unwrap()).await;
    assert_eq!(
        (tasks(0), tasks(1)),
        (1, 1),
        "one connection on each worker"
    );
    drop(short);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tasks(0) + tasks(1) > 1 {
        assert!(
            Instant::now() < deadline,
            "the closed connection is still served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let next = ask(TcpStream::connect(s.addr).await.unwrap()).await;
    assert_eq!(
        (tasks(0), tasks(1)),
        (1, 1),
        "the new connection joined the worker left without one"
    );
    drop((stays, next));
    s.shutdown().await;
}

/// The CPUs the calling thread may run on, as the kernel lists them ("0-1", "0,2").
#[cfg(target_os = "linux")]
fn cpus_allowed() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().to_owned()
}

/// `--pin_workers`: a worker started with a CPU runs on that CPU alone, and one
/// given a CPU it cannot have (beyond any machine's) logs a warning and runs
/// where the process may, as if not pinned.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_pinned_worker_runs_on_its_cpu_only() {
    let process_cpus = cpus_allowed();
    let allowed = sluice::worker::allowed_cpus();
    let last = *allowed.last().expect("the process may run somewhere");
    let on = |w: &Worker| w.handle().spawn(async { cpus_allowed() });

    let pinned = Worker::start(1, Some(last)).unwrap();
    assert_eq!(on(&pinned).await.unwrap(), last.to_string());
    let unpinnable = Worker::start(2, Some(usize::MAX)).unwrap();
    assert_eq!(on(&unpinnable).await.unwrap(), process_cpus);
    let unpinned = Worker::start(3, None).unwrap();
    assert_eq!(on(&unpinned).await.unwrap(), process_cpus);
    // Starting workers leaves the thread that starts them where it was.
    assert_eq!(cpus_allowed(), process_cpus);
}
