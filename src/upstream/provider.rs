//! What differs between providers: the URL of each endpoint and the auth header.
//! Computed once per deployment at config load, never on the request path.

use crate::config::{DeploymentConfig, ProviderKind};
use http::{HeaderName, HeaderValue, Uri};

/// The OpenAI-shaped endpoints sluice proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
}

impl Endpoint {
    /// All endpoints, in the order of their index.
    pub const ALL: [Endpoint; 3] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
    ];

    /// The path suffix appended to an `api_base`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }

    /// Position in per-deployment arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// OpenAI's API when a deployment names no `api_base`.
pub const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";

/// The upstream URL of `endpoint` for a deployment.
///
/// OpenAI-compatible: `api_base` without trailing `/`, plus the endpoint path; a base
/// that already ends with an endpoint path (the seeds' `aiohttp_openai` example gives
/// the full `.../chat/completions` URL) has it replaced. Azure: `{base}/openai/deployments/{name}{path}?api-version=`.
pub fn endpoint_url(dep: &DeploymentConfig, endpoint: Endpoint) -> Result<Uri, String> {
    let base = dep
        .api_base
        .as_deref()
        .unwrap_or(OPENAI_DEFAULT_BASE)
        .trim_end_matches('/');
    let url = match dep.provider {
        ProviderKind::OpenAi => format!("{}{}", strip_known_endpoint(base), endpoint.path()),
        ProviderKind::Azure => {
            let version = dep.api_version.as_deref().unwrap_or_default();
            format!(
                "{base}/openai/deployments/{}{}?api-version={}",
                dep.upstream_model,
                endpoint.path(),
                version
            )
        }
    };
    url.parse::<Uri>()
        .map_err(|e| format!("upstream URL {url:?} is not valid: {e}"))
}

/// A base that names one endpoint (`.../chat/completions`) serves the others beside
/// it. `ALL` lists `/chat/completions` before `/completions`, so the longer one wins.
fn strip_known_endpoint(base: &str) -> &str {
    Endpoint::ALL
        .iter()
        .find_map(|e| base.strip_suffix(e.path()))
        .unwrap_or(base)
}

/// The header that carries the deployment's key: `Authorization: Bearer` for
/// OpenAI-compatible upstreams, `api-key` for Azure. None without a key.
pub fn auth_header(dep: &DeploymentConfig) -> Result<Option<(HeaderName, HeaderValue)>, String> {
    let Some(key) = dep.api_key.as_deref().filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let (name, value) = match dep.provider {
        ProviderKind::OpenAi => (http::header::AUTHORIZATION, format!("Bearer {key}")),
        ProviderKind::Azure => (HeaderName::from_static("api-key"), key.to_string()),
    };
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "api_key contains characters not allowed in a header".to_string())?;
    value.set_sensitive(true);
    Ok(Some((name, value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderKind;

    fn dep(provider: ProviderKind, base: Option<&str>, model: &str) -> DeploymentConfig {
        let mut d = crate::router::tests_support::dep();
        d.provider = provider;
        d.api_base = base.map(Into::into);
        d.upstream_model = model.into();
        d.api_version = Some("2024-10-21".into());
        d
    }

    #[test]
    fn openai_urls_follow_litellm() {
        let chat = Endpoint::ChatCompletions;
        let d = dep(ProviderKind::OpenAi, Some("http://0.0.0.0:8080"), "m");
        assert_eq!(
            endpoint_url(&d, chat).unwrap(),
            "http://0.0.0.0:8080/chat/completions"
        );
        let d = dep(ProviderKind::OpenAi, Some("http://host/v1/"), "m");
        assert_eq!(
            endpoint_url(&d, chat).unwrap(),
            "http://host/v1/chat/completions"
        );
        let d = dep(ProviderKind::OpenAi, None, "m");
        assert_eq!(
            endpoint_url(&d, Endpoint::Embeddings).unwrap(),
            "https://api.openai.com/v1/embeddings"
        );
        let d = dep(
            ProviderKind::OpenAi,
            Some("https://h/chat/completions"),
            "m",
        );
        assert_eq!(
            endpoint_url(&d, chat).unwrap(),
            "https://h/chat/completions"
        );
        assert_eq!(
            endpoint_url(&d, Endpoint::Completions).unwrap(),
            "https://h/completions"
        );
    }

    #[test]
    fn azure_url_and_key_header() {
        let d = dep(
            ProviderKind::Azure,
            Some("https://r.openai.azure.com/"),
            "gpt-4o",
        );
        assert_eq!(
            endpoint_url(&d, Endpoint::ChatCompletions).unwrap(),
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        let (name, value) = auth_header(&d).unwrap().unwrap();
        assert_eq!(name, "api-key");
        assert_eq!(value, "k");
        let o = dep(ProviderKind::OpenAi, None, "m");
        assert_eq!(auth_header(&o).unwrap().unwrap().1, "Bearer k");
    }
}
