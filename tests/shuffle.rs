//! simple-shuffle's split over 10,000 requests stays within statistical bounds of
//! the configured weights (mock deployments, so only routing is measured).

mod common;
use common::*;
use std::collections::HashMap;

#[tokio::test]
async fn weighted_split_over_10000_requests() {
    let s = Sluice::start(
        r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/a, mock_response: "a", weight: 1}
    model_info: {id: a}
  - model_name: m
    litellm_params: {model: openai/b, mock_response: "b", weight: 3}
    model_info: {id: b}
  - model_name: m
    litellm_params: {model: openai/c, mock_response: "c", weight: 6}
    model_info: {id: c}
"#,
    )
    .await;
    const N: usize = 10_000;
    let url = format!("{}/chat/completions", s.url());
    let mut counts: HashMap<String, usize> = HashMap::new();
    let body = chat("m");
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (url, body) = (url.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            let mut local: HashMap<String, usize> = HashMap::new();
            for _ in 0..N / 8 {
                let r = post(&url, &body).await;
                assert_eq!(r.status, 200);
                *local
                    .entry(r.header("x-litellm-model-id").to_string())
                    .or_default() += 1;
            }
            local
        }));
    }
    for h in handles {
        for (k, v) in h.await.unwrap() {
            *counts.entry(k).or_default() += v;
        }
    }
    assert_eq!(counts.values().sum::<usize>(), N);
    // Each count is binomial(N, p); allow 5 standard deviations (false alarm < 1e-6).
    for (id, p) in [("a", 0.1), ("b", 0.3), ("c", 0.6)] {
        let got = counts.get(id).copied().unwrap_or(0) as f64;
        let mean = N as f64 * p;
        let sd = (N as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (got - mean).abs() <= 5.0 * sd,
            "{id}: {got} vs expected {mean} ± {}",
            5.0 * sd
        );
    }
}

#[tokio::test]
async fn rpm_weights_when_no_weight_is_set() {
    let s = Sluice::start(
        r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/a, mock_response: "a", rpm: 100}
    model_info: {id: a}
  - model_name: m
    litellm_params: {model: openai/b, mock_response: "b", rpm: 900}
    model_info: {id: b}
"#,
    )
    .await;
    let url = format!("{}/chat/completions", s.url());
    let mut a = 0;
    for _ in 0..2000 {
        if post(&url, &chat("m")).await.header("x-litellm-model-id") == "a" {
            a += 1;
        }
    }
    // p = 0.1, N = 2000: mean 200, sd ~13.4.
    assert!((133..=267).contains(&a), "a got {a} of 2000");
}
