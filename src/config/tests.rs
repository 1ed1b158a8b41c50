//! Unit tests of config loading; split by topic into `tests/*.rs`.

mod deployments;
mod env;
mod files;
mod ids;
mod router;
mod settings;

use super::*;
use std::collections::HashMap;

/// An environment holding exactly `pairs`.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Load `yaml` with the environment `pairs`, panicking with the errors if it fails.
fn load_with(yaml: &str, pairs: &[(&str, &str)]) -> Loaded {
    match load_str(yaml, &env_of(pairs)) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("config should load, got errors: {errors:#?}"),
    }
}

/// Load `yaml` with an empty environment.
fn load(yaml: &str) -> Loaded {
    load_with(yaml, &[])
}

/// The errors of loading `yaml` with the environment `pairs` (panics if it loads).
fn errors_with(yaml: &str, pairs: &[(&str, &str)]) -> Vec<String> {
    match load_str(yaml, &env_of(pairs)) {
        Ok(loaded) => panic!("config should fail, it loaded: {:#?}", loaded.config),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// The errors of loading `yaml` with an empty environment.
fn errors(yaml: &str) -> Vec<String> {
    errors_with(yaml, &[])
}

/// The warnings of a load, as `path: message` lines.
fn warnings(loaded: &Loaded) -> Vec<String> {
    loaded.warnings.iter().map(ToString::to_string).collect()
}

/// `v` sorted: for results whose order follows map iteration, which is sorted keys or
/// file order depending on serde_json's `preserve_order` feature.
fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A one-deployment config with `params` (indented lines) under `litellm_params`.
fn one(params: &str) -> String {
    format!("model_list:\n  - model_name: g\n    litellm_params:\n{params}")
}

const MINIMAL: &str = "model_list:\n  - model_name: g\n    litellm_params:\n      model: gpt-4o\n";

#[test]
fn minimal_config_loads_without_warnings() {
    let loaded = load(MINIMAL);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.model_list.len(), 1);
    assert_eq!(loaded.config.model_list[0].model_name, "g");
}

#[test]
fn yaml_syntax_error_is_one_error_with_line_and_column() {
    let errs = errors("model_list:\n  - model_name: g\n    litellm_params: [a\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("invalid YAML:"), "{errs:?}");
    assert!(errs[0].contains("line 3, column 21"), "{errs:?}");
    let raw = load_str("a: [1\n", &env_of(&[])).unwrap_err();
    assert_eq!(raw[0].path, "");
}

#[test]
fn duplicate_yaml_key_warns_and_the_last_value_wins() {
    let yaml = format!("{MINIMAL}router_settings:\n  num_retries: 1\n  num_retries: 4\n");
    let loaded = load(&yaml);
    assert_eq!(loaded.config.router.num_retries, Some(4));
    let w = warnings(&loaded);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("duplicate key \"num_retries\" at line 7"),
        "{w:?}"
    );
}

#[test]
fn top_level_must_be_a_map() {
    assert_eq!(
        errors("- 1\n- 2\n"),
        ["expected a map of sections (model_list, router_settings, ...), got a list"]
    );
}

#[test]
fn empty_file_lacks_model_list() {
    assert_eq!(errors(""), ["model_list: missing"]);
    assert_eq!(errors("# nothing\n"), ["model_list: missing"]);
}

#[test]
fn unknown_top_level_keys_warn() {
    let yaml = format!("{MINIMAL}foo: 1\ninclude: [other.yaml]\n");
    assert_eq!(
        warnings(&load(&yaml)),
        [
            "foo: unknown key, ignored",
            "include: not supported by sluice, ignored"
        ]
    );
}

#[test]
fn section_of_the_wrong_type_is_an_error_at_its_path() {
    let yaml = format!("{MINIMAL}router_settings: 5\nlitellm_settings: [1]\ngeneral_settings: x\n");
    assert_eq!(
        errors(&yaml),
        [
            "router_settings: expected a map, got 5",
            "litellm_settings: expected a map, got a list",
            "general_settings: expected a map, got \"x\"",
        ]
    );
}

#[test]
fn null_sections_are_absent() {
    let yaml = format!("{MINIMAL}router_settings:\nlitellm_settings: ~\n");
    let loaded = load(&yaml);
    assert_eq!(loaded.config.router.allowed_fails, 3);
}

#[test]
fn every_error_is_reported_at_once() {
    let yaml = "\
model_list:
  - model_name: a
    litellm_params:
      model: openai/x
      rpm: abc
  - model_name: b
    litellm_params:
      api_base: http://127.0.0.1:1
router_settings:
  routing_strategy: fastest
";
    assert_eq!(
        errors(yaml),
        [
            "model_list[0].litellm_params.rpm: expected a number, got \"abc\"",
            "model_list[1].litellm_params.model: missing",
            "router_settings.routing_strategy: unknown strategy \"fastest\" (expected one of \
             simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, \
             latency-based-routing, cost-based-routing)",
        ]
    );
}

#[test]
fn hash_is_the_first_12_hex_chars_of_the_sha256_of_the_text() {
    let a = load(MINIMAL);
    assert_eq!(a.hash, identity::sha256_hex(MINIMAL.as_bytes())[..12]);
    assert_eq!(a.hash.len(), 12);
    assert!(a.hash.chars().all(|c| c.is_ascii_hexdigit()));
    let b = load(&format!("{MINIMAL}# changed\n"));
    assert_ne!(a.hash, b.hash);
}

#[test]
fn unreadable_file_is_one_error_with_an_empty_path() {
    let missing = std::path::Path::new("/nonexistent/sluice/config.yaml");
    let errs = load_file(missing).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "");
    assert!(errs[0].message.contains("/nonexistent/sluice/config.yaml"));
    assert!(errs[0].message.contains("No such file"), "{errs:?}");
}

#[test]
fn byte_order_mark_and_crlf_line_ends_are_fine() {
    let text = format!("\u{feff}{}", MINIMAL.replace('\n', "\r\n"));
    assert_eq!(load(&text).config.model_list[0].model_name, "g");
}
