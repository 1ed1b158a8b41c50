//! The request path against real upstreams (fake-llm on port 0): model splice with
//! the rest of the body byte for byte, providers' URLs and keys, retries landing on
//! another deployment, timeouts, and mock_testing_rate_limit_error.

mod common;
use common::*;
use std::time::Duration;

#[tokio::test]
async fn body_reaches_upstream_byte_for_byte_with_the_model_spliced() {
    let up = fake(|_| {}).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: public-name
    litellm_params: {{model: openai/upstream/model-v1, api_base: "{}/v1/", api_key: sk-up}}
"#,
        up.url()
    ))
    .await;
    // Odd spacing, unicode, escapes, a nested "model" key and key order all survive.
    let sent = "{ \"messages\" : [{\"role\":\"user\",\"content\":\"h\u{e9}llo \\\"q\\\" \\u00e9\",\"model\":\"inner\"}],\n\t\"model\"  :  \"public-name\" ,\"temperature\":0.50,\"x\":{\"model\":1}}";
    let expected = sent.replace("\"public-name\"", "\"upstream/model-v1\"");
    let r = post_with(
        &format!("{}/chat/completions", s.url()),
        &[
            ("authorization", "Bearer client-key"),
            ("content-type", "application/json"),
        ],
        sent,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["model"], "upstream/model-v1");
    let rec = up.recorded();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].body, expected.as_bytes());
    assert_eq!(rec[0].path_and_query, "/v1/chat/completions");
    // The deployment's key goes upstream, never the client's.
    assert_eq!(rec[0].headers["authorization"], "Bearer sk-up");
    // Host names the upstream (with its port), not sluice.
    let upstream_host = up.url().trim_start_matches("http://").to_string();
    assert_eq!(rec[0].headers["host"], upstream_host.as_str());
    assert_eq!(
        rec[0].headers["content-length"],
        expected.len().to_string().as_str()
    );
    // The upstream's own headers pass through, sluice's are added.
    assert_eq!(r.header("x-fake-llm-id"), "fake");
    assert_eq!(r.header("x-litellm-model-group"), "public-name");
}

#[tokio::test]
async fn no_client_header_reaches_the_upstream_on_any_request_of_a_connection() {
    let up = fake(|_| {}).await;
    let s = Sluice::start(&one_deployment(&up, ", api_key: sk-up", "")).await;
    let addr = s.url().trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = chat("m");
    // Three requests on one keep-alive connection, each with keys, a cookie and a
    // forged sluice header. hyper parses each request into the map the previous
    // answer was written from: nothing of either may go upstream.
    for i in 0..3 {
        let req = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer client-key\r\n\
             x-api-key: client-key\r\ncookie: session={i}\r\nuser-agent: test/{i}\r\n\
             x-litellm-model-group: forged\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, head, _) = raw_exchange(&mut conn, req.as_bytes()).await;
        assert_eq!(status, 200, "{head}");
    }
    let rec = up.recorded();
    assert_eq!(rec.len(), 3);
    for r in &rec {
        let mut names: Vec<&str> = r.headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["authorization", "content-length", "content-type", "host"],
            "only sluice's own headers go upstream"
        );
        assert_eq!(r.headers["authorization"], "Bearer sk-up");
        assert_eq!(r.headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn each_endpoint_maps_to_its_upstream_path() {
    let up = fake(|_| {}).await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: hosted_vllm/llama, api_base: \"{}\"}}\n",
        up.url()
    ))
    .await;
    for (path, upstream_path, body) in [
        ("/v1/chat/completions", "/chat/completions", chat("m")),
        (
            "/completions",
            "/completions",
            r#"{"model":"m","prompt":"x"}"#.to_string(),
        ),
        (
            "/v1/embeddings",
            "/embeddings",
            r#"{"model":"m","input":"x"}"#.to_string(),
        ),
    ] {
        let r = post(&format!("{}{path}", s.url()), &body).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(up.recorded().last().unwrap().path_and_query, upstream_path);
    }
}

