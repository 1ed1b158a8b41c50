//! `router_settings`: defaults, fields, fallbacks, aliases, Redis, ignored keys.

use super::*;
use std::time::Duration;

/// MINIMAL plus groups `a` and `b`, then `router` as the router_settings body.
fn with_router(router: &str) -> String {
    format!(
        "{MINIMAL}  - model_name: a\n    litellm_params: {{model: m}}\n  \
         - model_name: b\n    litellm_params: {{model: m}}\nrouter_settings:\n{router}"
    )
}

#[test]
fn defaults_match_litellm() {
    let r = load(MINIMAL).config.router;
    assert_eq!(r.routing_strategy, Strategy::SimpleShuffle);
    assert!(r.routing_strategy_args.is_empty());
    assert_eq!(
        (r.num_retries, r.timeout, r.stream_timeout),
        (None, None, None)
    );
    assert_eq!(r.retry_after, Duration::ZERO);
    assert_eq!(r.allowed_fails, 3);
    assert_eq!(r.cooldown_time, Duration::from_secs(5));
    assert!(!r.disable_cooldowns);
    assert!(r.fallbacks.is_empty() && r.context_window_fallbacks.is_empty());
    assert!(r.default_fallbacks.is_empty());
    assert_eq!(r.max_fallbacks, 5);
    assert!(!r.enable_pre_call_checks);
    assert!(r.model_group_alias.is_empty());
    assert!(r.redis.is_none());
}

