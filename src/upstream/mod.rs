//! The HTTP client that talks to upstreams (plain HTTP, or HTTPS through rustls
//! with the webpki roots), its connection pool, and per-provider URL and header
//! building.

mod body;
mod chunked;
mod counted;
mod h1;
mod names;
mod origin;
mod pool;
pub mod provider;

pub use body::Body;
pub use origin::{set_worker, Origin};
pub use pool::{Client, Error, Target};
pub use provider::Endpoint;

use crate::metrics::PoolMetrics;
use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::Arc;
use std::time::Duration;

/// Builds the client, counting its connections into `pool`. TCP_NODELAY is set
/// because requests and responses are small and latency-bound.
pub fn client(pool: Arc<PoolMetrics>) -> Client {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(root_store())
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::new(https, pool)
}

/// The webpki roots, plus the PEM certificates in `$SSL_CERT_FILE` when set (for
/// upstreams behind a private CA, as LiteLLM honours it too).
fn root_store() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        match std::fs::read(&path) {
            Ok(pem) => {
                let mut added = 0;
                for cert in rustls_pemfile_certs(&pem) {
                    if roots.add(cert).is_ok() {
                        added += 1;
                    }
                }
                tracing::info!(path = ?path, added, "loaded extra CA certificates");
            }
            Err(e) => tracing::warn!(path = ?path, error = %e, "SSL_CERT_FILE unreadable"),
        }
    }
    roots
}

/// Certificates from a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}
