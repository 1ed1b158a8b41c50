//! Replicas sharing quotas and cooldowns through a real redis-server (started by the
//! test on a free port): exact totals with 2 and 4 replicas, tpm settled with real
//! usage, a cooldown seen by the other replica in time, Redis down at start, stopped
//! and restarted mid-minute, the commands Redis sees per request, and a cluster.

mod common;
use common::redis::*;
use common::*;
use sluice::limiter::shared::Mode;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_and_four_replicas_never_pass_the_shared_rpm_and_reach_it() {
    for n in [2, 4] {
        let redis = RedisServer::start();
        let (a, b) = (fake(|_| {}).await, fake(|_| {}).await);
        let deps = deployment("a", &a.url(), ", rpm: 50") + &deployment("b", &b.url(), ", rpm: 50");
        let rs = replicas(n, &redis_yaml(&at(redis.port), &deps, "")).await;
        all_shared(&rs).await;
        within_one_minute(25).await;
        // 500 requests over 5 s: five times the shared limit, spread over the replicas.
        let (ok, limited, other) = offer(&rs, 500, 100, &chat("m")).await;
        assert!(
            other.is_empty(),
            "{n} replicas: unexpected statuses {other:?}"
        );
        let (sent_a, sent_b) = (a.stats().ok(), b.stats().ok());
        assert_eq!(ok as u64, sent_a + sent_b);
        assert!(
            sent_a <= 50 && sent_b <= 50,
            "{n} replicas: a={sent_a} b={sent_b}"
        );
        // At least 97% of the 100 allowed were admitted.
        assert!(
            ok >= 97,
            "{n} replicas: only {ok} admitted ({limited} refused)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_tpm_is_settled_with_real_usage() {
    // fake-llm reports 21 tokens a call; each request reserves ~8 + max_tokens 20.
    let redis = RedisServer::start();
    let up = fake(|_| {}).await;
    let deps = deployment("t", &up.url(), ", tpm: 2100");
    let rs = replicas(2, &redis_yaml(&at(redis.port), &deps, "")).await;
    all_shared(&rs).await;
    within_one_minute(25).await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":20}"#;
    let (ok, _, other) = offer(&rs, 300, 100, body).await;
    assert!(other.is_empty(), "{other:?}");
    let used = up.stats().ok() * 21;
    assert_eq!(ok as u64, up.stats().ok());
    assert!(used <= 2100, "{used} tokens used of 2100");
    assert!(used * 100 >= 2100 * 97, "only {used} of 2100 tokens used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_serves_locally_then_joins() {
    let port = free_port();
    let up = fake(|_| {}).await;
    let rs = replicas(
        1,
        &redis_yaml(&at(port), &deployment("a", &up.url(), ", rpm: 1000"), ""),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            post(&format!("{}/chat/completions", rs[0].url()), &chat("m"))
                .await
                .status,
            200
        );
    }
    let ready = get(&format!("{}/health/readiness", rs[0].url()))
        .await
        .json();
    assert_eq!(ready["redis"], "local_fallback");
    // Redis appears on that port. The replica admitted on a local share this
    // minute, which Redis cannot count, so it finishes the minute locally and
    // shares from the next one.
    let _redis = RedisServer::start_on(port);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if sluice::clock::until_next_minute(sluice::clock::now_ms()) > 2_000 {
        assert_eq!(rs[0].app.limit_mode(), Mode::LocalFallback);
    }
    next_minute().await;
    all_shared(&rs).await;
    let metrics =
        String::from_utf8(get(&format!("{}/metrics", rs[0].url())).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("sluice_redis_mode{mode=\"shared\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sluice_redis_mode{mode=\"local_fallback\"} 0"));
    assert_eq!(
        get(&format!("{}/health/readiness", rs[0].url()))
            .await
            .json()["redis"],
        "shared"
    );
}

/// Sleeps into the next calendar minute.
async fn next_minute() {
    let left = sluice::clock::until_next_minute(sluice::clock::now_ms());
    tokio::time::sleep(Duration::from_millis(left + 200)).await;
}

async fn redis_mode(rs: &[Sluice]) -> Vec<String> {
    let mut modes = Vec::new();
    for r in rs {
        let v = get(&format!("{}/health/readiness", r.url())).await.json();
        modes.push(v["redis"].as_str().unwrap().to_string());
    }
    modes
}

/// Waits (up to 5 s: a replica notices within a round or two) until every
/// replica's readiness reports `mode` for Redis.
async fn until_redis_mode(rs: &[Sluice], mode: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let modes = redis_mode(rs).await;
        if modes.iter().all(|m| m == mode) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "readiness says {modes:?}, not {mode}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A replica alone when Redis comes back empty keeps the share it took while Redis
/// was away until that minute ends: the other replicas may be gone or not have sent
/// a heartbeat yet, and counting fewer replicas would grow its share past its part
/// of the limit. The other replica is a process of its own here, so that it can be
/// gone for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_alone_after_redis_returns_keeps_its_share_for_the_minute() {
    let mut redis = RedisServer::start();
    let up = fake(|_| {}).await;
    let yaml = redis_yaml(
        &at(redis.port),
        &deployment("a", &up.url(), ", rpm: 100"),
        "",
    );
    let dir = tempdir();
    let cfg = dir.join("c.yaml");
    std::fs::write(&cfg, &yaml).unwrap();
    let mut other = sluice_command(&cfg).spawn().unwrap();
    port_from(&mut other, true);
    let rs = [Sluice::start(&yaml).await];
    all_shared(&rs).await;
    let sync = rs[0].app.sync.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sync.replicas() != 2 {
        assert!(
            Instant::now() < deadline,
            "the other replica was never seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    redis.stop();
    until_redis_mode(&rs, "local_fallback").await;
    // A minute with Redis away: this replica takes 100 / 2.
    next_minute().await;
    let (ok, _, errors) = offer(&rs, 80, 200, &chat("m")).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(ok, 50);

    // The other replica goes; Redis comes back empty and hears only from this one.
    other.kill().unwrap();
    other.wait().unwrap();
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.cli(&["ZCARD", "sluice:{global}:replicas"]).trim() != "1" {
        assert!(
            Instant::now() < deadline,
            "no heartbeat reached Redis again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Three more rounds (each with a heartbeat while limits are local) read that count.
    let rounds = sync.rounds();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sync.rounds() < rounds + 3 {
        assert!(Instant::now() < deadline, "the sync rounds stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sync.replicas(), 2, "the count fell within the minute");
    let (ok, _, errors) = offer(&rs, 60, 200, &chat("m")).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        ok, 0,
        "admitted past this replica's share after Redis came back"
    );
    assert_eq!(redis_mode(&rs).await, ["local_fallback"]);
}

/// Redis stopped mid-minute, then back empty: sluice answers throughout and no
/// minute ever passes the limit. In the minute Redis goes away, each replica spends
/// only the quota it was granted; while it stays away, each takes limit / replicas;
/// after it is back, the replicas finish that minute locally and share again from
/// the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_restarted_keeps_serving_within_the_limit() {
    let mut redis = RedisServer::start();
    let up = fake(|_| {}).await;
    let rs = replicas(
        2,
        &redis_yaml(
            &at(redis.port),
            &deployment("a", &up.url(), ", rpm: 100"),
            "",
        ),
    )
    .await;
    all_shared(&rs).await;
    all_seen(&rs).await;
    within_one_minute(40).await;
    let (ok1, _, other) = offer(&rs, 40, 200, &chat("m")).await;
    assert!(other.is_empty() && ok1 == 40, "{ok1} {other:?}");

    redis.stop();
    let (ok2, _, other) = offer(&rs, 200, 200, &chat("m")).await;
    assert!(other.is_empty(), "errors while Redis was down: {other:?}");
    until_redis_mode(&rs, "local_fallback").await;
    assert!(
        ok1 + ok2 <= 100,
        "{} admitted in the minute Redis went away",
        ok1 + ok2
    );

    // Redis still away in the next minute: 100 / 2 for each replica.
    next_minute().await;
    let before = up.stats().ok();
    let (ok3, _, other) = offer(&rs, 200, 200, &chat("m")).await;
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(up.stats().ok() - before, ok3 as u64);
    assert_eq!(ok3, 100, "each replica takes its half of the limit");

    // Redis comes back empty mid-minute: the replicas finish it locally (Redis does
    // not know what they admitted), so nothing more passes this minute.
    redis.restart();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok4, _, other) = offer(&rs, 100, 200, &chat("m")).await;
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(
        ok4, 0,
        "{ok4} admitted past the limit after Redis came back"
    );

    // From the next minute they share through Redis again, exactly.
    next_minute().await;
    all_shared(&rs).await;
    let before = up.stats().ok();
    let (ok5, _, other) = offer(&rs, 300, 200, &chat("m")).await;
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(up.stats().ok() - before, ok5 as u64);
    assert!(
        (97..=100).contains(&ok5),
        "{ok5} admitted in the minute after rejoining"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_shares_limits_too() {
    let cluster = RedisCluster::start(3);
    let (a, b) = (fake(|_| {}).await, fake(|_| {}).await);
    let nodes: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("\"127.0.0.1:{}\"", n.port))
        .collect();
    let redis = format!("  redis_startup_nodes: [{}]\n", nodes.join(", "));
    let deps = deployment("a", &a.url(), ", rpm: 30") + &deployment("b", &b.url(), ", rpm: 30");
    let rs = replicas(2, &redis_yaml(&redis, &deps, "")).await;
    all_shared(&rs).await;
    within_one_minute(20).await;
    let (ok, _, other) = offer(&rs, 240, 80, &chat("m")).await;
    assert!(other.is_empty(), "{other:?}");
    assert!(
        a.stats().ok() <= 30 && b.stats().ok() <= 30,
        "a={} b={}",
        a.stats().ok(),
        b.stats().ok()
    );
    assert!(ok >= 58, "only {ok} of 60 admitted");
}
