//! The example configs in `configs/`, loaded from disk as `sluice` would.

use super::*;
use std::path::PathBuf;
use std::time::Duration;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name)
}

fn load_example(name: &str, pairs: &[(&str, &str)]) -> Loaded {
    let text = std::fs::read_to_string(path(name)).expect("example config");
    load_with(&text, pairs)
}

#[test]
fn load_file_reads_from_disk() {
    let p = path("fake-openai-endpoint.yaml");
    let loaded = match load_file(&p) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("{errors:?}"),
    };
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(loaded.hash, identity::sha256_hex(&bytes)[..12]);
    assert_eq!(loaded.config.model_list.len(), 1);
}

#[test]
fn multi_instance() {
    let loaded = load_example("multi-instance.yaml", &[]);
    let c = &loaded.config;
    assert_eq!(c.model_list.len(), 2);
    for (d, port) in c.model_list.iter().zip([8080, 8081]) {
        assert_eq!(d.model_name, "fake-openai-endpoint");
        assert_eq!(d.provider, ProviderKind::OpenAi);
        assert_eq!(d.rpm, Some(100));
        assert_eq!(
            d.api_base.as_deref(),
            Some(format!("http://127.0.0.1:{port}").as_str())
        );
        assert_eq!(d.api_key.as_deref(), Some("my-fake-key"));
    }
    assert_ne!(c.model_list[0].id, c.model_list[1].id);
    assert_eq!(c.model_list[1].upstream_model, "my-fake-model-2");
    assert_eq!(c.router.routing_strategy, Strategy::UsageBasedRoutingV2);
    assert_eq!(c.router.num_retries, Some(0));
    assert!(c.router.enable_pre_call_checks);
    // Without REDIS_* set: no Redis, one warning per reference.
    assert!(c.router.redis.is_none());
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);

    let env = [
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", "6379"),
        ("REDIS_PASSWORD", ""),
    ];
    let loaded = load_example("multi-instance.yaml", &env);
    let redis = loaded.config.router.redis.expect("redis");
    assert_eq!(
        (redis.host.as_deref(), redis.port),
        (Some("127.0.0.1"), Some(6379))
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn azure_load_balancing() {
    let env = [
        ("AZURE_API_KEY_EASTUS", "k1"),
        ("AZURE_API_KEY_CANADA", "k2"),
        ("AZURE_API_KEY_FRANCE", "k3"),
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PASSWORD", "pw"),
    ];
    let loaded = load_example("azure-load-balancing.yaml", &env);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(c.model_list.len(), 3);
    let rpms: Vec<_> = c.model_list.iter().map(|d| d.rpm).collect();
    assert_eq!(rpms, [Some(6), Some(6), Some(1440)]);
    for (d, key) in c.model_list.iter().zip(["k1", "k2", "k3"]) {
        assert_eq!(d.provider, ProviderKind::Azure);
        assert_eq!(d.api_version.as_deref(), Some("2024-10-21"));
        assert_eq!(d.api_key.as_deref(), Some(key));
        assert!(!d.public_params.contains_key("api_key"));
    }
    assert_eq!(c.model_list[2].upstream_model, "gpt-turbo-large");
    assert_eq!(c.router.routing_strategy, Strategy::SimpleShuffle);
    assert_eq!(
        c.router.model_group_alias,
        [Alias {
            name: "gpt-4".into(),
            target: "gpt-3.5-turbo".into(),
            hidden: false
        }]
    );
    assert_eq!(c.router.num_retries, Some(2));
    assert_eq!(c.router.timeout, Some(Duration::from_secs(30)));
    let redis = c.router.redis.as_ref().expect("redis");
    assert_eq!(redis.port, Some(1992));
    assert_eq!(redis.password.as_deref(), Some("pw"));

    // Nothing set: still loads, with a warning for each reference and the lone redis_port.
    let loaded = load_example("azure-load-balancing.yaml", &[]);
    assert!(loaded.config.model_list.iter().all(|d| d.api_key.is_none()));
    assert_eq!(loaded.warnings.len(), 6, "{:?}", loaded.warnings);
}

#[test]
fn fake_openai_endpoint() {
    let loaded = load_example("fake-openai-endpoint.yaml", &[]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let d = &loaded.config.model_list[0];
    assert_eq!(d.model_name, "fake-openai-endpoint");
    assert_eq!(
        (d.provider_name.as_str(), d.upstream_model.as_str()),
        ("openai", "fake")
    );
    assert_eq!(d.api_base.as_deref(), Some("http://127.0.0.1:8080/"));
    assert_eq!(d.api_key.as_deref(), Some("fake-key"));
    assert_eq!(loaded.config.litellm.callbacks, ["prometheus"]);
}

#[test]
fn load_balancing() {
    let env = [
        ("UPSTREAM_KEY_A", "a"),
        ("UPSTREAM_KEY_B", "b"),
        ("UPSTREAM_KEY_C", "c"),
        ("UPSTREAM_KEY_D", "d"),
    ];
    let loaded = load_example("load-balancing.yaml", &env);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    let ids: Vec<_> = c.model_list.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids[..3], ["mini-a", "mini-b", "mini-c"]);
    let weights: Vec<_> = c.model_list.iter().map(|d| d.weight).collect();
    assert_eq!(weights, [Some(3.0), Some(2.0), Some(1.0), None]);
    assert_eq!(c.model_list[0].tpm, Some(200_000));
    assert_eq!(c.model_list[2].timeout, Some(Duration::from_secs(20)));
    assert_eq!(c.model_list[3].order, Some(1));
    let mut aliases = c.router.model_group_alias.clone();
    aliases.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        aliases,
        [
            Alias {
                name: "GPT-4o-mini".into(),
                target: "gpt-4o-mini".into(),
                hidden: true
            },
            Alias {
                name: "gpt-4o-mini-latest".into(),
                target: "gpt-4o-mini".into(),
                hidden: false
            },
        ]
    );
    let fb = vec![("gpt-4o-mini".to_string(), vec!["gpt-4o".to_string()])];
    assert_eq!(c.router.fallbacks, fb);
    assert_eq!(c.router.context_window_fallbacks, fb);
    assert_eq!(c.router.cooldown_time, Duration::from_secs(10));
}
