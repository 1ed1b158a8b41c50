//! /health lists every deployment with the state the router sees (behind the master
//! key); /health/readiness tells which config is served and since when.

mod common;
use common::*;

const MASTER: &str = "sk-health-master";

#[tokio::test]
async fn health_lists_deployments_with_their_state() {
    within_one_minute(10).await;
    let ok = fake(|_| {}).await;
    let limited = failing_fake(429).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/a, api_base: "{ok}", api_key: sk-secret-a, rpm: 1}}
    model_info: {{id: a}}
  - model_name: g
    litellm_params: {{model: openai/b, api_base: "{limited}", api_key: sk-secret-b}}
    model_info: {{id: b}}
  - model_name: g
    litellm_params: {{model: openai/c, api_base: "{ok}"}}
    model_info: {{id: c}}
router_settings: {{num_retries: 0, cooldown_time: 30, enable_pre_call_checks: true}}
general_settings: {{master_key: {MASTER}}}
"#,
        ok = ok.url(),
        limited = limited.url()
    ))
    .await;
    let health = format!("{}/health", s.url());
    assert_eq!(get(&health).await.status, 401, "a key is needed");

    let url = format!("{}/chat/completions", s.url());
    let auth = [("authorization", &*format!("Bearer {MASTER}"))];
    assert_eq!(post_with(&url, &auth, &chat("a")).await.status, 200);
    assert_eq!(post_with(&url, &auth, &chat("b")).await.status, 429);

    let r = send(http::Method::GET, &health, &auth, bytes::Bytes::new()).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(
        !text.contains("sk-secret") && !text.contains(MASTER),
        "{text}"
    );
    let v = r.json();
    let dep = |id: &str| {
        v["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["model_id"] == id)
            .unwrap()
            .clone()
    };
    let a = dep("a");
    assert_eq!(a["state"], "over_limit", "{a}");
    assert_eq!(a["limit"], "rpm");
    assert_eq!(a["requests_this_minute"], 1);
    let b = dep("b");
    assert_eq!(b["state"], "cooling_down", "{b}");
    let left = b["seconds_left"].as_f64().unwrap();
    assert!(left > 25.0 && left <= 30.0, "{b}");
    assert!(b["until"].as_f64().unwrap() > 1.7e9);
    assert_eq!(b["last_call_failed"], true);
    let c = dep("c");
    assert_eq!(c["state"], "healthy", "{c}");
    assert!(c["until"].is_null());
    assert_eq!(v["healthy_count"], 2);
    assert_eq!(v["unhealthy_count"], 1);
    assert_eq!(v["unhealthy_endpoints"][0]["model_id"], "b");
}

#[tokio::test]
async fn readiness_reports_the_config_served_after_a_reload() {
    let first = "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, mock_response: hi}\n";
    let s = Sluice::start(first).await;
    let ready = format!("{}/health/readiness", s.url());
    let before = get(&ready).await.json();
    assert_eq!(before["status"], "healthy");
    assert_eq!(before["draining"], false);
    assert_eq!(before["redis"], "none");
    let second = format!(
        "{first}  - model_name: n\n    litellm_params: {{model: openai/y, mock_response: hi}}\n"
    );
    let path = config_file("ready", &second);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let report = sluice::reload::reload(&s.app, &path).unwrap();
    let after = get(&ready).await.json();
    assert_eq!(after["config_hash"], report.new_hash.as_str());
    assert_ne!(after["config_hash"], before["config_hash"]);
    assert!(
        after["config_loaded_at"].as_u64().unwrap() > before["config_loaded_at"].as_u64().unwrap()
    );
}
