//! `router_settings`: strategy, retries, cooldowns, fallbacks, aliases, Redis.

use super::checks::{check_aliases, check_fallback, check_targets, Known};
use super::read::{self, describe, join_index, join_key, Ctx, Section};
use super::types::{Alias, RedisSettings, RouterSettings, Strategy};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Every strategy, in the order error messages list them.
pub(crate) const STRATEGIES: &[Strategy] = &[
    Strategy::SimpleShuffle,
    Strategy::LeastBusy,
    Strategy::UsageBasedRouting,
    Strategy::UsageBasedRoutingV2,
    Strategy::LatencyBasedRouting,
    Strategy::CostBasedRouting,
];

/// LiteLLM router settings sluice does not implement (warned about, then ignored).
pub(crate) const UNSUPPORTED: &[&str] = &[
    "alerting_config",
    "allowed_fails_policy",
    "assistants_config",
    "cache_kwargs",
    "cache_responses",
    "caching_groups",
    "client_ttl",
    "content_policy_fallbacks",
    "debug_level",
    "default_deployment",
    "default_litellm_params",
    "default_max_parallel_requests",
    "default_priority",
    "enable_tag_filtering",
    "ignore_invalid_deployments",
    "model_group_retry_policy",
    "optional_pre_call_checks",
    "polling_interval",
    "provider_budget_config",
    "redis_db",
    "redis_namespace",
    "redis_ssl",
    "redis_username",
    "retry_policy",
    "router_general_settings",
    "set_verbose",
    "tag_filtering_match_any",
];

impl Default for RouterSettings {
    /// LiteLLM's defaults: simple-shuffle, `retry_after` 0, `allowed_fails` 3,
    /// `cooldown_time` 5 s, `max_fallbacks` 5, no pre-call checks, no Redis.
    fn default() -> Self {
        RouterSettings {
            routing_strategy: Strategy::SimpleShuffle,
            routing_strategy_args: Map::new(),
            num_retries: None,
            timeout: None,
            stream_timeout: None,
            retry_after: Duration::ZERO,
            allowed_fails: 3,
            cooldown_time: Duration::from_secs(5),
            disable_cooldowns: false,
            fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            default_fallbacks: Vec::new(),
            max_fallbacks: 5,
            enable_pre_call_checks: false,
            model_group_alias: Vec::new(),
            redis: None,
        }
    }
}

/// Read `router_settings` (already env-resolved); absent gives the defaults. Aliases
/// and fallbacks are checked against `groups`, the model groups of `model_list`.
pub(crate) fn router_settings(
    ctx: &mut Ctx,
    v: Option<&Value>,
    groups: &BTreeSet<String>,
) -> RouterSettings {
    let mut out = RouterSettings::default();
    let Some(mut s) = Section::of(ctx, "router_settings", v) else {
        return out;
    };
    if let Some(strategy) = s.read(ctx, "routing_strategy", parse_strategy) {
        out.routing_strategy = strategy;
    }
    if let Some(args) = s.section(ctx, "routing_strategy_args") {
        out.routing_strategy_args = args.map.clone();
    }
    out.num_retries = s.read(ctx, "num_retries", read::unsigned32);
    out.timeout = s.read(ctx, "timeout", read::seconds);
    out.stream_timeout = s.read(ctx, "stream_timeout", read::seconds);
    if let Some(d) = s.read(ctx, "retry_after", read::seconds) {
        out.retry_after = d;
    }
    if let Some(n) = s.read(ctx, "allowed_fails", read::unsigned32) {
        out.allowed_fails = n;
    }
    if let Some(d) = s.read(ctx, "cooldown_time", read::seconds) {
        out.cooldown_time = d;
    }
    if let Some(b) = s.read(ctx, "disable_cooldowns", read::boolean) {
        out.disable_cooldowns = b;
    }
    out.model_group_alias = s
        .read(ctx, "model_group_alias", aliases)
        .unwrap_or_default();
    check_aliases(
        ctx,
        &s.path_of("model_group_alias"),
        &out.model_group_alias,
        groups,
    );
    let known = Known {
        groups,
        aliases: out
            .model_group_alias
            .iter()
            .map(|a| a.name.clone())
            .collect(),
    };
    if let Some(v) = s.get("fallbacks") {
        out.fallbacks = fallbacks(ctx, &s.path_of("fallbacks"), v, &known);
    }
    if let Some(v) = s.get("context_window_fallbacks") {
        let path = s.path_of("context_window_fallbacks");
        out.context_window_fallbacks = fallbacks(ctx, &path, v, &known);
    }
    if let Some(v) = s.get("default_fallbacks") {
        let path = s.path_of("default_fallbacks");
        if let Some(list) = read::string_list(ctx, &path, v) {
            check_targets(ctx, &path, v, &list, &known);
            out.default_fallbacks = list;
        }
    }
    if let Some(n) = s.read(ctx, "max_fallbacks", read::unsigned32) {
        out.max_fallbacks = n;
    }
    if let Some(b) = s.read(ctx, "enable_pre_call_checks", read::boolean) {
        out.enable_pre_call_checks = b;
    }
    out.redis = redis(ctx, &mut s);
    for (key, _) in s.rest() {
        let message = if UNSUPPORTED.contains(&key.as_str()) {
            "not supported by sluice, ignored"
        } else {
            "unknown key, ignored"
        };
        ctx.warn(&s.path_of(key), message);
    }
    out
}

