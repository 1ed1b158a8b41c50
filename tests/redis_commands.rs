//! Redis stays off the request path: at about 1,000 requests a second through two
//! replicas, Redis sees at most 0.05 commands per proxied request (INFO
//! commandstats). Its own test binary, so no other load skews the rate.

mod common;
use common::redis::*;
use common::*;
use sluice::limiter::shared::Mode;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sees_few_commands_per_request() {
    let redis = RedisServer::start();
    let up = fake(|_| {}).await;
    let deps = deployment("a", &up.url(), ", rpm: 1000000")
        + &deployment("b", &up.url(), ", rpm: 1000000");
    let rs = replicas(2, &redis_yaml(&at(redis.port), &deps, "")).await;
    all_shared(&rs).await;
    let (before, before_all) = redis.command_calls();
    let started = Instant::now();
    let (ok, _, other) = offer(&rs, 3000, 1000, &chat("m")).await;
    let secs = started.elapsed().as_secs_f64();
    let (after, after_all) = redis.command_calls();
    assert!(other.is_empty() && ok == 3000, "{ok} {other:?}");
    // A replica whose Redis rounds were slow (two over 300 ms) has switched to local
    // limits and heartbeats more often: the rate below would not be the shared one.
    for (i, r) in rs.iter().enumerate() {
        assert_eq!(
            r.app.limit_mode(),
            Mode::Shared,
            "replica {i} left shared limits"
        );
    }
    let per_request = (after - before) as f64 / 3000.0;
    let with_scripts = (after_all - before_all) as f64 / 3000.0;
    println!("{per_request:.4} commands per request ({with_scripts:.4} counting those inside scripts) at {:.0} requests/s", 3000.0 / secs);
    assert!(per_request <= 0.05, "{per_request} commands per request");
    assert!(
        with_scripts <= 0.2,
        "{with_scripts} commands per request, scripts' own included"
    );
}
