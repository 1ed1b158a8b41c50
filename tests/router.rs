//! The router end to end, against fake-llm upstreams on port 0: cooldowns and
//! rejoining, fallbacks and their headers, backoff, max_parallel_requests through a
//! stream, and tpm settled to the usage the upstream reports.

mod common;
use common::*;
use sluice::fake::FakeConfig;
use std::time::{Duration, Instant};

fn broken(c: &mut FakeConfig) {
    c.error_rate = 1.0;
    c.error_status = 500;
}

#[tokio::test]
async fn a_failing_deployment_cools_down_then_rejoins() {
    let bad = fake(broken).await;
    let good = fake(|_| {}).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: m
    litellm_params: {{model: openai/a, api_base: "{}"}}
    model_info: {{id: bad}}
  - model_name: m
    litellm_params: {{model: openai/b, api_base: "{}"}}
    model_info: {{id: good}}
router_settings: {{num_retries: 1, allowed_fails: 1, cooldown_time: 3}}
"#,
        bad.url(),
        good.url()
    ))
    .await;
    let url = format!("{}/chat/completions", s.url());
    within_one_minute(5).await;
    // Every request succeeds: a failure on `bad` is retried on `good`.
    for _ in 0..30 {
        let r = post(&url, &chat("m")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-litellm-model-id"), "good");
    }
    // Two failures (allowed_fails 1) cooled it; after that it got nothing.
    assert_eq!(bad.stats().requests(), 2);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    for _ in 0..30 {
        assert_eq!(post(&url, &chat("m")).await.status, 200);
    }
    assert!(
        bad.stats().requests() > 2,
        "it never rejoined after its cooldown"
    );
}

/// Sends `n` requests to a group of two where one upstream answers every request
/// with a 429 and this `Retry-After`: all must succeed. Returns how many requests
/// that upstream saw.
async fn requests_to_a_429_upstream(retry_after: u64, n: usize) -> u64 {
    let limited = fake(|c| {
        c.rpm = Some(0);
        c.retry_after = Some(retry_after);
    })
    .await;
    let good = fake(|_| {}).await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\"}}\n  - model_name: m\n    litellm_params: {{model: openai/b, api_base: \"{}\"}}\nrouter_settings: {{num_retries: 1}}\n",
        limited.url(),
        good.url()
    ))
    .await;
    for _ in 0..n {
        assert_eq!(
            post(&format!("{}/chat/completions", s.url()), &chat("m"))
                .await
                .status,
            200
        );
    }
    limited.stats().requests()
}

#[tokio::test]
async fn an_upstream_429_cools_down_for_its_retry_after() {
    // One 429 in a group of two cools it at once, for the upstream's 30 s.
    assert_eq!(requests_to_a_429_upstream(30, 30).await, 1);
}

#[tokio::test]
async fn a_retry_after_too_large_for_a_duration_is_ignored() {
    // u64::MAX seconds, read as a float, is more than a Duration holds: the header
    // is ignored (the deployment cools for the router's cooldown_time instead) and
    // sluice keeps serving.
    assert_eq!(requests_to_a_429_upstream(u64::MAX, 10).await, 1);
}

#[tokio::test]
async fn fallbacks_reach_the_next_group_and_say_so() {
    let bad = fake(broken).await;
    let good = fake(|c| c.id = "backup".into()).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: primary
    litellm_params: {{model: openai/p, api_base: "{}"}}
  - model_name: backup
    litellm_params: {{model: openai/backup-model, api_base: "{}"}}
  - model_name: other
    litellm_params: {{model: openai/o, api_base: "{}"}}
router_settings:
  num_retries: 1
  retry_after: 0
  fallbacks: [{{primary: [backup]}}]
  disable_cooldowns: true
"#,
        bad.url(),
        good.url(),
        bad.url()
    ))
    .await;
    let url = format!("{}/chat/completions", s.url());
    let r = post(&url, &chat("primary")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), "1");
    assert_eq!(r.header("x-litellm-model-group"), "backup");
    assert_eq!(r.header("x-fake-llm-id"), "backup");
    assert_eq!(r.json()["model"], "backup-model");
    // A group without fallbacks passes the upstream's last answer on.
    let r = post(&url, &chat("other")).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.header("x-litellm-attempted-fallbacks"), "0");
}

