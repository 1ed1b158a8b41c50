//! Bodies longer than the kept tail: where usage is still found, where it is not,
//! and the ring buffer that keeps the tail.

use super::*;

/// A chat completion whose message content is `n` bytes of text.
fn big_chat(n: usize, usage_first: bool) -> String {
    let text = "lorem ipsum ".repeat(n / 12 + 1)[..n].to_owned();
    let usage = r#""usage":{"prompt_tokens":30,"completion_tokens":1200,"total_tokens":1230}"#;
    let choices =
        format!(r#""choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}"}}}}]"#);
    if usage_first {
        format!(r#"{{"id":"x",{usage},{choices}}}"#)
    } else {
        format!(r#"{{"id":"x",{choices},{usage}}}"#)
    }
}

#[test]
fn body_larger_than_tail() {
    let end = big_chat(5 * TAIL, false);
    assert_eq!(
        every_split(end.as_bytes(), false).0,
        reported(30, 1200, 1230)
    );
    // Usage before the last TAIL bytes is gone: the documented fallback is an estimate.
    let start = big_chat(5 * TAIL, true);
    let len = start.len() as u64;
    assert_eq!(
        every_split(start.as_bytes(), false).0,
        estimated(len.div_ceil(4))
    );
}

#[test]
fn usage_key_at_the_tail_start() {
    // The key's opening quote must be in the tail and be known not to be escaped: when it is
    // the tail's first byte and bytes before it were dropped, it is not taken.
    for (prefix, cut, found) in [
        ("{", 0, true),
        ("{", 1, false),
        ("{ ", 1, true),
        ("{ ", 2, false),
    ] {
        let head = format!(r#"{prefix}"usage":{{"total_tokens":5}},"pad":""#);
        let pad = TAIL + cut - head.len() - 2;
        let body = format!("{head}{}\"}}", " ".repeat(pad));
        assert_eq!(body.len(), TAIL + cut);
        let s = whole(body.as_bytes(), false);
        assert_eq!(
            s.finish(0).1 == Source::Reported,
            found,
            "{prefix:?} cut {cut}"
        );
    }
}

#[test]
fn usage_across_a_large_sse_stream() {
    let mut events: Vec<_> = (0..400).map(|i| chunk(&format!("word{i} "))).collect();
    let text: u64 = (0..400).map(|i| format!("word{i} ").len() as u64).sum();
    let no_usage = sse_body(&events);
    assert!(no_usage.len() > 10 * TAIL);
    assert_eq!(
        every_split(&no_usage, true),
        (estimated(text.div_ceil(4)), no_usage.len() as u64, 400)
    );
    events.push(usage_chunk(100, 800));
    let body = sse_body(&events);
    assert_eq!(
        every_split(&body, true),
        (reported(100, 800, 900), body.len() as u64, 401)
    );
}

#[test]
fn tail_keeps_the_last_bytes_and_allocates_only_for_a_second_frame() {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut s = UsageSniffer::new(false);
    let mut all = Vec::new();
    let mut ptr = None;
    let mut frames = 0;
    for _ in 0..2000 {
        let n = match rng.u8(..) {
            0..=3 => rng.usize(TAIL - 2..TAIL + 2),
            4..=20 => rng.usize(0..TAIL),
            _ => rng.usize(0..100),
        };
        let frame: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
        s.feed(&Bytes::copy_from_slice(&frame));
        frames += usize::from(n > 0);
        all.extend_from_slice(&frame);
        if frames < 2 {
            // One frame is searched where it is: no ring buffer yet.
            assert_eq!(s.tail.capacity(), 0);
        } else {
            assert_eq!(s.tail.capacity(), TAIL);
            assert_eq!(*ptr.get_or_insert(s.tail.as_ptr()), s.tail.as_ptr());
        }
        let (newer, older) = s.tail.split_at(s.head);
        let kept = [older, newer, &s.last].concat();
        let kept = &kept[kept.len().saturating_sub(TAIL)..];
        assert_eq!(kept, &all[all.len().saturating_sub(TAIL)..]);
        assert_eq!(s.bytes(), all.len() as u64);
    }
}
