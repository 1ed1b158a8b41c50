//! Event streams without reported usage: events counted at their first `data:` byte,
//! generated text counted in decoded bytes, checked against a serde_json oracle.

use super::*;
use serde_json::json;

#[test]
fn events_are_counted_at_their_first_data_byte() {
    let body = b": keep-alive\n\nevent: message\nid: 1\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n";
    let first = body.windows(6).position(|w| w == b"data: ").unwrap() + 6;
    let mut s = UsageSniffer::new(true);
    s.feed(&Bytes::copy_from_slice(&body[..first]));
    assert_eq!(s.events(), 0);
    s.feed(&Bytes::copy_from_slice(&body[first..first + 1]));
    assert_eq!(s.events(), 1);
    s.feed(&Bytes::copy_from_slice(&body[first + 1..]));
    assert_eq!(s.events(), 1);
    assert_eq!(every_split(body, true).2, 1);
}

#[test]
fn event_counting_variants() {
    let count = |body: &[u8]| every_split(body, true).2;
    assert_eq!(
        count(b"data:{}\n\ndata:[DONE]\n\n"),
        1,
        "no space after the colon"
    );
    assert_eq!(
        count(b"data: {}\r\n\r\ndata: {}\r\n\r\ndata: [DONE]\r\n\r\n"),
        2,
        "CRLF"
    );
    assert_eq!(
        count(b"data: {\"a\":\ndata: 1}\n\ndata: {}\n\n"),
        2,
        "two data lines, one event"
    );
    assert_eq!(count(b"data:\n\ndata: \n\n"), 0, "empty data");
    assert_eq!(count(b"data: [DONE]\n\n"), 0);
    assert_eq!(count(b"data: [DON\n\ndata: [x]\n\n"), 2, "not quite [DONE]");
    assert_eq!(
        count(b": data: {}\n\nevent: data\n\nxdata: {}\n\ndat\ndata: {}\n\n"),
        1
    );
    assert_eq!(
        count(b"data: {}\n\ndata: {}\n\ndata: {}"),
        3,
        "no final newline"
    );
    assert_eq!(
        every_split(b"data: {}\n\n", false).2,
        0,
        "not an event stream"
    );
}

/// The decoded bytes of every string value under a key of [`TEXT_KEYS`], anywhere in `v`.
fn oracle(v: &serde_json::Value) -> u64 {
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) if TEXT_KEYS.contains(&k.as_bytes()) => s.len() as u64,
                _ => oracle(v),
            })
            .sum(),
        serde_json::Value::Array(items) => items.iter().map(oracle).sum(),
        _ => 0,
    }
}

/// `json` with every non-ASCII character written as `\uXXXX` escapes, as Python writes it.
fn ascii_only(json: &str) -> String {
    let mut out = String::new();
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn text_bytes(body: &[u8]) -> u64 {
    whole(body, true).sse.unwrap().text_bytes
}

#[test]
fn text_is_counted_in_decoded_bytes() {
    let events = [
        json!({"choices":[{"delta":{"role":"assistant","content":""}}]}),
        json!({"choices":[{"delta":{"content":"a \"quoted\" \\ back\nslash\ttab\u{1}"}}]}),
        json!({"choices":[{"delta":{"content":"é 中文 😀"}}]}),
        json!({"choices":[{"delta":{"content":null,"reasoning_content":"think"}}]}),
        json!({"choices":[{"delta":{"role":"content","refusal":"no"}}]}),
        json!({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}]}),
        json!({"choices":[{"text":"completion text","index":0}]}),
        json!({"choices":[{"delta":{"content":[{"type":"text","text":"part"}]}}]}),
        json!({"choices":[{"delta":{"contents":"not counted","contentx":"no","Content":"no"}}]}),
        json!({"choices":[{"logprobs":{"content":[{"token":"Hi","bytes":[72,105]}]}}]}),
    ];
    let expected: u64 = events.iter().map(oracle).sum();
    assert_eq!(expected, 28 + 14 + 5 + 2 + 16 + 15 + 4);
    let body = sse_body(&events);
    let ascii = ascii_only(std::str::from_utf8(&body).unwrap());
    assert_ne!(ascii.as_bytes(), &body[..]);
    for body in [&body[..], ascii.as_bytes()] {
        assert_eq!(text_bytes(body), expected);
        assert_eq!(every_split(body, true).0, estimated(expected.div_ceil(4)));
    }
}

#[test]
fn text_key_spacing_and_non_string_values() {
    let cases: [(&[u8], u64); 8] = [
        (b"data: {\"content\" : \"abc\"}\n\n", 3),
        (b"data: {\"content\"\t:\r\"abc\"}\n\n", 3),
        (b"data: {\"content\":null,\"x\":\"abc\"}\n\n", 0),
        (b"data: {\"content\":1,\"x\":\"abc\"}\n\n", 0),
        (b"data: {\"a\":\"content\",\"b\":\"abc\"}\n\n", 0),
        (b"data: {\"a\":[\"text\",\"abc\"]}\n\n", 0),
        (b"data: {\"con\\u0074ent\":\"abc\"}\n\n", 0),
        // Text cut by the line's end is counted up to there; the next line starts afresh.
        (b"data: {\"content\":\"ab\ndata: {\"x\":\"abc\"}\n\n", 2),
    ];
    for (body, expected) in cases {
        assert_eq!(
            text_bytes(body),
            expected,
            "{}",
            String::from_utf8_lossy(body)
        );
        every_split(body, true);
    }
    // Not-quite-valid escapes still count something and recover.
    assert_eq!(text_bytes(b"data: {\"content\":\"\\u12\\\"x\"}\n\n"), 3);
    // Text in lines that are not data is ignored.
    assert_eq!(
        text_bytes(b": {\"content\":\"abc\"}\nevent: {\"text\":\"x\"}\n\n"),
        0
    );
}

/// A random string with characters that stress escaping and multi-byte encodings.
fn random_text(rng: &mut fastrand::Rng) -> String {
    const PIECES: [&str; 14] = [
        "a", "bc", " ", "\"", "\\", "\n", "\t", "\u{1}", "é", "中", "😀", "content", "\":\"", "{",
    ];
    (0..rng.usize(0..12))
        .map(|_| PIECES[rng.usize(..PIECES.len())])
        .collect()
}

#[test]
fn random_streams_match_the_oracle() {
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..300 {
        let mut events = Vec::new();
        for _ in 0..rng.usize(0..6) {
            let key = [
                "content",
                "text",
                "arguments",
                "role",
                "reasoning_content",
                "name",
            ][rng.usize(..6)];
            let mut delta = serde_json::Map::new();
            delta.insert(key.to_owned(), json!(random_text(&mut rng)));
            delta.insert(random_text(&mut rng), json!(random_text(&mut rng)));
            events.push(json!({"choices":[{"delta": delta}], "usage": null}));
        }
        let with_usage = rng.bool();
        if with_usage {
            events.push(usage_chunk(3, 4));
        }
        let expected: u64 = events.iter().map(oracle).sum();
        let mut body = sse_body(&events);
        if rng.bool() {
            body = ascii_only(std::str::from_utf8(&body).unwrap()).into_bytes();
        }
        assert_eq!(text_bytes(&body), expected, "round {round}");
        let want = if with_usage {
            reported(3, 4, 7)
        } else {
            estimated(expected.div_ceil(4))
        };
        let out = agree(&body, true);
        assert_eq!(
            out,
            (want, body.len() as u64, events.len() as u64),
            "round {round}"
        );
    }
}
