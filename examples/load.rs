//! `load`: an HTTP load generator for `POST /v1/chat/completions`.
//!
//! Burst mode (`--bursts N --burst-size M --pause-secs P`) sends M requests at
//! once, waits for all of them, pauses P seconds, N times. Rate mode (`--rate R
//! --duration-secs D`) is open loop: requests leave on a fixed timetable of R per
//! second whatever the answers, with at most `--max-in-flight` outstanding.
//! Each request goes to one `--url` picked uniformly at random, over keep-alive
//! connections. At the end it prints successes and failures per UTC calendar
//! minute (the minute each request was sent; `ok_late` counts successes answered
//! in a later minute, which a server may have counted in either), or one JSON
//! object with `--json`.

use bytes::Bytes;
use clap::{ArgGroup, Parser};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Load generator for POST /v1/chat/completions (burst or fixed-rate mode).
#[derive(Debug, Parser)]
#[command(name = "load", group(ArgGroup::new("mode").required(true).args(["bursts", "rate"])))]
struct Args {
    /// Base URL, e.g. http://127.0.0.1:4000 (repeatable; picked at random per request).
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// `model` of every request.
    #[arg(long, default_value = "fake-openai-endpoint")]
    model: String,
    /// Bearer token to send, if any.
    #[arg(long)]
    api_key: Option<String>,
    /// Burst mode: number of bursts.
    #[arg(long)]
    bursts: Option<u32>,
    /// Burst mode: concurrent requests per burst.
    #[arg(long, default_value_t = 600)]
    burst_size: u64,
    /// Burst mode: pause after each burst (but the last), in seconds.
    #[arg(long, default_value_t = 10.0)]
    pause_secs: f64,
    /// Rate mode: requests per second, on a fixed timetable.
    #[arg(long)]
    rate: Option<f64>,
    /// Rate mode: how long to send, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Rate mode: most requests outstanding; ones due beyond it are counted as `capped`.
    #[arg(long, default_value_t = 5000)]
    max_in_flight: usize,
    /// Per-request timeout in seconds (counted as `timeout`).
    #[arg(long, default_value_t = 60.0)]
    timeout_secs: f64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Requests sent in one calendar minute: how many succeeded (`late`: answered in a
/// later minute, so a server may have counted them in either), how the rest failed.
#[derive(Default)]
struct Minute {
    ok: u64,
    late: u64,
    failed: BTreeMap<String, u64>,
}

impl Minute {
    fn requests(&self) -> u64 {
        self.ok + self.failed.values().sum::<u64>()
    }

    fn add(&mut self, other: &Minute) {
        self.ok += other.ok;
        self.late += other.late;
        for (k, v) in &other.failed {
            *self.failed.entry(k.clone()).or_default() += v;
        }
    }
}

#[derive(Default)]
struct Tally {
    minutes: BTreeMap<u64, Minute>,
    latencies_us: Vec<u64>,
}

impl Tally {
    /// `outcome`: `Ok(late)` for a 2xx, else what went wrong.
    fn record(&mut self, minute: u64, outcome: Result<bool, String>, latency: Option<Duration>) {
        let m = self.minutes.entry(minute).or_default();
        match outcome {
            Ok(late) => (m.ok, m.late) = (m.ok + 1, m.late + u64::from(late)),
            Err(why) => *m.failed.entry(why).or_default() += 1,
        }
        if let Some(l) = latency {
            self.latencies_us.push(l.as_micros() as u64);
        }
    }
}

struct Ctx {
    client: Client<HttpConnector, Full<Bytes>>,
    uris: Vec<Uri>,
    model_json: String,
    auth: Option<String>,
    run_id: u32,
    timeout: Duration,
    tally: Mutex<Tally>,
}

fn unix_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

fn hhmm(minute: u64) -> String {
    format!("{:02}:{:02}", minute / 60 % 24, minute % 60)
}

/// Sends one request and reads the whole answer; the status, or why none came.
async fn send(ctx: &Ctx, n: u64) -> Result<u16, &'static str> {
    let uri = ctx.uris[fastrand::usize(..ctx.uris.len())].clone();
    let body = format!(
        r#"{{"model":{},"messages":[{{"role":"user","content":"load {:08x}-{n}: say hello in one short sentence."}}]}}"#,
        ctx.model_json, ctx.run_id
    );
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(auth) = &ctx.auth {
        req = req.header("authorization", auth);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| "request")?;
    let resp =
        ctx.client
            .request(req)
            .await
            .map_err(|e| if e.is_connect() { "connect" } else { "io" })?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await.map_err(|_| "body")?;
    Ok(status)
}

async fn one(ctx: &Ctx, n: u64) {
    let minute = unix_minute();
    let start = Instant::now();
    let outcome = match tokio::time::timeout(ctx.timeout, send(ctx, n)).await {
        Ok(Ok(status)) if (200..300).contains(&status) => Ok(unix_minute() != minute),
        Ok(Ok(status)) => Err(status.to_string()),
        Ok(Err(why)) => Err(why.to_owned()),
        Err(_) => Err("timeout".to_owned()),
    };
    let latency = start.elapsed();
    ctx.tally
        .lock()
        .unwrap()
        .record(minute, outcome, Some(latency));
}

/// Burst mode; returns how long sending lasted (first to last burst, pauses included).
async fn run_bursts(ctx: &Arc<Ctx>, bursts: u32, size: u64, pause: Duration) -> Duration {
    let start = Instant::now();
    let mut n = 0;
    for b in 1..=bursts {
        let t = Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..size {
            let ctx = Arc::clone(ctx);
            tasks.spawn(async move { one(&ctx, n).await });
            n += 1;
        }
        while tasks.join_next().await.is_some() {}
        eprintln!(
            "burst {b}/{bursts}: {size} requests answered in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        if b < bursts {
            tokio::time::sleep(pause).await;
        }
    }
    start.elapsed()
}

/// Rate mode; returns how long sending lasted (first to last request sent).
async fn run_rate(ctx: &Arc<Ctx>, rate: f64, secs: f64, cap: usize) -> Duration {
    let total = (rate * secs).round() as u64;
    let slots = Arc::new(Semaphore::new(cap));
    let start = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for n in 0..total {
        tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / rate)).await;
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => {
                let ctx = Arc::clone(ctx);
                tasks.spawn(async move {
                    one(&ctx, n).await;
                    drop(permit);
                });
            }
            Err(_) => {
                let mut tally = ctx.tally.lock().unwrap();
                tally.record(unix_minute(), Err("capped".to_owned()), None);
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    let sending = start.elapsed();
    while tasks.join_next().await.is_some() {}
    sending
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = (sorted.len().saturating_sub(1) as f64 * p).round() as usize;
    sorted.get(i).map_or(0.0, |&us| us as f64 / 1000.0)
}

fn report(args: &Args, tally: &mut Tally, sending: Duration, elapsed: Duration) {
    let mut total = Minute::default();
    tally.minutes.values().for_each(|m| total.add(m));
    let sent = total.requests() - total.failed.get("capped").copied().unwrap_or(0);
    let secs = sending.as_secs_f64().max(1e-9);
    let achieved = sent as f64 / secs;
    tally.latencies_us.sort_unstable();
    let lat = &tally.latencies_us;
    let pcts = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)];
    if args.json {
        let minute = |label: String, m: &Minute| serde_json::json!({"minute": label, "requests": m.requests(), "ok": m.ok, "ok_late": m.late, "failed": m.failed});
        let minutes: Vec<_> = tally
            .minutes
            .iter()
            .map(|(&k, m)| minute(hhmm(k), m))
            .collect();
        let latency: BTreeMap<_, _> = pcts.iter().map(|&(n, p)| (n, percentile(lat, p))).collect();
        let out = serde_json::json!({
            "mode": if args.rate.is_some() { "rate" } else { "bursts" },
            "urls": args.urls, "model": args.model, "target_rate": args.rate,
            "minutes": minutes, "total": minute("total".to_owned(), &total), "sent": sent,
            "sending_secs": secs, "elapsed_secs": elapsed.as_secs_f64(),
            "achieved_rate": achieved, "latency_ms": latency,
        });
        println!("{out}");
        return;
    }
    let kinds: Vec<&String> = total.failed.keys().collect();
    print!(
        "{:<12} {:>9} {:>9} {:>9}",
        "minute(UTC)", "requests", "ok", "ok_late"
    );
    kinds.iter().for_each(|k| print!(" {k:>9}"));
    println!();
    let rows = tally.minutes.iter().map(|(&k, m)| (hhmm(k), m));
    for (label, m) in rows.chain([("total".to_owned(), &total)]) {
        print!("{label:<12} {:>9} {:>9} {:>9}", m.requests(), m.ok, m.late);
        kinds
            .iter()
            .for_each(|&k| print!(" {:>9}", m.failed.get(k).unwrap_or(&0)));
        println!();
    }
    let target = args.rate.map(|r| format!(" (target {r})"));
    println!(
        "sent {sent} requests in {secs:.2} s of sending: achieved {achieved:.1} req/s{}; {:.2} s in all",
        target.unwrap_or_default(),
        elapsed.as_secs_f64()
    );
    let parts: Vec<String> = pcts
        .iter()
        .map(|&(n, p)| format!("{n} {:.2}", percentile(lat, p)))
        .collect();
    println!("latency ms: {}", parts.join(", "));
}

