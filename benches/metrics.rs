//! Why this exists: every proxied request records six metrics (status, overhead,
//! attempt, success, upstream latency, total latency); this measures that against
//! the common way of doing it with the `prometheus-client` crate (label set built
//! per request, looked up in a family), and the cost of one /metrics scrape.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use sluice::metrics::histogram::BOUNDS;
use sluice::state::{App, Snapshot};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn snapshot(n: usize) -> Snapshot {
    let mut yaml = String::from("model_list:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - model_name: g{}\n    litellm_params: {{model: openai/m{i}, api_base: \"http://127.0.0.1:1\"}}\n",
            i % 4
        ));
    }
    let loaded = sluice::config::load_str(&yaml, &|_| None).unwrap();
    Snapshot::build(loaded, None).unwrap()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    model: String,
    model_id: String,
    api_base: String,
    requested_model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    requested_model: String,
    status: u16,
}

/// The same six records through `prometheus-client` families.
struct Baseline {
    statuses: Family<StatusLabels, Counter>,
    attempts: Family<DeploymentLabels, Counter>,
    successes: Family<DeploymentLabels, Counter>,
    overhead: Family<DeploymentLabels, Histogram>,
    upstream: Family<DeploymentLabels, Histogram>,
    total: Family<StatusLabels, Histogram>,
}

impl Baseline {
    fn new() -> Self {
        let hist = || Histogram::new(BOUNDS.iter().copied());
        Baseline {
            statuses: Family::default(),
            attempts: Family::default(),
            successes: Family::default(),
            overhead: Family::new_with_constructor(hist),
            upstream: Family::new_with_constructor(hist),
            total: Family::new_with_constructor(hist),
        }
    }

    fn record(&self, i: usize, d: Duration) {
        let dep = DeploymentLabels {
            model: format!("openai/m{i}"),
            model_id: format!("id-{i}"),
            api_base: "http://127.0.0.1:1".into(),
            requested_model: format!("g{}", i % 4),
        };
        let group = StatusLabels {
            requested_model: dep.requested_model.clone(),
            status: 200,
        };
        self.statuses.get_or_create(&group).inc();
        self.overhead.get_or_create(&dep).observe(d.as_secs_f64());
        self.attempts.get_or_create(&dep).inc();
        self.successes.get_or_create(&dep).inc();
        self.upstream.get_or_create(&dep).observe(d.as_secs_f64());
        self.total.get_or_create(&group).observe(d.as_secs_f64());
    }
}

fn bench(c: &mut Criterion) {
    let d = Duration::from_micros(1500);
    let mut g = c.benchmark_group("metrics_record");
    let snap = snapshot(16);
    let mut i = 0;
    g.bench_function("sluice", |b| {
        b.iter(|| {
            i = (i + 1) % 16;
            let dep = &snap.deployments[black_box(i)].metrics;
            let group = &snap.group_metrics[snap.deployments[i].group];
            group.answered(200);
            dep.overhead.observe(d);
            dep.sent();
            dep.succeeded();
            dep.llm_latency.observe(d);
            group.total_latency.observe(d);
        })
    });
    let base = Baseline::new();
    let mut i = 0;
    g.bench_function("prometheus_client_family", |b| {
        b.iter(|| {
            i = (i + 1) % 16;
            base.record(black_box(i), d);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("metrics_scrape");
    for n in [4usize, 64] {
        let app = App::new(snapshot(n));
        let snap = app.snapshot.load_full();
        let start = Instant::now();
        for dep in &snap.deployments {
            dep.metrics.sent();
            dep.metrics.llm_latency.observe(start.elapsed());
        }
        g.bench_with_input(BenchmarkId::new("render", n), &n, |b, _| {
            b.iter(|| black_box(sluice::metrics::render(&app, &snap)).len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
