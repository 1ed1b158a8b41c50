//! `mock_response`: answers as the upstream would, without calling it. Set on a
//! deployment (`litellm_params.mock_response`) or per request in the body, as in
//! LiteLLM. Used for tests, demos and the no-network quickstart.

use crate::upstream::Endpoint;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

/// Token counts reported by mock answers (LiteLLM's mocks report fixed usage too).
const PROMPT_TOKENS: u64 = 10;
const COMPLETION_TOKENS: u64 = 20;

/// A mocked answer: content type and body.
pub struct Mock {
    /// `application/json` or `text/event-stream`.
    pub content_type: &'static str,
    /// The whole body.
    pub body: Vec<u8>,
}

/// The answer `endpoint` would give with `text` as the completion, for `model`.
pub fn respond(endpoint: Endpoint, model: &str, text: &str, stream: bool, call_id: &str) -> Mock {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let usage = json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    });
    let id = format!("chatcmpl-{call_id}");
    match (endpoint, stream) {
        (Endpoint::Embeddings, _) => json_mock(json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": vec![0.0f32; 8]}],
            "model": model,
            "usage": {"prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS},
        })),
        (Endpoint::ChatCompletions, false) => json_mock(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": usage,
        })),
        (Endpoint::Completions, false) => json_mock(json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "stop"}],
            "usage": usage,
        })),
        (Endpoint::ChatCompletions, true) => {
            let chunk = |delta: serde_json::Value, finish: Option<&str>| {
                json!({"id": id, "object": "chat.completion.chunk", "created": created,
                       "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            sse(&[
                chunk(json!({"role": "assistant", "content": text}), None),
                chunk(json!({}), Some("stop")),
            ])
        }
        (Endpoint::Completions, true) => sse(&[json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "stop"}],
        })]),
    }
}

fn json_mock(v: serde_json::Value) -> Mock {
    Mock {
        content_type: "application/json",
        body: serde_json::to_vec(&v).expect("a json! value always serialises"),
    }
}

fn sse(chunks: &[serde_json::Value]) -> Mock {
    let mut body = Vec::new();
    for c in chunks {
        body.extend_from_slice(b"data: ");
        body.extend_from_slice(&serde_json::to_vec(c).expect("a json! value always serialises"));
        body.extend_from_slice(b"\n\n");
    }
    body.extend_from_slice(b"data: [DONE]\n\n");
    Mock {
        content_type: "text/event-stream",
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_mock_is_a_chat_completion() {
        let m = respond(Endpoint::ChatCompletions, "g", "hi", false, "1");
        let v: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hi");
        assert_eq!(v["object"], "chat.completion");
    }

    #[test]
    fn stream_mock_ends_with_done() {
        let m = respond(Endpoint::ChatCompletions, "g", "hi", true, "1");
        assert_eq!(m.content_type, "text/event-stream");
        assert!(m.body.ends_with(b"data: [DONE]\n\n"));
    }
}
