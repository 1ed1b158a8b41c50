//! `relay`: a TCP relay, the least any proxy in user space can do. Each client
//! connection gets its own connection to `--upstream` and bytes are copied both
//! ways as they come, with no HTTP in between. One thread. What it adds to a
//! request's latency at a light rate is the cost of the extra hop itself (two
//! more thread wake-ups and two more trips through the kernel's TCP), which no
//! HTTP proxy can go below on the same machine. Not meant for throughput.
//! Prints `listening on http://ADDR`; stops on Ctrl-C.

use clap::Parser;
use std::io::Write;
use tokio::net::{TcpListener, TcpStream};

/// TCP relay to one upstream.
#[derive(Parser)]
struct Args {
    /// Upstream address, e.g. http://127.0.0.1:8080 or 127.0.0.1:8080
    #[arg(long)]
    upstream: String,
    /// Port on 127.0.0.1 to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let upstream: std::sync::Arc<str> = args
        .upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .into();
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    writeln!(std::io::stdout(), "listening on http://{addr}")?;
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let (mut client, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut stop => return Ok(()),
        };
        client.set_nodelay(true)?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&*upstream).await else {
                return; // dropping the client's connection tells it
            };
            if server.set_nodelay(true).is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}
