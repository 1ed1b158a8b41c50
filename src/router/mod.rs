//! Model groups and how a request is routed to one of their deployments.
//!
//! A requested model names a group, an alias of a group, or one deployment by id.
//! A group picks among its deployments by the router's strategy (`strategy`), after
//! filtering out what cannot take the request (`pick`); when the group fails, its
//! fallback groups are tried in order.

pub mod pick;
pub mod strategy;
pub mod weights;

use http::HeaderValue;

/// Where a requested model name leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A model group (by its name or an alias), by index in `Snapshot::groups`.
    Group(usize),
    /// One deployment, by index in `Snapshot::deployments`.
    Deployment(usize),
}

/// A model group: the deployments sharing one `model_name`.
#[derive(Debug)]
pub struct Group {
    /// The group name (`model_name`).
    pub name: String,
    /// `x-litellm-model-group` value.
    pub header: HeaderValue,
    /// Indices into `Snapshot::deployments`, in file order.
    pub members: Vec<usize>,
    /// Groups to try, in order, when this one fails (`fallbacks`, `"*"` or
    /// `default_fallbacks`), at most `max_fallbacks`.
    pub fallbacks: Vec<usize>,
    /// Groups to try when the prompt is too large for this one.
    pub context_fallbacks: Vec<usize>,
    /// Whether any member has an rpm or tpm (then responses carry x-ratelimit headers).
    pub has_limits: bool,
}

impl Group {
    /// An empty group; the snapshot builder fills in members and fallbacks.
    pub fn new(name: &str) -> Group {
        Group {
            name: name.to_string(),
            header: HeaderValue::from_str(name)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid-header-value")),
            members: Vec::new(),
            fallbacks: Vec::new(),
            context_fallbacks: Vec::new(),
            has_limits: false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use crate::config::{DeploymentConfig, ProviderKind};

    /// A minimal OpenAI deployment for unit tests.
    pub fn dep() -> DeploymentConfig {
        DeploymentConfig {
            model_name: "g".into(),
            model: "openai/m".into(),
            provider: ProviderKind::OpenAi,
            provider_name: "openai".into(),
            upstream_model: "m".into(),
            api_base: Some("http://127.0.0.1:1".into()),
            api_key: Some("k".into()),
            api_version: None,
            rpm: None,
            tpm: None,
            weight: None,
            order: None,
            timeout: None,
            stream_timeout: None,
            max_retries: None,
            cooldown_time: None,
            max_parallel_requests: None,
            mock_response: None,
            input_cost_per_token: None,
            output_cost_per_token: None,
            id: "id".into(),
            model_info: Default::default(),
            public_params: Default::default(),
        }
    }
}
