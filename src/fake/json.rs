//! JSON fragments for the fake responses: the parts that never change are
//! built once (at start-up or at compile time); only the head of each body
//! (id, timestamp, echoed model) is written per request.

use bytes::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};

/// The assistant's whole answer, as it appears (JSON-escaped) in the tails below.
#[cfg(test)]
pub(crate) const CONTENT: &str = "\n\nHello there, how may I assist you today?";

/// `CONTENT` cut into token-like pieces, used to build stream chunks.
const TOKENS: [&str; 11] = [
    "\n\n", "Hello", " there", ",", " how", " may", " I", " assist", " you", " today", "?",
];

/// Prompt tokens reported in every `usage` object.
pub(crate) const PROMPT_TOKENS: u64 = 9;
/// Completion tokens reported for the non-streamed answer.
pub(crate) const COMPLETION_TOKENS: u64 = 12;

/// Which OpenAI API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/chat/completions`.
    Chat,
    /// `/completions` (legacy text completions).
    Text,
    /// `/embeddings`.
    Embed,
}

const CHAT_TAIL: &str = concat!(
    r#","system_fingerprint":"fp_fake","choices":[{"index":0,"message":{"role":"assistant","content":"\n\nHello there, how may I assist you today?"},"logprobs":null,"finish_reason":"stop"}],"#,
    r#""usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#
);
const TEXT_TAIL: &str = concat!(
    r#","system_fingerprint":"fp_fake","choices":[{"text":"\n\nHello there, how may I assist you today?","index":0,"logprobs":null,"finish_reason":"stop"}],"#,
    r#""usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#
);
const EMBED_HEAD: &str = concat!(
    r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":"#,
    r#"[0.0023064255,-0.009327292,-0.0028842222,0.017620456,-0.0107421875,0.0051078796,0.0132598875,-0.0045166016]}],"model":"#
);
const EMBED_TAIL: &str = r#","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
const CHUNK_TAIL: &str = r#","system_fingerprint":"fp_fake","choices":"#;
/// The event that ends every stream.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Appends `s` as a JSON string literal (quotes included).
pub(crate) fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    buf.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                buf.extend_from_slice(&bytes[start..i]);
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(esc);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Appends `n` in decimal.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `n` as 16 lowercase hex digits.
fn push_hex16(buf: &mut Vec<u8>, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        buf.push(HEX[((n >> (shift * 4)) & 0xf) as usize]);
    }
}

