use super::*;
use serde_json::json;

/// Event and generated-text counting in event streams.
mod stream;
/// Bodies longer than the kept tail, and the tail buffer itself.
mod tail;

/// What a sniffer tells at the end, for comparing runs.
type Outcome = ((Usage, Source), u64, u64);

const PROMPT: u64 = 7;

fn outcome(s: &UsageSniffer) -> Outcome {
    (s.finish(PROMPT), s.bytes(), s.events())
}

fn feed_frames<'a>(sse: bool, frames: impl IntoIterator<Item = &'a [u8]>) -> UsageSniffer {
    let mut s = UsageSniffer::new(sse);
    for f in frames {
        s.feed(&Bytes::copy_from_slice(f));
    }
    s
}

fn whole(body: &[u8], sse: bool) -> UsageSniffer {
    feed_frames(sse, [body])
}

/// Feeds `body` whole, split in two at every position (every few positions past 4 KiB), byte
/// by byte and in random frames, asserts that all runs agree, and returns the outcome.
fn every_split(body: &[u8], sse: bool) -> Outcome {
    let expected = agree(body, sse);
    let step = if body.len() <= 4096 {
        1
    } else {
        body.len() / 1024
    };
    for i in (0..=body.len()).step_by(step) {
        let (a, b) = body.split_at(i);
        assert_eq!(outcome(&feed_frames(sse, [a, b])), expected, "split at {i}");
    }
    expected
}

/// Feeds `body` whole, byte by byte and in random frames, asserts that all runs agree, and
/// returns the outcome.
fn agree(body: &[u8], sse: bool) -> Outcome {
    let expected = outcome(&whole(body, sse));
    let bytewise = feed_frames(sse, body.chunks(1));
    assert_eq!(outcome(&bytewise), expected, "byte by byte");
    let mut rng = fastrand::Rng::with_seed(body.len() as u64);
    for _ in 0..20 {
        let mut s = UsageSniffer::new(sse);
        let mut rest = body;
        while !rest.is_empty() {
            let n = rng.usize(0..=rest.len().min(64));
            s.feed(&Bytes::copy_from_slice(&rest[..n]));
            rest = &rest[n..];
        }
        assert_eq!(outcome(&s), expected, "random frames");
    }
    expected
}

fn reported(prompt: u64, completion: u64, total: u64) -> (Usage, Source) {
    let usage = Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
    };
    (usage, Source::Reported)
}

fn estimated(completion: u64) -> (Usage, Source) {
    let usage = Usage {
        prompt_tokens: PROMPT,
        completion_tokens: completion,
        total_tokens: PROMPT + completion,
    };
    (usage, Source::Estimated)
}

/// An event stream of `data: {json}\n\n` events and a final `data: [DONE]\n\n`.
fn sse_body(events: &[serde_json::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(e.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

fn chunk(content: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1741569952,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_06737a9306",
        "choices": [{"index": 0, "delta": {"content": content}, "logprobs": null,
                     "finish_reason": null}],
        "usage": null
    })
}

fn usage_chunk(prompt: u64, completion: u64) -> serde_json::Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1741569952,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_06737a9306", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    })
}

const CHAT: &str = r#"{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {
      "cached_tokens": 0,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default"
}"#;

#[test]
fn chat_completion_reported_at_every_split() {
    let out = every_split(CHAT.as_bytes(), false);
    assert_eq!(out, (reported(19, 10, 29), CHAT.len() as u64, 0));
}

#[test]
fn text_completion_compact_reported() {
    let body = br#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[{"text":"\n\nThis is a test.","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
    assert_eq!(every_split(body, false).0, reported(5, 7, 12));
}

#[test]
fn embeddings_usage_has_no_completion_tokens() {
    let body = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292,-0.0028842222]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    assert_eq!(every_split(body, false).0, reported(8, 0, 8));
}

#[test]
fn sse_usage_after_null_chunks_at_every_split() {
    let body = sse_body(&[
        chunk(""),
        chunk("Hello"),
        chunk("! How can I help?"),
        usage_chunk(12, 6),
    ]);
    assert_eq!(
        every_split(&body, true),
        (reported(12, 6, 18), body.len() as u64, 4)
    );
}

