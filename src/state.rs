//! The runtime form of a config (`Snapshot`: everything the request path reads,
//! precomputed) and the process-wide `App` that holds the current snapshot in an
//! `ArcSwap`, so a request loads it once and a reload swaps it whole.

use crate::config::{Config, DeploymentConfig, Loaded, Strategy};
use crate::limiter::health::CooldownPolicy;
use crate::limiter::shared::{Mode, SyncState};
use crate::limiter::{DeploymentStats, Limits};
use crate::metrics::{self, DeploymentMetrics, GroupMetrics, Metrics};
use crate::router::{weights, Group, Route};
use crate::upstream::{self, provider, Endpoint, Origin, Target};
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
    /// Upstream URL and connections per endpoint, indexed by `Endpoint::index`.
    pub targets: [Target; 3],
    /// The auth header sent upstream, if the deployment has a key.
    pub auth: Option<(HeaderName, HeaderValue)>,
    /// The upstream model name as a JSON string literal (quotes included), spliced
    /// into request bodies in place of the client's model value.
    pub model_json: Bytes,
    /// `x-litellm-model-id` value.
    pub id_header: HeaderValue,
    /// `x-litellm-model-api-base` value.
    pub api_base_header: HeaderValue,
    /// Live counters; shared with the previous snapshot when this deployment is unchanged.
    pub stats: Arc<DeploymentStats>,
    /// Prometheus counters; shared with the previous snapshot's deployment of the same labels.
    pub metrics: Arc<DeploymentMetrics>,
    /// rpm, tpm and max_parallel_requests.
    pub limits: Limits,
    /// simple-shuffle weight within its group.
    pub weight: f64,
    /// Priority tier: lower first; no `order` comes after every ordered one.
    pub order: u32,
    /// Input plus output cost per token, if known (litellm_params, else model_info).
    pub cost_per_token: Option<f64>,
    /// `model_info.max_input_tokens`, for the context-window check.
    pub max_input_tokens: Option<u64>,
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
    /// The routing strategy.
    pub strategy: Strategy,
    /// `routing_strategy_args.lowest_latency_buffer`.
    pub latency_buffer: f64,
    /// rpm/tpm are enforced: `enable_pre_call_checks`, or a usage-based strategy.
    pub enforce_limits: bool,
    /// Cooldown rules.
    pub cooldown: CooldownPolicy,
    /// Least wait before retrying when no other deployment is available (`retry_after`).
    pub retry_after: Duration,
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
    /// Prometheus counters per group, indexed like `groups`.
    pub group_metrics: Vec<Arc<GroupMetrics>>,
}

