//! sluice's HTTP/1.1 upstream client against upstreams that answer in every
//! framing HTTP/1.1 allows, and against ones that break the protocol: each valid
//! answer reaches the client whole (its connection reused only when the answer
//! allows it), and each broken one is a 502 with a message saying what broke,
//! never a corrupted answer or a connection reused in a bad state.

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BODY: &str = r#"{"id":"x","object":"chat.completion","choices":[]}"#;

/// An upstream answering every request with `pieces`, written one by one with a
/// pause between (so that sluice reads them apart), then hanging up if `close`.
/// Returns its URL and the number of connections it accepted.
async fn scripted(pieces: Vec<Vec<u8>>, close: bool) -> (String, Arc<AtomicUsize>) {
    scripted_each(vec![pieces], close).await
}

/// [`scripted`], the n-th request on a connection answered with `answers[n]`
/// (taking them round again after the last).
async fn scripted_each(answers: Vec<Vec<Vec<u8>>>, close: bool) -> (String, Arc<AtomicUsize>) {
    let answers = Arc::new(answers);
    raw_upstream(move |mut c| {
        let answers = answers.clone();
        async move {
            for pieces in answers.iter().cycle() {
                if !request_arrives(&mut c).await {
                    return;
                }
                for p in pieces {
                    if c.write_all(p).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                if close {
                    return;
                }
            }
        }
    })
    .await
}

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Sends two chats one after the other; both must come back 200 with `BODY`.
/// Returns the upstream connections they took.
async fn two_chats(pieces: Vec<Vec<u8>>, close: bool) -> usize {
    let (up, accepted) = scripted(pieces, close).await;
    let s = Sluice::start(&no_retry_config(&up)).await;
    let url = format!("{}/v1/chat/completions", s.url());
    for i in 0..2 {
        let r = post(&url, &chat("m")).await;
        assert_eq!(r.status, 200, "#{i}: {:?}", r.body);
        assert_eq!(r.body, BODY, "#{i}");
        // Let a hang-up reach sluice before the next request.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    accepted.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_content_length_answer_in_pieces_keeps_its_connection() {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        BODY.len()
    );
    let (a, b) = BODY.split_at(10);
    let pieces = vec![bytes(&head[..7]), bytes(&head[7..]), bytes(a), bytes(b)];
    assert_eq!(two_chats(pieces, false).await, 1);
}

#[tokio::test]
async fn a_chunked_answer_split_anywhere_keeps_its_connection() {
    let (a, b) = BODY.split_at(20);
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
         {:x};name=value\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nx-trailer: 1\r\n\r\n",
        a.len(),
        b.len()
    );
    // Cut inside the head, a size line, the data and the final CRLF.
    let cuts = [
        30,
        answer.find(";name").unwrap() + 2,
        answer.len() - 40,
        answer.len() - 1,
    ];
    let mut pieces = Vec::new();
    let mut from = 0;
    for to in cuts.into_iter().chain([answer.len()]) {
        pieces.push(bytes(&answer[from..to]));
        from = to;
    }
    assert_eq!(two_chats(pieces, false).await, 1);
}

