//! What the request path and the Redis sync task share: the mode in force, the
//! number of replicas last seen alive, and the signals between them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// Where limits are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No Redis configured: this replica's own counters.
    None,
    /// Redis reachable: leases claimed from shared counters.
    Shared,
    /// Redis configured but unreachable or slow: a local share of each limit.
    LocalFallback,
}

impl Mode {
    /// As shown by readiness and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Shared => "shared",
            Mode::LocalFallback => "local_fallback",
        }
    }
}

/// State shared between requests and the sync task of one sluice process.
#[derive(Debug)]
pub struct SyncState {
    /// The current `Mode`, as a u8.
    mode: AtomicU8,
    /// Replicas seen alive at the last heartbeat (at least 1).
    replicas: AtomicU32,
    /// A request found a lease empty: the sync task should claim now.
    pub wake: Notify,
    /// A sync round finished: requests waiting on an empty lease look again.
    refilled: Notify,
    /// Sync rounds finished so far, so a waiter can tell whether it missed one.
    rounds: AtomicU64,
    /// Cooldowns started here, for the sync task to share: (deployment id, until ms).
    cooldowns: mpsc::UnboundedSender<(Arc<str>, u64)>,
    /// Commands this replica has sent to Redis (scripts count once).
    pub commands: AtomicU64,
    /// Subscribed to the cooldown channel: cooldowns other replicas start from
    /// now on arrive as they start.
    pub subscribed: AtomicBool,
    /// After a fallback, the first minute in which shared counting may resume: the
    /// minute of an outage is finished on local shares, so rejoining never bursts.
    pub rejoin_minute: AtomicU64,
}

impl SyncState {
    /// A state in local-fallback mode until the first successful sync, and the
    /// receiver of cooldowns to share.
    pub fn new() -> (Arc<SyncState>, mpsc::UnboundedReceiver<(Arc<str>, u64)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let s = SyncState {
            mode: AtomicU8::new(Mode::LocalFallback as u8),
            replicas: AtomicU32::new(1),
            wake: Notify::new(),
            refilled: Notify::new(),
            rounds: AtomicU64::new(0),
            cooldowns: tx,
            commands: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            rejoin_minute: AtomicU64::new(0),
        };
        (Arc::new(s), rx)
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Acquire) {
            1 => Mode::Shared,
            2 => Mode::LocalFallback,
            _ => Mode::None,
        }
    }

    /// Switches mode; returns the previous one.
    pub fn set_mode(&self, mode: Mode) -> Mode {
        match self.mode.swap(mode as u8, Ordering::AcqRel) {
            1 => Mode::Shared,
            2 => Mode::LocalFallback,
            _ => Mode::None,
        }
    }

    /// Replicas last seen alive.
    pub fn replicas(&self) -> u64 {
        u64::from(self.replicas.load(Ordering::Acquire).max(1))
    }

    /// Records the replicas seen alive.
    pub fn set_replicas(&self, n: u64) {
        self.replicas
            .store(n.clamp(1, u64::from(u32::MAX)) as u32, Ordering::Release);
    }

    /// Records the replicas seen alive, unless fewer than the count already known.
    pub fn raise_replicas(&self, n: u64) {
        self.replicas
            .fetch_max(n.clamp(1, u64::from(u32::MAX)) as u32, Ordering::AcqRel);
    }

    /// Sync rounds finished so far; read before a pick that may wait.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Acquire)
    }

    /// Marks a sync round finished and wakes the requests waiting for it.
    pub fn round_done(&self) {
        self.rounds.fetch_add(1, Ordering::AcqRel);
        self.refilled.notify_waiters();
    }

    /// Waits (at most `limit`) for a round after the `seen`-th, returning at once if
    /// one already finished, so no refill is missed between the pick and the wait.
    pub async fn wait_round(&self, seen: u64, limit: std::time::Duration) {
        let notified = self.refilled.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.rounds() == seen {
            let _ = tokio::time::timeout(limit, notified).await;
        }
    }

    /// Hands a cooldown to the sync task to share with the other replicas.
    pub fn share_cooldown(&self, id: Arc<str>, until_ms: u64) {
        let _ = self.cooldowns.send((id, until_ms));
    }
}

/// A deployment's link to the shared state, set when Redis is configured.
#[derive(Debug)]
pub struct Link {
    /// The process's sync state.
    pub sync: Arc<SyncState>,
    /// The deployment id (names its Redis keys and its cooldown messages).
    pub id: Arc<str>,
}