#[test]
fn all_fields_are_read() {
    let loaded = load(&with_router(
        "  routing_strategy: latency-based-routing
  routing_strategy_args: {lowest_latency_buffer: 0.5}
  num_retries: 4
  timeout: 30
  stream_timeout: 2.5
  retry_after: 1
  allowed_fails: 0
  cooldown_time: 0.25
  disable_cooldowns: yes
  max_fallbacks: \"2\"
  enable_pre_call_checks: 'true'
",
    ));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let r = loaded.config.router;
    assert_eq!(r.routing_strategy, Strategy::LatencyBasedRouting);
    assert_eq!(r.routing_strategy_args["lowest_latency_buffer"], 0.5);
    assert_eq!(r.num_retries, Some(4));
    assert_eq!(r.timeout, Some(Duration::from_secs(30)));
    assert_eq!(r.stream_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(r.retry_after, Duration::from_secs(1));
    assert_eq!(r.allowed_fails, 0);
    assert_eq!(r.cooldown_time, Duration::from_millis(250));
    assert!(r.disable_cooldowns);
    assert_eq!(r.max_fallbacks, 2);
    assert!(r.enable_pre_call_checks);
}

#[test]
fn every_strategy_name_is_accepted() {
    for name in [
        "simple-shuffle",
        "least-busy",
        "usage-based-routing",
        "usage-based-routing-v2",
        "latency-based-routing",
        "cost-based-routing",
    ] {
        let r = load(&with_router(&format!("  routing_strategy: {name}\n")))
            .config
            .router;
        assert_eq!(r.routing_strategy.as_str(), name);
    }
}

#[test]
fn bad_router_values_are_errors() {
    assert_eq!(
        errors(&with_router(
            "  routing_strategy: fastest\n  num_retries: -1\n  cooldown_time: soon\n  \
             disable_cooldowns: maybe\n  routing_strategy_args: 3\n"
        )),
        [
            "router_settings.routing_strategy: unknown strategy \"fastest\" (expected one of \
             simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, \
             latency-based-routing, cost-based-routing)",
            "router_settings.routing_strategy_args: expected a map, got 3",
            "router_settings.num_retries: must not be negative, got -1",
            "router_settings.cooldown_time: expected a number, got \"soon\"",
            "router_settings.disable_cooldowns: expected true or false, got \"maybe\"",
        ]
    );
}

#[test]
fn fallbacks_in_all_their_forms() {
    let loaded = load(&with_router(
        "  fallbacks:
    - g: [a, b]
    - a: b
    - {b: [g], \"*\": [a]}
  context_window_fallbacks: [{g: [b]}]
  default_fallbacks: [a]
  model_group_alias: {fast: a}
",
    ));
    let r = &loaded.config.router;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        r.fallbacks[..2],
        [
            ("g".to_string(), s(&["a", "b"])),
            ("a".to_string(), s(&["b"]))
        ]
    );
    // The two keys of one map come in map order.
    assert_eq!(
        sorted(r.fallbacks[2..].to_vec()),
        [("*".to_string(), s(&["a"])), ("b".to_string(), s(&["g"]))]
    );
    assert_eq!(r.context_window_fallbacks, [("g".to_string(), s(&["b"]))]);
    assert_eq!(r.default_fallbacks, ["a"]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    // An alias is a valid target and source.
    let loaded = load(&with_router(
        "  model_group_alias: {fast: a}\n  fallbacks: [{fast: [fast]}]\n",
    ));
    assert_eq!(loaded.config.router.fallbacks.len(), 1);
}

#[test]
fn fallback_targets_must_exist() {
    assert_eq!(
        errors(&with_router(
            "  fallbacks: [{g: [a, nope]}, {a: gone}]\n  context_window_fallbacks: [{g: [x]}]\n  \
             default_fallbacks: [zz]\n"
        )),
        [
            "router_settings.fallbacks[0].g[1]: fallback \"nope\" is not a model group or alias",
            "router_settings.fallbacks[1].a: fallback \"gone\" is not a model group or alias",
            "router_settings.context_window_fallbacks[0].g[0]: fallback \"x\" is not a model group or alias",
            "router_settings.default_fallbacks[0]: fallback \"zz\" is not a model group or alias",
        ]
    );
}

#[test]
fn unknown_fallback_source_is_a_warning() {
    let loaded = load(&with_router("  fallbacks: [{old-group: [a]}]\n"));
    assert_eq!(
        warnings(&loaded),
        ["router_settings.fallbacks[0].old-group: \"old-group\" is not a model group or alias, so this fallback is never used"]
    );
}

#[test]
fn badly_shaped_fallbacks_are_errors() {
    assert_eq!(
        errors(&with_router("  fallbacks: {g: [a]}\n  context_window_fallbacks: [g, {}, {g: {a: 1}}]\n")),
        [
            "router_settings.fallbacks: expected a list of {group: [fallback groups]} maps, got a map",
            "router_settings.context_window_fallbacks[0]: expected a map {group: [fallback groups]}, got \"g\"",
            "router_settings.context_window_fallbacks[1]: empty map: expected {group: [fallback groups]}",
            "router_settings.context_window_fallbacks[2].g: expected a list of strings, got a map",
        ]
    );
}

#[test]
fn aliases_plain_and_hidden() {
    let loaded = load(&with_router(
        "  model_group_alias:
    gpt-4: g
    \"GPT-3.5-turbo\": {model: a, hidden: true}
    shown: {model: b}
    quoted: {model: b, hidden: \"false\"}
",
    ));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let alias = |name: &str, target: &str, hidden| Alias {
        name: name.to_string(),
        target: target.to_string(),
        hidden,
    };
    let mut aliases = loaded.config.router.model_group_alias.clone();
    aliases.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        aliases,
        [
            alias("GPT-3.5-turbo", "a", true),
            alias("gpt-4", "g", false),
            alias("quoted", "b", false),
            alias("shown", "b", false),
        ]
    );
}

#[test]
fn alias_errors() {
    assert_eq!(
        sorted(errors(&with_router(
            "  model_group_alias:
    gpt-3.5-turbo: nope
    a: b
    x: {hidden: true}
    y: [g]
    z:
"
        ))),
        [
            "router_settings.model_group_alias.a: alias \"a\" is also a model group name in model_list",
            "router_settings.model_group_alias.x.model: missing",
            "router_settings.model_group_alias.y: expected a string, got a list",
            "router_settings.model_group_alias.z: missing model group",
            "router_settings.model_group_alias[\"gpt-3.5-turbo\"]: target \"nope\" is not a model group in model_list",
        ]
    );
    assert_eq!(
        errors(&with_router("  model_group_alias: [a]\n")),
        ["router_settings.model_group_alias: expected a map of alias: model group, got a list"]
    );
}

#[test]
fn no_cascade_when_model_list_is_broken() {
    let yaml =
        "model_list: 5\nrouter_settings:\n  model_group_alias: {x: y}\n  fallbacks: [{x: [z]}]\n";
    assert_eq!(
        errors(yaml),
        ["model_list: expected a list of deployments, got 5"]
    );
}

#[test]
fn redis_host_port_password() {
    let loaded = load_with(
        &with_router("  redis_host: os.environ/REDIS_HOST\n  redis_port: os.environ/REDIS_PORT\n  redis_password: os.environ/REDIS_PASSWORD\n"),
        &[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", "6379"), ("REDIS_PASSWORD", "pw")],
    );
    assert_eq!(
        loaded.config.router.redis,
        Some(RedisSettings {
            url: None,
            host: Some("127.0.0.1".into()),
            port: Some(6379),
            password: Some("pw".into()),
            cluster_nodes: vec![],
        })
    );
}

#[test]
fn redis_url_and_startup_nodes() {
    let loaded = load(&with_router(
        "  redis_url: rediss://:pw@cache:6380/0
  redis_startup_nodes: [{host: 10.0.0.1, port: 7000}, \"10.0.0.2:7001\", {host: h, port: \"7002\"}]
",
    ));
    let redis = loaded.config.router.redis.expect("redis");
    assert_eq!(redis.url.as_deref(), Some("rediss://:pw@cache:6380/0"));
    assert_eq!(
        redis.cluster_nodes,
        ["10.0.0.1:7000", "10.0.0.2:7001", "h:7002"]
    );
    assert_eq!(
        errors(&with_router(
            "  redis_url: http://cache\n  redis_port: 70000\n  redis_startup_nodes: [\"h\", {host: h}, 5]\n"
        )),
        [
            "router_settings.redis_url: expected a redis:// or rediss:// URL, got \"http://cache\"",
            "router_settings.redis_port: expected a port (1-65535), got 70000",
            "router_settings.redis_startup_nodes[0]: expected \"host:port\", got \"h\"",
            "router_settings.redis_startup_nodes[1].port: missing",
            "router_settings.redis_startup_nodes[2]: expected a {host, port} map or \"host:port\", got 5",
        ]
    );
}

#[test]
fn redis_unset_in_the_environment_stays_off() {
    let loaded = load(&with_router(
        "  redis_host: os.environ/REDIS_HOST\n  redis_port: os.environ/REDIS_PORT\n",
    ));
    assert!(loaded.config.router.redis.is_none());
    assert_eq!(
        warnings(&loaded),
        [
            "router_settings.redis_host: os.environ/REDIS_HOST is not set",
            "router_settings.redis_port: os.environ/REDIS_PORT is not set",
        ]
    );
    let loaded = load(&with_router("  redis_port: 1992\n  redis_password: pw\n"));
    assert!(loaded.config.router.redis.is_none());
    assert_eq!(
        warnings(&loaded),
        ["router_settings: redis_port/redis_password given without redis_host, redis_url or redis_startup_nodes: Redis is not used"]
    );
}

#[test]
fn unsupported_and_unknown_router_keys_warn() {
    let loaded = load(&with_router(
        "  cache_responses: true\n  provider_budget_config: {}\n  redis_namespace: x\n  \
         optional_pre_call_checks: [router_budget_limiting]\n  frobnicate: 1\n",
    ));
    assert_eq!(
        sorted(warnings(&loaded)),
        [
            "router_settings.cache_responses: not supported by sluice, ignored",
            "router_settings.frobnicate: unknown key, ignored",
            "router_settings.optional_pre_call_checks: not supported by sluice, ignored",
            "router_settings.provider_budget_config: not supported by sluice, ignored",
            "router_settings.redis_namespace: not supported by sluice, ignored",
        ]
    );
}

#[test]
fn yaml_1_1_booleans_only_where_a_boolean_is_expected() {
    let loaded = load(
        "model_list:\n  - model_name: n\n    litellm_params: {model: y, header: on}\n\
         router_settings:\n  enable_pre_call_checks: on\n  disable_cooldowns: No\n",
    );
    let d = &loaded.config.model_list[0];
    assert_eq!((d.model_name.as_str(), d.model.as_str()), ("n", "y"));
    assert_eq!(d.public_params["header"], "on");
    assert!(loaded.config.router.enable_pre_call_checks);
    assert!(!loaded.config.router.disable_cooldowns);
}
