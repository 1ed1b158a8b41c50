//! Deployment ids and secret-free public params.

use super::*;
use crate::config::identity::{generated_id, is_secret_key};
use serde_json::{json, Map, Value};

fn params(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn explicit_id_is_used() {
    let yaml = "model_list:\n  - model_name: g\n    litellm_params: {model: m}\n    model_info: {id: my-id}\n";
    assert_eq!(load(yaml).config.model_list[0].id, "my-id");
}

#[test]
fn generated_id_is_stable_and_depends_on_name_and_params() {
    let a = load(MINIMAL).config.model_list[0].id.clone();
    let b = load(MINIMAL).config.model_list[0].id.clone();
    assert_eq!(a, b);
    assert_eq!(a.len(), 64);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    let other_param = load(&format!("{MINIMAL}      rpm: 5\n")).config.model_list[0]
        .id
        .clone();
    assert_ne!(a, other_param);
    let other_name = load(&MINIMAL.replace("model_name: g", "model_name: h"));
    assert_ne!(a, other_name.config.model_list[0].id);
    // model_info does not take part.
    let with_info = load(&format!("{MINIMAL}    model_info: {{mode: chat}}\n"));
    assert_eq!(a, with_info.config.model_list[0].id);
}

#[test]
fn generated_id_ignores_key_order() {
    let one =
        params(json!({"model": "gpt-4o", "rpm": 1, "extra": {"b": 1, "a": [1, {"y": 2, "x": 1}]}}));
    let mut two = Map::new();
    two.insert("rpm".into(), json!(1));
    two.insert("extra".into(), json!({"a": [1, {"x": 1, "y": 2}], "b": 1}));
    two.insert("model".into(), json!("gpt-4o"));
    assert_eq!(generated_id("g", &one), generated_id("g", &two));
}

/// Pins the scheme: if this changes, every generated id changes on upgrade. The values
/// are `sha256sum` of `{"litellm_params":{...keys sorted...},"model_name":"g"}`.
#[test]
fn generated_id_has_a_fixed_value() {
    let p = params(json!({"model": "gpt-4o", "rpm": 100, "api_base": "http://127.0.0.1:8080"}));
    assert_eq!(
        generated_id("g", &p),
        "d7af9a178630ad1805c09431662ae8869101d70370e2b0fb320058dd3b830e8d"
    );
    assert_eq!(
        load(MINIMAL).config.model_list[0].id,
        "4b630caa6354b938d0a2d51d78b8cd172ece637dfe4cc929a125a6d9bc1ccd1f"
    );
}

#[test]
fn generated_id_uses_resolved_values() {
    let yaml = one("      model: gpt-4o\n      api_base: os.environ/BASE\n");
    let a = load_with(&yaml, &[("BASE", "http://127.0.0.1:1")]);
    let b = load_with(&yaml, &[("BASE", "http://127.0.0.1:2")]);
    assert_ne!(a.config.model_list[0].id, b.config.model_list[0].id);
    let literal = one("      model: gpt-4o\n      api_base: http://127.0.0.1:1\n");
    assert_eq!(
        a.config.model_list[0].id,
        load(&literal).config.model_list[0].id
    );
}

#[test]
fn duplicate_explicit_ids_are_errors() {
    let yaml = "\
model_list:
  - {model_name: a, litellm_params: {model: m1}, model_info: {id: x}}
  - {model_name: b, litellm_params: {model: m2}, model_info: {id: y}}
  - {model_name: c, litellm_params: {model: m3}}
  - {model_name: d, litellm_params: {model: m4}, model_info: {id: x}}
";
    assert_eq!(
        errors(yaml),
        ["model_list[3].model_info.id: duplicate deployment id \"x\" (also model_list[0])"]
    );
}

#[test]
fn identical_entries_without_ids_collide() {
    let yaml = format!("{MINIMAL}  - model_name: g\n    litellm_params:\n      model: gpt-4o\n");
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("model_list[1]: same model_name and litellm_params as model_list[0]"),
        "{errs:?}"
    );
    assert!(errs[0].contains("model_info.id"), "{errs:?}");
    // Distinct ids fix it.
    let yaml = "\
model_list:
  - {model_name: g, litellm_params: {model: gpt-4o}, model_info: {id: a}}
  - {model_name: g, litellm_params: {model: gpt-4o}, model_info: {id: b}}
";
    assert_eq!(load(yaml).config.model_list.len(), 2);
}

#[test]
fn secret_key_rule() {
    for secret in [
        "api_key",
        "API_KEY",
        "apiKey",
        "x-api-key",
        "aws_secret_access_key",
        "aws_access_key_id",
        "aws_session_token",
        "azure_ad_token",
        "token",
        "access_token",
        "client_secret",
        "vertex_credentials",
        "password",
        "redis_password",
        "db_passwd",
        "Authorization",
        "cookie",
        "secrets",
        "litellm_credential_name",
    ] {
        assert!(is_secret_key(secret), "{secret} should be a secret");
    }
    for public in [
        "max_tokens",
        "max_completion_tokens",
        "tpm",
        "rpm",
        "model",
        "api_base",
        "api_version",
        "input_cost_per_token",
        "output_cost_per_token",
        "input_cost_per_token_above_128k_tokens",
        "token_count",
        "tokenizer",
        "keywords",
        "monkey",
        "timeout",
        "weight",
        "organization",
    ] {
        assert!(!is_secret_key(public), "{public} should be public");
    }
}

#[test]
fn public_params_drop_secrets_at_every_level() {
    let yaml = one("      model: gpt-4o
      api_key: sk-secret
      aws_secret_access_key: s
      vertex_credentials: /etc/creds.json
      max_tokens: 100
      tpm: 1000
      input_cost_per_token: 0.1
      extra_headers:
        Authorization: Bearer x
        X-Trace: on
      list: [{token: t, name: n}]
");
    let loaded = load(&yaml);
    let d = &loaded.config.model_list[0];
    assert_eq!(d.api_key.as_deref(), Some("sk-secret"));
    let public = Value::Object(d.public_params.clone());
    assert_eq!(
        public,
        json!({
            "model": "gpt-4o",
            "max_tokens": 100,
            "tpm": 1000,
            "input_cost_per_token": 0.1,
            "extra_headers": {"X-Trace": "on"},
            "list": [{"name": "n"}],
        })
    );
}
