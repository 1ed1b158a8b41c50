//! The read-only endpoints: model lists, model and group info, health probes.
//! Shapes follow LiteLLM's; secrets never appear (`public_params` has them removed
//! at config load).

use crate::body::ProxyBody;
use crate::router::Group;
use crate::state::{App, Snapshot};
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

/// The `created` LiteLLM reports for every model.
const CREATED: u64 = 1677610602;

fn json_response(status: StatusCode, v: &Value) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::full(
        serde_json::to_vec(v).expect("a json value always serialises"),
    ));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Each listed name with its group: every group, then every alias not hidden.
fn listed(snap: &Snapshot) -> impl Iterator<Item = (&str, &Group)> {
    let groups = snap.groups.iter().map(|g| (g.name.as_str(), g));
    let aliases = snap
        .config
        .router
        .model_group_alias
        .iter()
        .filter(|a| !a.hidden)
        .filter_map(|a| {
            let g = snap.groups.iter().find(|g| g.name == a.target)?;
            Some((a.name.as_str(), g))
        });
    groups.chain(aliases)
}

/// GET /v1/models.
pub fn models(snap: &Snapshot) -> Response<ProxyBody> {
    let data: Vec<Value> = listed(snap)
        .map(|(name, _)| json!({"id": name, "object": "model", "created": CREATED, "owned_by": "openai"}))
        .collect();
    json_response(StatusCode::OK, &json!({"data": data, "object": "list"}))
}

/// GET /v1/model/info: one entry per deployment (and per listed alias of its group).
pub fn model_info(snap: &Snapshot) -> Response<ProxyBody> {
    let mut data = Vec::new();
    for (name, group) in listed(snap) {
        for &i in &group.members {
            let d = &snap.deployments[i].cfg;
            data.push(json!({
                "model_name": name,
                "litellm_params": d.public_params,
                "model_info": d.model_info,
            }));
        }
    }
    json_response(StatusCode::OK, &json!({"data": data}))
}

/// GET /v1/model_group/info: per group, providers and summed limits.
pub fn model_group_info(snap: &Snapshot) -> Response<ProxyBody> {
    let data: Vec<Value> = listed(snap)
        .map(|(name, group)| {
            let deps: Vec<_> = group
                .members
                .iter()
                .map(|&i| &snap.deployments[i].cfg)
                .collect();
            let mut providers: Vec<&str> = deps.iter().map(|d| d.provider_name.as_str()).collect();
            providers.sort_unstable();
            providers.dedup();
            let sum = |f: fn(&crate::config::DeploymentConfig) -> Option<u64>| {
                let vals: Vec<u64> = deps.iter().filter_map(|d| f(d)).collect();
                (!vals.is_empty()).then(|| vals.iter().fold(0, |a: u64, &v| a.saturating_add(v)))
            };
            let info_of = |key: &str| deps.iter().find_map(|d| d.model_info.get(key).cloned());
            let mut o = Map::new();
            o.insert("model_group".into(), json!(name));
            o.insert("providers".into(), json!(providers));
            o.insert(
                "max_input_tokens".into(),
                info_of("max_input_tokens").unwrap_or(Value::Null),
            );
            o.insert(
                "max_output_tokens".into(),
                info_of("max_output_tokens").unwrap_or(Value::Null),
            );
            o.insert(
                "input_cost_per_token".into(),
                json!(deps.iter().find_map(|d| d.input_cost_per_token)),
            );
            o.insert(
                "output_cost_per_token".into(),
                json!(deps.iter().find_map(|d| d.output_cost_per_token)),
            );
            o.insert(
                "mode".into(),
                info_of("mode").unwrap_or_else(|| json!("chat")),
            );
            o.insert("tpm".into(), json!(sum(|d| d.tpm)));
            o.insert("rpm".into(), json!(sum(|d| d.rpm)));
            Value::Object(o)
        })
        .collect();
    json_response(StatusCode::OK, &json!({"data": data}))
}

/// GET /health/liveliness and /health/liveness.
pub fn liveness() -> Response<ProxyBody> {
    json_response(StatusCode::OK, &json!("I'm alive!"))
}

/// GET /health/readiness: 200 while serving, 503 once draining.
pub fn readiness(app: &App, snap: &Snapshot) -> Response<ProxyBody> {
    let draining = app.draining.load(Ordering::Relaxed);
    let loaded = snap
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = json!({
        "status": if draining { "draining" } else { "healthy" },
        "db": "Not connected",
        "cache": null,
        "litellm_version": crate::VERSION,
        "sluice_version": crate::VERSION,
        "config_hash": snap.hash,
        "config_loaded_at": loaded,
        "redis": app.limit_mode().as_str(),
        "draining": draining,
    });
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json_response(status, &body)
}
