//! Every strategy and the pick around it, table-driven, with time passed in
//! explicitly (`now_ms`) so windows and cooldowns are exact.

use crate::config;
use crate::limiter::health::Failure;
use crate::router::pick::{pick, Need, Pick};
use crate::state::Snapshot;
use std::collections::BTreeSet;
use std::time::Duration;

/// A minute boundary, so `T0 + x` stays in one window for x < 60,000.
const T0: u64 = 1_800_000_000_000;

fn snapshot(strategy: &str, deployments: &str, extra: &str) -> Snapshot {
    let yaml = format!(
        "model_list:\n{deployments}\nrouter_settings:\n  routing_strategy: {strategy}\n{extra}"
    );
    let loaded = config::load_str(&yaml, &|_| None).unwrap_or_else(|e| panic!("{e:?}"));
    Snapshot::build(loaded, None).unwrap()
}

/// One deployment `id` of group g, with extra litellm_params and model_info.
fn dep(id: &str, params: &str, info: &str) -> String {
    format!(
        "  - model_name: g\n    litellm_params: {{model: openai/{id}, mock_response: x{params}}}\n    model_info: {{id: {id}{info}}}\n"
    )
}

fn index(s: &Snapshot, id: &str) -> usize {
    s.deployments.iter().position(|d| d.cfg.id == id).unwrap()
}

/// The set of ids a pick lands on over many tries. Each admission is released again,
/// which returns its tokens; its request still counts, as for a failed attempt.
fn landings(s: &Snapshot, tried: &[usize], need: &Need, now: u64) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        match pick(s, &s.groups[0], tried, need, now) {
            Pick::Admitted {
                deployment,
                reservation,
                ..
            } => {
                s.deployments[deployment].stats.release(reservation);
                seen.insert(s.deployments[deployment].cfg.id.clone());
            }
            other => panic!("expected an admission, got {other:?}"),
        }
    }
    seen
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn hold(s: &Snapshot, id: &str, n: usize) {
    let d = &s.deployments[index(s, id)];
    for _ in 0..n {
        d.stats.try_admit(&d.limits, false, 0, T0).unwrap();
    }
}

const NEED: Need = Need {
    prompt_tokens: 10,
    reserve_tokens: 10,
    stream: false,
};

#[test]
fn least_busy_takes_the_fewest_in_flight_with_random_ties() {
    let s = snapshot(
        "least-busy",
        &[dep("a", "", ""), dep("b", "", ""), dep("c", "", "")].concat(),
        "",
    );
    hold(&s, "a", 2);
    hold(&s, "b", 1);
    assert_eq!(landings(&s, &[], &NEED, T0), set(&["c"]));
    hold(&s, "c", 1);
    assert_eq!(landings(&s, &[], &NEED, T0), set(&["b", "c"]));
}

#[test]
fn usage_based_takes_the_lowest_tokens_among_those_with_room() {
    for strategy in ["usage-based-routing", "usage-based-routing-v2"] {
        let deps = [
            dep("a", ", rpm: 1", ""),
            dep("b", ", tpm: 1000", ""),
            dep("c", ", tpm: 1000", ""),
        ]
        .concat();
        let s = snapshot(strategy, &deps, "");
        let reserve = |id: &str, tokens: u64| {
            let d = &s.deployments[index(&s, id)];
            d.stats.try_admit(&d.limits, true, tokens, T0).unwrap()
        };
        let r = reserve("b", 300);
        s.deployments[index(&s, "b")].stats.settle(r, 300);
        reserve("c", 300);
        // a has no tokens used but its one request this minute is taken: no room.
        reserve("a", 0);
        assert_eq!(landings(&s, &[], &NEED, T0), set(&["b", "c"]), "{strategy}");
        // Ties are broken at random; a request too big for c's remaining room goes to b.
        let big = Need {
            reserve_tokens: 700,
            ..NEED
        };
        reserve("c", 100);
        assert_eq!(landings(&s, &[], &big, T0), set(&["b"]), "{strategy}");
        // The next minute, a is back and the least used.
        assert_eq!(
            landings(&s, &[], &NEED, T0 + 60_000),
            set(&["a", "b", "c"]),
            "{strategy}"
        );
    }
}

