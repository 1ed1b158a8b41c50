//! The background task that shares limits and cooldowns through Redis, so requests
//! never wait on it in the steady state.
//!
//! Every round (each `TICK`, or at once when a request found its lease empty) it
//! sends one pipeline: a heartbeat (Redis `TIME`, replicas alive) when due, the
//! cooldowns started here, and one claim per deployment whose lease runs low. A
//! claim is one Lua script: `granted = min(want, limit - used)`, then `INCRBY` and
//! `PEXPIRE`, so replicas together are never granted more than the limit. Blocks
//! follow demand and shrink as the minute fills, so little is left stranded.
//!
//! A round that fails, or two in a row slower than `SLOW`, switch to local fallback.
//! In a minute this replica was granted quota, it then spends only what it was
//! granted (Redis counts it already); in a minute it was granted nothing, it keeps
//! to limit / replicas last seen. When Redis answers again it rejoins at once,
//! unless it admitted on a local share this minute or Redis lost its counters (a new
//! epoch): Redis cannot know those admissions, so it finishes the minute locally
//! and rejoins at the next, when every count starts afresh. Rejoining never bursts.

use super::shared::{Mode, SyncState};
use super::signed;
use crate::clock;
use crate::config::RedisSettings;
use crate::state::App;
use fred::clients::SubscriberClient;
use fred::interfaces::LuaInterface;
use fred::prelude::*;
use fred::types::config::{ReconnectPolicy, ServerConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Rounds happen at least this often while any lease is in use.
const TICK: Duration = Duration::from_millis(50);
/// A round slower than this counts as Redis being down.
const SLOW: Duration = Duration::from_millis(300);
/// Consecutive slow rounds that count as Redis being down (errors count at once).
const SLOW_ROUNDS: u32 = 2;
/// Heartbeats (clock offset, replicas alive) this often.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A replica not seen for this long is no longer counted alive.
const REPLICA_TTL_MS: u64 = 5_000;
/// Quota counters outlive their minute by this much.
const COUNTER_TTL_MS: u64 = 120_000;
/// fred's config for the Redis of `router_settings`.
pub fn client_config(s: &RedisSettings) -> Result<Config, String> {
    let mut config = match (&s.url, s.cluster_nodes.is_empty()) {
        (Some(url), _) => Config::from_url(url).map_err(|e| format!("redis_url: {e}"))?,
        (None, false) => {
            let mut hosts = Vec::new();
            for n in &s.cluster_nodes {
                let (h, p) = n
                    .rsplit_once(':')
                    .ok_or(format!("cluster node {n:?}: expected host:port"))?;
                hosts.push((
                    h.to_string(),
                    p.parse::<u16>()
                        .map_err(|_| format!("cluster node {n:?}: bad port"))?,
                ));
            }
            Config {
                server: ServerConfig::new_clustered(hosts),
                ..Config::default()
            }
        }
        (None, true) => {
            let host = s.host.clone().unwrap_or_else(|| "127.0.0.1".into());
            Config {
                server: ServerConfig::new_centralized(host, s.port.unwrap_or(6379)),
                ..Config::default()
            }
        }
    };
    if s.password.is_some() {
        config.password = s.password.clone();
    }
    Ok(config)
}

/// What this replica last learned about a deployment's shared counters.
#[derive(Default)]
struct Seen {
    /// The minute the numbers are for.
    minute: u64,
    /// Requests granted to all replicas so far in that minute.
    requests: u64,
    /// Tokens granted or reported so far in that minute.
    tokens: u64,
    /// When this replica last claimed for the deployment (ms): the demand since
    /// then, over this time, is the rate that sizes the next block.
    last_claim_ms: u64,
}

/// Connects and runs the sync loop for as long as the process lives.
pub async fn run(
    app: Arc<App>,
    sync: Arc<SyncState>,
    mut cooldowns: mpsc::UnboundedReceiver<(Arc<str>, u64)>,
    settings: RedisSettings,
) {
    let mut config = match client_config(&settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("redis: {e}; limits stay local to this replica");
            return;
        }
    };
    let clustered = matches!(config.server, ServerConfig::Clustered { .. });
    let build = |b: &mut Builder| {
        b.with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(1))
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 1_000, 2));
    };
    // Keep trying when Redis is down at start (fred gives up after one try otherwise).
    config.fail_fast = false;
    let mut b = Builder::from_config(config);
    build(&mut b);
    let (client, subscriber) = match (b.build(), b.build_subscriber_client()) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("redis client: {e}; limits stay local to this replica");
            return;
        }
    };
    let refetch = Arc::new(AtomicBool::new(true));
    connect(&client, &subscriber, &app, &refetch).await;

    let replica_id = format!("{:032x}", fastrand::u128(..));
    let scripts = ALL.map(fred::util::sha1_hash);
    let mut scripts_loaded = false;
    let mut seen: HashMap<Arc<str>, Seen> = HashMap::new();
    let mut last_heartbeat: Option<Instant> = None;
    let mut pending_cooldowns: Vec<(Arc<str>, u64)> = Vec::new();
    let mut failures = 0u32;
    let mut epoch: Option<String> = None;
    loop {
        tokio::select! {
            _ = sync.wake.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
            Some(c) = cooldowns.recv() => pending_cooldowns.push(c),
        }
        while let Ok(c) = cooldowns.try_recv() {
            pending_cooldowns.push(c);
        }
        if failures > 0 {
            // Redis is away: try again with a growing pause, serving locally meanwhile.
            let pause = Duration::from_millis(100u64 << failures.min(3));
            tokio::time::sleep(pause.saturating_sub(TICK)).await;
        }
        if !scripts_loaded {
            scripts_loaded = load_scripts(&client, clustered).await;
            if !scripts_loaded {
                failures += 1;
                fall_back(&sync);
                continue;
            }
        }
        let snap = app.snapshot.load_full();
        let now = clock::now_ms();
        let minute = clock::minute(now);
        let heartbeat =
            sync.mode() != Mode::Shared || last_heartbeat.is_none_or(|t| t.elapsed() >= HEARTBEAT);
        // Calls issued together go out back to back on one connection (fred
        // pipelines concurrent commands), and are awaited together.
        let mut calls: Vec<(&str, Vec<String>, Vec<String>)> = Vec::new();
        if heartbeat {
            calls.push((
                &scripts[1],
                vec![REPLICAS_KEY.into(), EPOCH_KEY.into()],
                vec![
                    replica_id.clone(),
                    REPLICA_TTL_MS.to_string(),
                    format!("{:016x}", fastrand::u64(..)),
                ],
            ));
        }
        for (id, until) in &pending_cooldowns {
            calls.push((
                &scripts[2],
                vec![COOLDOWNS_KEY.into()],
                vec![id.to_string(), until.to_string(), CHANNEL.into()],
            ));
        }
        // Claims only once the clock is Redis's and the mode is shared.
        let mut claims = Vec::new();
        if sync.mode() == Mode::Shared && last_heartbeat.is_some() && snap.settings.enforce_limits {
            for d in &snap.deployments {
                let Some(claim) = plan(
                    d,
                    minute,
                    sync.replicas(),
                    seen.entry(d.cfg.id.as_str().into()).or_default(),
                ) else {
                    continue;
                };
                let tag = &d.cfg.id;
                let keys = vec![
                    format!("sluice:{{{tag}}}:r:{minute}"),
                    format!("sluice:{{{tag}}}:t:{minute}"),
                ];
                let args: Vec<String> = claim.args().iter().map(i64::to_string).collect();
                calls.push((&scripts[0], keys, args));
                claims.push((d.clone(), claim));
            }
        }
        if calls.is_empty() {
            continue;
        }
        sync.commands
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        let started = Instant::now();
        let round = futures_util::future::join_all(
            calls
                .into_iter()
                .map(|(sha, keys, args)| client.evalsha::<Value, _, _, _>(sha, keys, args)),
        );
        let results = tokio::time::timeout(SLOW, round).await;
        let rtt = started.elapsed();
        let results = match results {
            Ok(r) if r.iter().all(Result::is_ok) => r,
            Ok(r) => {
                let err = r.into_iter().find_map(Result::err);
                tracing::debug!(error = ?err, "redis round failed");
                if err.is_some_and(|e| e.details().contains("NOSCRIPT")) {
                    scripts_loaded = false;
                }
                undo(&claims);
                failures += 1;
                fall_back(&sync);
                continue;
            }
            Err(_) => {
                tracing::debug!("redis round took longer than {SLOW:?}");
                undo(&claims);
                failures += 1;
                // One slow round may be this process being busy; two in a row is Redis.
                if failures >= SLOW_ROUNDS {
                    fall_back(&sync);
                }
                continue;
            }
        };
        failures = 0;
        let mut results = results.into_iter().map(Result::unwrap);
        if heartbeat {
            if let Some(Value::Array(v)) = results.next() {
                let redis_now = v.first().and_then(Value::as_i64);
                let replicas = v.get(1).and_then(Value::as_i64).unwrap_or(1);
                // Redis read its clock about half a round trip before the answer came.
                let local_then = clock::system_ms().saturating_sub(rtt.as_millis() as u64 / 2);
                match clock_offset(redis_now, local_then) {
                    Some(offset) => clock::set_offset(offset),
                    None => tracing::warn!(
                        reply = ?v.first(),
                        "redis sent no usable time: the shared clock keeps its last offset"
                    ),
                }
                let now_epoch = v.get(2).and_then(Value::as_string);
                if epoch.is_some() && now_epoch != epoch {
                    tracing::warn!(
                        "redis lost its counters (restart?): local shares until the minute ends"
                    );
                    drop_leases(&snap, &mut seen);
                    // What was admitted this minute is no longer counted in Redis.
                    sync.rejoin_minute
                        .fetch_max(clock::minute(clock::now_ms()) + 1, Ordering::AcqRel);
                    fall_back(&sync);
                }
                epoch = now_epoch;
                // While a minute finishes on local shares the count only rises: a
                // Redis back from a restart lists only the replicas that have sent a
                // heartbeat since, and a smaller count would grow this replica's
                // share (limit / replicas) past its part of the limit.
                let replicas = replicas.max(1) as u64;
                if sync.mode() == Mode::LocalFallback {
                    sync.raise_replicas(replicas);
                } else {
                    sync.set_replicas(replicas);
                }
            }
            last_heartbeat = Some(Instant::now());
        }
        pending_cooldowns.clear();
        for (d, claim) in &claims {
            if let Some(Value::Array(v)) = results.next() {
                let n = |i: usize| v.get(i).and_then(Value::as_i64).unwrap_or(0).max(0) as u64;
                claim.apply(
                    d,
                    [n(0), n(1), n(2), n(3)],
                    seen.entry(d.cfg.id.as_str().into()).or_default(),
                );
            }
        }
        let minute_now = clock::minute(clock::now_ms());
        if minute_now >= sync.rejoin_minute.load(Ordering::Acquire)
            && sync.set_mode(Mode::Shared) != Mode::Shared
        {
            tracing::info!(replicas = sync.replicas(), "redis reachable: limits shared");
        }
        if refetch.swap(false, Ordering::AcqRel) {
            fetch_cooldowns(&client, &scripts[3], &app).await;
        }
        sync.round_done();
    }
}

