//! What `litellm_params.model` and `api_base` say about where a deployment lives.

use super::types::ProviderKind;

/// Prefixes sluice can serve, and the API family of each.
pub(crate) const SUPPORTED: &[(&str, ProviderKind)] = &[
    ("openai", ProviderKind::OpenAi),
    ("aiohttp_openai", ProviderKind::OpenAi),
    ("hosted_vllm", ProviderKind::OpenAi),
    ("custom_openai", ProviderKind::OpenAi),
    ("text-completion-openai", ProviderKind::OpenAi),
    ("azure", ProviderKind::Azure),
];

/// `model` split into provider and upstream model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelRef {
    /// API family.
    pub kind: ProviderKind,
    /// The prefix as written, `openai` for a bare name.
    pub provider_name: String,
    /// The name sent upstream.
    pub upstream_model: String,
}

/// Split `model` at its first `/`. A bare name is an OpenAI model; an unsupported
/// prefix or an empty name is an error message.
pub(crate) fn parse_model(model: &str) -> Result<ModelRef, String> {
    if model.trim().is_empty() {
        return Err("must not be empty".to_string());
    }
    let Some((prefix, rest)) = model.split_once('/') else {
        return Ok(ModelRef {
            kind: ProviderKind::OpenAi,
            provider_name: "openai".to_string(),
            upstream_model: model.to_string(),
        });
    };
    let Some(&(name, kind)) = SUPPORTED.iter().find(|(name, _)| *name == prefix) else {
        let names: Vec<&str> = SUPPORTED.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "provider {} is not supported (supported: {})",
            serde_json::Value::from(prefix),
            names.join(", ")
        ));
    };
    if rest.is_empty() {
        return Err(format!("no model name after \"{name}/\""));
    }
    Ok(ModelRef {
        kind,
        provider_name: name.to_string(),
        upstream_model: rest.to_string(),
    })
}

/// Whether `provider_name` needs an explicit `api_base` (no public default endpoint).
pub(crate) fn needs_api_base(provider_name: &str) -> bool {
    matches!(provider_name, "azure" | "hosted_vllm" | "custom_openai")
}

/// Environment variables LiteLLM reads for the `api_base` of a provider, in order.
pub(crate) fn api_base_env(provider_name: &str) -> &'static [&'static str] {
    match provider_name {
        "azure" => &["AZURE_API_BASE"],
        "hosted_vllm" => &["HOSTED_VLLM_API_BASE"],
        "custom_openai" => &[],
        _ => &["OPENAI_BASE_URL", "OPENAI_API_BASE"],
    }
}

/// The environment variable that holds the key of a provider when `api_key` is absent.
pub(crate) fn api_key_env(provider_name: &str) -> &'static str {
    match provider_name {
        "azure" => "AZURE_API_KEY",
        // A vLLM server is not OpenAI: never send it the OpenAI key.
        "hosted_vllm" => "HOSTED_VLLM_API_KEY",
        _ => "OPENAI_API_KEY",
    }
}

/// Check that `url` is `http(s)://host[:port][/path]` with nothing else (no user info,
/// query or fragment). The error says what is wrong.
pub(crate) fn check_base_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        &url[8..]
    } else {
        return Err("must start with http:// or https://".to_string());
    };
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("contains {c:?}"));
    }
    if url.contains('?') || url.contains('#') {
        return Err("must not have a query (?) or fragment (#)".to_string());
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not contain user info (user@); use api_key".to_string());
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err("has no host".to_string());
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("has an invalid port {port:?}")),
        }
    }
    Ok(())
}

/// `host[:port]` or `[v6]:port` into host and the port text.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = authority.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err("has an unclosed [ in its host".to_string());
        };
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("has an invalid IPv6 host [{v6}]"));
        }
        return match after {
            "" => Ok((v6, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((v6, Some(port))),
                None => Err("has text after its IPv6 host".to_string()),
            },
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if let Some(c) = host.chars().find(|c| !valid(*c)) {
        return Err(format!("has an invalid character {c:?} in its host"));
    }
    Ok((host, port))
}
