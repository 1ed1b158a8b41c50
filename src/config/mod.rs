//! Loading a LiteLLM proxy config file.
//!
//! The pipeline, one file per step:
//! - `yaml`: text to a generic tree (`serde_json::Value`); a syntax error stops here.
//! - `env`: `environment_variables` and every `os.environ/NAME` string in the tree.
//! - `deployment` (with `provider`, `identity`): `model_list` entries.
//! - `router` (with `checks`), `settings`: the settings sections.
//! - `read`: the typed reads shared by all of them, which record every error with its
//!   path (`model_list[1].litellm_params.rpm`) instead of stopping at the first.
//!
//! The result is a [`Config`] (see [`types`]) plus warnings for whatever sluice ignores.

mod checks;
mod deployment;
mod env;
mod identity;
mod provider;
mod read;
mod router;
mod settings;
#[cfg(test)]
mod tests;
pub mod types;
mod yaml;

pub use deployment::DEFAULT_AZURE_API_VERSION;
pub use types::*;

use env::Env;
use read::{describe, Ctx};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// The top-level sections sluice reads.
const SECTIONS: &[&str] = &[
    "model_list",
    "router_settings",
    "litellm_settings",
    "general_settings",
    "environment_variables",
];

/// Top-level sections of LiteLLM's proxy config that sluice does not implement.
const UNSUPPORTED_SECTIONS: &[&str] = &[
    "assistant_settings",
    "callback_settings",
    "credential_list",
    "files_settings",
    "finetune_settings",
    "guardrails",
    "include",
    "mcp_servers",
];

/// A loaded config plus what the user should be told about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Things sluice ignores or that look wrong but are allowed, with their paths.
    pub warnings: Vec<ConfigWarning>,
    /// sha256 hex (first 12 chars) of the file bytes: identifies the config version.
    pub hash: String,
}

/// Load the config file at `path`, looking up `os.environ/` references and defaults in
/// the process environment. An unreadable file is one error with an empty path.
pub fn load_file(path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let whole_file = |message: String| {
        vec![ConfigError {
            path: String::new(),
            message,
        }]
    };
    let bytes = std::fs::read(path)
        .map_err(|e| whole_file(format!("cannot read {}: {e}", path.display())))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| whole_file(format!("{} is not UTF-8 text: {e}", path.display())))?;
    load_str(text, &|name| std::env::var(name).ok())
}

/// Load a config from its text. `env` looks up an environment variable (tests pass a
/// map; [`load_file`] passes `std::env::var`). Every error is reported, not only the
/// first.
pub fn load_str(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Vec<ConfigError>> {
    let mut ctx = Ctx::default();
    let hash = identity::sha256_hex(text.as_bytes())[..12].to_string();
    let Some(tree) = yaml::parse(&mut ctx, text) else {
        return Err(ctx.errors);
    };
    let top = match tree {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => {
            ctx.error(
                "",
                format!(
                    "expected a map of sections (model_list, router_settings, ...), got {}",
                    describe(&other)
                ),
            );
            return Err(ctx.errors);
        }
    };
    for key in top.keys() {
        if UNSUPPORTED_SECTIONS.contains(&key.as_str()) {
            ctx.warn(&read::join_key("", key), "not supported by sluice, ignored");
        } else if !SECTIONS.contains(&key.as_str()) {
            ctx.warn(&read::join_key("", key), "unknown key, ignored");
        }
    }

    let mut env = Env::new(env);
    env.load_overrides(&mut ctx, top.get("environment_variables"));
    let mut sections: Map<String, Value> = Map::new();
    for &name in SECTIONS.iter().filter(|&&n| n != "environment_variables") {
        if let Some(v) = top.get(name) {
            let mut v = v.clone();
            env::resolve(&mut ctx, &env, name, &mut v);
            sections.insert(name.to_string(), v);
        }
    }

    let list = deployment::model_list(&mut ctx, &env, sections.get("model_list"));
    let groups: BTreeSet<String> = list.groups.into_iter().collect();
    let router = router::router_settings(&mut ctx, sections.get("router_settings"), &groups);
    let litellm = settings::litellm_settings(&mut ctx, sections.get("litellm_settings"));
    let general = settings::general_settings(&mut ctx, &env, sections.get("general_settings"));
    if !ctx.errors.is_empty() {
        return Err(ctx.errors);
    }
    Ok(Loaded {
        config: Config {
            model_list: list.deployments,
            router,
            litellm,
            general,
        },
        warnings: ctx.warnings,
        hash,
    })
}