fn base_to_uri(base: &str) -> Result<Uri, String> {
    let base = base.trim_end_matches('/');
    let path = if base.ends_with("/v1") {
        "/chat/completions"
    } else {
        "/v1/chat/completions"
    };
    let uri: Uri = format!("{base}{path}")
        .parse()
        .map_err(|e| format!("bad --url {base}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("bad --url {base}: only http:// is supported"));
    }
    Ok(uri)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let uris = match args
        .urls
        .iter()
        .map(|u| base_to_uri(u))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(u) => u,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) || args.timeout_secs <= 0.0 {
        eprintln!("load: --rate and --timeout-secs must be positive");
        return ExitCode::FAILURE;
    }
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(300))
        .build(connector);
    let ctx = Arc::new(Ctx {
        client,
        uris,
        model_json: serde_json::Value::from(args.model.as_str()).to_string(),
        auth: args.api_key.as_ref().map(|k| format!("Bearer {k}")),
        run_id: fastrand::u32(..),
        timeout: Duration::from_secs_f64(args.timeout_secs),
        tally: Mutex::new(Tally::default()),
    });
    let started = Instant::now();
    let sending = match (args.bursts, args.rate) {
        (Some(n), _) => {
            let pause = Duration::from_secs_f64(args.pause_secs.max(0.0));
            run_bursts(&ctx, n, args.burst_size, pause).await
        }
        (None, Some(r)) => run_rate(&ctx, r, args.duration_secs, args.max_in_flight).await,
        (None, None) => unreachable!("clap requires --bursts or --rate"),
    };
    let elapsed = started.elapsed();
    let mut tally = std::mem::take(&mut *ctx.tally.lock().unwrap());
    report(&args, &mut tally, sending, elapsed);
    ExitCode::SUCCESS
}
