//! The runtime form of a config (`Snapshot`: everything the request path reads,
//! precomputed) and the process-wide `App` that holds the current snapshot in an
//! `ArcSwap`, so a request loads it once and a reload swaps it whole.

use crate::config::{Config, DeploymentConfig, Loaded};
use crate::router::{Group, Route};
use crate::upstream::{self, provider, Endpoint};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Request body cap when `general_settings.max_request_size_mb` is not set.
pub const DEFAULT_MAX_REQUEST_MB: f64 = 32.0;
/// LiteLLM's default router timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(6000);
/// LiteLLM's default `num_retries`.
pub const DEFAULT_NUM_RETRIES: u32 = 2;

/// One deployment, with everything the hot path would otherwise format.
#[derive(Debug)]
pub struct Deployment {
    /// The config entry it was built from (for info endpoints and limits).
    pub cfg: DeploymentConfig,
    /// Index of its group in `Snapshot::groups`.
    pub group: usize,
    /// Upstream URL per endpoint, indexed by `Endpoint::index`.
    pub urls: [Uri; 3],
    /// The auth header sent upstream, if the deployment has a key.
    pub auth: Option<(HeaderName, HeaderValue)>,
    /// The upstream model name as a JSON string literal (quotes included), spliced
    /// into request bodies in place of the client's model value.
    pub model_json: Bytes,
    /// `x-litellm-model-id` value.
    pub id_header: HeaderValue,
    /// `x-litellm-model-api-base` value.
    pub api_base_header: HeaderValue,
}

/// Settings the request path reads, resolved from the several places LiteLLM allows.
#[derive(Debug, Clone)]
pub struct Settings {
    /// sha256 of the master key; None when auth is off.
    pub master_key_sha: Option<[u8; 32]>,
    /// Body cap in bytes.
    pub max_body_bytes: usize,
    /// The same cap as configured, for the 413 message.
    pub max_body_mb: f64,
    /// Retries after the first attempt unless the request says otherwise.
    pub num_retries: u32,
    /// Router-level timeout (router `timeout`, else `litellm_settings.request_timeout`, else 6000 s).
    pub timeout: Duration,
    /// Router-level timeout for streams (router `stream_timeout`, else `timeout`).
    pub stream_timeout: Duration,
}

/// An immutable, validated config ready to serve.
pub struct Snapshot {
    /// The config it was built from.
    pub config: Config,
    /// Short hash of the config file: identifies the version.
    pub hash: String,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// Model groups, in order of first appearance in `model_list`.
    pub groups: Vec<Group>,
    /// All deployments, in `model_list` order.
    pub deployments: Vec<Arc<Deployment>>,
    /// Group names, alias names and deployment ids -> where a request goes.
    pub routes: HashMap<Box<str>, Route>,
    /// Resolved settings.
    pub settings: Settings,
}

impl Snapshot {
    /// Builds the runtime form of a loaded config; errors are per deployment.
    pub fn build(loaded: Loaded) -> Result<Snapshot, Vec<String>> {
        let Loaded { config, hash, .. } = loaded;
        let mut errors = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut routes: HashMap<Box<str>, Route> = HashMap::new();
        let mut deployments = Vec::with_capacity(config.model_list.len());
        for (i, dep) in config.model_list.iter().enumerate() {
            let group = match routes.get(dep.model_name.as_str()) {
                Some(Route::Group(g)) => *g,
                _ => {
                    groups.push(Group::new(&dep.model_name));
                    let g = groups.len() - 1;
                    routes.insert(dep.model_name.as_str().into(), Route::Group(g));
                    g
                }
            };
            match build_deployment(dep, group) {
                Ok(d) => {
                    groups[group].members.push(i);
                    deployments.push(Arc::new(d));
                }
                Err(e) => errors.push(format!("model_list[{i}]: {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for g in &mut groups {
            g.finish(&deployments);
        }
        for (i, d) in deployments.iter().enumerate() {
            // A group name wins over a deployment id of the same text.
            routes
                .entry(d.cfg.id.as_str().into())
                .or_insert(Route::Deployment(i));
        }
        for alias in &config.router.model_group_alias {
            if let Some(Route::Group(g)) = routes.get(alias.target.as_str()).copied() {
                routes.insert(alias.name.as_str().into(), Route::Group(g));
            }
        }
        let settings = settings(&config);
        Ok(Snapshot {
            config,
            hash,
            loaded_at: SystemTime::now(),
            groups,
            deployments,
            routes,
            settings,
        })
    }

    /// Where a requested model name goes.
    pub fn route(&self, model: &str) -> Option<Route> {
        self.routes.get(model).copied()
    }
}

fn build_deployment(dep: &DeploymentConfig, group: usize) -> Result<Deployment, String> {
    let url = |e: Endpoint| provider::endpoint_url(dep, e);
    let urls = [
        url(Endpoint::ChatCompletions)?,
        url(Endpoint::Completions)?,
        url(Endpoint::Embeddings)?,
    ];
    let header =
        |s: &str| HeaderValue::from_str(s).map_err(|_| format!("{s:?} cannot be sent in a header"));
    let api_base = dep
        .api_base
        .as_deref()
        .unwrap_or(provider::OPENAI_DEFAULT_BASE);
    Ok(Deployment {
        group,
        urls,
        auth: provider::auth_header(dep)?,
        model_json: Bytes::from(
            serde_json::to_vec(&dep.upstream_model).expect("a string always serialises"),
        ),
        id_header: header(&dep.id)?,
        api_base_header: header(api_base)?,
        cfg: dep.clone(),
    })
}

fn settings(config: &Config) -> Settings {
    let mb = config
        .general
        .max_request_size_mb
        .unwrap_or(DEFAULT_MAX_REQUEST_MB);
    let timeout = config
        .router
        .timeout
        .or(config.litellm.request_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    Settings {
        master_key_sha: config
            .general
            .master_key
            .as_deref()
            .map(|k| Sha256::digest(k.as_bytes()).into()),
        max_body_bytes: (mb * 1024.0 * 1024.0) as usize,
        max_body_mb: mb,
        num_retries: config
            .router
            .num_retries
            .or(config.litellm.num_retries)
            .unwrap_or(DEFAULT_NUM_RETRIES),
        timeout,
        stream_timeout: config.router.stream_timeout.unwrap_or(timeout),
    }
}

/// Process-wide state shared by every connection.
pub struct App {
    /// The config being served; swapped whole on reload.
    pub snapshot: ArcSwap<Snapshot>,
    /// Pooled upstream client.
    pub client: upstream::Client,
    /// Set once shutdown began: readiness reports it so load balancers stop sending.
    pub draining: AtomicBool,
}

impl App {
    /// State serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Arc<App> {
        Arc::new(App {
            snapshot: ArcSwap::from_pointee(snapshot),
            client: upstream::client(),
            draining: AtomicBool::new(false),
        })
    }
}