#[tokio::test]
async fn azure_gets_its_deployment_url_version_and_api_key_header() {
    let up = fake(|_| {}).await;
    let s = Sluice::start_with_env(
        &format!(
            "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: azure/my-gpt4o-deployment\n      api_base: \"{}\"\n      api_key: os.environ/AZURE_KEY\n      api_version: \"2024-10-21\"\n",
            up.url()
        ),
        &[("AZURE_KEY", "az-secret")],
    )
    .await;
    let r = post(&format!("{}/chat/completions", s.url()), &chat("gpt-4o")).await;
    assert_eq!(r.status, 200);
    let rec = up.recorded().pop().unwrap();
    assert_eq!(
        rec.path_and_query,
        "/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(rec.headers["api-key"], "az-secret");
    assert!(rec.headers.get("authorization").is_none());
}

#[tokio::test]
async fn a_failing_deployment_is_retried_on_another() {
    let broken = fake(|c| {
        c.error_rate = 1.0;
        c.error_status = 500;
        c.id = "broken".into();
    })
    .await;
    let good = fake(|c| c.id = "good".into()).await;
    // The broken one has nearly all the weight, so it is almost always tried first.
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: m
    litellm_params: {{model: openai/a, api_base: "{}", weight: 1000}}
    model_info: {{id: broken}}
  - model_name: m
    litellm_params: {{model: openai/b, api_base: "{}", weight: 1}}
    model_info: {{id: good}}
# Cooldowns would take the broken one out of rotation; here only retries are tested.
router_settings: {{num_retries: 1, disable_cooldowns: true}}
"#,
        broken.url(),
        good.url()
    ))
    .await;
    let mut retried = 0;
    for _ in 0..30 {
        let r = post(&format!("{}/chat/completions", s.url()), &chat("m")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-litellm-model-id"), "good");
        assert_eq!(r.header("x-fake-llm-id"), "good");
        if r.header("x-litellm-attempted-retries") == "1" {
            retried += 1;
        }
    }
    assert!(
        retried >= 25,
        "only {retried} of 30 went to the broken one first"
    );
    assert_eq!(broken.stats().requests(), retried);
}

