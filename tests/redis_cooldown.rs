//! A cooldown started on one replica is skipped by the other within 100 ms. Its own
//! test binary, so no load test competes for the CPU while it measures.

mod common;
use common::redis::*;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_reaches_the_other_replica_within_100ms() {
    let redis = RedisServer::start();
    let limited = fake(|c| {
        c.rpm = Some(0);
        c.retry_after = Some(20);
    })
    .await;
    let good = fake(|_| {}).await;
    let deps = deployment("bad", &limited.url(), ", weight: 1000")
        + &deployment("good", &good.url(), ", weight: 1");
    let yaml =
        redis_yaml(&at(redis.port), &deps, "").replace("usage-based-routing-v2", "simple-shuffle");
    let rs = replicas(2, &yaml).await;
    all_shared(&rs).await;
    let bad_on = |r: &Sluice| {
        r.app
            .snapshot
            .load()
            .deployments
            .iter()
            .find(|d| d.cfg.id == "bad")
            .unwrap()
            .clone()
    };
    // Replica 0 meets the 429 (retry-after 20 s) and cools `bad` down.
    while limited.stats().requests() == 0 {
        post(&format!("{}/chat/completions", rs[0].url()), &chat("m")).await;
    }
    let cooled_at = Instant::now();
    let until = bad_on(&rs[0])
        .stats
        .health
        .cooling_until(sluice::clock::now_ms())
        .expect("cooled on replica 0");
    loop {
        if let Some(u) = bad_on(&rs[1])
            .stats
            .health
            .cooling_until(sluice::clock::now_ms())
        {
            assert_eq!(u, until, "the other replica has another end time");
            break;
        }
        assert!(
            cooled_at.elapsed() < Duration::from_millis(100),
            "not shared within 100 ms"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Replica 1 now sends nothing to it, for the rest of the 20 s.
    let before = limited.stats().requests();
    for _ in 0..20 {
        assert_eq!(
            post(&format!("{}/chat/completions", rs[1].url()), &chat("m"))
                .await
                .status,
            200
        );
    }
    assert_eq!(limited.stats().requests(), before);
    assert!(until - sluice::clock::now_ms() > 18_000);
}
