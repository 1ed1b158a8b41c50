//! The info endpoints: shapes as LiteLLM's, aliases listed unless hidden, secrets
//! never shown; and the mock answers of each proxied endpoint.

mod common;
use common::*;

const CONFIG: &str = r#"
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/gpt-turbo-small
      api_base: https://example-eu.openai.azure.com/
      api_key: sk-azure-secret
      api_version: "2024-10-21"
      rpm: 6
      mock_response: "hello from eu"
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: openai/gpt-3.5-turbo
      api_key: sk-openai-secret
      rpm: 1440
      tpm: "100000"
      mock_response: "hello from openai"
    model_info: {id: dep-openai, max_input_tokens: 4096}
  - model_name: embedder
    litellm_params: {model: openai/text-embedding-3-small, mock_response: "x", api_key: sk-e}
router_settings:
  model_group_alias:
    gpt-4: gpt-3.5-turbo
    GPT-3.5-turbo: {model: gpt-3.5-turbo, hidden: true}
"#;

#[tokio::test]
async fn models_lists_groups_and_visible_aliases() {
    let s = Sluice::start(CONFIG).await;
    for path in ["/v1/models", "/models"] {
        let v = get(&format!("{}{path}", s.url())).await.json();
        assert_eq!(v["object"], "list");
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["gpt-3.5-turbo", "embedder", "gpt-4"]);
        assert_eq!(v["data"][0]["object"], "model");
        assert_eq!(v["data"][0]["created"], 1677610602);
        assert_eq!(v["data"][0]["owned_by"], "openai");
    }
}

#[tokio::test]
async fn hidden_alias_routes_but_is_not_listed() {
    let s = Sluice::start(CONFIG).await;
    let url = format!("{}/chat/completions", s.url());
    for model in ["GPT-3.5-turbo", "gpt-4", "gpt-3.5-turbo"] {
        let r = post(&url, &chat(model)).await;
        assert_eq!(r.status, 200, "{model}");
        assert_eq!(r.header("x-litellm-model-group"), "gpt-3.5-turbo");
    }
    for path in ["/v1/model/info", "/v1/model_group/info"] {
        let text =
            String::from_utf8(get(&format!("{}{path}", s.url())).await.body.to_vec()).unwrap();
        assert!(
            !text.contains("GPT-3.5-turbo"),
            "{path} lists the hidden alias"
        );
        assert!(
            text.contains("\"gpt-4\""),
            "{path} misses the visible alias"
        );
    }
}

#[tokio::test]
async fn model_info_hides_secrets() {
    let s = Sluice::start(CONFIG).await;
    for path in ["/v1/model/info", "/model/info"] {
        let r = get(&format!("{}{path}", s.url())).await;
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(!text.contains("secret"), "{path} shows a key: {text}");
        assert!(!text.contains("api_key"), "{path} shows api_key: {text}");
        let v = r.json();
        let first = &v["data"][0];
        assert_eq!(first["model_name"], "gpt-3.5-turbo");
        assert_eq!(first["litellm_params"]["model"], "azure/gpt-turbo-small");
        assert!(first["model_info"]["id"].is_string());
        assert_eq!(v["data"][1]["model_info"]["id"], "dep-openai");
    }
}

#[tokio::test]
async fn model_group_info_sums_limits() {
    let s = Sluice::start(CONFIG).await;
    for path in ["/v1/model_group/info", "/model_group/info"] {
        let v = get(&format!("{}{path}", s.url())).await.json();
        let g = &v["data"][0];
        assert_eq!(g["model_group"], "gpt-3.5-turbo");
        assert_eq!(g["rpm"], 1446);
        assert_eq!(g["tpm"], 100000);
        assert_eq!(g["providers"], serde_json::json!(["azure", "openai"]));
        assert_eq!(g["max_input_tokens"], 4096);
        assert!(v["data"][1]["rpm"].is_null());
    }
}

#[tokio::test]
async fn health_probes() {
    let s = Sluice::start(CONFIG).await;
    for p in ["/health/liveliness", "/health/liveness"] {
        let r = get(&format!("{}{p}", s.url())).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), "I'm alive!");
    }
    let v = get(&format!("{}/health/readiness", s.url())).await.json();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["config_hash"].as_str().unwrap().len(), 12);
    assert_eq!(v["draining"], false);
}

#[tokio::test]
async fn mock_answers_for_each_endpoint() {
    let s = Sluice::start(CONFIG).await;
    let r = post(
        &format!("{}/v1/embeddings", s.url()),
        r#"{"model":"embedder","input":"hi"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"][0]["object"], "embedding");
    let r = post(
        &format!("{}/v1/completions", s.url()),
        r#"{"model":"gpt-4","prompt":"hi"}"#,
    )
    .await;
    assert_eq!(r.json()["object"], "text_completion");
    // A request-level mock_response wins over the deployment's.
    let r = post(
        &format!("{}/chat/completions", s.url()),
        r#"{"model":"gpt-4","messages":[],"mock_response":"from the request"}"#,
    )
    .await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "from the request"
    );
    let r = post(
        &format!("{}/chat/completions", s.url()),
        r#"{"model":"gpt-4","messages":[],"stream":true}"#,
    )
    .await;
    assert_eq!(r.header("content-type"), "text/event-stream");
    assert!(r.body.ends_with(b"data: [DONE]\n\n"));
}

#[tokio::test]
async fn success_carries_litellm_headers() {
    let s = Sluice::start(CONFIG).await;
    let r = post(&format!("{}/chat/completions", s.url()), &chat("gpt-4")).await;
    for h in [
        "x-litellm-model-id",
        "x-litellm-model-api-base",
        "x-litellm-model-group",
        "x-litellm-attempted-retries",
        "x-litellm-attempted-fallbacks",
        "x-litellm-response-duration-ms",
        "x-litellm-overhead-duration-ms",
        "x-litellm-call-id",
        "x-litellm-version",
    ] {
        assert!(!r.header(h).is_empty(), "missing {h}");
    }
    assert_eq!(r.header("x-litellm-attempted-retries"), "0");
    assert_eq!(r.header("x-litellm-call-id").len(), 36);
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let id = r.header("x-litellm-model-id");
    if id == "dep-openai" {
        assert_eq!(content, "hello from openai");
        assert_eq!(
            r.header("x-litellm-model-api-base"),
            "https://api.openai.com/v1"
        );
    } else {
        assert_eq!(content, "hello from eu");
    }
}

#[tokio::test]
async fn requests_by_deployment_id_reach_that_deployment() {
    let s = Sluice::start(CONFIG).await;
    for _ in 0..20 {
        let r = post(
            &format!("{}/chat/completions", s.url()),
            &chat("dep-openai"),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-litellm-model-id"), "dep-openai");
        assert_eq!(r.header("x-litellm-model-group"), "gpt-3.5-turbo");
    }
}
