//! The upstream connection pool: connections are reused once an answer has ended,
//! concurrent requests each get their own and no spare ones are left behind, and
//! an idle connection the upstream closed (or said it would close) is never used
//! for a request, and a request whose client leaves closes its upstream connection.

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn opened(s: &Sluice) -> f64 {
    metric(
        &scrape(s).await,
        "sluice_upstream_connections_opened_total",
        &[],
    )
}

fn idle(s: &Sluice) -> usize {
    s.app.snapshot.load().deployments[0].targets[0]
        .origin
        .idle_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_one_after_another_share_one_connection() {
    let up = fake(|_| {}).await;
    let s = Sluice::start(&no_retry_config(&up.url())).await;
    let url = format!("{}/v1/chat/completions", s.url());
    for _ in 0..10 {
        assert_eq!(post(&url, &chat("m")).await.status, 200);
    }
    assert_eq!(opened(&s).await, 1.0, "one after another: one connection");
    assert_eq!(idle(&s), 1);
    assert_eq!(up.stats().requests(), 10);
}

/// An upstream that holds its answers until `n` requests are waiting, then sends
/// them all, on keep-alive connections: each batch of `n` requests is in flight
/// at once however slow the machine, so it needs `n` connections. Also returns
/// the count of connections accepted.
async fn gathering_upstream(n: usize) -> (String, Arc<AtomicUsize>) {
    let gate = Arc::new(tokio::sync::Barrier::new(n));
    raw_upstream(move |mut c| {
        let gate = gate.clone();
        async move {
            while request_arrives(&mut c).await {
                gate.wait().await;
                c.write_all(&ok_answer(false)).await.unwrap();
            }
        }
    })
    .await
}

/// A 200 with a small completion; with `close`, it says `connection: close`.
fn ok_answer(close: bool) -> Vec<u8> {
    let body = r#"{"id":"x","object":"chat.completion","choices":[]}"#;
    let close = if close { "connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{close}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_a_connection_each_and_none_are_left_spare() {
    let (up, accepted) = gathering_upstream(16).await;
    let s = Sluice::start(&no_retry_config(&up)).await;
    let url = format!("{}/v1/chat/completions", s.url());
    let batch = || async {
        let sent = (0..16).map(|_| {
            let url = url.clone();
            tokio::spawn(async move { post(&url, &chat("m")).await.status })
        });
        for s in futures_util::future::join_all(sent).await {
            assert_eq!(s.unwrap(), 200);
        }
    };
    // 16 at once: each needs a connection of its own, and gets exactly one.
    batch().await;
    assert_eq!(opened(&s).await, 16.0);
    assert_eq!(idle(&s), 16, "every connection came back");
    // The same again finds them idle and opens none.
    batch().await;
    assert_eq!(opened(&s).await, 16.0);
    assert_eq!(idle(&s), 16, "every connection came back");
    assert_eq!(accepted.load(Ordering::SeqCst), 16);
}

/// An upstream that answers one request per connection, then closes it; with
/// `announce`, its answer says `connection: close`, otherwise it just hangs up.
async fn one_shot_upstream(announce: bool) -> (String, Arc<AtomicUsize>) {
    raw_upstream(move |mut c| async move {
        read_request(&mut c).await;
        c.write_all(&ok_answer(announce)).await.unwrap();
    })
    .await
}

#[tokio::test]
async fn closed_idle_connections_are_never_used() {
    for announce in [true, false] {
        let (up, accepted) = one_shot_upstream(announce).await;
        let s = Sluice::start(&no_retry_config(&up)).await;
        let url = format!("{}/v1/chat/completions", s.url());
        for i in 1..=5 {
            // No retries: a request sent on a dead connection would fail.
            let r = post(&url, &chat("m")).await;
            assert_eq!(r.status, 200, "announce={announce} #{i}: {:?}", r.body);
            // Give the hang-up time to reach sluice before the next request.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
        assert_eq!(opened(&s).await, 5.0);
    }
}

/// When the client goes away before the answer, the upstream sees its connection
/// close (so a provider can stop generating) and the connection is not pooled.
#[tokio::test]
async fn a_client_leaving_closes_the_upstream_connection() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = format!("http://{}", l.local_addr().unwrap());
    let (got_request, mut request_seen) = tokio::sync::mpsc::channel(1);
    let (saw_close, mut close_seen) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let (mut c, _) = l.accept().await.unwrap();
        read_request(&mut c).await;
        got_request.send(()).await.unwrap();
        // Never answer; wait for the end of the connection.
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).await.unwrap_or(0);
        saw_close.send(n).await.unwrap();
    });
    let s = Sluice::start(&no_retry_config(&up)).await;
    let mut client = TcpStream::connect(s.addr).await.unwrap();
    client
        .write_all(raw_post(&chat("m")).as_bytes())
        .await
        .unwrap();
    request_seen.recv().await.unwrap();
    drop(client);
    let read = tokio::time::timeout(Duration::from_secs(10), close_seen.recv())
        .await
        .expect("the upstream connection stayed open after the client left");
    assert_eq!(read, Some(0), "the upstream read end-of-stream, not data");
    assert_eq!(idle(&s), 0);
}
