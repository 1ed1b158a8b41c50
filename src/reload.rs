//! Config reload: read, validate and build a new snapshot off the request path,
//! then swap it in with one atomic store. Requests already running keep the
//! snapshot they loaded (streams included); deployments left unchanged keep their
//! live state (counters, latency, cooldown), removed ones get no new traffic. An
//! invalid config changes nothing.

use crate::config::{self, ConfigError};
use crate::state::{App, Snapshot};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One reload at a time: two racing would each build on the same previous
/// snapshot, and the later store would drop the state the earlier one carried over.
static RELOADING: Mutex<()> = Mutex::new(());

/// What a reload changed, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Config hash before.
    pub old_hash: String,
    /// Config hash now served.
    pub new_hash: String,
    /// Ids of deployments that are new.
    pub added: Vec<String>,
    /// Ids of deployments that are gone.
    pub removed: Vec<String>,
    /// Ids of deployments whose settings changed (their live state starts afresh).
    pub changed: Vec<String>,
    /// Deployments carried over unchanged, with their live state.
    pub kept: usize,
    /// Settings that changed but only take effect after a restart.
    pub needs_restart: Vec<String>,
    /// Warnings about the new config (ignored keys and the like).
    pub warnings: Vec<String>,
}

impl ReloadReport {
    /// Logs the outcome: one line for the change, one per warning and per setting
    /// that needs a restart.
    pub fn log(&self) {
        for w in &self.warnings {
            tracing::warn!("config: {w}");
        }
        for key in &self.needs_restart {
            tracing::warn!(
                key,
                "changed in the config but only takes effect after a restart"
            );
        }
        tracing::info!(
            old_hash = %self.old_hash,
            new_hash = %self.new_hash,
            added = ?self.added,
            removed = ?self.removed,
            changed = ?self.changed,
            kept = self.kept,
            "config reloaded"
        );
    }
}

/// Loads and builds the config at `path`, carrying live state over from
/// `previous`. Returns the snapshot and the config's warnings, or every problem.
pub fn load(
    path: &Path,
    previous: Option<&Snapshot>,
) -> Result<(Snapshot, Vec<String>), Vec<String>> {
    let loaded = config::load_file(path)
        .map_err(|e| e.iter().map(ConfigError::to_string).collect::<Vec<_>>())?;
    let warnings = loaded.warnings.iter().map(ConfigError::to_string).collect();
    Ok((Snapshot::build(loaded, previous)?, warnings))
}

/// Reloads `app` from the file at `path`: the new snapshot is served from the
/// moment this returns `Ok`. On `Err` (every problem found) nothing changed.
/// Blocking (reads the file); run it off the async workers.
pub fn reload(app: &App, path: &Path) -> Result<ReloadReport, Vec<String>> {
    let _one_at_a_time = RELOADING.lock().unwrap_or_else(|e| e.into_inner());
    let old = app.snapshot.load_full();
    let result = load(path, Some(&old));
    app.metrics.reloaded(result.is_ok());
    let (new, warnings) = result?;
    let report = diff(&old, &new, warnings);
    // New deployments join the shared (Redis) limits before they get traffic.
    app.link(&new);
    app.snapshot.store(Arc::new(new));
    Ok(report)
}

/// What changed from `old` to `new`.
fn diff(old: &Snapshot, new: &Snapshot, warnings: Vec<String>) -> ReloadReport {
    let mut r = ReloadReport {
        old_hash: old.hash.clone(),
        new_hash: new.hash.clone(),
        warnings,
        ..ReloadReport::default()
    };
    for d in &new.deployments {
        match old.deployments.iter().find(|o| o.cfg.id == d.cfg.id) {
            None => r.added.push(d.cfg.id.clone()),
            Some(o) if Arc::ptr_eq(&o.stats, &d.stats) => r.kept += 1,
            Some(_) => r.changed.push(d.cfg.id.clone()),
        }
    }
    for o in &old.deployments {
        if !new.deployments.iter().any(|d| d.cfg.id == o.cfg.id) {
            r.removed.push(o.cfg.id.clone());
        }
    }
    if old.config.litellm.json_logs != new.config.litellm.json_logs {
        r.needs_restart
            .push("litellm_settings.json_logs".to_string());
    }
    r
}

/// Reloads from `path` on every SIGHUP, each time off the async workers, logging
/// what changed or every problem that kept the old config in place.
pub async fn on_sighup(app: Arc<App>, path: std::path::PathBuf) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: reloads are off");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
        let (a, p) = (app.clone(), path.clone());
        match tokio::task::spawn_blocking(move || reload(&a, &p)).await {
            Ok(Ok(report)) => report.log(),
            Ok(Err(errors)) => {
                tracing::error!(
                    problems = errors.len(),
                    "config reload rejected; still serving the previous config"
                );
                for e in &errors {
                    tracing::error!("config: {e}");
                }
            }
            Err(e) => tracing::error!(error = %e, "config reload task failed"),
        }
    }
}
