//! Why this exists: every proxied request is scanned once for its model and flags and
//! has its model spliced; this measures that against parsing the body into a full
//! JSON tree (serde_json, simd-json), which is what a proxy would do otherwise.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice::request::Parsed;
use std::hint::black_box;

/// A chat body of about `size` bytes: many messages with escapes and non-ASCII text.
fn chat_body(size: usize) -> Vec<u8> {
    let mut msgs = Vec::new();
    let mut len = 0;
    let mut i = 0;
    while len < size {
        let m = format!(
            r#"{{"role":"{}","content":"Message {i}: a \"quoted\" line\nwith caf\u00e9 and some ordinary prose to fill the context window."}}"#,
            if i % 2 == 0 { "user" } else { "assistant" }
        );
        len += m.len() + 1;
        msgs.push(m);
        i += 1;
    }
    format!(
        r#"{{"model":"gpt-3.5-turbo","messages":[{}],"temperature":0.7,"stream":false,"user":"u-1"}}"#,
        msgs.join(",")
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let model = Bytes::from_static(b"\"upstream-model\"");
    let mut g = c.benchmark_group("request_scan");
    for size in [1024, 100 * 1024] {
        let body = Bytes::from(chat_body(size));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("sluice_scan_splice", size),
            &body,
            |b, body| {
                b.iter(|| {
                    let p = Parsed::new(body.clone()).unwrap();
                    black_box(p.spliced(&model));
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("serde_json_value", size),
            &body,
            |b, body| {
                b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(body).unwrap()))
            },
        );
        g.bench_with_input(
            BenchmarkId::new("simd_json_borrowed", size),
            &body,
            |b, body| {
                b.iter(|| {
                    // simd-json parses in place, so it needs its own mutable copy.
                    let mut copy = body.to_vec();
                    black_box(simd_json::to_borrowed_value(&mut copy).is_ok());
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
