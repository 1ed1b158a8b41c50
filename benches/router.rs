//! Why this exists: pick + admit runs on every request; this measures it for groups
//! of 2, 16 and 128 deployments under two strategies, against a naive baseline that
//! keeps usage in a mutex-guarded table and does check-then-increment under the lock.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sluice::clock;
use sluice::router::pick::{pick, Need, Pick};
use sluice::state::Snapshot;
use std::hint::black_box;
use std::sync::Mutex;

fn snapshot(strategy: &str, n: usize) -> Snapshot {
    let mut yaml = String::from("model_list:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params: {{model: openai/m{i}, api_base: \"http://127.0.0.1:1\", rpm: 1000000000, tpm: 1000000000000}}\n"
        ));
    }
    yaml.push_str(&format!(
        "router_settings:\n  routing_strategy: {strategy}\n  enable_pre_call_checks: true\n"
    ));
    let loaded = sluice::config::load_str(&yaml, &|_| None).unwrap();
    Snapshot::build(loaded, None).unwrap()
}

/// The straightforward design: one lock around per-deployment (minute, requests, tokens).
struct Naive {
    table: Mutex<Vec<(u64, u64, u64)>>,
    rpm: u64,
}

impl Naive {
    fn pick(&self, now_ms: u64, tokens: u64) -> Option<usize> {
        let minute = clock::minute(now_ms);
        let mut t = self.table.lock().unwrap();
        for row in t.iter_mut().filter(|r| r.0 != minute) {
            *row = (minute, 0, 0);
        }
        let best = (0..t.len())
            .filter(|&i| t[i].1 < self.rpm)
            .min_by_key(|&i| t[i].2)?;
        t[best].1 += 1;
        t[best].2 += tokens;
        Some(best)
    }
}

fn bench(c: &mut Criterion) {
    let need = Need {
        prompt_tokens: 50,
        reserve_tokens: 50,
        stream: false,
    };
    let now = clock::now_ms();
    let mut g = c.benchmark_group("pick_admit");
    for n in [2usize, 16, 128] {
        for strategy in ["simple-shuffle", "usage-based-routing-v2"] {
            let s = snapshot(strategy, n);
            g.bench_with_input(BenchmarkId::new(strategy, n), &n, |b, _| {
                b.iter(|| match pick(&s, &s.groups[0], &[], &need, now) {
                    Pick::Admitted {
                        deployment,
                        reservation,
                        ..
                    } => {
                        s.deployments[deployment].stats.settle(reservation, 50);
                        black_box(deployment);
                    }
                    other => panic!("{other:?}"),
                })
            });
        }
        let naive = Naive {
            table: Mutex::new(vec![(0, 0, 0); n]),
            rpm: u64::MAX,
        };
        g.bench_with_input(BenchmarkId::new("naive_mutex_usage", n), &n, |b, _| {
            b.iter(|| black_box(naive.pick(now, 50)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