#[tokio::test]
async fn connect_error_and_429_also_move_to_another_deployment() {
    let limited = fake(|c| c.rpm = Some(0)).await;
    let good = fake(|c| c.id = "good".into()).await;
    let s = Sluice::start(&format!(
        r#"
model_list:
  - model_name: m
    litellm_params: {{model: openai/a, api_base: "http://127.0.0.1:1", weight: 1}}
  - model_name: m
    litellm_params: {{model: openai/b, api_base: "{}", weight: 1}}
  - model_name: m
    litellm_params: {{model: openai/c, api_base: "{}", weight: 1}}
    model_info: {{id: good}}
router_settings: {{num_retries: 2}}
"#,
        limited.url(),
        good.url()
    ))
    .await;
    for _ in 0..20 {
        let r = post(&format!("{}/chat/completions", s.url()), &chat("m")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-litellm-model-id"), "good");
    }
}

/// An upstream that answers every request with a 503.
fn always_503(c: &mut sluice::fake::FakeConfig) {
    c.error_rate = 1.0;
    c.error_status = 503;
}

#[tokio::test]
async fn last_retryable_upstream_answer_passes_through() {
    let up = fake(always_503).await;
    let s = Sluice::start(&format!(
        // Cooldowns off: the deployment must keep answering so each retry reaches it.
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\"}}\nrouter_settings: {{num_retries: 3, disable_cooldowns: true}}\n",
        up.url()
    ))
    .await;
    let r = post(&format!("{}/chat/completions", s.url()), &chat("m")).await;
    assert_eq!(r.status, 503);
    assert_eq!(up.stats().requests(), 4);
    assert_eq!(r.header("x-litellm-attempted-retries"), "3");
    // The body is the upstream's.
    assert!(r.json()["error"].is_object());
    // Per-request override, body then header.
    let r = post(
        &format!("{}/chat/completions", s.url()),
        r#"{"model":"m","num_retries":0}"#,
    )
    .await;
    assert_eq!(r.header("x-litellm-attempted-retries"), "0");
    let r = post_with(
        &format!("{}/chat/completions", s.url()),
        &[("x-litellm-num-retries", "1")],
        &chat("m"),
    )
    .await;
    assert_eq!(r.header("x-litellm-attempted-retries"), "1");
}

#[tokio::test]
async fn a_request_asks_for_at_most_ten_retries_or_the_routers_own() {
    let up = fake(always_503).await;
    // Twelve deployments: every attempt goes to one not tried yet, so no backoff.
    let yaml = |router_retries: u32| {
        let mut y = String::from("model_list:\n");
        for i in 0..12 {
            y += &format!(
                "  - model_name: m\n    litellm_params: {{model: openai/d{i}, api_base: \"{}\"}}\n",
                up.url()
            );
        }
        y + &format!(
            "router_settings: {{num_retries: {router_retries}, disable_cooldowns: true}}\n"
        )
    };
    let s = Sluice::start(&yaml(0)).await;
    let url = format!("{}/chat/completions", s.url());
    let r = post(&url, r#"{"model":"m","num_retries":1000}"#).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-litellm-attempted-retries"), "10");
    assert_eq!(up.stats().requests(), 11);
    // Past u32 in the header: the same cap.
    let r = post_with(&url, &[("x-litellm-num-retries", "4294967296")], &chat("m")).await;
    assert_eq!(r.header("x-litellm-attempted-retries"), "10");
    assert_eq!(up.stats().requests(), 22);
    // A router that allows more lets a request ask for that much.
    let s = Sluice::start(&yaml(11)).await;
    let url = format!("{}/chat/completions", s.url());
    let r = post(&url, r#"{"model":"m","num_retries":1000}"#).await;
    assert_eq!(r.header("x-litellm-attempted-retries"), "11");
    assert_eq!(up.stats().requests(), 34);
}

#[tokio::test]
async fn timeouts_per_request_deployment_and_router() {
    let slow = fake(|c| c.latency = Duration::from_millis(1500)).await;
    let yaml = |dep_timeout: &str, router_timeout: &str| {
        format!(
            "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\"{dep_timeout}}}\nrouter_settings: {{num_retries: 0{router_timeout}}}\n",
            slow.url()
        )
    };
    // Router timeout.
    let s = Sluice::start(&yaml("", ", timeout: 0.2")).await;
    let r = post(&format!("{}/chat/completions", s.url()), &chat("m")).await;
    assert_eq!(r.status, 504);
    assert!(r.error_message().contains("0.2"));
    // Deployment timeout beats the router's.
    let s = Sluice::start(&yaml(", timeout: 0.3", ", timeout: 100")).await;
    let r = post(&format!("{}/chat/completions", s.url()), &chat("m")).await;
    assert_eq!(r.status, 504);
    assert!(r.error_message().contains("0.3"));
    // The request's own timeout beats both.
    let r = post(
        &format!("{}/chat/completions", s.url()),
        r#"{"model":"m","timeout":5}"#,
    )
    .await;
    assert_eq!(r.status, 200);
}

/// An upstream that answers after 0.6 s, and sluice in front of it with no retries.
async fn slow_upstream() -> (sluice::fake::FakeLlm, Sluice) {
    let slow = fake(|c| c.latency = Duration::from_millis(600)).await;
    let s = Sluice::start(&one_deployment(
        &slow,
        "",
        "router_settings: {num_retries: 0}\n",
    ))
    .await;
    (slow, s)
}

/// A request body for group `m` with its own `timeout` in seconds.
fn with_timeout(secs: f64) -> String {
    format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"timeout":{secs}}}"#)
}

#[tokio::test]
async fn attempts_on_one_http1_connection_each_keep_their_own_timeout() {
    // The attempts of one HTTP/1 connection share a timer, moved for each: a
    // shorter timeout after a longer one, a longer one after the timer fired, the
    // same again, and a request after the timer fired while the connection sat
    // idle must each get their own deadline.
    let (slow, s) = slow_upstream().await;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    for (secs, status) in [
        (5.0, 200),
        (0.2, 504),
        (5.0, 200),
        (0.2, 504),
        (0.2, 504),
        (1.0, 200),
        (5.0, 200),
    ] {
        let (got, head, body) =
            raw_exchange(&mut conn, raw_post(&with_timeout(secs)).as_bytes()).await;
        assert_eq!(got, status, "timeout {secs}: {head}");
        if status == 504 {
            assert!(
                String::from_utf8_lossy(&body).contains("0.2"),
                "timeout {secs}"
            );
        }
        if secs == 1.0 {
            // Idle past that request's deadline: the timer fires with no attempt.
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
    assert_eq!(slow.stats().requests(), 7);
}

#[tokio::test]
async fn attempts_on_http2_streams_each_keep_their_own_timeout() {
    use http_body_util::{BodyExt, Full};
    // HTTP/2 streams of one connection run side by side, each attempt with a timer
    // of its own: a short timeout fails while a long one beside it succeeds.
    let (slow, s) = slow_upstream().await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<bytes::Bytes>>();
    let ask = |secs: f64| {
        let req = http::Request::post(format!("{}/v1/chat/completions", s.url()))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(with_timeout(secs))))
            .unwrap();
        let resp = h2.request(req);
        async move {
            let resp = resp.await.unwrap();
            assert_eq!(resp.version(), http::Version::HTTP_2);
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (long, short, long_again) = tokio::join!(ask(5.0), ask(0.2), ask(5.0));
    assert_eq!(long.0, 200, "{}", long.1);
    assert_eq!(short.0, 504, "{}", short.1);
    assert!(short.1.contains("0.2"), "{}", short.1);
    assert_eq!(long_again.0, 200, "{}", long_again.1);
    assert_eq!(slow.stats().requests(), 3);
}

#[tokio::test]
async fn mock_testing_rate_limit_error_retries_then_429s() {
    let up = fake(|_| {}).await;
    let s = Sluice::start(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/a, api_base: \"{}\"}}\nrouter_settings: {{num_retries: 2}}\n",
        up.url()
    ))
    .await;
    let r = post(
        &format!("{}/chat/completions", s.url()),
        r#"{"model":"m","messages":[],"mock_testing_rate_limit_error":true}"#,
    )
    .await;
    assert_eq!(r.status, 429);
    assert!(r.error_message().contains("RateLimitError"));
    assert_eq!(r.header("x-litellm-attempted-retries"), "2");
    assert_eq!(up.stats().requests(), 0);
}