#[test]
fn latency_based_explores_then_takes_the_fastest_within_the_buffer() {
    let deps = [dep("a", "", ""), dep("b", "", ""), dep("c", "", "")].concat();
    for (buffer, expect) in [
        (0.0, vec!["b"]),
        (1.0, vec!["b"]),
        (2.5, vec!["b", "c"]),
        (10.0, vec!["a", "b", "c"]),
    ] {
        let extra = format!("  routing_strategy_args: {{lowest_latency_buffer: {buffer}}}\n");
        let s = snapshot("latency-based-routing", &deps, &extra);
        let stats = |id| &s.deployments[index(&s, id)].stats;
        stats("a").record_latency(5.0, 10); // 0.5 s per token
        stats("b").record_latency(1.0, 10); // 0.1
                                            // c has no data yet: tried first.
        assert_eq!(landings(&s, &[], &NEED, T0), set(&["c"]));
        stats("c").record_latency(3.0, 10); // 0.3
        let expect: Vec<&str> = expect.clone();
        assert_eq!(
            landings(&s, &[], &NEED, T0),
            set(&expect),
            "buffer {buffer}"
        );
    }
}

#[test]
fn latency_based_uses_time_to_first_token_for_streams() {
    let s = snapshot(
        "latency-based-routing",
        &[dep("a", "", ""), dep("b", "", "")].concat(),
        "",
    );
    let stats = |id| &s.deployments[index(&s, id)].stats;
    stats("a").record_latency(1.0, 10);
    stats("b").record_latency(5.0, 10);
    stats("a").record_ttft(2.0);
    stats("b").record_ttft(0.2);
    assert_eq!(landings(&s, &[], &NEED, T0), set(&["a"]));
    let stream = Need {
        stream: true,
        ..NEED
    };
    assert_eq!(landings(&s, &[], &stream, T0), set(&["b"]));
}

#[test]
fn cost_based_takes_the_cheapest_and_unknown_cost_last() {
    let deps = [
        dep(
            "a",
            ", input_cost_per_token: 0.002, output_cost_per_token: 0.002",
            "",
        ),
        dep(
            "b",
            ", input_cost_per_token: 0.001",
            ", output_cost_per_token: 0.001",
        ),
        dep(
            "c",
            ", input_cost_per_token: 0.0005, output_cost_per_token: 0.0015",
            "",
        ),
        dep("d", "", ""),
    ]
    .concat();
    let s = snapshot("cost-based-routing", &deps, "");
    assert_eq!(landings(&s, &[], &NEED, T0), set(&["b", "c"]));
    let (b, c) = (index(&s, "b"), index(&s, "c"));
    assert_eq!(landings(&s, &[b, c], &NEED, T0), set(&["a"]));
}

#[test]
fn order_uses_the_lowest_tier_while_any_of_it_is_usable() {
    let deps = [
        dep("a", ", order: 1, rpm: 2", ""),
        dep("b", ", order: 2", ""),
        dep("c", "", ""),
    ]
    .concat();
    let s = snapshot("simple-shuffle", &deps, "  enable_pre_call_checks: true\n");
    // One probe only: every admission counts against a's rpm of 2.
    match pick(&s, &s.groups[0], &[], &NEED, T0) {
        Pick::Admitted { deployment, .. } => assert_eq!(s.deployments[deployment].cfg.id, "a"),
        other => panic!("{other:?}"),
    }
    // a over its limit this minute: the next tier.
    hold_enforced(&s, "a", 1);
    assert_eq!(landings(&s, &[], &NEED, T0), set(&["b"]));
    // b cooling down: deployments without `order` come last.
    cool(&s, "b", T0);
    assert_eq!(landings(&s, &[], &NEED, T0 + 1), set(&["c"]));
}

fn hold_enforced(s: &Snapshot, id: &str, n: usize) {
    let d = &s.deployments[index(s, id)];
    for _ in 0..n {
        d.stats.try_admit(&d.limits, true, 0, T0).unwrap();
    }
}

/// Starts a 5 s cooldown on `id` with a 429 (groups here have several members).
fn cool(s: &Snapshot, id: &str, now: u64) {
    let d = &s.deployments[index(s, id)];
    let until = d.stats.health.record_failure(
        Failure::Status(429),
        None,
        None,
        &s.settings.cooldown,
        3,
        now,
    );
    assert_eq!(until, Some(now + 5_000));
}

#[test]
fn all_cooled_down_is_unavailable_until_the_first_comes_back() {
    for strategy in [
        "simple-shuffle",
        "least-busy",
        "usage-based-routing-v2",
        "latency-based-routing",
        "cost-based-routing",
    ] {
        let s = snapshot(
            strategy,
            &[dep("a", "", ""), dep("b", "", ""), dep("c", "", "")].concat(),
            "",
        );
        cool(&s, "a", T0);
        cool(&s, "b", T0 + 1_000);
        cool(&s, "c", T0 + 2_000);
        let p = pick(&s, &s.groups[0], &[], &NEED, T0 + 3_000);
        assert_eq!(
            p,
            Pick::Unavailable {
                until_ms: T0 + 5_000
            },
            "{strategy}"
        );
        // At the end of a's cooldown it rejoins, alone.
        assert_eq!(
            landings(&s, &[], &NEED, T0 + 5_000),
            set(&["a"]),
            "{strategy}"
        );
    }
}