#[tokio::test]
async fn mock_testing_fallbacks_and_wildcard_and_default_fallbacks() {
    let up = fake(|_| {}).await;
    let yaml = |fallbacks: &str| {
        format!(
            "model_list:\n  - model_name: a\n    litellm_params: {{model: openai/a, api_base: \"{u}\"}}\n  - model_name: b\n    litellm_params: {{model: openai/b, api_base: \"{u}\"}}\nrouter_settings:\n  num_retries: 0\n{fallbacks}",
            u = up.url()
        )
    };
    for fallbacks in [
        "  fallbacks: [{a: [b]}]\n",
        "  fallbacks: [{\"*\": [b]}]\n",
        "  default_fallbacks: [b]\n",
    ] {
        let s = Sluice::start(&yaml(fallbacks)).await;
        let r = post(
            &format!("{}/chat/completions", s.url()),
            r#"{"model":"a","messages":[],"mock_testing_fallbacks":true}"#,
        )
        .await;
        assert_eq!(r.status, 200, "{fallbacks}");
        assert_eq!(r.header("x-litellm-model-group"), "b", "{fallbacks}");
        assert_eq!(r.header("x-litellm-attempted-fallbacks"), "1");
    }
    // No fallbacks: the mock 500 is the answer.
    let s = Sluice::start(&yaml("")).await;
    let r = post(
        &format!("{}/chat/completions", s.url()),
        r#"{"model":"a","mock_testing_fallbacks":true}"#,
    )
    .await;
    assert_eq!(r.status, 500);
}

#[tokio::test]
async fn context_window_errors_take_the_context_window_fallbacks() {
    let up = fake(|_| {}).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: small
    litellm_params: {{model: openai/small, api_base: "{u}"}}
    model_info: {{max_input_tokens: 50}}
  - model_name: large
    litellm_params: {{model: openai/large, api_base: "{u}"}}
    model_info: {{max_input_tokens: 100000}}
router_settings:
  context_window_fallbacks: [{{small: [large]}}]
"#,
        u = up.url()
    ))
    .await;
    let url = format!("{}/chat/completions", s.url());
    let short = post(&url, &chat("small")).await;
    assert_eq!(short.header("x-litellm-model-group"), "small");
    let long = format!(
        r#"{{"model":"small","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "word ".repeat(200)
    );
    let r = post(&url, &long).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-litellm-model-group"), "large");
    assert_eq!(r.json()["model"], "large");
    // Without a fallback for it, the error says what happened.
    let long = long
        .replace("\"small\"", "\"large\"")
        .replace(&"word ".repeat(200), &"word ".repeat(100_000));
    let r = post(&url, &long).await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("ContextWindowExceededError"),
        "{}",
        r.error_message()
    );
}

#[tokio::test]
async fn all_deployments_cooling_down_is_a_429_with_retry_after() {
    let bad = fake(|c| {
        c.rpm = Some(0);
        c.retry_after = Some(40);
    })
    .await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{u}\"}}\n  - model_name: m\n    litellm_params: {{model: openai/b, api_base: \"{u}\"}}\nrouter_settings: {{num_retries: 1}}\n",
        u = bad.url()
    ))
    .await;
    let url = format!("{}/chat/completions", s.url());
    // Both deployments answer 429 and cool down for the upstream's 40 s.
    let r = post(&url, &chat("m")).await;
    assert_eq!(r.status, 429);
    assert_eq!(bad.stats().requests(), 2);
    let r = post(&url, &chat("m")).await;
    assert_eq!(r.status, 429);
    assert!(
        r.error_message()
            .starts_with("No deployments available for selected model"),
        "{}",
        r.error_message()
    );
    let wait: u64 = r.header("retry-after").parse().unwrap();
    assert!((35..=40).contains(&wait), "retry-after {wait}");
    assert_eq!(
        bad.stats().requests(),
        2,
        "a cooled-down deployment got traffic"
    );
}