fn parse_strategy(ctx: &mut Ctx, path: &str, v: &Value) -> Option<Strategy> {
    let name = read::string(ctx, path, v)?;
    let found = STRATEGIES.iter().find(|s| s.as_str() == name.trim());
    if found.is_none() {
        let names: Vec<&str> = STRATEGIES.iter().map(|s| s.as_str()).collect();
        ctx.error(
            path,
            format!(
                "unknown strategy {} (expected one of {})",
                describe(v),
                names.join(", ")
            ),
        );
    }
    found.copied()
}

/// `[{group: [fallback, ...]}, ...]`; a target may be a single string. A map with
/// several keys gives one entry per key, in order. Names are checked against `known`.
fn fallbacks(
    ctx: &mut Ctx,
    path: &str,
    v: &Value,
    known: &Known<'_>,
) -> Vec<(String, Vec<String>)> {
    let Value::Array(items) = v else {
        ctx.error(
            path,
            format!(
                "expected a list of {{group: [fallback groups]}} maps, got {}",
                describe(v)
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = join_index(path, i);
        let Value::Object(map) = item else {
            ctx.error(
                &item_path,
                format!(
                    "expected a map {{group: [fallback groups]}}, got {}",
                    describe(item)
                ),
            );
            continue;
        };
        if map.is_empty() {
            ctx.error(&item_path, "empty map: expected {group: [fallback groups]}");
        }
        for (group, targets) in map {
            let group_path = join_key(&item_path, group);
            if let Some(list) = read::string_list(ctx, &group_path, targets) {
                check_fallback(ctx, &group_path, group, targets, &list, known);
                out.push((group.clone(), list));
            }
        }
    }
    out
}

/// `{alias: group}` or `{alias: {model: group, hidden: bool}}`.
fn aliases(ctx: &mut Ctx, path: &str, v: &Value) -> Option<Vec<Alias>> {
    let Value::Object(map) = v else {
        ctx.error(
            path,
            format!("expected a map of alias: model group, got {}", describe(v)),
        );
        return None;
    };
    let mut out = Vec::new();
    for (name, target) in map {
        let alias_path = join_key(path, name);
        let alias = match target {
            Value::Object(m) => {
                let mut s = Section::new(m, alias_path.as_str());
                let target = s.require(ctx, "model", read::string);
                let hidden = s.read(ctx, "hidden", read::boolean).unwrap_or(false);
                s.warn_rest(ctx, "unknown key, ignored");
                target.map(|target| Alias {
                    name: name.clone(),
                    target,
                    hidden,
                })
            }
            Value::Null => {
                ctx.error(&alias_path, "missing model group");
                None
            }
            other => read::string(ctx, &alias_path, other).map(|target| Alias {
                name: name.clone(),
                target,
                hidden: false,
            }),
        };
        out.extend(alias);
    }
    Some(out)
}

/// The Redis settings, if any place to connect to is given: `redis_url`, `redis_host`
/// or `redis_startup_nodes`. A port or password alone is warned about and unused.
/// Empty strings (a variable set to "") count as absent.
fn redis(ctx: &mut Ctx, s: &mut Section<'_>) -> Option<RedisSettings> {
    let url_path = s.path_of("redis_url");
    let url = s.read(ctx, "redis_url", read::string);
    if let Some(u) = &url {
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
            ctx.error(
                &url_path,
                format!(
                    "expected a redis:// or rediss:// URL, got {}",
                    describe(&Value::from(u.as_str()))
                ),
            );
        }
    }
    let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let settings = RedisSettings {
        url: non_empty(url),
        host: non_empty(s.read(ctx, "redis_host", read::string)),
        port: s.read(ctx, "redis_port", read::port),
        password: non_empty(s.read(ctx, "redis_password", read::string)),
        cluster_nodes: s
            .read(ctx, "redis_startup_nodes", startup_nodes)
            .unwrap_or_default(),
    };
    if settings.url.is_some() || settings.host.is_some() || !settings.cluster_nodes.is_empty() {
        return Some(settings);
    }
    if settings.port.is_some() || settings.password.is_some() {
        ctx.warn(
            &s.path,
            "redis_port/redis_password given without redis_host, redis_url or \
             redis_startup_nodes: Redis is not used",
        );
    }
    None
}

/// `[{host: h, port: p}, "h:p", ...]` as `host:port` strings.
fn startup_nodes(ctx: &mut Ctx, path: &str, v: &Value) -> Option<Vec<String>> {
    let Value::Array(items) = v else {
        ctx.error(
            path,
            format!(
                "expected a list of {{host, port}} maps or \"host:port\" strings, got {}",
                describe(v)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = join_index(path, i);
        match item {
            Value::Object(m) => {
                let mut node = Section::new(m, item_path.as_str());
                let host = node.require(ctx, "host", read::string);
                let port = node.require(ctx, "port", read::port);
                node.warn_rest(ctx, "unknown key, ignored");
                if let (Some(host), Some(port)) = (host, port) {
                    out.push(format!("{host}:{port}"));
                }
            }
            Value::String(text) => match text.rsplit_once(':') {
                Some((host, port))
                    if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) =>
                {
                    out.push(text.clone())
                }
                _ => ctx.error(
                    &item_path,
                    format!("expected \"host:port\", got {}", describe(item)),
                ),
            },
            other => ctx.error(
                &item_path,
                format!(
                    "expected a {{host, port}} map or \"host:port\", got {}",
                    describe(other)
                ),
            ),
        }
    }
    Some(out)
}
