//! The typed form of a LiteLLM proxy config, after `os.environ/` resolution and
//! validation. Everything here is plain data; `crate::state` turns it into the
//! runtime `Snapshot` the request path reads.

use serde_json::{Map, Value};
use std::time::Duration;

/// A whole, validated config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// One entry per `model_list[]` item, in file order.
    pub model_list: Vec<DeploymentConfig>,
    /// `router_settings`, with LiteLLM's defaults filled in.
    pub router: RouterSettings,
    /// The `litellm_settings` keys sluice understands.
    pub litellm: LitellmSettings,
    /// The `general_settings` keys sluice understands.
    pub general: GeneralSettings,
}

/// The API family a deployment speaks, from the `provider/` prefix of `litellm_params.model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI's API shape: `openai/`, `aiohttp_openai/`, `hosted_vllm/`,
    /// `custom_openai/`, `text-completion-openai/` or a bare model name.
    OpenAi,
    /// Azure OpenAI: deployment URL, `api-version` query, `api-key` header.
    Azure,
}

/// One `model_list[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentConfig {
    /// `model_name`: the model group clients ask for.
    pub model_name: String,
    /// `litellm_params.model` exactly as written, e.g. `azure/gpt-4o`.
    pub model: String,
    /// API family derived from the prefix.
    pub provider: ProviderKind,
    /// The prefix as written (`openai`, `hosted_vllm`, `azure`, ...); `openai` for a bare name.
    pub provider_name: String,
    /// `model` with the provider prefix stripped: the value sent upstream in the body.
    pub upstream_model: String,
    /// `api_base` (trailing `/` kept as written; URL building strips it). None: provider default.
    pub api_base: Option<String>,
    /// `api_key` (for a bare/`openai/` model without one: env `OPENAI_API_KEY`; azure: `AZURE_API_KEY`).
    pub api_key: Option<String>,
    /// `api_version` (azure; env `AZURE_API_VERSION` when absent).
    pub api_version: Option<String>,
    /// Requests per minute (litellm_params, deployment top level or model_info).
    pub rpm: Option<u64>,
    /// Tokens per minute (same places as rpm).
    pub tpm: Option<u64>,
    /// Relative weight for simple-shuffle.
    pub weight: Option<f64>,
    /// Priority tier: lower is preferred.
    pub order: Option<u32>,
    /// Per-deployment request timeout.
    pub timeout: Option<Duration>,
    /// Per-deployment timeout for streaming requests.
    pub stream_timeout: Option<Duration>,
    /// `max_retries` (LiteLLM passes it to the provider client).
    pub max_retries: Option<u32>,
    /// Per-deployment cooldown duration.
    pub cooldown_time: Option<Duration>,
    /// Cap on concurrent requests to this deployment.
    pub max_parallel_requests: Option<u32>,
    /// Answer with this text instead of calling the upstream.
    pub mock_response: Option<String>,
    /// Cost per input token (cost-based routing, model_group/info).
    pub input_cost_per_token: Option<f64>,
    /// Cost per output token.
    pub output_cost_per_token: Option<f64>,
    /// `model_info.id`, else a stable hash of model_name and litellm_params.
    pub id: String,
    /// `model_info` as given (with `id` set), for `/model/info`.
    pub model_info: Map<String, Value>,
    /// `litellm_params` as given (after env resolution) with secrets removed, for `/model/info`.
    pub public_params: Map<String, Value>,
}

/// `router_settings.routing_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    SimpleShuffle,
    LeastBusy,
    UsageBasedRouting,
    UsageBasedRoutingV2,
    LatencyBasedRouting,
    CostBasedRouting,
}

impl Strategy {
    /// The name as written in a LiteLLM config.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::SimpleShuffle => "simple-shuffle",
            Strategy::LeastBusy => "least-busy",
            Strategy::UsageBasedRouting => "usage-based-routing",
            Strategy::UsageBasedRoutingV2 => "usage-based-routing-v2",
            Strategy::LatencyBasedRouting => "latency-based-routing",
            Strategy::CostBasedRouting => "cost-based-routing",
        }
    }
}

/// One `model_group_alias` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// The name clients may send.
    pub name: String,
    /// The model group it routes to.
    pub target: String,
    /// Hidden aliases route but are not listed.
    pub hidden: bool,
}

/// How to reach Redis (used by the shared-limits work; parsed now so configs validate).
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSettings {
    /// `redis_url` (`redis://` or `rediss://`), if given.
    pub url: Option<String>,
    /// `redis_host`.
    pub host: Option<String>,
    /// `redis_port`.
    pub port: Option<u16>,
    /// `redis_password`.
    pub password: Option<String>,
    /// `redis_startup_nodes` / cluster nodes as `host:port`.
    pub cluster_nodes: Vec<String>,
}

/// `router_settings`, defaults as in LiteLLM.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    pub routing_strategy: Strategy,
    /// `routing_strategy_args` as given.
    pub routing_strategy_args: Map<String, Value>,
    /// None: take `litellm_settings.num_retries`, else 2.
    pub num_retries: Option<u32>,
    /// Router-wide request timeout. None: `litellm_settings.request_timeout`, else 6000 s.
    pub timeout: Option<Duration>,
    /// Router-wide timeout for streaming requests.
    pub stream_timeout: Option<Duration>,
    /// Minimum wait before a retry (`retry_after`, default 0).
    pub retry_after: Duration,
    /// Failures a deployment may have in a minute before it cools down (default 3).
    pub allowed_fails: u32,
    /// Default cooldown duration (default 5 s).
    pub cooldown_time: Duration,
    pub disable_cooldowns: bool,
    /// `fallbacks: [{group: [fallback groups]}]`, in order.
    pub fallbacks: Vec<(String, Vec<String>)>,
    pub context_window_fallbacks: Vec<(String, Vec<String>)>,
    pub default_fallbacks: Vec<String>,
    /// Default 5.
    pub max_fallbacks: u32,
    pub enable_pre_call_checks: bool,
    pub model_group_alias: Vec<Alias>,
    pub redis: Option<RedisSettings>,
}

/// The `litellm_settings` sluice understands.
#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    pub num_retries: Option<u32>,
    pub request_timeout: Option<Duration>,
    /// e.g. `["prometheus"]`.
    pub callbacks: Vec<String>,
    pub json_logs: bool,
}

/// The `general_settings` sluice understands.
#[derive(Debug, Clone, Default)]
pub struct GeneralSettings {
    /// `master_key`, else env `LITELLM_MASTER_KEY`. None: no auth.
    pub master_key: Option<String>,
    /// Request body cap in MB (None: sluice's default).
    pub max_request_size_mb: Option<f64>,
}

/// A problem that stops the config from loading, with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path, e.g. `model_list[1].litellm_params.rpm`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Something the config does that sluice ignores or that looks wrong but is allowed.
pub type ConfigWarning = ConfigError;
