//! Real `redis-server` processes for tests, each on a free loopback port, stopped
//! (by PID) when dropped. No persistence: a restart starts empty, like a cache.

use super::Sluice;
use sluice::limiter::shared::Mode;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One redis-server process.
pub struct RedisServer {
    /// The port it listens on.
    pub port: u16,
    /// The running process, if started.
    child: Option<Child>,
    /// Its working directory (cluster config files).
    dir: PathBuf,
    /// Extra arguments (cluster mode).
    extra: Vec<String>,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl RedisServer {
    /// Starts a standalone server.
    pub fn start() -> RedisServer {
        Self::start_with(Vec::new())
    }

    /// Starts a standalone server on a given port.
    pub fn start_on(port: u16) -> RedisServer {
        Self::start_at(port, Vec::new())
    }

    fn start_with(extra: Vec<String>) -> RedisServer {
        Self::start_at(free_port(), extra)
    }

    fn start_at(port: u16, extra: Vec<String>) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("sluice-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = RedisServer {
            port,
            child: None,
            dir,
            extra,
        };
        s.restart();
        s
    }

    /// Starts (again) on the same port, with an empty dataset.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", self.dir.to_str().unwrap()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process (the port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs a redis-cli command against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Commands the server has executed, by `INFO commandstats`: (calls of commands
    /// sent by clients, calls including those run inside scripts).
    pub fn command_calls(&self) -> (u64, u64) {
        let info = self.cli(&["INFO", "commandstats"]);
        let (mut client, mut all) = (0, 0);
        for line in info.lines().filter(|l| l.starts_with("cmdstat_")) {
            let (name, rest) = line.split_once(':').unwrap();
            let calls: u64 = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .unwrap()
                .parse()
                .unwrap();
            all += calls;
            // Scripts' own commands are counted under their names too; those sent by
            // clients here are the script calls, script loads, pub/sub and INFO itself.
            if matches!(
                name,
                "cmdstat_evalsha"
                    | "cmdstat_eval"
                    | "cmdstat_script|load"
                    | "cmdstat_subscribe"
                    | "cmdstat_info"
                    | "cmdstat_client|setinfo"
                    | "cmdstat_hello"
                    | "cmdstat_ping"
            ) {
                client += calls;
            }
        }
        (client, all)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of `n` primaries on free ports.
pub struct RedisCluster {
    /// Its nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `n` cluster-enabled servers and joins them into one cluster.
    pub fn start(n: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..n)
            .map(|_| {
                RedisServer::start_with(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ]
                    .map(String::from)
                    .to_vec(),
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !nodes
            .iter()
            .all(|s| s.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "cluster never became ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes }
    }
}

/// `n` replicas of one config.
pub async fn replicas(n: usize, yaml: &str) -> Vec<Sluice> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Sluice::start(yaml).await);
    }
    v
}

/// Waits until every replica counts limits in Redis and hears cooldowns as they
/// are announced.
pub async fn all_shared(rs: &[Sluice]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let ready = |r: &Sluice| {
        let subscribed = r
            .app
            .sync
            .as_ref()
            .is_some_and(|s| s.subscribed.load(Ordering::Acquire));
        r.app.limit_mode() == Mode::Shared && subscribed
    };
    while !rs.iter().all(ready) {
        assert!(Instant::now() < deadline, "replicas never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every replica has seen all `rs.len()` replicas alive (heartbeats
/// are a second apart, so a replica started later is seen by the others within one).
pub async fn all_seen(rs: &[Sluice]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rs
        .iter()
        .all(|r| r.app.sync.as_ref().unwrap().replicas() == rs.len() as u64)
    {
        assert!(Instant::now() < deadline, "replicas never saw each other");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `n` requests, `per_sec` a second, each to a random replica; returns
/// (successes, 429s, other statuses).
pub async fn offer(rs: &[Sluice], n: usize, per_sec: u64, body: &str) -> (usize, usize, Vec<u16>) {
    let urls: Vec<String> = rs
        .iter()
        .map(|r| format!("{}/chat/completions", r.url()))
        .collect();
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = urls[fastrand::usize(..urls.len())].clone();
        let body = body.to_string();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i as u64 * 1000 / per_sec)).await;
            super::post(&url, &body).await.status.as_u16()
        }));
    }
    let (mut ok, mut limited, mut other) = (0, 0, Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            s => other.push(s),
        }
    }
    (ok, limited, other)
}

pub fn redis_yaml(redis: &str, deployments: &str, extra: &str) -> String {
    format!(
        "model_list:\n{deployments}router_settings:\n  num_retries: 0\n  routing_strategy: usage-based-routing-v2\n{redis}{extra}"
    )
}

pub fn at(port: u16) -> String {
    format!("  redis_host: 127.0.0.1\n  redis_port: {port}\n")
}

pub fn deployment(id: &str, url: &str, limits: &str) -> String {
    format!("  - model_name: m\n    litellm_params: {{model: openai/{id}, api_base: \"{url}\"{limits}}}\n    model_info: {{id: {id}}}\n")
}
