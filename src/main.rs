//! The `sluice` command: serve a LiteLLM proxy config, or check one.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use sluice::limiter::shared::Mode;
use sluice::server::Timeouts;
use sluice::state::{App, Snapshot};
use sluice::worker::Worker;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::runtime::Handle;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An OpenAI-compatible load balancer for LiteLLM proxy configs.
#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The LiteLLM proxy config (YAML) to serve.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// Worker threads, each serving the connections handed to it (default: one per CPU).
    #[arg(long = "num_workers", visible_alias = "num-workers")]
    num_workers: Option<usize>,
    /// Pin worker i to the i-th CPU this process may run on, as nginx's
    /// `worker_cpu_affinity auto` does: a worker is woken on its own CPU, with its
    /// caches warm, which can lower the latency added at light load. Leave it off
    /// where busy neighbours share sluice's CPUs: a pinned worker cannot move away.
    #[arg(long = "pin_workers", visible_alias = "pin-workers")]
    pin_workers: bool,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long = "json-logs")]
    json_logs: bool,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long = "grace-period", default_value = "30", value_parser = seconds)]
    grace_period: Duration,
    /// Seconds an HTTP/1 connection with no request open may go without a request
    /// arriving or a response finishing before it is closed (checked once a
    /// period: it goes after one to two periods); this also drops clients too
    /// slow to send their headers.
    #[arg(long = "idle-timeout", default_value = "30", value_parser = positive_seconds)]
    idle_timeout: Duration,
}

/// Parses a duration given in seconds, such as `30` or `0.5`.
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("expected a number of seconds, got {s:?}"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("expected a non-negative, finite number of seconds, got {s:?}"))
}