#[tokio::test]
async fn backoff_only_when_no_other_deployment_is_usable() {
    let bad = fake(broken).await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\"}}\nrouter_settings: {{num_retries: 2, disable_cooldowns: true}}\n",
        bad.url()
    ))
    .await;
    let started = Instant::now();
    let r = post(&format!("{}/chat/completions", s.url()), &chat("m")).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.header("x-litellm-attempted-retries"), "2");
    // Two backoffs of at least 0.25 s and 0.5 s before retrying the only deployment.
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "{:?}",
        started.elapsed()
    );

    // With a second, healthy deployment there is no wait at all: `retry_after: 30`
    // makes any backoff at least 30 s, which no slow machine can be mistaken for.
    let good = fake(|_| {}).await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", weight: 1000}}\n  - model_name: m\n    litellm_params: {{model: openai/b, api_base: \"{}\", weight: 1}}\nrouter_settings: {{num_retries: 2, disable_cooldowns: true, retry_after: 30}}\n",
        bad.url(),
        good.url()
    ))
    .await;
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            post(&format!("{}/chat/completions", s.url()), &chat("m"))
                .await
                .status,
            200
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn max_parallel_requests_holds_until_the_stream_ends() {
    let slow = fake(|c| {
        c.stream_chunks = 5;
        c.chunk_delay = Duration::from_millis(200);
    })
    .await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", max_parallel_requests: 1}}\nrouter_settings: {{num_retries: 0}}\n",
        slow.url()
    ))
    .await;
    let url = format!("{}/chat/completions", s.url());
    let stream = {
        let url = url.clone();
        tokio::spawn(async move { post(&url, r#"{"model":"m","stream":true}"#).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The stream's head has long arrived, but its body is still flowing: no room.
    let r = post(&url, &chat("m")).await;
    assert_eq!(r.status, 429);
    let done = stream.await.unwrap();
    assert_eq!(done.status, 200);
    assert!(done.body.ends_with(b"data: [DONE]\n\n"));
    assert_eq!(post(&url, &chat("m")).await.status, 200);
}

#[tokio::test]
async fn max_tokens_near_u64_max_is_refused_and_leaves_the_count_alone() {
    let up = fake(|_| {}).await;
    let rest = "router_settings: {num_retries: 0, enable_pre_call_checks: true}";
    let s = Sluice::start(&one_deployment(&up, ", tpm: 1000", rest)).await;
    let url = format!("{}/chat/completions", s.url());
    within_one_minute(5).await;
    let used = || {
        s.app.snapshot.load().deployments[0]
            .stats
            .tokens_used(sluice::clock::now_ms())
    };
    assert_eq!(post(&url, &chat("m")).await.status, 200);
    assert_eq!(used(), 21);
    // The used count plus this reservation would wrap around to fit under 1,000.
    for max in ["18446744073709551615", "18446744073709551600"] {
        let body = format!(r#"{{"model":"m","messages":[],"max_tokens":{max}}}"#);
        assert_eq!(post(&url, &body).await.status, 429, "max_tokens {max}");
        assert_eq!(used(), 21, "max_tokens {max}");
    }
    assert_eq!(post(&url, &chat("m")).await.status, 200);
    assert_eq!(used(), 42);
}

#[tokio::test]
async fn tpm_settles_to_the_usage_the_upstream_reports() {
    // fake-llm reports 21 total tokens per call; the request's own estimate is ~10.
    let up = fake(|_| {}).await;
    for body in [
        r#"{"model":"m","messages":[{"role":"user","content":"hi there"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi there"}],"stream":true,"stream_options":{"include_usage":true}}"#,
    ] {
        let s = Sluice::start(&format!(
            "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", tpm: 60}}\nrouter_settings: {{num_retries: 0, enable_pre_call_checks: true}}\n",
            up.url()
        ))
        .await;
        let url = format!("{}/chat/completions", s.url());
        within_one_minute(5).await;
        let mut ok = 0;
        for _ in 0..6 {
            let r = post(&url, body).await;
            if r.status == 200 {
                ok += 1;
            } else {
                assert_eq!(r.status, 429);
            }
        }
        // 21 + 21 + 21 = 63 used after three calls: a fourth estimate does not fit in 60.
        assert_eq!(ok, 3, "{body}");
        assert_eq!(
            s.app.snapshot.load().deployments[0]
                .stats
                .tokens_used(sluice::clock::now_ms()),
            63
        );
    }
}

#[tokio::test]
async fn limited_groups_report_x_ratelimit_headers() {
    let up = fake(|_| {}).await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\", rpm: 10, tpm: 1000}}\nrouter_settings: {{enable_pre_call_checks: true}}\n",
        up.url()
    ))
    .await;
    within_one_minute(3).await;
    let r = post(&format!("{}/chat/completions", s.url()), &chat("m")).await;
    assert_eq!(r.header("x-ratelimit-limit-requests"), "10");
    assert_eq!(r.header("x-ratelimit-remaining-requests"), "9");
    assert_eq!(r.header("x-ratelimit-limit-tokens"), "1000");
    assert!(!r.header("x-ratelimit-remaining-tokens").is_empty());
}