#[test]
fn all_over_limit_is_unavailable_until_the_window_ends() {
    let deps = [dep("a", ", rpm: 1", ""), dep("b", ", rpm: 2", "")].concat();
    let s = snapshot("usage-based-routing-v2", &deps, "");
    for _ in 0..3 {
        assert!(matches!(
            pick(&s, &s.groups[0], &[], &NEED, T0 + 10),
            Pick::Admitted { .. }
        ));
    }
    assert_eq!(
        pick(&s, &s.groups[0], &[], &NEED, T0 + 10),
        Pick::Unavailable {
            until_ms: T0 + 60_000
        }
    );
    // Without pre-call checks, rpm is only a weight under simple-shuffle.
    let s = snapshot("simple-shuffle", &deps, "");
    for _ in 0..10 {
        assert!(matches!(
            pick(&s, &s.groups[0], &[], &NEED, T0),
            Pick::Admitted { .. }
        ));
    }
}

#[test]
fn context_window_filters_deployments_that_cannot_fit_the_prompt() {
    let deps = [
        dep("a", "", ", max_input_tokens: 100"),
        dep("b", "", ", max_input_tokens: 10000"),
    ]
    .concat();
    let s = snapshot("simple-shuffle", &deps, "");
    let big = Need {
        prompt_tokens: 5000,
        reserve_tokens: 5000,
        stream: false,
    };
    assert_eq!(landings(&s, &[], &big, T0), set(&["b"]));
    let huge = Need {
        prompt_tokens: 50_000,
        reserve_tokens: 50_000,
        stream: false,
    };
    assert_eq!(pick(&s, &s.groups[0], &[], &huge, T0), Pick::ContextWindow);
}

#[test]
fn retries_prefer_deployments_not_tried_yet() {
    let s = snapshot(
        "simple-shuffle",
        &[dep("a", ", weight: 100", ""), dep("b", ", weight: 1", "")].concat(),
        "",
    );
    let a = index(&s, "a");
    assert_eq!(landings(&s, &[a], &NEED, T0), set(&["b"]));
    let b = index(&s, "b");
    match pick(&s, &s.groups[0], &[a, b], &NEED, T0) {
        Pick::Admitted { fresh, .. } => assert!(!fresh, "every deployment was tried"),
        other => panic!("{other:?}"),
    }
}

/// Property: any number of threads admitting at once through `pick` never admit
/// more than the group's total rpm in a minute, nor more than any deployment's rpm,
/// and admit exactly that total when demand exceeds it.
#[test]
fn concurrent_picks_reach_the_limits_and_never_pass_them() {
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..12 {
        let rpms: Vec<u64> = (0..rng.usize(1..5)).map(|_| rng.u64(1..60)).collect();
        let deps: String = rpms
            .iter()
            .enumerate()
            .map(|(i, r)| dep(&format!("d{i}"), &format!(", rpm: {r}"), ""))
            .collect();
        let strategy = ["usage-based-routing-v2", "simple-shuffle", "least-busy"][round % 3];
        let s = std::sync::Arc::new(snapshot(
            strategy,
            &deps,
            "  enable_pre_call_checks: true\n",
        ));
        let total: u64 = rpms.iter().sum();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut admitted = 0u64;
                    for _ in 0..total {
                        if let Pick::Admitted {
                            deployment,
                            reservation,
                            ..
                        } = pick(&s, &s.groups[0], &[], &NEED, T0)
                        {
                            s.deployments[deployment].stats.settle(reservation, 1);
                            admitted += 1;
                        }
                    }
                    admitted
                })
            })
            .collect();
        let admitted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            admitted, total,
            "round {round}: rpms {rpms:?} with {strategy}"
        );
        for (i, rpm) in rpms.iter().enumerate() {
            assert_eq!(
                s.deployments[i].stats.requests_used(T0),
                *rpm,
                "round {round}"
            );
        }
    }
}

#[test]
fn a_cooldown_set_by_retry_after_is_respected() {
    let s = snapshot(
        "simple-shuffle",
        &[dep("a", "", ""), dep("b", "", "")].concat(),
        "",
    );
    let a = &s.deployments[index(&s, "a")];
    let until = a.stats.health.record_failure(
        Failure::Status(429),
        Some(Duration::from_secs(20)),
        None,
        &s.settings.cooldown,
        2,
        T0,
    );
    assert_eq!(until, Some(T0 + 20_000));
    assert_eq!(landings(&s, &[], &NEED, T0 + 19_999), set(&["b"]));
    assert_eq!(landings(&s, &[], &NEED, T0 + 20_000), set(&["a", "b"]));
}
