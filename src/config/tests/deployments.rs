//! `model_list` entries: fields, providers, URLs, defaults from the environment.

use super::*;
use crate::config::provider::check_base_url;
use std::time::Duration;

fn first(loaded: &Loaded) -> &DeploymentConfig {
    &loaded.config.model_list[0]
}

#[test]
fn all_litellm_params_fields_are_read() {
    let loaded = load(&one("      model: openai/gpt-4o
      api_base: http://127.0.0.1:8080/v1/
      api_key: sk-1
      api_version: '2024-06-01'
      rpm: 100
      tpm: 20000
      weight: 2.5
      order: 2
      timeout: 30
      stream_timeout: 0.5
      max_retries: 1
      cooldown_time: 12
      max_parallel_requests: 8
      mock_response: hello
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      temperature: 0.2
"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let d = first(&loaded);
    assert_eq!(d.model, "openai/gpt-4o");
    assert_eq!(d.provider, ProviderKind::OpenAi);
    assert_eq!(d.provider_name, "openai");
    assert_eq!(d.upstream_model, "gpt-4o");
    assert_eq!(d.api_base.as_deref(), Some("http://127.0.0.1:8080/v1/"));
    assert_eq!(d.api_key.as_deref(), Some("sk-1"));
    assert_eq!(d.api_version.as_deref(), Some("2024-06-01"));
    assert_eq!((d.rpm, d.tpm), (Some(100), Some(20000)));
    assert_eq!(d.weight, Some(2.5));
    assert_eq!(d.order, Some(2));
    assert_eq!(d.timeout, Some(Duration::from_secs(30)));
    assert_eq!(d.stream_timeout, Some(Duration::from_millis(500)));
    assert_eq!(d.max_retries, Some(1));
    assert_eq!(d.cooldown_time, Some(Duration::from_secs(12)));
    assert_eq!(d.max_parallel_requests, Some(8));
    assert_eq!(d.mock_response.as_deref(), Some("hello"));
    assert_eq!(d.input_cost_per_token, Some(0.000001));
    assert_eq!(d.output_cost_per_token, Some(0.000002));
    assert_eq!(d.public_params["temperature"], 0.2);
}

#[test]
fn absent_fields_are_none() {
    let loaded = load(MINIMAL);
    let d = first(&loaded);
    assert_eq!((d.rpm, d.tpm, d.weight, d.order), (None, None, None, None));
    assert_eq!(
        (d.timeout, d.stream_timeout, d.cooldown_time),
        (None, None, None)
    );
    assert_eq!((d.max_retries, d.max_parallel_requests), (None, None));
    assert_eq!((d.api_base.as_deref(), d.api_key.as_deref()), (None, None));
    assert!(d.mock_response.is_none());
}

#[test]
fn numbers_may_be_strings() {
    let loaded = load(&one(
        "      model: gpt-4o\n      rpm: \"100\"\n      tpm: ' 2000 '\n      weight: \"1.5\"\n      \
         timeout: \"2.5\"\n      order: \"3\"\n      max_retries: \"0\"\n      rpm_float: 1\n",
    ));
    let d = first(&loaded);
    assert_eq!(
        (d.rpm, d.tpm, d.order, d.max_retries),
        (Some(100), Some(2000), Some(3), Some(0))
    );
    assert_eq!(d.weight, Some(1.5));
    assert_eq!(d.timeout, Some(Duration::from_millis(2500)));
    // A float with no fraction is a whole number.
    let loaded = load(&one("      model: gpt-4o\n      rpm: 100.0\n"));
    assert_eq!(first(&loaded).rpm, Some(100));
}

#[test]
fn bad_numbers_are_errors_at_their_paths() {
    let errs = errors(&one("      model: gpt-4o
      rpm: abc
      tpm: -5
      order: 1.5
      max_retries: 5000000000
      timeout: -1
      weight: -0.5
      stream_timeout: [1]
      max_parallel_requests: true
      input_cost_per_token: x
"));
    let p = "model_list[0].litellm_params";
    assert_eq!(
        errs,
        [
            format!("{p}.rpm: expected a number, got \"abc\""),
            format!("{p}.tpm: must not be negative, got -5"),
            format!("{p}.weight: must not be negative, got -0.5"),
            format!("{p}.order: expected a whole number, got 1.5"),
            format!("{p}.timeout: must not be negative, got -1"),
            format!("{p}.stream_timeout: expected a number, got a list"),
            format!("{p}.max_retries: too large (at most 4294967295), got 5000000000"),
            format!("{p}.max_parallel_requests: expected a number, got true"),
            format!("{p}.input_cost_per_token: expected a number, got \"x\""),
        ]
    );
}

#[test]
fn model_list_must_be_a_non_empty_list_of_maps() {
    assert_eq!(
        errors("model_list: []\n"),
        ["model_list: empty: at least one deployment is needed"]
    );
    assert_eq!(
        errors("model_list: {a: 1}\n"),
        ["model_list: expected a list of deployments, got a map"]
    );
    assert_eq!(
        errors("model_list: [gpt-4o]\n"),
        ["model_list[0]: expected a map with model_name and litellm_params, got \"gpt-4o\""]
    );
}

#[test]
fn required_deployment_fields() {
    let yaml = "\
model_list:
  - litellm_params: {model: gpt-4o}
  - model_name: b
  - model_name: c
    litellm_params: gpt-4o
  - model_name: d
    litellm_params: {api_key: k}
  - model_name: [e]
    litellm_params: {model: gpt-4o}
";
    assert_eq!(
        errors(yaml),
        [
            "model_list[0].model_name: missing",
            "model_list[1].litellm_params: missing",
            "model_list[2].litellm_params: expected a map, got \"gpt-4o\"",
            "model_list[3].litellm_params.model: missing",
            "model_list[4].model_name: expected a string, got a list",
        ]
    );
}

#[test]
fn provider_prefixes() {
    let cases = [
        ("gpt-4o", ProviderKind::OpenAi, "openai", "gpt-4o"),
        ("openai/gpt-4o", ProviderKind::OpenAi, "openai", "gpt-4o"),
        (
            "openai/meta-llama/Llama-3",
            ProviderKind::OpenAi,
            "openai",
            "meta-llama/Llama-3",
        ),
        (
            "aiohttp_openai/any",
            ProviderKind::OpenAi,
            "aiohttp_openai",
            "any",
        ),
        (
            "text-completion-openai/gpt-3.5-turbo-instruct",
            ProviderKind::OpenAi,
            "text-completion-openai",
            "gpt-3.5-turbo-instruct",
        ),
        (
            "hosted_vllm/meta-llama/Llama-3",
            ProviderKind::OpenAi,
            "hosted_vllm",
            "meta-llama/Llama-3",
        ),
        (
            "custom_openai/m",
            ProviderKind::OpenAi,
            "custom_openai",
            "m",
        ),
        ("azure/gpt-4o-eu", ProviderKind::Azure, "azure", "gpt-4o-eu"),
    ];
    for (model, kind, name, upstream) in cases {
        let loaded = load(&one(&format!(
            "      model: {model}\n      api_base: http://127.0.0.1:8080\n      api_version: v\n"
        )));
        let d = first(&loaded);
        assert_eq!(d.model, model);
        assert_eq!(d.provider, kind, "{model}");
        assert_eq!(d.provider_name, name, "{model}");
        assert_eq!(d.upstream_model, upstream, "{model}");
    }
}

#[test]
fn unsupported_providers_are_errors() {
    let supported = "supported: openai, aiohttp_openai, hosted_vllm, custom_openai, \
                     text-completion-openai, azure";
    for (model, prefix) in [
        ("vertex_ai/gemini-1.5-pro", "vertex_ai"),
        ("anthropic/claude-3-5-sonnet", "anthropic"),
        ("bedrock/anthropic.claude-v2", "bedrock"),
        ("meta-llama/Llama-3", "meta-llama"),
    ] {
        assert_eq!(
            errors(&one(&format!("      model: {model}\n"))),
            [format!(
                "model_list[0].litellm_params.model: provider \"{prefix}\" is not supported ({supported})"
            )]
        );
    }
    assert_eq!(
        errors(&one("      model: openai/\n")),
        ["model_list[0].litellm_params.model: no model name after \"openai/\""]
    );
    assert_eq!(
        errors(&one("      model: ''\n")),
        ["model_list[0].litellm_params.model: must not be empty"]
    );
}

#[test]
fn api_base_must_be_an_http_url_with_a_host() {
    for good in [
        "http://127.0.0.1:8080",
        "https://my-endpoint.openai.azure.com/",
        "http://localhost/v1",
        "HTTP://Example.com:443/a/b/",
        "http://[::1]:8080/v1",
        "http://0.0.0.0:8080",
    ] {
        assert_eq!(check_base_url(good), Ok(()), "{good}");
    }
    for bad in [
        "127.0.0.1:8080",
        "ftp://host",
        "http://",
        "http:///v1",
        "http://host:99999",
        "http://host:0",
        "http://host:port",
        "http://host?x=1",
        "http://host/v1#frag",
        "http://user:pw@host",
        "http://ho st",
        "http://[::1",
        "http://ho$t",
    ] {
        assert!(check_base_url(bad).is_err(), "{bad}");
    }
    assert_eq!(
        errors(&one("      model: gpt-4o\n      api_base: localhost:8080\n")),
        ["model_list[0].litellm_params.api_base: must start with http:// or https://, got \"localhost:8080\""]
    );
}

#[test]
fn api_base_is_required_where_there_is_no_default() {
    for model in ["azure/x", "hosted_vllm/x", "custom_openai/x"] {
        let provider = model.split('/').next().unwrap();
        assert_eq!(
            errors(&one(&format!(
                "      model: {model}\n      api_version: v\n"
            ))),
            [format!(
                "model_list[0].litellm_params.api_base: missing (required for {provider})"
            )]
        );
    }
    let loaded = load_with(
        &one("      model: azure/x\n      api_version: v\n"),
        &[("AZURE_API_BASE", "https://eu.openai.azure.com")],
    );
    assert_eq!(
        first(&loaded).api_base.as_deref(),
        Some("https://eu.openai.azure.com")
    );
    let loaded = load_with(MINIMAL, &[("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")]);
    assert_eq!(
        first(&loaded).api_base.as_deref(),
        Some("http://127.0.0.1:1/v1")
    );
}

#[test]
fn api_key_defaults_come_from_the_provider_s_variable() {
    let env = [
        ("OPENAI_API_KEY", "sk-openai"),
        ("AZURE_API_KEY", "az-key"),
        ("HOSTED_VLLM_API_KEY", "vllm-key"),
        ("AZURE_API_VERSION", "2025-01-01"),
    ];
    let key_of = |model: &str, env: &[(&str, &str)]| {
        let yaml = one(&format!(
            "      model: {model}\n      api_base: http://127.0.0.1:1\n"
        ));
        first(&load_with(&yaml, env)).api_key.clone()
    };
    assert_eq!(key_of("gpt-4o", &env).as_deref(), Some("sk-openai"));
    assert_eq!(
        key_of("aiohttp_openai/x", &env).as_deref(),
        Some("sk-openai")
    );
    assert_eq!(key_of("azure/x", &env).as_deref(), Some("az-key"));
    assert_eq!(key_of("hosted_vllm/x", &env).as_deref(), Some("vllm-key"));
    assert_eq!(key_of("hosted_vllm/x", &env[..1]), None);
    assert_eq!(key_of("gpt-4o", &[("OPENAI_API_KEY", "")]), None);
    assert_eq!(key_of("gpt-4o", &[]), None);
    // An empty value in the file falls back too, as with LiteLLM's `api_key or ...`.
    let yaml =
        one("      model: azure/x\n      api_key: ''\n      api_base: ''\n      api_version: ''\n");
    assert_eq!(
        errors_with(&yaml, &env),
        ["model_list[0].litellm_params.api_base: missing (required for azure)"]
    );
    let with_base = [
        &env[..],
        &[("AZURE_API_BASE", "https://a.openai.azure.com")],
    ]
    .concat();
    let loaded = load_with(&yaml, &with_base);
    let d = first(&loaded);
    assert_eq!(d.api_base.as_deref(), Some("https://a.openai.azure.com"));
    assert_eq!(d.api_key.as_deref(), Some("az-key"));
    assert_eq!(d.api_version.as_deref(), Some("2025-01-01"));
}

#[test]
fn azure_api_version_from_params_env_or_default() {
    let yaml = one("      model: azure/x\n      api_base: https://a.openai.azure.com\n");
    let loaded = load_with(&yaml, &[("AZURE_API_VERSION", "2025-01-01")]);
    assert_eq!(first(&loaded).api_version.as_deref(), Some("2025-01-01"));
    assert!(loaded.warnings.is_empty());

    let loaded = load(&yaml);
    assert_eq!(first(&loaded).api_version.as_deref(), Some("2024-10-21"));
    assert_eq!(
        warnings(&loaded),
        ["model_list[0].litellm_params.api_version: missing, using 2024-10-21"]
    );

    let yaml = one("      model: azure/x\n      api_base: https://a.openai.azure.com\n      api_version: 2024-02-01\n");
    let loaded = load_with(&yaml, &[("AZURE_API_VERSION", "2025-01-01")]);
    assert_eq!(first(&loaded).api_version.as_deref(), Some("2024-02-01"));
}

#[test]
fn rpm_and_tpm_from_params_then_top_level_then_model_info() {
    let yaml = "\
model_list:
  - model_name: g
    rpm: 2
    tpm: 20
    litellm_params: {model: gpt-4o, rpm: 1}
    model_info: {rpm: 3, tpm: 30, id: a}
  - model_name: g
    litellm_params: {model: gpt-4o}
    model_info: {rpm: 3, tpm: 30, id: b}
";
    let loaded = load(yaml);
    let [a, b] = &loaded.config.model_list[..] else {
        panic!()
    };
    assert_eq!((a.rpm, a.tpm), (Some(1), Some(20)));
    assert_eq!((b.rpm, b.tpm), (Some(3), Some(30)));
    assert_eq!(
        errors("model_list:\n  - model_name: g\n    rpm: x\n    litellm_params: {model: m}\n    model_info: {tpm: -1}\n"),
        [
            "model_list[0].rpm: expected a number, got \"x\"",
            "model_list[0].model_info.tpm: must not be negative, got -1",
        ]
    );
}

#[test]
fn unknown_deployment_keys_warn_but_unknown_params_do_not() {
    let yaml = "model_list:\n  - model_name: g\n    litellm_params: {model: m, seed: 1, region_name: eu}\n    tags: [a]\n";
    assert_eq!(
        warnings(&load(yaml)),
        ["model_list[0].tags: unknown key, ignored"]
    );
    let yaml = one("      model: m\n      litellm_credential_name: shared\n");
    assert_eq!(
        warnings(&load(&yaml)),
        ["model_list[0].litellm_params.litellm_credential_name: credentials (credential_list) are not supported by sluice, ignored"]
    );
}

#[test]
fn model_info_is_kept_with_the_id() {
    let yaml = "model_list:\n  - model_name: g\n    litellm_params: {model: m}\n    model_info: {id: 42, mode: chat, base_model: gpt-4o}\n";
    let loaded = load(yaml);
    let d = first(&loaded);
    assert_eq!(d.id, "42");
    assert_eq!(d.model_info["id"], "42");
    assert_eq!(d.model_info["mode"], "chat");
    assert_eq!(d.model_info["base_model"], "gpt-4o");
    assert_eq!(
        errors(
            "model_list:\n  - model_name: g\n    litellm_params: {model: m}\n    model_info: []\n"
        ),
        ["model_list[0].model_info: expected a map, got a list"]
    );
    assert_eq!(
        errors("model_list:\n  - model_name: g\n    litellm_params: {model: m}\n    model_info: {id: ''}\n"),
        ["model_list[0].model_info.id: must not be empty"]
    );
}

#[test]
fn numeric_model_name_is_a_string() {
    let loaded = load("model_list:\n  - model_name: 4\n    litellm_params: {model: m}\n");
    assert_eq!(first(&loaded).model_name, "4");
}