/// After Redis lost its counters, leases granted before are no longer counted
/// there: they are dropped.
fn drop_leases(snap: &crate::state::Snapshot, seen: &mut HashMap<Arc<str>, Seen>) {
    let minute = clock::minute(clock::now_ms());
    seen.clear();
    for d in &snap.deployments {
        d.stats.lease.requests.take_up_to(minute, u64::MAX);
        d.stats.lease.tokens.take_up_to(minute, u64::MAX);
    }
}

fn fall_back(sync: &SyncState) {
    if sync.set_mode(Mode::LocalFallback) != Mode::LocalFallback {
        tracing::warn!(
            replicas = sync.replicas(),
            "redis unreachable or slow: each limit shared locally as limit / replicas"
        );
    }
    sync.round_done();
}

/// Connects both clients (retrying in the background), subscribes to cooldowns,
/// and refetches all cooldowns once subscribed and after every reconnect of either
/// client: a cooldown published while the subscription was not up is read then.
async fn connect(
    client: &Client,
    subscriber: &SubscriberClient,
    app: &Arc<App>,
    refetch: &Arc<AtomicBool>,
) {
    // These return the tasks' join handles; dropping a handle leaves its task running.
    drop(client.connect());
    drop(subscriber.connect());
    refetch_on_reconnect(client, refetch);
    refetch_on_reconnect(subscriber, refetch);
    drop(subscriber.manage_subscriptions());
    let sub = subscriber.clone();
    let (r, a) = (refetch.clone(), app.clone());
    tokio::spawn(async move {
        // Subscribing waits for the first connection; fred resubscribes on reconnects.
        match sub.subscribe(CHANNEL).await {
            Ok(()) => {
                r.store(true, Ordering::Release);
                if let Some(sync) = &a.sync {
                    sync.subscribed.store(true, Ordering::Release);
                    sync.wake.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "redis: cannot subscribe to cooldowns"),
        }
    });
    let mut messages = subscriber.message_rx();
    let app = app.clone();
    tokio::spawn(async move {
        while let Ok(m) = messages.recv().await {
            if let Some(text) = m.value.as_str() {
                if let Some((id, until)) = text.split_once(' ') {
                    apply_cooldown(&app, id, until.parse().unwrap_or(0));
                }
            }
        }
    });
}

/// Sets `refetch` whenever `c` reconnects.
fn refetch_on_reconnect(c: &impl EventInterface, refetch: &Arc<AtomicBool>) {
    let r = refetch.clone();
    drop(c.on_reconnect(move |_| {
        let r = r.clone();
        async move {
            r.store(true, Ordering::Release);
            Ok(())
        }
    }));
}

/// Redis's clock minus this machine's, from a heartbeat's time and this machine's
/// clock when Redis read its own. None when the reply holds no time after the
/// epoch: a reply that is not what the script returns must not move every
/// replica's windows back to 1970.
fn clock_offset(redis_now_ms: Option<i64>, local_then_ms: u64) -> Option<i64> {
    let redis_now = redis_now_ms.filter(|&t| t > 0)?;
    Some(redis_now.saturating_sub(signed(local_then_ms)))
}

fn apply_cooldown(app: &App, id: &str, until_ms: u64) {
    let snap = app.snapshot.load();
    if let Some(d) = snap.deployments.iter().find(|d| d.cfg.id == id) {
        d.stats.health.extend_cooldown(until_ms);
    }
}

async fn fetch_cooldowns(client: &Client, sha: &str, app: &App) {
    if let Ok(Value::Array(v)) = client
        .evalsha::<Value, _, _, _>(sha, vec![COOLDOWNS_KEY], Vec::<String>::new())
        .await
    {
        for pair in v.chunks(2) {
            if let [id, until] = pair {
                if let (Some(id), Some(until)) = (id.as_str(), until.as_str()) {
                    apply_cooldown(app, &id, until.parse().unwrap_or(0));
                }
            }
        }
    }
}

mod plan;
mod scripts;
use plan::{plan, undo};
use scripts::{load_scripts, ALL, CHANNEL, COOLDOWNS_KEY, EPOCH_KEY, REPLICAS_KEY};

#[cfg(test)]
mod tests {
    use super::clock_offset;

    #[test]
    fn the_clock_offset_comes_only_from_a_time_after_the_epoch() {
        let local = 1_800_000_000_000;
        assert_eq!(clock_offset(Some(1_800_000_000_250), local), Some(250));
        assert_eq!(clock_offset(Some(1_799_999_999_000), local), Some(-1_000));
        // A reply without a time, or with none after 1970, leaves the offset alone.
        assert_eq!(clock_offset(None, local), None);
        assert_eq!(clock_offset(Some(0), local), None);
        assert_eq!(clock_offset(Some(-5), local), None);
        // A local clock past i64::MAX ms cannot wrap the difference.
        assert_eq!(clock_offset(Some(1), u64::MAX), Some(1 - i64::MAX));
    }
}
