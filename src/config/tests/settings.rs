//! `litellm_settings` and `general_settings`.

use super::*;
use std::time::Duration;

#[test]
fn litellm_settings_fields() {
    let loaded = load(&format!(
        "{MINIMAL}litellm_settings:\n  num_retries: 3\n  request_timeout: 600\n  \
         callbacks: [\"prometheus\"]\n  json_logs: true\n  drop_params: true\n  set_verbose: false\n"
    ));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let l = loaded.config.litellm;
    assert_eq!(l.num_retries, Some(3));
    assert_eq!(l.request_timeout, Some(Duration::from_secs(600)));
    assert_eq!(l.callbacks, ["prometheus"]);
    assert!(l.json_logs);
}

#[test]
fn litellm_settings_defaults() {
    let l = load(MINIMAL).config.litellm;
    assert_eq!((l.num_retries, l.request_timeout), (None, None));
    assert!(l.callbacks.is_empty());
    assert!(!l.json_logs);
}

#[test]
fn other_litellm_settings_and_callbacks_warn() {
    let loaded = load(&format!(
        "{MINIMAL}litellm_settings:\n  callbacks: langfuse\n  cache: true\n  success_callback: [x]\n"
    ));
    assert_eq!(loaded.config.litellm.callbacks, ["langfuse"]);
    assert_eq!(
        sorted(warnings(&loaded)),
        [
            "litellm_settings.cache: not supported by sluice, ignored",
            "litellm_settings.callbacks: callback \"langfuse\" is not supported by sluice, ignored",
            "litellm_settings.success_callback: not supported by sluice, ignored",
        ]
    );
}

#[test]
fn bad_litellm_settings_are_errors() {
    assert_eq!(
        errors(&format!(
            "{MINIMAL}litellm_settings:\n  num_retries: x\n  request_timeout: -3\n  callbacks: [1, [2]]\n  json_logs: 1\n"
        )),
        [
            "litellm_settings.num_retries: expected a number, got \"x\"",
            "litellm_settings.request_timeout: must not be negative, got -3",
            "litellm_settings.callbacks[1]: expected a string, got a list",
            "litellm_settings.json_logs: expected true or false, got 1",
        ]
    );
}

#[test]
fn master_key_from_file_or_environment() {
    let general = |yaml: &str, env: &[(&str, &str)]| {
        load_with(&format!("{MINIMAL}{yaml}"), env).config.general
    };
    let env = [("LITELLM_MASTER_KEY", "sk-env")];
    assert_eq!(
        general("general_settings:\n  master_key: sk-file\n", &env)
            .master_key
            .as_deref(),
        Some("sk-file")
    );
    assert_eq!(general("", &env).master_key.as_deref(), Some("sk-env"));
    assert_eq!(
        general("general_settings:\n  master_key: ''\n", &env)
            .master_key
            .as_deref(),
        Some("sk-env")
    );
    assert_eq!(
        general("general_settings:\n  master_key: ''\n", &[]).master_key,
        None
    );
    assert_eq!(general("", &[("LITELLM_MASTER_KEY", "")]).master_key, None);
    assert_eq!(
        general("general_settings:\n  master_key: 1234\n", &[])
            .master_key
            .as_deref(),
        Some("1234")
    );
    assert_eq!(
        general(
            "general_settings:\n  master_key: os.environ/MK\n",
            &[("MK", "sk-mk")]
        )
        .master_key
        .as_deref(),
        Some("sk-mk")
    );
}

#[test]
fn general_settings_size_and_other_keys() {
    let loaded = load(&format!(
        "{MINIMAL}general_settings:\n  max_request_size_mb: \"2.5\"\n  database_url: postgres://x\n"
    ));
    assert_eq!(loaded.config.general.max_request_size_mb, Some(2.5));
    assert_eq!(
        warnings(&loaded),
        ["general_settings.database_url: not supported by sluice, ignored"]
    );
    assert_eq!(
        errors(&format!(
            "{MINIMAL}general_settings:\n  max_request_size_mb: 0\n  master_key: [k]\n"
        )),
        [
            "general_settings.master_key: expected a string, got a list",
            "general_settings.max_request_size_mb: must be greater than 0, got 0",
        ]
    );
}
