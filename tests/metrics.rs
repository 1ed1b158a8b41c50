//! /metrics: open without a key, LiteLLM's names and labels, counters that match
//! the requests sent, a well-formed exposition, and no secret in it.

mod common;
use common::*;
use std::collections::HashSet;

const MASTER: &str = "sk-master-do-not-print";
const UPSTREAM_KEY: &str = "sk-upstream-do-not-print";

fn config(ok: &str, failing: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/up-a, api_base: "{ok}/v1", api_key: {UPSTREAM_KEY}}}
    model_info: {{id: dep-a}}
  - model_name: g
    litellm_params: {{model: openai/up-b, api_base: "{failing}/v1", api_key: {UPSTREAM_KEY}}}
    model_info: {{id: dep-b}}
router_settings: {{num_retries: 0, allowed_fails: 100}}
general_settings: {{master_key: {MASTER}}}
"#
    )
}

/// Checks the exposition's shape: every sample belongs to a family declared before
/// it with HELP and TYPE, families are not split, values are numbers.
fn check_format(text: &str) {
    let mut declared: Vec<(String, String)> = Vec::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(!closed.contains(name), "family {name} declared twice");
            if let Some(c) = current.take() {
                closed.insert(c);
            }
            declared.push((name.to_string(), kind.to_string()));
            current = Some(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let (family, kind) = declared.last().expect("a sample before any TYPE");
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        assert!(
            suffixes.iter().any(|s| name == format!("{family}{s}")),
            "{name} outside its family {family}"
        );
    }
}

#[tokio::test]
async fn counters_match_the_requests_sent() {
    let ok = fake(|_| {}).await;
    let failing = failing_fake(500).await;
    let s = Sluice::start(&config(&ok.url(), &failing.url())).await;
    let url = format!("{}/chat/completions", s.url());
    let auth = [
        ("authorization", &*format!("Bearer {MASTER}")),
        ("content-type", "application/json"),
    ];
    for _ in 0..4 {
        assert_eq!(post_with(&url, &auth, &chat("dep-a")).await.status, 200);
    }
    let stream = r#"{"model":"dep-a","stream":true,"messages":[]}"#;
    assert_eq!(post_with(&url, &auth, stream).await.status, 200);
    for _ in 0..2 {
        assert_eq!(post_with(&url, &auth, &chat("dep-b")).await.status, 500);
    }
    assert_eq!(post_with(&url, &auth, &chat("nope")).await.status, 400);
    assert_eq!(post(&url, &chat("g")).await.status, 401);

    // Open without a key, in the text format.
    let r = get(&format!("{}/metrics", s.url())).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    let text = scrape_until(&s, |t| {
        metric(
            t,
            "litellm_deployment_success_responses_total",
            &[("model_id", "dep-a")],
        ) == 5.0
    })
    .await;
    check_format(&text);
    let m = |name: &str, labels: &[(&str, &str)]| metric(&text, name, labels);
    let proxy = "litellm_proxy_total_requests_metric_total";
    assert_eq!(
        m(proxy, &[("requested_model", "g"), ("status_code", "200")]),
        5.0
    );
    assert_eq!(
        m(proxy, &[("requested_model", "g"), ("status_code", "500")]),
        2.0
    );
    assert_eq!(
        m(proxy, &[("requested_model", ""), ("status_code", "400")]),
        1.0
    );
    assert_eq!(
        m(proxy, &[("requested_model", ""), ("status_code", "401")]),
        1.0
    );
    let a = [
        ("model_id", "dep-a"),
        ("litellm_model_name", "openai/up-a"),
        ("api_provider", "openai"),
        ("requested_model", "g"),
    ];
    assert_eq!(m("litellm_deployment_total_requests_total", &a), 5.0);
    assert_eq!(m("litellm_deployment_success_responses_total", &a), 5.0);
    assert_eq!(m("litellm_deployment_failure_responses_total", &a), 0.0);
    assert_eq!(m("litellm_llm_api_latency_metric_count", &a), 5.0);
    assert_eq!(m("litellm_overhead_latency_metric_count", &a), 5.0);
    let b = [("model_id", "dep-b")];
    assert_eq!(m("litellm_deployment_total_requests_total", &b), 2.0);
    assert_eq!(m("litellm_deployment_success_responses_total", &b), 0.0);
    let failed = [
        ("model_id", "dep-b"),
        ("exception_status", "500"),
        ("exception_class", "Openai.InternalServerError"),
    ];
    assert_eq!(
        m("litellm_deployment_failure_responses_total", &failed),
        2.0
    );
    assert_eq!(m("litellm_deployment_state", &a), 0.0);
    assert_eq!(m("litellm_deployment_state", &b), 1.0);
    let g = [("requested_model", "g")];
    assert_eq!(m("litellm_request_total_latency_metric_count", &g), 7.0);
    let inf = [("requested_model", "g"), ("le", "+Inf")];
    assert_eq!(m("litellm_request_total_latency_metric_bucket", &inf), 7.0);
    assert_eq!(m("sluice_deployment_in_flight", &a), 0.0);
    assert!(m("sluice_upstream_connections_opened_total", &[]) >= 2.0);
    assert_eq!(m("sluice_upstream_connect_errors_total", &[]), 0.0);
    let api_base = format!("{}/v1", ok.url());
    assert_eq!(
        m(
            "litellm_deployment_total_requests_total",
            &[("api_base", &api_base)]
        ),
        5.0
    );
    // Secrets never appear.
    assert!(!text.contains(MASTER) && !text.contains(UPSTREAM_KEY));
}

#[tokio::test]
async fn cooldowns_and_remaining_budget_are_reported() {
    within_one_minute(10).await;
    let ok = fake(|_| {}).await;
    let limited = failing_fake(429).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/a, api_base: "{}", rpm: 10, tpm: 1000}}
    model_info: {{id: a}}
  - model_name: g
    litellm_params: {{model: openai/b, api_base: "{}"}}
    model_info: {{id: b}}
router_settings: {{num_retries: 0, cooldown_time: 60}}
"#,
        ok.url(),
        limited.url()
    ))
    .await;
    let url = format!("{}/chat/completions", s.url());
    assert_eq!(post(&url, &chat("a")).await.status, 200);
    assert_eq!(post(&url, &chat("b")).await.status, 429);
    let text = scrape(&s).await;
    let b = [("model_id", "b"), ("exception_status", "429")];
    assert_eq!(
        metric(&text, "litellm_deployment_cooled_down_total", &b),
        1.0
    );
    assert_eq!(
        metric(&text, "litellm_deployment_state", &[("model_id", "b")]),
        2.0
    );
    let a = [("model_id", "a"), ("model_group", "g")];
    assert_eq!(metric(&text, "litellm_remaining_requests", &a), 9.0);
    assert!(metric(&text, "litellm_remaining_tokens", &a) < 1000.0);
    assert_eq!(
        metric(&text, "sluice_deployment_requests_this_minute", &a[..1]),
        1.0
    );
    // No rpm, no remaining-requests series.
    assert!(!text
        .contains("litellm_remaining_requests{model_group=\"g\",litellm_model_name=\"openai/b\""));
}
