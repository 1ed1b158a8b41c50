//! Model groups and how a request is routed to one of their deployments.
//!
//! A requested model names a group, an alias of a group, or one deployment by id.
//! A group picks among its deployments by its strategy; retries exclude the
//! deployments already tried while others remain.

pub mod shuffle;

use crate::state::Deployment;
use http::HeaderValue;
use shuffle::Shuffle;
use std::sync::Arc;

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
    /// Weighted random choice over `members`.
    shuffle: Shuffle,
}

impl Group {
    /// An empty group; members are added by the snapshot builder, then `finish`.
    pub fn new(name: &str) -> Group {
        Group {
            name: name.to_string(),
            header: HeaderValue::from_str(name)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid-header-value")),
            members: Vec::new(),
            shuffle: Shuffle::default(),
        }
    }

    /// Computes the pick tables once all members are known.
    pub fn finish(&mut self, deployments: &[Arc<Deployment>]) {
        let cfgs: Vec<_> = self.members.iter().map(|&i| &deployments[i].cfg).collect();
        self.shuffle = Shuffle::new(&cfgs);
    }

    /// Picks a deployment index, avoiding those in `tried` while any other remains.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let slot = if tried.is_empty() {
            self.shuffle.pick()
        } else {
            let excluded: Vec<bool> = self.members.iter().map(|m| tried.contains(m)).collect();
            self.shuffle
                .pick_excluding(&excluded)
                .or_else(|| self.shuffle.pick())
        }?;
        Some(self.members[slot])
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
