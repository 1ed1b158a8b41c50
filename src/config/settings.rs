//! `litellm_settings` and `general_settings`: the few keys sluice understands.

use super::env::Env;
use super::read::{self, Ctx, Section};
use super::types::{GeneralSettings, LitellmSettings};
use serde_json::Value;

/// `litellm_settings` keys that change nothing for a proxy that forwards OpenAI-shaped
/// requests as they are (logging verbosity, telemetry, dropping unknown params):
/// accepted without a warning.
pub(crate) const LITELLM_QUIET: &[&str] = &[
    "drop_params",
    "set_verbose",
    "suppress_debug_info",
    "telemetry",
];

/// Callbacks sluice implements.
pub(crate) const CALLBACKS: &[&str] = &["prometheus"];

/// Read `litellm_settings` (already env-resolved).
pub(crate) fn litellm_settings(ctx: &mut Ctx, v: Option<&Value>) -> LitellmSettings {
    let mut out = LitellmSettings::default();
    let Some(mut s) = Section::of(ctx, "litellm_settings", v) else {
        return out;
    };
    out.num_retries = s.read(ctx, "num_retries", read::unsigned32);
    out.request_timeout = s.read(ctx, "request_timeout", read::seconds);
    out.callbacks = s
        .read(ctx, "callbacks", read::string_list)
        .unwrap_or_default();
    for name in &out.callbacks {
        if !CALLBACKS.contains(&name.as_str()) {
            ctx.warn(
                &s.path_of("callbacks"),
                format!(
                    "callback {} is not supported by sluice, ignored",
                    Value::from(name.as_str())
                ),
            );
        }
    }
    out.json_logs = s.read(ctx, "json_logs", read::boolean).unwrap_or(false);
    for (key, _) in s.rest() {
        if !LITELLM_QUIET.contains(&key.as_str()) {
            ctx.warn(&s.path_of(key), "not supported by sluice, ignored");
        }
    }
    out
}

/// Read `general_settings` (already env-resolved); `master_key` falls back to the
/// environment's `LITELLM_MASTER_KEY`. An empty key counts as none.
pub(crate) fn general_settings(ctx: &mut Ctx, env: &Env<'_>, v: Option<&Value>) -> GeneralSettings {
    let mut out = GeneralSettings::default();
    if let Some(mut s) = Section::of(ctx, "general_settings", v) {
        out.master_key = s.read(ctx, "master_key", read::string);
        out.max_request_size_mb = s.read(ctx, "max_request_size_mb", positive);
        s.warn_rest(ctx, "not supported by sluice, ignored");
    }
    out.master_key = out
        .master_key
        .filter(|k| !k.is_empty())
        .or_else(|| env.get_non_empty("LITELLM_MASTER_KEY"));
    out
}

/// A number `> 0`.
fn positive(ctx: &mut Ctx, path: &str, v: &Value) -> Option<f64> {
    let x = read::number(ctx, path, v)?;
    if x <= 0.0 {
        ctx.error(
            path,
            format!("must be greater than 0, got {}", read::describe(v)),
        );
        return None;
    }
    Some(x)
}
