//! `relay`: a TCP relay, the least any proxy in user space can do. Each client
//! connection gets its own connection to `--upstream` and bytes are copied both
//! ways as they come, with no HTTP in between. One thread. What it adds to a
//! request's latency at a light rate is the cost of the extra hop itself (two
//! more thread wake-ups and two more trips through the kernel's TCP), which no
//! HTTP proxy can go below on the same machine. Not meant for throughput.
//! Prints `listening on http://ADDR`; stops on Ctrl-C.

use clap::Parser;
use tokio::net::TcpStream;

mod common;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = common::Args::parse();
    let upstream: std::sync::Arc<str> = args
        .upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .into();
    common::serve(args.port, |mut client| {
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&*upstream).await else {
                return; // dropping the client's connection tells it
            };
            if server.set_nodelay(true).is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    })
    .await
}