impl Snapshot {
    /// Builds the runtime form of a loaded config; errors are per deployment.
    /// Deployments unchanged since `previous` keep their live stats (counters,
    /// latency, cooldown), matched by id.
    pub fn build(loaded: Loaded, previous: Option<&Snapshot>) -> Result<Snapshot, Vec<String>> {
        let Loaded { config, hash, .. } = loaded;
        let mut errors = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut routes: HashMap<Box<str>, Route> = HashMap::new();
        let mut deployments: Vec<Deployment> = Vec::with_capacity(config.model_list.len());
        let mut origins = Origins::from(previous);
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
            let stats = previous
                .and_then(|p| p.deployments.iter().find(|d| d.cfg == *dep))
                .map_or_else(Arc::default, |d| d.stats.clone());
            let kept = previous.map_or(&[][..], |p| &p.deployments[..]);
            let metrics = metrics::for_deployment(dep, kept);
            match build_deployment(dep, group, stats, metrics, &mut origins) {
                Ok(d) => {
                    groups[group].members.push(i);
                    deployments.push(d);
                }
                Err(e) => errors.push(format!("model_list[{i}]: {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for g in &mut groups {
            let cfgs: Vec<&DeploymentConfig> =
                g.members.iter().map(|&i| &deployments[i].cfg).collect();
            let w = weights::weights(&cfgs);
            g.has_limits = cfgs.iter().any(|c| c.rpm.is_some() || c.tpm.is_some());
            for (&i, w) in g.members.iter().zip(w) {
                deployments[i].weight = w;
            }
        }
        let deployments: Vec<Arc<Deployment>> = deployments.into_iter().map(Arc::new).collect();
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
        resolve_fallbacks(&config, &mut groups, &routes);
        let settings = settings(&config);
        let group_metrics = metrics::for_groups(&groups, previous.map(|p| &p.group_metrics[..]));
        Ok(Snapshot {
            config,
            hash,
            loaded_at: SystemTime::now(),
            groups,
            deployments,
            routes,
            settings,
            group_metrics,
        })
    }

    /// Where a requested model name goes.
    pub fn route(&self, model: &str) -> Option<Route> {
        self.routes.get(model).copied()
    }
}

fn build_deployment(
    dep: &DeploymentConfig,
    group: usize,
    stats: Arc<DeploymentStats>,
    metrics: Arc<DeploymentMetrics>,
    origins: &mut Origins,
) -> Result<Deployment, String> {
    let mut target = |e: Endpoint| -> Result<Target, String> {
        let url = provider::endpoint_url(dep, e)?;
        let origin = origins.get(&url)?;
        Ok(Target::new(url, origin))
    };
    let targets = [
        target(Endpoint::ChatCompletions)?,
        target(Endpoint::Completions)?,
        target(Endpoint::Embeddings)?,
    ];
    let header =
        |s: &str| HeaderValue::from_str(s).map_err(|_| format!("{s:?} cannot be sent in a header"));
    let api_base = dep
        .api_base
        .as_deref()
        .unwrap_or(provider::OPENAI_DEFAULT_BASE);
    Ok(Deployment {
        group,
        targets,
        auth: provider::auth_header(dep)?,
        model_json: Bytes::from(
            serde_json::to_vec(&dep.upstream_model).expect("a string always serialises"),
        ),
        id_header: header(&dep.id)?,
        api_base_header: header(api_base)?,
        stats,
        metrics,
        limits: Limits {
            rpm: dep.rpm,
            tpm: dep.tpm,
            max_parallel: dep.max_parallel_requests,
        },
        weight: 1.0,
        order: dep.order.unwrap_or(u32::MAX),
        cost_per_token: cost(dep),
        max_input_tokens: dep
            .model_info
            .get("max_input_tokens")
            .and_then(serde_json::Value::as_u64),
        cfg: dep.clone(),
    })
}

/// Upstream origins by `scheme://authority`: deployments on one upstream share its
/// connections, and so do successive snapshots.
struct Origins(HashMap<String, Arc<Origin>>);

impl Origins {
    /// The origins `previous` used.
    fn from(previous: Option<&Snapshot>) -> Origins {
        let deployments = previous.into_iter().flat_map(|p| &p.deployments);
        let targets = deployments.flat_map(|d| &d.targets);
        Origins(
            targets
                .map(|t| (Origin::key(&t.url), t.origin.clone()))
                .collect(),
        )
    }

    /// `url`'s origin, made on first use.
    fn get(&mut self, url: &Uri) -> Result<Arc<Origin>, String> {
        let key = Origin::key(url);
        if let Some(o) = self.0.get(&key) {
            return Ok(o.clone());
        }
        let origin = Arc::new(Origin::new(url)?);
        self.0.insert(key, origin.clone());
        Ok(origin)
    }
}

/// Input plus output cost per token, from litellm_params or else model_info.
fn cost(dep: &DeploymentConfig) -> Option<f64> {
    let info = |k: &str| dep.model_info.get(k).and_then(serde_json::Value::as_f64);
    let input = dep
        .input_cost_per_token
        .or_else(|| info("input_cost_per_token"));
    let output = dep
        .output_cost_per_token
        .or_else(|| info("output_cost_per_token"));
    match (input, output) {
        (None, None) => None,
        (i, o) => Some(i.unwrap_or(0.0) + o.unwrap_or(0.0)),
    }
}

/// Each group's fallback chains as group indices: its own `fallbacks` entry, else the
/// `"*"` entry, else `default_fallbacks`; context-window fallbacks from their own
/// list. Names may be aliases; the group itself and repeats are left out.
fn resolve_fallbacks(config: &Config, groups: &mut [Group], routes: &HashMap<Box<str>, Route>) {
    let r = &config.router;
    let entry = |list: &[(String, Vec<String>)], name: &str| {
        list.iter()
            .find(|(from, _)| from == name)
            .map(|(_, to)| to.clone())
    };
    let max = r.max_fallbacks as usize;
    for (g, group) in groups.iter_mut().enumerate() {
        let name = group.name.clone();
        let resolve = |names: Vec<String>| {
            let mut out: Vec<usize> = Vec::new();
            for n in names {
                if let Some(Route::Group(t)) = routes.get(n.as_str()) {
                    if *t != g && !out.contains(t) {
                        out.push(*t);
                    }
                }
            }
            out.truncate(max);
            out
        };
        let aliases = r
            .model_group_alias
            .iter()
            .filter(|a| a.target == name)
            .map(|a| a.name.as_str());
        let own = std::iter::once(name.as_str())
            .chain(aliases)
            .find_map(|n| entry(&r.fallbacks, n))
            .or_else(|| entry(&r.fallbacks, "*"))
            .unwrap_or_else(|| r.default_fallbacks.clone());
        group.fallbacks = resolve(own);
        group.context_fallbacks =
            resolve(entry(&r.context_window_fallbacks, &name).unwrap_or_default());
    }
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
        strategy: config.router.routing_strategy,
        latency_buffer: config
            .router
            .routing_strategy_args
            .get("lowest_latency_buffer")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0),
        enforce_limits: config.router.enable_pre_call_checks
            || matches!(
                config.router.routing_strategy,
                Strategy::UsageBasedRouting | Strategy::UsageBasedRoutingV2
            ),
        cooldown: CooldownPolicy {
            allowed_fails: config.router.allowed_fails,
            cooldown: config.router.cooldown_time,
            disabled: config.router.disable_cooldowns,
        },
        retry_after: config.router.retry_after,
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
    /// Limits shared through Redis, when the config names one.
    pub sync: Option<Arc<SyncState>>,
    /// Counters not tied to one snapshot (reloads, unrouted requests, upstream pool).
    pub metrics: Metrics,
}

impl App {
    /// State serving `snapshot`. With Redis configured, this starts the task that
    /// shares limits and cooldowns (so it must run inside a tokio runtime).
    pub fn new(snapshot: Snapshot) -> Arc<App> {
        let metrics = Metrics::default();
        let redis = snapshot.config.router.redis.clone();
        let (sync, cooldowns) = match redis {
            Some(_) => {
                let (s, rx) = SyncState::new();
                (Some(s), Some(rx))
            }
            None => (None, None),
        };
        let app = Arc::new(App {
            snapshot: ArcSwap::from_pointee(snapshot),
            client: upstream::client(metrics.pool.clone()),
            draining: AtomicBool::new(false),
            sync,
            metrics,
        });
        app.link(&app.snapshot.load());
        if let (Some(settings), Some(sync), Some(rx)) = (redis, app.sync.clone(), cooldowns) {
            tokio::spawn(crate::limiter::redis::run(app.clone(), sync, rx, settings));
        }
        app
    }

    /// Links every deployment of `snapshot` to the shared limits (before serving it).
    pub fn link(&self, snapshot: &Snapshot) {
        if let Some(sync) = &self.sync {
            for d in &snapshot.deployments {
                d.stats.link(sync, &d.cfg.id);
            }
        }
    }

    /// Where limits are counted right now.
    pub fn limit_mode(&self) -> Mode {
        self.sync.as_ref().map_or(Mode::None, |s| s.mode())
    }
}