#[test]
fn sse_without_usage_estimates_content_bytes() {
    // 3 + 17 + 2 = 22 text bytes -> 6 tokens.
    let body = sse_body(&[
        chunk(""),
        chunk("Hel"),
        chunk("lo! How can I hel"),
        chunk("p?"),
    ]);
    assert_eq!(
        every_split(&body, true),
        (estimated(6), body.len() as u64, 4)
    );
    let s = whole(&body, true);
    assert_eq!(s.sse.as_ref().unwrap().text_bytes, 22);
}

#[test]
fn sse_only_null_usage_estimates() {
    let body = b"data: {\"choices\":[{\"delta\":{\"content\":\"abcde\"}}],\"usage\":null}\n\ndata: [DONE]\n\n";
    assert_eq!(every_split(body, true).0, estimated(2));
}

#[test]
fn later_null_usage_does_not_hide_earlier_real_one() {
    let body = sse_body(&[chunk("hi"), usage_chunk(3, 1), chunk("")]);
    assert_eq!(every_split(&body, true).0, reported(3, 1, 4));
}

#[test]
fn last_of_several_usages_wins() {
    // vLLM with continuous usage stats: every chunk carries the running usage.
    let mut events = Vec::new();
    for i in 1..=5 {
        let mut c = chunk("tok");
        c["usage"] = json!({"prompt_tokens": 10, "completion_tokens": i, "total_tokens": 10 + i});
        events.push(c);
    }
    let body = sse_body(&events);
    assert_eq!(every_split(&body, true).0, reported(10, 5, 15));
}

#[test]
fn azure_sse_usage_with_extra_fields() {
    let body = concat!(
        "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",",
        "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{",
        "\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"jailbreak\":{\"filtered\":false,",
        "\"detected\":false},\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"}}}]}\n\n",
        "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"\",",
        "\"refusal\":null,\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0,",
        "\"logprobs\":null}],\"created\":1741569952,\"id\":\"chatcmpl-AZ\",",
        "\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",",
        "\"system_fingerprint\":\"fp_b705f0c291\",\"usage\":null}\n\n",
        "data: {\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false,",
        "\"severity\":\"safe\"}},\"delta\":{\"content\":\"Hi there\"},\"finish_reason\":null,",
        "\"index\":0,\"logprobs\":null}],\"created\":1741569952,\"id\":\"chatcmpl-AZ\",",
        "\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",",
        "\"system_fingerprint\":\"fp_b705f0c291\",\"usage\":null}\n\n",
        "data: {\"choices\":[],\"created\":1741569952,\"id\":\"chatcmpl-AZ\",",
        "\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",",
        "\"system_fingerprint\":\"fp_b705f0c291\",\"usage\":{\"completion_tokens\":3,",
        "\"completion_tokens_details\":{\"accepted_prediction_tokens\":0,\"audio_tokens\":0,",
        "\"reasoning_tokens\":0,\"rejected_prediction_tokens\":0},\"prompt_tokens\":21,",
        "\"prompt_tokens_details\":{\"audio_tokens\":0,\"cached_tokens\":0},",
        "\"total_tokens\":24}}\n\n",
        "data: [DONE]\n\n",
    );
    let out = every_split(body.as_bytes(), true);
    assert_eq!(out, (reported(21, 3, 24), body.len() as u64, 4));
}

/// Content whose text looks like a usage key, but every quote in it is escaped.
const FAKE: &str = r#"the \"usage\": {\"prompt_tokens\": 1, \"total_tokens\": 999}"#;

