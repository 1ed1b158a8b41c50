//! The seeds' rate-limit scenario on one instance: two upstreams that allow 100
//! requests a minute each, behind a usage-based group with `rpm: 100` each. At 600
//! requests offered in a minute, exactly 200 are admitted, every refusal is
//! sluice's own 429, and no upstream ever answers 429. Checked in two consecutive
//! calendar minutes, so the window reset is covered too.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

const OFFERED: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_offered_two_hundred_admitted_per_minute() {
    let a = fake(|c| c.rpm = Some(100)).await;
    let b = fake(|c| c.rpm = Some(100)).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: fake-openai-endpoint
    litellm_params: {{model: openai/my-fake-model, api_base: "{}", api_key: k, rpm: 100}}
  - model_name: fake-openai-endpoint
    litellm_params: {{model: openai/my-fake-model-2, api_base: "{}", api_key: k, rpm: 100}}
router_settings:
  num_retries: 0
  enable_pre_call_checks: true
  routing_strategy: usage-based-routing-v2
"#,
        a.url(),
        b.url()
    ))
    .await;
    let url = format!("{}/chat/completions", s.url());
    for minute in 0..2 {
        if minute > 0 {
            // Start the second round at the top of the next minute.
            let left = sluice::clock::until_next_minute(sluice::clock::now_ms());
            tokio::time::sleep(Duration::from_millis(left + 100)).await;
        } else {
            within_one_minute(20).await;
        }
        let (ok_a, ok_b) = (a.stats().ok(), b.stats().ok());
        // 600 requests over about 6 s, 50 at a time.
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        let mut tasks = Vec::new();
        for i in 0..OFFERED {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i as u64 * 10)).await;
                let r = post(&url, &chat("fake-openai-endpoint")).await;
                let own = r.status != 429
                    || r.error_message()
                        .starts_with("No deployments available for selected model");
                (r.status.as_u16(), own, r.header("retry-after").to_string())
            }));
        }
        for t in tasks {
            let (status, own, retry_after) = t.await.unwrap();
            assert!(own, "a 429 that sluice did not make");
            if status == 429 {
                let secs: u64 = retry_after.parse().unwrap();
                assert!((1..=60).contains(&secs), "retry-after {secs}");
            }
            *statuses.entry(status).or_default() += 1;
        }
        assert_eq!(
            statuses.get(&200),
            Some(&200),
            "minute {minute}: {statuses:?}"
        );
        assert_eq!(
            statuses.get(&429),
            Some(&400),
            "minute {minute}: {statuses:?}"
        );
        assert_eq!(a.stats().ok() - ok_a, 100, "minute {minute}");
        assert_eq!(b.stats().ok() - ok_b, 100, "minute {minute}");
        assert_eq!(
            a.stats().rate_limited() + b.stats().rate_limited(),
            0,
            "an upstream said 429"
        );
    }
}
