//! sluice: an OpenAI-compatible LLM load balancer that reads LiteLLM proxy configs.
//!
//! The request path, in order: [`server`] accepts and hands the connection to a
//! [`worker`] thread, [`routes`] authenticates and
//! dispatches, [`request`] reads and scans the body, [`router`] resolves the model
//! group and picks a deployment, [`proxy`] sends it upstream through [`upstream`]
//! with retries, and the response streams back untouched.
#![forbid(unsafe_code)]

pub mod body;
pub mod clock;
pub mod config;
pub mod error;
pub mod fake;
pub mod health;
pub mod info;
pub mod inline_wake;
pub mod limiter;
pub mod metrics;
pub mod mock;
pub mod proxy;
pub mod reload;
pub mod request;
pub mod router;
pub mod routes;
pub mod scan;
pub mod server;
pub mod state;
pub mod upstream;
pub mod usage;
pub mod worker;

pub use state::{App, Snapshot};

/// The version reported in `x-litellm-version`, `--version` and readiness.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