#[test]
fn escaped_usage_in_content_is_not_taken() {
    let with_real = format!(
        r#"{{"id":"x","choices":[{{"message":{{"role":"assistant","content":"{FAKE}"}}}}],"usage":{{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}}}"#
    );
    assert_eq!(
        every_split(with_real.as_bytes(), false).0,
        reported(4, 2, 6)
    );

    let without = format!(r#"{{"id":"x","choices":[{{"message":{{"content":"{FAKE}"}}}}]}}"#);
    let len = without.len() as u64;
    assert_eq!(
        every_split(without.as_bytes(), false).0,
        estimated(len.div_ceil(4))
    );

    // The fake text last in the body, after the real usage.
    let after = format!(
        r#"{{"usage":{{"prompt_tokens":4,"completion_tokens":2}},"choices":[{{"message":{{"content":"{FAKE}"}}}}]}}"#
    );
    assert_eq!(every_split(after.as_bytes(), false).0, reported(4, 2, 6));
}

#[test]
fn escaped_usage_in_sse_content_is_not_taken() {
    let body = sse_body(&[chunk("the \"usage\": {\"total_tokens\": 999}")]);
    let text = "the \"usage\": {\"total_tokens\": 999}".len() as u64;
    assert_eq!(every_split(&body, true).0, estimated(text.div_ceil(4)));
    let body = sse_body(&[
        chunk("the \"usage\": {\"total_tokens\": 999}"),
        usage_chunk(5, 9),
        chunk("\"usage\": {\"total_tokens\": 999}"),
    ]);
    assert_eq!(every_split(&body, true).0, reported(5, 9, 14));
}

#[test]
fn key_ending_in_escaped_usage_is_not_taken() {
    // The key is `say "usage`, whose closing quote is followed by an object.
    let body = br#"{"say \"usage": {"prompt_tokens": 1, "total_tokens": 999}}"#;
    assert_eq!(
        every_split(body, false).0,
        estimated(body.len().div_ceil(4) as u64)
    );
    // An escaped backslash before the quote leaves it unescaped.
    assert_eq!(
        find_usage(br#""a\\", "usage": {"total_tokens": 3}"#, false),
        Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 0,
            total_tokens: 3
        })
    );
}

#[test]
fn usage_as_a_string_value_is_not_a_key() {
    let body = br#"{"object":"usage","data":{"total_tokens":5}}"#;
    assert_eq!(find_usage(body, false), None);
}

#[test]
fn spaces_and_brackets_inside_usage() {
    let body = b"{\"usage\" :\n\t{ \"note\": \"}{]\\\"\", \"list\": [1, {\"a\": 2}],\n \"prompt_tokens\" : 2 , \"completion_tokens\": 3 } }";
    assert_eq!(every_split(body, false).0, reported(2, 3, 5));
}