/// Like `seconds`, above zero.
fn positive_seconds(s: &str) -> Result<Duration, String> {
    match seconds(s)? {
        d if d.is_zero() => Err(format!("expected more than 0 seconds, got {s:?}")),
        d => Ok(d),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config and print what it would serve, without starting.
    Check {
        /// The LiteLLM proxy config (YAML) to check.
        #[arg(long)]
        config: PathBuf,
    },
}

/// Exit status for an unusable config or command line.
const EXIT_BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // First of all, so that no memory is mapped with huge pages before it.
    let huge_pages = no_huge_pages();
    let cli = Cli::parse();
    if let Some(Command::Check { config }) = &cli.command {
        return check(config);
    }
    let Some(path) = cli.config.clone() else {
        eprintln!("error: --config PATH is required (try configs/quickstart.yaml)");
        return ExitCode::from(EXIT_BAD_CONFIG);
    };
    let (snapshot, json_logs) = match load(&path, None) {
        Ok(s) => s,
        Err(errors) => {
            report_errors(&path, &errors);
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    init_logs(cli.json_logs || json_logs);
    if let Err(e) = huge_pages {
        tracing::debug!(error = %e, "transparent huge pages left as they are");
    }
    let workers = cli
        .num_workers
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // One single-threaded runtime per worker thread, each serving the connections
    // handed to it: a request and its upstream connection stay on one thread, and
    // no worker wakes another to share work (perf/RESULTS.md, round ten).
    // The main thread is worker 0: it also accepts, and hands connections out.
    // With --pin_workers, worker i goes to the i-th allowed CPU (in turn, when
    // there are more workers than CPUs).
    let cpus = if cli.pin_workers {
        sluice::worker::allowed_cpus()
    } else {
        Vec::new()
    };
    if cli.pin_workers && cpus.is_empty() {
        tracing::warn!(
            "--pin_workers: this system does not say which CPUs sluice may use; workers not pinned"
        );
    }
    let cpu_of = |i: usize| (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
    let main_rt = sluice::worker::runtime().expect("a tokio runtime starts");
    let others: Vec<Worker> = (1..workers)
        .map(|i| Worker::start(i, cpu_of(i)).expect("a worker thread starts"))
        .collect();
    if let Some(cpu) = cpu_of(0) {
        sluice::worker::pin_thread(cpu);
    }
    let handles = std::iter::once(main_rt.handle().clone())
        .chain(others.iter().map(|w| w.handle().clone()))
        .collect();
    main_rt.block_on(serve(cli, path, snapshot, handles))
}

/// Opts out of transparent huge pages. A proxy's heap is many small per-connection
/// buffers; with THP set to `always` (a common distribution default) the kernel
/// backs the allocator's regions with 2 MB pages that stay resident however little
/// of them is used (perf/memory.sh with 1,000 connections: about a quarter of the
/// peak RSS; figures in perf/RESULTS.md).
fn no_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}

/// Loads and builds a config; errors are ready to print.
fn load(path: &Path, previous: Option<&Snapshot>) -> Result<(Snapshot, bool), Vec<String>> {
    let (snapshot, warnings) = sluice::reload::load(path, previous)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let json_logs = snapshot.config.litellm.json_logs;
    Ok((snapshot, json_logs))
}

fn report_errors(path: &Path, errors: &[String]) {
    eprintln!("error: {} has {} problem(s):", path.display(), errors.len());
    for e in errors {
        eprintln!("  {e}");
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald and log files get plain text.
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

async fn serve(cli: Cli, path: PathBuf, snapshot: Snapshot, workers: Vec<Handle>) -> ExitCode {
    let app = App::new(snapshot);
    wait_for_redis(&app).await;
    let addr = SocketAddr::new(cli.host, cli.port);
    let listener = match sluice::server::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or(addr, |a| a);
    let snap = app.snapshot.load();
    tracing::info!(
        %local,
        config = %path.display(),
        hash = %snap.hash,
        groups = snap.groups.len(),
        deployments = snap.deployments.len(),
        redis = app.limit_mode().as_str(),
        "sluice {} listening on http://{local}", sluice::VERSION
    );
    drop(snap);
    tokio::spawn(sluice::reload::on_sighup(app.clone(), path));
    let timeouts = Timeouts {
        grace: cli.grace_period,
        idle: cli.idle_timeout,
    };
    sluice::server::run_on(listener, app, shutdown_signal(), timeouts, &workers).await;
    ExitCode::SUCCESS
}

/// With Redis configured, gives it a moment to answer before traffic is accepted:
/// until then a replica knows neither the other replicas nor their usage, and
/// would have to admit on a guess. Redis down at start delays serving by at most
/// `REDIS_START_WAIT`; sluice then serves on local shares and joins when it can.
async fn wait_for_redis(app: &App) {
    const REDIS_START_WAIT: Duration = Duration::from_secs(2);
    if app.sync.is_none() {
        return;
    }
    let deadline = tokio::time::Instant::now() + REDIS_START_WAIT;
    while app.limit_mode() != Mode::Shared && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if app.limit_mode() != Mode::Shared {
        tracing::warn!("redis not reachable at start: serving on local shares until it is");
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// `sluice check`: every problem, or a summary of what would be served.
fn check(path: &Path) -> ExitCode {
    let snap = match load(path, None) {
        Ok((s, _)) => s,
        Err(errors) => {
            report_errors(path, &errors);
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let r = &snap.config.router;
    println!("{}: OK (config hash {})", path.display(), snap.hash);
    println!(
        "routing_strategy: {}, num_retries: {}, timeout: {}s, master key: {}",
        r.routing_strategy.as_str(),
        snap.settings.num_retries,
        snap.settings.timeout.as_secs_f64(),
        if snap.settings.master_key_sha.is_some() {
            "set"
        } else {
            "none (no auth)"
        },
    );
    for g in &snap.groups {
        println!("group {:?}: {} deployment(s)", g.name, g.members.len());
        for &i in &g.members {
            let d = &snap.deployments[i];
            let c = &d.cfg;
            let mut line = format!("  - {} id={} -> {}", c.model, c.id, d.targets[0].url);
            for (k, v) in [("rpm", c.rpm), ("tpm", c.tpm)] {
                if let Some(v) = v {
                    line.push_str(&format!(" {k}={v}"));
                }
            }
            if let Some(w) = c.weight {
                line.push_str(&format!(" weight={w}"));
            }
            if c.mock_response.is_some() {
                line.push_str(" (mock_response)");
            }
            println!("{line}");
        }
    }
    for a in &r.model_group_alias {
        let hidden = if a.hidden { " (hidden)" } else { "" };
        println!("alias {:?} -> {:?}{hidden}", a.name, a.target);
    }
    ExitCode::SUCCESS
}