#[tokio::test]
async fn interim_answers_are_skipped() {
    let answer = format!(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n\
         HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    assert_eq!(two_chats(vec![bytes(&answer)], false).await, 1);
}

#[tokio::test]
async fn header_names_reach_the_client_whatever_their_case_and_order() {
    // Answers on one connection: the names a connection keeps (`upstream/names.rs`)
    // are found again in another order and case, beside new ones and without
    // ones gone, each with its own answer's value.
    let heads: [&[(&str, &str)]; 3] = [
        &[
            ("Content-Type", "application/json"),
            ("X-Request-Id", "a1"),
            ("openai-version", "v1"),
        ],
        &[
            ("x-new", "n2"),
            ("OPENAI-VERSION", "v2"),
            ("content-type", "application/json"),
            ("x-request-id", "a2"),
        ],
        &[("X-Request-ID", "a3"), ("Content-Type", "application/json")],
    ];
    let answers = heads
        .iter()
        .map(|head| {
            let lines: String = head.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
            let len = BODY.len();
            vec![bytes(&format!(
                "HTTP/1.1 200 OK\r\n{lines}content-length: {len}\r\n\r\n{BODY}"
            ))]
        })
        .collect();
    let (up, accepted) = scripted_each(answers, false).await;
    let s = Sluice::start(&no_retry_config(&up)).await;
    let url = format!("{}/v1/chat/completions", s.url());
    for (i, head) in heads.iter().enumerate() {
        let r = post(&url, &chat("m")).await;
        assert_eq!(r.status, 200, "#{i}: {:?}", r.body);
        assert_eq!(r.body, BODY, "#{i}");
        for name in ["x-request-id", "openai-version", "x-new"] {
            let sent = head.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
            let got = r.headers.get(name).map(|v| v.to_str().unwrap());
            assert_eq!(got, sent.map(|(_, v)| *v), "#{i}: {name}");
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn answers_of_any_size_follow_one_another_on_one_connection() {
    // A connection keeps its read buffer between answers: each answer must come
    // whole and alone, whether it fits in what is left of the buffer or not, with
    // a head or a body longer than the buffer, in one piece or two.
    let padded = |n: usize| {
        format!(
            r#"{{"id":"x","object":"chat.completion","choices":[],"pad":"{}"}}"#,
            "p".repeat(n)
        )
    };
    let long_head: String = (0..60)
        .map(|i| format!("x-line-{i}: {}\r\n", "v".repeat(90)))
        .collect();
    let answer = |extra: &str, body: &str| {
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}", body.len())
    };
    let bodies = [
        padded(10),
        padded(20_000),
        padded(3_000),
        padded(10),
        padded(700),
        padded(10),
    ];
    let answers: Vec<Vec<Vec<u8>>> = vec![
        vec![bytes(&answer("", &bodies[0]))],
        // Split inside the body.
        {
            let a = answer("", &bodies[1]);
            vec![bytes(&a[..9_000]), bytes(&a[9_000..])]
        },
        vec![bytes(&answer("", &bodies[2]))],
        // A head of about 6 KB.
        vec![bytes(&answer(&long_head, &bodies[3]))],
        vec![bytes(&answer("", &bodies[4]))],
        // Split inside the head.
        {
            let a = answer("", &bodies[5]);
            vec![bytes(&a[..20]), bytes(&a[20..])]
        },
    ];
    let (up, accepted) = scripted_each(answers, false).await;
    let s = Sluice::start(&no_retry_config(&up)).await;
    let url = format!("{}/v1/chat/completions", s.url());
    for round in 0..2 {
        for (i, body) in bodies.iter().enumerate() {
            let r = post(&url, &chat("m")).await;
            assert_eq!(r.status, 200, "round {round} #{i}: {:?}", r.body);
            assert!(
                r.body == *body,
                "round {round} #{i}: {} bytes, not the {} sent",
                r.body.len(),
                body.len()
            );
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn answers_that_end_their_connection_are_not_reused() {
    let len = BODY.len();
    for (what, answer) in [
        // No length: the body runs until the upstream hangs up.
        ("until close", format!("HTTP/1.1 200 OK\r\n\r\n{BODY}")),
        (
            "connection: close",
            format!("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {len}\r\n\r\n{BODY}"),
        ),
        (
            "HTTP/1.0",
            format!("HTTP/1.0 200 OK\r\ncontent-length: {len}\r\n\r\n{BODY}"),
        ),
    ] {
        assert_eq!(two_chats(vec![bytes(&answer)], true).await, 2, "{what}");
    }
    // An HTTP/1.0 upstream asking to keep the connection keeps it.
    let answer =
        format!("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: {len}\r\n\r\n{BODY}");
    assert_eq!(
        two_chats(vec![bytes(&answer)], false).await,
        1,
        "HTTP/1.0 keep-alive"
    );
}

#[tokio::test]
async fn bytes_past_an_answer_retire_its_connection() {
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{BODY}HTTP/1.1 200 OK\r\n",
        BODY.len()
    );
    // The stray bytes would be read as the next request's answer: a new connection.
    assert_eq!(two_chats(vec![bytes(&answer)], false).await, 2);
}

#[tokio::test]
async fn broken_answers_are_502s_that_say_what_broke() {
    let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "a".repeat(70_000));
    for (what, answer, says) in [
        (
            "no status line",
            "HELLO\r\n\r\n".to_string(),
            "not valid HTTP/1.1",
        ),
        (
            "a line with no colon",
            "HTTP/1.1 200 OK\r\nbad header\r\n\r\n".to_string(),
            "not valid HTTP/1.1",
        ),
        ("a 70 KB head", huge, "over 64 KB"),
        ("nothing", "".to_string(), "without answering"),
        (
            "half a head",
            "HTTP/1.1 200 OK\r\ncontent-".to_string(),
            "in the middle of its answer's head",
        ),
        (
            "a word for a length",
            "HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n".to_string(),
            "Content-Length is not a number",
        ),
        (
            "two lengths",
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd".to_string(),
            "two Content-Lengths",
        ),
        (
            "an upgrade",
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n".to_string(),
            "switched protocols",
        ),
    ] {
        let (up, _) = scripted(vec![bytes(&answer)], true).await;
        let s = Sluice::start(&no_retry_config(&up)).await;
        let r = post(&format!("{}/v1/chat/completions", s.url()), &chat("m")).await;
        assert_eq!(r.status, 502, "{what}: {:?}", r.body);
        assert_eq!(r.json()["error"]["type"], "api_connection_error");
        let message = r.error_message();
        assert!(message.contains(says), "{what}: {message}");
        assert_eq!(idle_count(&s), 0, "{what}");
    }
}

#[tokio::test]
async fn a_body_cut_short_reaches_the_client_cut_short() {
    // The head promises 100 bytes; 10 come, then the upstream hangs up.
    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789".to_string();
    let (up, _) = scripted(vec![bytes(&answer)], true).await;
    let s = Sluice::start(&no_retry_config(&up)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(raw_post(&chat("m")).as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got)).await;
    let got = String::from_utf8_lossy(&got).to_string();
    assert!(read.is_ok(), "sluice kept the client waiting: {got:?}");
    let (head, body) = got.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-length: 100"), "{head}");
    // The client sees the cut (fewer bytes than promised, then the end of the
    // connection), never a complete-looking answer.
    assert_eq!(body, "0123456789");
    assert_eq!(idle_count(&s), 0);
}

fn idle_count(s: &Sluice) -> usize {
    s.app.snapshot.load().deployments[0].targets[0]
        .origin
        .idle_count()
}
