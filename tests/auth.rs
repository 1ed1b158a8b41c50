//! Master-key auth: the header variants, the error cases, and the open probes.

mod common;
use common::*;
use http::Method;

const CONFIG: &str = r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/m1, mock_response: "hello"}
general_settings:
  master_key: sk-master
"#;

#[tokio::test]
async fn every_accepted_header_admits_the_master_key() {
    let s = Sluice::start(CONFIG).await;
    let url = format!("{}/chat/completions", s.url());
    for (name, value) in [
        ("authorization", "Bearer sk-master"),
        ("authorization", "bearer sk-master"),
        ("x-litellm-api-key", "sk-master"),
        ("api-key", "sk-master"),
        ("x-api-key", "sk-master"),
    ] {
        let r = post_with(&url, &[(name, value)], &chat("m")).await;
        assert_eq!(r.status, 200, "{name}: {value}");
    }
}

#[tokio::test]
async fn missing_or_wrong_key_is_401() {
    let s = Sluice::start(CONFIG).await;
    let url = format!("{}/chat/completions", s.url());
    let r = post(&url, &chat("m")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "auth_error");
    assert_eq!(
        r.error_message(),
        "Authentication Error, No api key passed in."
    );
    for wrong in [
        "Bearer sk-maste",
        "Bearer sk-master2",
        "Bearer ",
        "sk-other",
    ] {
        let r = post_with(&url, &[("authorization", wrong)], &chat("m")).await;
        assert_eq!(r.status, 401, "{wrong}");
    }
    let r = post_with(&url, &[("authorization", "Bearer nope")], &chat("m")).await;
    assert!(r.error_message().contains("Authentication Error"));
    // Info endpoints need the key too.
    assert_eq!(get(&format!("{}/v1/models", s.url())).await.status, 401);
}

#[tokio::test]
async fn probes_answer_without_a_key() {
    let s = Sluice::start(CONFIG).await;
    for p in [
        "/health/liveliness",
        "/health/liveness",
        "/health/readiness",
    ] {
        let r = send(Method::GET, &format!("{}{p}", s.url()), &[], "").await;
        assert_eq!(r.status, 200, "{p}");
    }
}

#[tokio::test]
async fn master_key_from_environment() {
    let yaml = r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/m1, mock_response: "hello"}
"#;
    let s = Sluice::start_with_env(yaml, &[("LITELLM_MASTER_KEY", "sk-env")]).await;
    let url = format!("{}/chat/completions", s.url());
    assert_eq!(post(&url, &chat("m")).await.status, 401);
    let r = post_with(&url, &[("authorization", "Bearer sk-env")], &chat("m")).await;
    assert_eq!(r.status, 200);
    // No master key anywhere: everything is admitted.
    let open = Sluice::start(yaml).await;
    assert_eq!(
        post(&format!("{}/chat/completions", open.url()), &chat("m"))
            .await
            .status,
        200
    );
}
