//! One upstream scheme and authority ([`Origin`]): its idle HTTP/1 connections,
//! a list per worker thread, its one shared HTTP/2 connection, and the task that
//! drops expired ones.

use super::h1::Conn;
use crate::body::Spliced;
use http::header::HeaderValue;
use http::uri::Scheme;
use http::Uri;
use hyper::client::conn::http2;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

thread_local! {
    /// The worker this thread is (0 unless [`set_worker`] said otherwise).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Tells the pool that this thread is worker `i`, which keeps the connections it
/// dials to itself.
pub fn set_worker(i: usize) {
    WORKER.set(i);
}

/// Idle lists per origin: one per CPU (more workers than that share them).
fn shards() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// An idle connection older than this is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How often each origin drops its closed and expired idle connections.
const REAP_EVERY: Duration = Duration::from_secs(30);

/// One upstream scheme and authority, with its idle connections.
pub struct Origin {
    /// `scheme://authority/`: what the connector dials.
    pub(super) base: Uri,
    /// The `Host` header of HTTP/1 requests: the authority without a default port.
    pub(super) host: HeaderValue,
    /// Idle HTTP/1 connections, a list per worker thread (see [`set_worker`]): a
    /// connection's socket is registered with the thread that dialled it, and goes
    /// back to that thread's list, so its wake-ups stay on that thread. In
    /// each list the most recently used is last and is taken first, so connections
    /// beyond what the load needs age out.
    idle: Box<[Mutex<Vec<Idle>>]>,
    /// The HTTP/2 connection every request shares, when the upstream chose HTTP/2.
    pub(super) h2: Mutex<Option<http2::SendRequest<Spliced>>>,
    /// Set once the upstream has chosen HTTP/2: from then on one request at a time
    /// dials (holding `one_dial`), and the others wait to share its connection.
    pub(super) speaks_h2: AtomicBool,
    /// Held by the one request dialling while others wait for its connection: the
    /// shared HTTP/2 one, or the first, which tells the protocol (`probed`).
    pub(super) one_dial: tokio::sync::Mutex<()>,
    /// Whether a dial has ended, so that the protocol is known: an HTTPS upstream
    /// picks HTTP/2 or HTTP/1.1 in its TLS handshake. Until then requests dial one
    /// at a time (holding `one_dial`). Plain HTTP is HTTP/1.1 from the start.
    pub(super) probed: AtomicBool,
    /// Whether the task that drops expired idle connections runs.
    pub(super) reaping: AtomicBool,
}

/// An idle HTTP/1 connection.
struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

impl Origin {
    /// The origin of an absolute `url` (its path is ignored).
    pub fn new(url: &Uri) -> Result<Origin, String> {
        let (Some(scheme), Some(authority)) = (url.scheme(), url.authority()) else {
            return Err(format!("{url} is not an absolute URL"));
        };
        let base = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| format!("{url}: {e}"))?;
        let host = host_header(url).ok_or_else(|| format!("{url} has no usable host"))?;
        Ok(Origin {
            base,
            host,
            idle: (0..shards()).map(|_| Mutex::default()).collect(),
            h2: Mutex::default(),
            speaks_h2: AtomicBool::new(false),
            one_dial: tokio::sync::Mutex::new(()),
            probed: AtomicBool::new(scheme != &Scheme::HTTPS),
            reaping: AtomicBool::new(false),
        })
    }

    /// `scheme://authority`, which names the origin (for sharing it between
    /// deployments and across reloads).
    pub fn key(url: &Uri) -> String {
        format!(
            "{}://{}",
            url.scheme_str().unwrap_or_default(),
            url.authority().map_or("", |a| a.as_str())
        )
    }

    /// The shared HTTP/2 connection, unless there is none or it closed.
    pub(super) fn h2(&self) -> Option<http2::SendRequest<Spliced>> {
        let mut h2 = lock(&self.h2);
        if h2.as_ref().is_some_and(|c| c.is_closed()) {
            *h2 = None;
        }
        h2.clone()
    }

    /// The most recently used idle HTTP/1 connection that has not expired.
    pub(super) fn checkout(&self) -> Option<Box<Conn>> {
        let mut idle = self.own_idle();
        while let Some(mut i) = idle.pop() {
            if !i.conn.is_usable() {
                continue;
            }
            if i.since.elapsed() >= IDLE_TIMEOUT {
                // The rest are older still.
                idle.clear();
                return None;
            }
            return Some(i.conn);
        }
        None
    }

    /// Puts a connection whose answer has ended back.
    pub(super) fn checkin(&self, conn: Box<Conn>) {
        let since = Instant::now();
        self.own_idle().push(Idle { conn, since });
    }

    /// Drops closed and expired idle connections, and a closed HTTP/2 connection.
    fn reap(&self) {
        for idle in &self.idle {
            lock(idle).retain_mut(|i| i.since.elapsed() < IDLE_TIMEOUT && i.conn.is_usable());
        }
        self.h2();
    }

    /// Idle HTTP/1 connections now (for tests).
    pub fn idle_count(&self) -> usize {
        self.idle.iter().map(|idle| lock(idle).len()).sum()
    }

    /// This worker thread's idle connections.
    fn own_idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        lock(&self.idle[WORKER.get() % self.idle.len()])
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin").field("base", &self.base).finish()
    }
}

/// Locks `m`; a panic elsewhere while holding it leaves nothing half-done here.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops `origin`'s expired connections every `REAP_EVERY` until it is gone.
pub(super) async fn reap(origin: Weak<Origin>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        match origin.upgrade() {
            Some(o) => o.reap(),
            None => return,
        }
    }
}

/// The `Host` header for requests to `url`: the host, and the port unless it is
/// the scheme's default.
pub fn host_header(url: &Uri) -> Option<HeaderValue> {
    let host = url.host()?;
    let default = if url.scheme() == Some(&Scheme::HTTPS) {
        443
    } else {
        80
    };
    let value = match url.port_u16() {
        Some(port) if port != default => HeaderValue::try_from(format!("{host}:{port}")),
        _ => HeaderValue::from_str(host),
    };
    value.ok()
}

#[cfg(test)]
mod tests {
    use super::host_header;

    #[test]
    fn host_header_is_the_authority_without_a_default_port() {
        for (url, want) in [
            ("http://127.0.0.1:8080/v1", "127.0.0.1:8080"),
            ("http://example.com/v1", "example.com"),
            ("http://example.com:80/v1", "example.com"),
            ("https://example.com/v1", "example.com"),
            ("https://example.com:443/v1", "example.com"),
            ("https://example.com:8443/v1", "example.com:8443"),
            ("https://example.com:80/v1", "example.com:80"),
            ("http://[::1]:9000/", "[::1]:9000"),
            ("http://user:pw@example.com:81/", "example.com:81"),
        ] {
            let got = host_header(&url.parse().unwrap()).unwrap();
            assert_eq!(got.to_str().unwrap(), want, "{url}");
        }
    }
}
