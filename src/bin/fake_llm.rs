//! `fake-llm`: a fake OpenAI-compatible upstream for benchmarking sluice.
//! Prints `listening on http://HOST:PORT` once bound, runs until SIGINT or
//! SIGTERM, then prints its counters to stderr.

use clap::Parser;
use sluice::fake::{serve, FakeConfig, FakeStats};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A fake OpenAI-compatible LLM server (chat, completions, embeddings).
#[derive(Debug, Parser)]
#[command(name = "fake-llm", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind (0 picks a free one; see the printed line).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Value of the `x-fake-llm-id` response header.
    #[arg(long, default_value = "fake")]
    id: String,
    /// Fixed delay before answering, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// If above --latency-ms, delays are uniform between the two.
    #[arg(long)]
    latency_max_ms: Option<u64>,
    /// Requests answered per calendar minute (UTC, all clients); beyond: 429.
    #[arg(long)]
    rpm: Option<u64>,
    /// Seconds sent in a Retry-After header on every 429.
    #[arg(long)]
    retry_after: Option<u64>,
    /// Content chunks per streamed answer.
    #[arg(long, default_value_t = 5)]
    stream_chunks: usize,
    /// Delay between streamed content chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Fraction (0.0-1.0) of requests answered with --error-status.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,
    /// HTTP status of injected errors.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(100..=999))]
    error_status: u16,
    /// Add to every answer the eighteen headers an OpenAI answer carries
    /// (request id, rate limits, CDN headers), for benchmarks.
    #[arg(long)]
    openai_headers: bool,
    /// Tokio worker threads (default: available cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        Ok(_) => Err("must be between 0.0 and 1.0".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

impl Args {
    fn config(&self) -> FakeConfig {
        FakeConfig {
            host: self.host.clone(),
            port: self.port,
            id: self.id.clone(),
            latency: Duration::from_millis(self.latency_ms),
            latency_max: self.latency_max_ms.map(Duration::from_millis),
            rpm: self.rpm,
            retry_after: self.retry_after,
            stream_chunks: self.stream_chunks,
            chunk_delay: Duration::from_millis(self.chunk_delay_ms),
            error_rate: self.error_rate,
            error_status: self.error_status,
            openai_headers: self.openai_headers,
            record: false,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let workers = args.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(args.config())),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-llm: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: FakeConfig) -> std::io::Result<()> {
    let listener = TcpListener::bind((cfg.host.as_str(), cfg.port)).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    let stats = Arc::new(FakeStats::default());
    serve(listener, cfg, Arc::clone(&stats), stop_signal()).await?;
    eprintln!("fake-llm: stopped; {stats}");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
