//! Config reload: unchanged deployments keep their counters and cooldowns, removed
//! ones get no new traffic, an invalid config leaves the old one serving, and a
//! stream started before a reload finishes after it.

mod common;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sluice::clock;
use std::sync::Arc;
use std::time::Duration;

fn entry(id: &str, base: &str, extra: &str) -> String {
    format!(
        "  - model_name: g\n    litellm_params: {{model: openai/{id}, api_base: \"{base}\"{extra}}}\n    model_info: {{id: {id}}}\n"
    )
}

fn config(entries: &[String], settings: &str) -> String {
    format!("model_list:\n{}{settings}", entries.concat())
}

const ROUTER: &str = "router_settings: {num_retries: 0, cooldown_time: 60}\n";

#[tokio::test]
async fn unchanged_deployments_keep_counters_and_cooldowns() {
    within_one_minute(10).await;
    let ok = fake(|_| {}).await;
    let limited = failing_fake(429).await;
    let (a, b) = (entry("a", &ok.url(), ""), entry("b", &limited.url(), ""));
    let w = entry("w", &ok.url(), ", weight: 1");
    let s = Sluice::start(&config(&[a.clone(), b.clone(), w], ROUTER)).await;
    let url = format!("{}/chat/completions", s.url());
    for _ in 0..3 {
        assert_eq!(post(&url, &chat("a")).await.status, 200);
    }
    assert_eq!(post(&url, &chat("w")).await.status, 200);
    assert_eq!(post(&url, &chat("b")).await.status, 429); // cools b down
    let old = s.app.snapshot.load_full();
    let now = clock::now_ms();
    assert!(old.deployments[1].stats.health.cooling_until(now).is_some());

    // Same a and b; w's weight changes; c is new.
    let w2 = entry("w", &ok.url(), ", weight: 5");
    let c = entry("c", &ok.url(), "");
    let path = config_file("keep", &config(&[a, b, w2, c], ROUTER));
    let report = sluice::reload::reload(&s.app, &path).unwrap();
    assert_eq!(report.added, ["c"]);
    assert_eq!(report.changed, ["w"]);
    assert!(report.removed.is_empty());
    assert_eq!(report.kept, 2);
    let new = s.app.snapshot.load_full();
    assert_ne!(old.hash, new.hash);
    let (oa, na) = (&old.deployments[0], &new.deployments[0]);
    assert!(Arc::ptr_eq(&oa.stats, &na.stats));
    assert_eq!(na.stats.requests_used(now), 3);
    assert_eq!(na.metrics.total(), 3);
    let nb = &new.deployments[1];
    assert!(Arc::ptr_eq(&old.deployments[1].stats, &nb.stats));
    assert!(nb.stats.health.cooling_until(clock::now_ms()).is_some());
    // A changed deployment's live state starts afresh; its counters go on.
    let nw = &new.deployments[2];
    assert!(!Arc::ptr_eq(&old.deployments[2].stats, &nw.stats));
    assert_eq!(nw.stats.requests_used(now), 0);
    assert_eq!(nw.metrics.total(), 1);
    // b is still cooling down: the group only uses a, w and c.
    for _ in 0..10 {
        let r = post(&url, &chat("g")).await;
        assert_eq!(r.status, 200);
        assert_ne!(r.header("x-litellm-model-id"), "b");
    }
    let text = scrape(&s).await;
    let reloads = [("result", "success")];
    assert_eq!(metric(&text, "sluice_config_reloads_total", &reloads), 1.0);
    let a_total = metric(
        &text,
        "litellm_deployment_total_requests_total",
        &[("model_id", "a")],
    );
    assert!(a_total >= 3.0);
}

#[tokio::test]
async fn an_invalid_config_changes_nothing() {
    let ok = fake(|_| {}).await;
    let yaml = config(&[entry("a", &ok.url(), "")], ROUTER);
    let s = Sluice::start(&yaml).await;
    let before = s.app.snapshot.load_full();
    let bad = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/x, rpm: lots}\n  - litellm_params: {model: openai/y}\nrouter_settings: {num_retries: many}\n";
    let errors = sluice::reload::reload(&s.app, &config_file("bad", bad)).unwrap_err();
    assert!(errors.len() >= 3, "every problem is reported: {errors:?}");
    assert!(errors.iter().any(|e| e.contains("rpm")), "{errors:?}");
    let missing = sluice::reload::reload(&s.app, std::path::Path::new("/nonexistent/sluice.yaml"));
    assert!(missing.unwrap_err()[0].contains("cannot read"));
    let after = s.app.snapshot.load_full();
    assert!(
        Arc::ptr_eq(&before, &after),
        "the old snapshot is still served"
    );
    let r = post(&format!("{}/chat/completions", s.url()), &chat("g")).await;
    assert_eq!(r.status, 200);
    let text = scrape(&s).await;
    let failed = [("result", "error")];
    assert_eq!(metric(&text, "sluice_config_reloads_total", &failed), 2.0);
}

#[tokio::test]
async fn a_stream_started_before_a_reload_completes_after_it() {
    within_one_minute(10).await;
    let old_up = fake(|c| {
        c.stream_chunks = 6;
        c.chunk_delay = Duration::from_millis(150);
    })
    .await;
    let new_up = fake(|_| {}).await;
    let s = Sluice::start(&config(&[entry("old", &old_up.url(), "")], ROUTER)).await;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::post(format!("{}/chat/completions", s.url()))
        .body(Full::new(bytes::Bytes::from(
            r#"{"model":"g","stream":true,"messages":[]}"#,
        )))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-litellm-model-id"], "old");
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"data: "));

    // The deployment serving the stream is removed while the stream runs.
    let old_stats = s.app.snapshot.load().deployments[0].stats.clone();
    assert_eq!(old_stats.in_flight(), 1);
    let path = config_file("swap", &config(&[entry("new", &new_up.url(), "")], ROUTER));
    let report = sluice::reload::reload(&s.app, &path).unwrap();
    assert_eq!(
        (report.added, report.removed),
        (vec!["new".to_string()], vec!["old".to_string()])
    );
    let served_before = old_up.stats().requests();
    for _ in 0..5 {
        let r = post(&format!("{}/chat/completions", s.url()), &chat("g")).await;
        assert_eq!(r.header("x-litellm-model-id"), "new");
    }
    assert_eq!(
        old_up.stats().requests(),
        served_before,
        "removed: no new traffic"
    );

    let rest = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8([first.to_vec(), rest.to_vec()].concat()).unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.matches("data: ").count() >= 7, "{text}");
    // The removed deployment's call was settled when its stream ended.
    assert_eq!(old_stats.in_flight(), 0);
    assert_eq!(old_stats.requests_used(clock::now_ms()), 1);
}