#[test]
fn usage_members_repeated_nested_or_escaped() {
    // A repeated member counts with its last value (as a JSON object map would keep it);
    // nested detail objects and other members are skipped; an escaped member name is
    // still that name; an invalid object is no usage.
    let u = |json: &str| find_usage(format!(r#"{{"usage":{json}}}"#).as_bytes(), false);
    assert_eq!(
        u(r#"{"prompt_tokens":1,"prompt_tokens":5,"completion_tokens":2}"#),
        Some(reported(5, 2, 7).0)
    );
    assert_eq!(
        u(
            r#"{"prompt_tokens_details":{"cached_tokens":9},"total_tokens":3,"completion_tokens_details":{"reasoning_tokens":[1]}}"#
        ),
        Some(reported(3, 0, 3).0)
    );
    assert_eq!(u(r#"{"total_\u0074okens":6}"#), Some(reported(6, 0, 6).0));
    assert_eq!(u(r#"{"total_tokens":6,}"#), None);
    assert_eq!(u(r#"{"total_tokens":6, "x": tru}"#), None);
}

#[test]
fn unusable_usage_objects_fall_back() {
    // No counts at all, counts that are not integers, or `null`: try the one before, or estimate.
    for bad in [
        r#"{}"#,
        r#"{"foo":1}"#,
        r#"{"prompt_tokens":"3","total_tokens":-1}"#,
        r#"{"prompt_tokens":1.5}"#,
        r#"{"total_tokens":1e1}"#,
        r#"{"total_tokens":-0}"#,
        r#"{"total_tokens":99999999999999999999}"#,
    ] {
        let body = format!(r#"{{"usage":{{"total_tokens":4}},"x":{{"usage":{bad}}}}}"#);
        assert_eq!(
            find_usage(body.as_bytes(), false),
            Some(Usage {
                prompt_tokens: 4,
                completion_tokens: 0,
                total_tokens: 4
            }),
            "{bad}"
        );
        let body = format!(r#"{{"usage":{bad}}}"#);
        assert_eq!(find_usage(body.as_bytes(), false), None, "{bad}");
    }
    assert_eq!(find_usage(br#"{"usage":null}"#, false), None);
    assert_eq!(find_usage(br#"{"usage":[1,2]}"#, false), None);
    assert_eq!(find_usage(br#"{"usage" "x"}"#, false), None);
}

#[test]
fn missing_counts_are_derived() {
    let u = |s: &str| find_usage(format!(r#"{{"usage":{s}}}"#).as_bytes(), false).unwrap();
    // (usage object, expected prompt, completion, total)
    let cases = [
        (r#"{"prompt_tokens":3,"completion_tokens":4}"#, (3, 4, 7)),
        (r#"{"prompt_tokens":3,"total_tokens":10}"#, (3, 7, 10)),
        (r#"{"completion_tokens":4,"total_tokens":10}"#, (6, 4, 10)),
        (r#"{"prompt_tokens":12,"total_tokens":10}"#, (12, 0, 10)),
        (r#"{"completion_tokens":4}"#, (0, 4, 4)),
        (r#"{"total_tokens":9}"#, (9, 0, 9)),
        // Reported numbers are kept even when they do not add up.
        (
            r#"{"prompt_tokens":1,"completion_tokens":2,"total_tokens":5,"completion_tokens_details":null}"#,
            (1, 2, 5),
        ),
    ];
    for (json, want) in cases {
        let got = u(json);
        let counts = (got.prompt_tokens, got.completion_tokens, got.total_tokens);
        assert_eq!(counts, want, "{json}");
    }
}

#[test]
fn empty_body_estimates_prompt_only() {
    for sse in [false, true] {
        let s = UsageSniffer::new(sse);
        assert_eq!(outcome(&s), (estimated(0), 0, 0));
        let s = feed_frames(sse, [&b""[..], b""]);
        assert_eq!(outcome(&s), (estimated(0), 0, 0));
        assert_eq!(s.tail.capacity(), 0, "empty frames allocate nothing");
    }
}

#[test]
fn truncated_body_estimates() {
    // Cut inside the usage object: its braces never close.
    let cut = &CHAT.as_bytes()[..CHAT.find("\"total_tokens\"").unwrap()];
    assert_eq!(
        every_split(cut, false).0,
        estimated((cut.len() as u64).div_ceil(4))
    );
    let full = sse_body(&[chunk("Hello"), chunk(" world"), usage_chunk(12, 2)]);
    let at = full.windows(9).rposition(|w| w == b"\"usage\":{").unwrap();
    for end in [at, at + 9, at + 40, full.len() - 30] {
        let out = every_split(&full[..end], true);
        assert_eq!(out.0, estimated(3), "cut at {end}");
    }
    // Died in the middle of a content string.
    let mid = &full[..full.windows(5).position(|w| w == b"world").unwrap() + 2];
    assert_eq!(every_split(mid, true), (estimated(2), mid.len() as u64, 2));
}

#[test]
fn the_last_usage_key_is_found_by_its_g() {
    // Each: haystack, start of the last `"usage"` in it.
    for (hay, at) in [
        (&br#""usage""#[..], Some(0)),
        (br#"gg"usage"gg"#, Some(2)),
        (br#""usage":{},"usage":1,"fingerprint":"g""#, Some(11)),
        (br#""usage"usage""#, Some(6)),
        (br#""usage"#, None),
        (br#"usage""#, None),
        (br#""usaGe""#, None),
        (b"ggg", None),
        (b"", None),
    ] {
        assert_eq!(rfind_key(hay), at, "{}", String::from_utf8_lossy(hay));
    }
}