/// Writes `{"id":"...","object":"...","created":N,"model":"..."` (unclosed).
fn push_head(buf: &mut Vec<u8>, api: Api, chunk: bool, model: &str) {
    let (id_prefix, object): (&[u8], &[u8]) = match (api, chunk) {
        (Api::Text, _) => (b"cmpl-", b"text_completion"),
        (_, false) => (b"chatcmpl-", b"chat.completion"),
        (_, true) => (b"chatcmpl-", b"chat.completion.chunk"),
    };
    buf.extend_from_slice(br#"{"id":""#);
    buf.extend_from_slice(id_prefix);
    push_hex16(buf, fastrand::u64(..));
    buf.extend_from_slice(br#"","object":""#);
    buf.extend_from_slice(object);
    buf.extend_from_slice(br#"","created":"#);
    push_u64(buf, unix_now());
    buf.extend_from_slice(br#","model":"#);
    push_json_str(buf, model);
}

/// The whole body of a non-streamed response echoing `model`.
pub(crate) fn full_body(api: Api, model: &str) -> Bytes {
    let mut buf = Vec::with_capacity(448 + model.len());
    match api {
        Api::Chat | Api::Text => {
            push_head(&mut buf, api, false, model);
            let tail = if api == Api::Chat {
                CHAT_TAIL
            } else {
                TEXT_TAIL
            };
            buf.extend_from_slice(tail.as_bytes());
        }
        Api::Embed => {
            buf.extend_from_slice(EMBED_HEAD.as_bytes());
            push_json_str(&mut buf, model);
            buf.extend_from_slice(EMBED_TAIL.as_bytes());
        }
    }
    Bytes::from(buf)
}

/// The per-request start of every stream event, up to and including
/// `"choices":`; each event is this followed by one of a [`StreamPlan`]'s tails.
pub(crate) fn chunk_prefix(api: Api, model: &str) -> Bytes {
    let mut buf = Vec::with_capacity(192 + model.len());
    buf.extend_from_slice(b"data: ");
    push_head(&mut buf, api, true, model);
    buf.extend_from_slice(CHUNK_TAIL.as_bytes());
    Bytes::from(buf)
}

/// An OpenAI-shaped error body.
pub(crate) fn error_body(message: &str, kind: &str) -> Bytes {
    let mut buf = Vec::with_capacity(96 + message.len());
    buf.extend_from_slice(br#"{"error":{"message":"#);
    push_json_str(&mut buf, message);
    buf.extend_from_slice(br#","type":"#);
    push_json_str(&mut buf, kind);
    buf.extend_from_slice(br#","param":null,"code":null}}"#);
    Bytes::from(buf)
}

/// The tails of all events of one stream, built once per server and API:
/// `content.len()` content events, then `finish`, then (if asked) `usage`,
/// then `[DONE]`.
#[derive(Debug)]
pub(crate) struct StreamPlan {
    /// One tail per content chunk; the first chat chunk also carries the role.
    pub(crate) content: Vec<Bytes>,
    /// The empty-delta chunk carrying `finish_reason: "stop"`.
    pub(crate) finish: Bytes,
    /// The `choices: []` chunk carrying `usage` (sent when `include_usage`).
    pub(crate) usage: Bytes,
}

impl StreamPlan {
    /// Builds the tails for `chunks` content chunks. Up to 11 chunks split the
    /// usual answer (so they concatenate to [`CONTENT`]); more repeat its
    /// tokens in a cycle.
    pub(crate) fn new(api: Api, chunks: usize) -> StreamPlan {
        let n = TOKENS.len();
        let piece = |i: usize| -> String {
            if chunks <= n {
                TOKENS[i * n / chunks..(i + 1) * n / chunks].concat()
            } else {
                TOKENS[i % n].to_owned()
            }
        };
        let content = (0..chunks)
            .map(|i| {
                let mut buf = Vec::with_capacity(96);
                match api {
                    Api::Text => {
                        buf.extend_from_slice(br#"[{"text":"#);
                        push_json_str(&mut buf, &piece(i));
                        buf.extend_from_slice(
                            br#","index":0,"logprobs":null,"finish_reason":null}]}"#,
                        );
                    }
                    _ => {
                        buf.extend_from_slice(br#"[{"index":0,"delta":{"#);
                        if i == 0 {
                            buf.extend_from_slice(br#""role":"assistant","#);
                        }
                        buf.extend_from_slice(br#""content":"#);
                        push_json_str(&mut buf, &piece(i));
                        buf.extend_from_slice(br#"},"logprobs":null,"finish_reason":null}]}"#);
                    }
                }
                buf.extend_from_slice(b"\n\n");
                Bytes::from(buf)
            })
            .collect();
        let finish: &[u8] = match api {
            Api::Text => br#"[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]}"#,
            _ => br#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
        };
        let completion = COMPLETION_TOKENS.max(chunks as u64);
        let mut usage = Vec::with_capacity(96);
        usage.extend_from_slice(br#"[],"usage":{"prompt_tokens":"#);
        push_u64(&mut usage, PROMPT_TOKENS);
        usage.extend_from_slice(br#","completion_tokens":"#);
        push_u64(&mut usage, completion);
        usage.extend_from_slice(br#","total_tokens":"#);
        push_u64(&mut usage, PROMPT_TOKENS + completion);
        usage.extend_from_slice(b"}}\n\n");
        StreamPlan {
            content,
            finish: Bytes::from([finish, b"\n\n"].concat()),
            usage: Bytes::from(usage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_json() {
        let model = "we\"ird\\model\u{1}\n";
        for api in [Api::Chat, Api::Text, Api::Embed] {
            let v: serde_json::Value = serde_json::from_slice(&full_body(api, model)).unwrap();
            assert_eq!(v["model"], model);
        }
        let e: serde_json::Value = serde_json::from_slice(&error_body("a\"b", "x")).unwrap();
        assert_eq!(e["error"]["message"], "a\"b");
    }

    #[test]
    fn plan_pieces_concatenate_to_content() {
        for chunks in 1..=11 {
            let plan = StreamPlan::new(Api::Chat, chunks);
            let prefix = chunk_prefix(Api::Chat, "m");
            let mut text = String::new();
            for tail in plan.content.iter().chain([&plan.finish, &plan.usage]) {
                let event = [&prefix[..], &tail[..]].concat();
                let json = event.strip_prefix(b"data: ").unwrap();
                let v: serde_json::Value = serde_json::from_slice(json).unwrap();
                if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
                    text.push_str(c);
                }
            }
            assert_eq!(text, CONTENT);
        }
    }
}
