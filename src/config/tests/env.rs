//! `os.environ/` references and `environment_variables`.

use super::*;
use std::time::Duration;

#[test]
fn references_resolve_anywhere_in_the_tree() {
    let yaml = "\
model_list:
  - model_name: os.environ/GROUP
    litellm_params:
      model: os.environ/MODEL
      api_base: os.environ/BASE
      api_key: os.environ/KEY
      rpm: os.environ/RPM
      timeout: os.environ/TIMEOUT
      extra_body:
        tags: [os.environ/TAG]
    model_info:
      id: os.environ/ID
  - model_name: other
    litellm_params:
      model: gpt-4o
router_settings:
  redis_host: os.environ/REDIS_HOST
  redis_port: os.environ/REDIS_PORT
  fallbacks:
    - fast: [os.environ/OTHER]
";
    let env = [
        ("GROUP", "fast"),
        ("MODEL", "openai/gpt-4o"),
        ("BASE", "http://127.0.0.1:9000"),
        ("KEY", "sk-env"),
        ("RPM", "100"),
        ("TIMEOUT", "1.5"),
        ("TAG", "blue"),
        ("ID", "dep-1"),
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", "6380"),
        ("OTHER", "other"),
    ];
    let loaded = load_with(yaml, &env);
    let d = &loaded.config.model_list[0];
    assert_eq!(d.model_name, "fast");
    assert_eq!(d.upstream_model, "gpt-4o");
    assert_eq!(d.api_base.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(d.api_key.as_deref(), Some("sk-env"));
    assert_eq!(d.rpm, Some(100));
    assert_eq!(d.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(d.id, "dep-1");
    assert_eq!(d.public_params["extra_body"]["tags"][0], "blue");
    let redis = loaded.config.router.redis.as_ref().expect("redis");
    assert_eq!(redis.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(redis.port, Some(6380));
    assert_eq!(
        loaded.config.router.fallbacks,
        [("fast".to_string(), vec!["other".to_string()])]
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn environment_variables_take_precedence_over_the_process() {
    let yaml = format!(
        "environment_variables:\n  KEY: from-file\n  RPM: 7\n  PRE: true\n{}",
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: gpt-4o\n      \
         api_key: os.environ/KEY\n      rpm: os.environ/RPM\n\
         router_settings:\n  enable_pre_call_checks: os.environ/PRE\n"
    );
    let loaded = load_with(&yaml, &[("KEY", "from-process"), ("RPM", "1")]);
    let d = &loaded.config.model_list[0];
    assert_eq!(d.api_key.as_deref(), Some("from-file"));
    assert_eq!(d.rpm, Some(7));
    assert!(loaded.config.router.enable_pre_call_checks);
}

#[test]
fn environment_variables_also_feed_defaults() {
    let yaml = format!("environment_variables:\n  OPENAI_API_KEY: sk-file\n  LITELLM_MASTER_KEY: sk-master\n{MINIMAL}");
    let loaded = load_with(&yaml, &[("OPENAI_API_KEY", "sk-process")]);
    assert_eq!(
        loaded.config.model_list[0].api_key.as_deref(),
        Some("sk-file")
    );
    assert_eq!(
        loaded.config.general.master_key.as_deref(),
        Some("sk-master")
    );
}

#[test]
fn environment_variables_resolve_their_own_references_from_the_process() {
    let yaml = format!(
        "environment_variables:\n  KEY: os.environ/REAL_KEY\n  GONE: os.environ/NOPE\n{}",
        one("      model: gpt-4o\n      api_key: os.environ/KEY\n")
    );
    let loaded = load_with(&yaml, &[("REAL_KEY", "sk-real")]);
    assert_eq!(
        loaded.config.model_list[0].api_key.as_deref(),
        Some("sk-real")
    );
    assert_eq!(
        warnings(&loaded),
        ["environment_variables.GONE: os.environ/NOPE is not set"]
    );
}

#[test]
fn environment_variables_must_be_a_map_of_scalars() {
    let yaml = format!("environment_variables: [A]\n{MINIMAL}");
    assert_eq!(
        errors(&yaml),
        ["environment_variables: expected a map, got a list"]
    );
    let yaml = format!("environment_variables:\n  A: {{b: 1}}\n{MINIMAL}");
    assert_eq!(
        errors(&yaml),
        ["environment_variables.A: expected a string, number or boolean, got a map"]
    );
}

#[test]
fn true_and_false_values_become_booleans() {
    let yaml = format!(
        "{}router_settings:\n  enable_pre_call_checks: os.environ/A\n  disable_cooldowns: os.environ/B\n",
        one("      model: gpt-4o\n      flag: os.environ/A\n      other: os.environ/B\n")
    );
    let loaded = load_with(&yaml, &[("A", "TRUE"), ("B", " false ")]);
    assert!(loaded.config.router.enable_pre_call_checks);
    assert!(!loaded.config.router.disable_cooldowns);
    let params = &loaded.config.model_list[0].public_params;
    assert_eq!(params["flag"], serde_json::Value::Bool(true));
    assert_eq!(params["other"], serde_json::Value::Bool(false));
}

#[test]
fn missing_variable_is_null_with_a_warning_at_its_path() {
    let yaml =
        format!(
        "{}router_settings:\n  redis_host: os.environ/REDIS_HOST\n",
        one("      model: gpt-4o\n      api_key: os.environ/MY_KEY\n      rpm: os.environ/MY_RPM\n")
    );
    let loaded = load_with(&yaml, &[("OPENAI_API_KEY", "sk-default")]);
    assert_eq!(
        warnings(&loaded),
        [
            "model_list[0].litellm_params.api_key: os.environ/MY_KEY is not set",
            "model_list[0].litellm_params.rpm: os.environ/MY_RPM is not set",
            "router_settings.redis_host: os.environ/REDIS_HOST is not set",
        ]
    );
    let d = &loaded.config.model_list[0];
    // null counts as absent: the default key applies.
    assert_eq!(d.api_key.as_deref(), Some("sk-default"));
    assert_eq!(d.rpm, None);
    assert_eq!(d.public_params.get("rpm"), Some(&serde_json::Value::Null));
    assert!(loaded.config.router.redis.is_none());
}

#[test]
fn missing_variable_for_a_required_field_is_missing() {
    let yaml = one("      model: os.environ/MODEL\n");
    assert_eq!(
        errors(&yaml),
        ["model_list[0].litellm_params.model: missing"]
    );
}

#[test]
fn only_whole_strings_are_references() {
    let yaml = one("      model: gpt-4o\n      note: see os.environ/X\n");
    let loaded = load_with(&yaml, &[("X", "no")]);
    assert_eq!(
        loaded.config.model_list[0].public_params["note"],
        "see os.environ/X"
    );
    assert!(loaded.warnings.is_empty());
}
