//! Deployment ids and the public (secret-free) view of `litellm_params`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// sha256 of `bytes`, as lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The id of a deployment without `model_info.id`: sha256 hex of the canonical JSON
/// (keys sorted at every level, no spaces) of `{"litellm_params": .., "model_name": ..}`.
///
/// Stable across runs and reloads; any change of name or parameter gives a new id.
/// Changing this scheme changes every generated id (and so drops runtime stats).
pub(crate) fn generated_id(model_name: &str, litellm_params: &Map<String, Value>) -> String {
    let mut text = String::new();
    text.push_str("{\"litellm_params\":");
    canonical(&mut text, &Value::Object(litellm_params.clone()));
    text.push_str(",\"model_name\":");
    canonical(&mut text, &Value::from(model_name));
    text.push('}');
    sha256_hex(text.as_bytes())
}

/// Write `v` as JSON with object keys sorted, whatever order the map keeps them in.
pub(crate) fn canonical(out: &mut String, v: &Value) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                canonical(out, &map[key]);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Whether a parameter name holds a secret.
///
/// The name is lowercased and split into words at `_`, `-`, `.` and spaces. It is a
/// secret when a word is `key`, `apikey`, `secret(s)`, `token`, `authorization` or
/// `cookie`, or contains `password`, `passwd` or `credential`. `token` counts only as
/// the last word and not after `per`, so counts and prices such as `max_tokens`,
/// `input_cost_per_token` or `token_count` stay visible while `aws_session_token`
/// and `azure_ad_token` go.
pub(crate) fn is_secret_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(['_', '-', '.', ' '])
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().any(|(i, w)| {
        let exact = matches!(
            *w,
            "key" | "apikey" | "secret" | "secrets" | "authorization" | "cookie"
        );
        let partial = ["password", "passwd", "credential"]
            .iter()
            .any(|p| w.contains(p));
        let token = *w == "token" && i + 1 == words.len() && (i == 0 || words[i - 1] != "per");
        exact || partial || token
    })
}

/// `params` without secrets, at every level (headers maps included).
pub(crate) fn public_params(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .filter(|(k, _)| !is_secret_key(k))
        .map(|(k, v)| (k.clone(), scrub(v)))
        .collect()
}

fn scrub(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(public_params(map)),
        Value::Array(items) => Value::Array(items.iter().map(scrub).collect()),
        other => other.clone(),
    }
}
