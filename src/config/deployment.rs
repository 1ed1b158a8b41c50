//! `model_list`: one [`DeploymentConfig`] per entry.

use super::env::Env;
use super::identity::{generated_id, public_params};
use super::provider::{
    api_base_env, api_key_env, check_base_url, needs_api_base, parse_model, ModelRef,
};
use super::read::{self, describe, join_index, Ctx, Section};
use super::types::{DeploymentConfig, ProviderKind};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The Azure API version used when neither `api_version` nor `AZURE_API_VERSION` is set.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// What reading `model_list` gave.
pub(crate) struct ModelList {
    /// The entries that read without error, in file order.
    pub deployments: Vec<DeploymentConfig>,
    /// Every `model_name` seen, also of entries with errors (so cross-checks do not
    /// report a group as unknown only because one of its entries is broken).
    pub groups: Vec<String>,
}

/// Read `model_list` (already env-resolved).
pub(crate) fn model_list(ctx: &mut Ctx, env: &Env<'_>, v: Option<&Value>) -> ModelList {
    let mut out = ModelList {
        deployments: Vec::new(),
        groups: Vec::new(),
    };
    let items = match v {
        None | Some(Value::Null) => {
            ctx.error("model_list", "missing");
            return out;
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            ctx.error(
                "model_list",
                format!("expected a list of deployments, got {}", describe(other)),
            );
            return out;
        }
    };
    if items.is_empty() {
        ctx.error("model_list", "empty: at least one deployment is needed");
    }
    // id -> (index of the first entry with it, whether it was generated)
    let mut seen: BTreeMap<String, (usize, bool)> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let errors_before = ctx.errors.len();
        let entry = deployment(ctx, env, i, item);
        if let Some(group) = &entry.group {
            out.groups.push(group.clone());
        }
        if let Some((id, generated)) = &entry.id {
            match seen.get(id) {
                Some(&(first, true)) if *generated => ctx.error(
                    &join_index("model_list", i),
                    format!(
                        "same model_name and litellm_params as model_list[{first}], so both \
                         get the generated id \"{id}\"; give one a distinct model_info.id"
                    ),
                ),
                Some(&(first, _)) => ctx.error(
                    &format!("model_list[{i}].model_info.id"),
                    format!(
                        "duplicate deployment id {} (also model_list[{first}])",
                        Value::from(id.as_str())
                    ),
                ),
                None => {
                    seen.insert(id.clone(), (i, *generated));
                }
            }
        }
        if ctx.errors.len() == errors_before {
            out.deployments.extend(entry.config);
        }
    }
    out
}

/// One entry, as far as it could be read.
struct Entry {
    /// `model_name`, if readable.
    group: Option<String>,
    /// The id, and whether it was generated, if it could be worked out.
    id: Option<(String, bool)>,
    /// The whole deployment, if every part read (errors may still have been recorded).
    config: Option<DeploymentConfig>,
}

fn deployment(ctx: &mut Ctx, env: &Env<'_>, i: usize, v: &Value) -> Entry {
    let path = join_index("model_list", i);
    let mut entry = Entry {
        group: None,
        id: None,
        config: None,
    };
    let Value::Object(map) = v else {
        ctx.error(
            &path,
            format!(
                "expected a map with model_name and litellm_params, got {}",
                describe(v)
            ),
        );
        return entry;
    };
    let mut top = Section::new(map, path.as_str());
    let model_name = top.require(ctx, "model_name", read::string);
    entry.group = model_name.clone();
    let params_path = top.path_of("litellm_params");
    let mut params = match top.get("litellm_params") {
        None => {
            ctx.error(&params_path, "missing");
            None
        }
        Some(v) => Section::of(ctx, &params_path, Some(v)),
    };
    let info = top.section(ctx, "model_info");
    let top_rpm = top.read(ctx, "rpm", read::unsigned);
    let top_tpm = top.read(ctx, "tpm", read::unsigned);
    top.warn_rest(ctx, "unknown key, ignored");

    let info_map = info.as_ref().map(|s| s.map.clone()).unwrap_or_default();
    let mut info_rpm = None;
    let mut info_tpm = None;
    let mut explicit_id = None;
    if let Some(mut info) = info {
        explicit_id = info.read(ctx, "id", id_value);
        info_rpm = info.read(ctx, "rpm", read::unsigned);
        info_tpm = info.read(ctx, "tpm", read::unsigned);
    }
    let read_params = match params.as_mut() {
        Some(p) => litellm_params(ctx, env, p),
        None => None,
    };
    let (Some(model_name), Some(params)) = (model_name, params) else {
        return entry;
    };
    let (id, generated) = match explicit_id {
        Some(id) => (id, false),
        // An id that is there but unreadable: already an error.
        None if info_map.get("id").is_some_and(|v| !v.is_null()) => return entry,
        None => (generated_id(&model_name, params.map), true),
    };
    entry.id = Some((id.clone(), generated));
    let Some(p) = read_params else {
        return entry;
    };
    let mut model_info = info_map;
    model_info.insert("id".to_string(), Value::from(id.as_str()));
    entry.config = Some(DeploymentConfig {
        model_name,
        model: p.model,
        provider: p.model_ref.kind,
        provider_name: p.model_ref.provider_name,
        upstream_model: p.model_ref.upstream_model,
        api_base: p.api_base,
        api_key: p.api_key,
        api_version: p.api_version,
        rpm: p.rpm.or(top_rpm).or(info_rpm),
        tpm: p.tpm.or(top_tpm).or(info_tpm),
        weight: p.weight,
        order: p.order,
        timeout: p.timeout,
        stream_timeout: p.stream_timeout,
        max_retries: p.max_retries,
        cooldown_time: p.cooldown_time,
        max_parallel_requests: p.max_parallel_requests,
        mock_response: p.mock_response,
        input_cost_per_token: p.input_cost_per_token,
        output_cost_per_token: p.output_cost_per_token,
        id,
        model_info,
        public_params: public_params(params.map),
    });
    entry
}

