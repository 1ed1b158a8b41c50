//! What the yardstick proxies of `perf/` (passthrough, relay) share: their command
//! line, and a listener that hands out connections until Ctrl-C.

use std::io::Write;
use tokio::net::{TcpListener, TcpStream};

/// A yardstick proxy to one upstream (see `perf/README.md`).
#[derive(clap::Parser)]
pub struct Args {
    /// Upstream base URL, e.g. http://127.0.0.1:8080
    #[arg(long)]
    pub upstream: String,
    /// Port on 127.0.0.1 to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Listens on 127.0.0.1:`port`, prints `listening on http://ADDR`, and hands each
/// accepted connection (with `TCP_NODELAY` set) to `each` until Ctrl-C. Ctrl-C
/// (SIGINT) returns, so that an instrumented build (perf/pgo.sh) writes its
/// profile on the way out.
pub async fn serve(port: u16, mut each: impl FnMut(TcpStream)) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    writeln!(std::io::stdout(), "listening on http://{addr}")?;
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut stop => return Ok(()),
        };
        stream.set_nodelay(true)?;
        each(stream);
    }
}