/// `model_info.id`: a non-empty string, or a number written out.
fn id_value(ctx: &mut Ctx, path: &str, v: &Value) -> Option<String> {
    let id = read::string(ctx, path, v)?;
    if id.trim().is_empty() {
        ctx.error(path, "must not be empty");
        return None;
    }
    Some(id)
}

/// The `litellm_params` fields sluice uses.
struct Params {
    model: String,
    model_ref: ModelRef,
    api_base: Option<String>,
    api_key: Option<String>,
    api_version: Option<String>,
    rpm: Option<u64>,
    tpm: Option<u64>,
    weight: Option<f64>,
    order: Option<u32>,
    timeout: Option<Duration>,
    stream_timeout: Option<Duration>,
    max_retries: Option<u32>,
    cooldown_time: Option<Duration>,
    max_parallel_requests: Option<u32>,
    mock_response: Option<String>,
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
}

/// Read `litellm_params`; None when something required is missing or wrong (errors
/// are recorded for every field, not only the first).
fn litellm_params(ctx: &mut Ctx, env: &Env<'_>, p: &mut Section<'_>) -> Option<Params> {
    let model = p.require(ctx, "model", read::string);
    let model_path = p.path_of("model");
    let model_ref = model.as_deref().and_then(|m| match parse_model(m) {
        Ok(r) => Some(r),
        Err(e) => {
            ctx.error(&model_path, e);
            None
        }
    });
    // As with LiteLLM's `api_base or <default>`, an empty string counts as absent.
    let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let base_path = p.path_of("api_base");
    let mut api_base = non_empty(p.read(ctx, "api_base", read::string));
    if let Some(base) = &api_base {
        if let Err(e) = check_base_url(base) {
            ctx.error(
                &base_path,
                format!("{e}, got {}", describe(&Value::from(base.as_str()))),
            );
        }
    }
    let api_key = non_empty(p.read(ctx, "api_key", read::string));
    let version_path = p.path_of("api_version");
    let api_version = non_empty(p.read(ctx, "api_version", read::string));
    let params = Params {
        rpm: p.read(ctx, "rpm", read::unsigned),
        tpm: p.read(ctx, "tpm", read::unsigned),
        weight: p.read(ctx, "weight", read::non_negative),
        order: p.read(ctx, "order", read::unsigned32),
        timeout: p.read(ctx, "timeout", read::seconds),
        stream_timeout: p.read(ctx, "stream_timeout", read::seconds),
        max_retries: p.read(ctx, "max_retries", read::unsigned32),
        cooldown_time: p.read(ctx, "cooldown_time", read::seconds),
        max_parallel_requests: p.read(ctx, "max_parallel_requests", read::unsigned32),
        mock_response: p.read(ctx, "mock_response", read::string),
        input_cost_per_token: p.read(ctx, "input_cost_per_token", read::non_negative),
        output_cost_per_token: p.read(ctx, "output_cost_per_token", read::non_negative),
        model: model?,
        model_ref: model_ref?,
        api_base: None,
        api_key: None,
        api_version: None,
    };
    if p.get("litellm_credential_name").is_some() {
        ctx.warn(
            &p.path_of("litellm_credential_name"),
            "credentials (credential_list) are not supported by sluice, ignored",
        );
    }
    let provider = params.model_ref.provider_name.as_str();
    if api_base.is_none() {
        api_base = api_base_env(provider)
            .iter()
            .find_map(|name| env.get_non_empty(name));
        if let Some(base) = &api_base {
            if let Err(e) = check_base_url(base) {
                ctx.error(
                    &base_path,
                    format!(
                        "{e}, got {} (from the environment)",
                        describe(&Value::from(base.as_str()))
                    ),
                );
            }
        } else if needs_api_base(provider) {
            ctx.error(&base_path, format!("missing (required for {provider})"));
        }
    }
    let api_key = api_key.or_else(|| env.get_non_empty(api_key_env(provider)));
    let mut api_version = api_version;
    if params.model_ref.kind == ProviderKind::Azure && api_version.is_none() {
        api_version = env.get_non_empty("AZURE_API_VERSION").or_else(|| {
            ctx.warn(
                &version_path,
                format!("missing, using {DEFAULT_AZURE_API_VERSION}"),
            );
            Some(DEFAULT_AZURE_API_VERSION.to_string())
        });
    }
    Some(Params {
        api_base,
        api_key,
        api_version,
        ..params
    })
}
