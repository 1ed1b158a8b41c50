//! Worker threads: each runs a single-threaded tokio runtime of its own and serves
//! the connections the accept loop ([`crate::server::run_on`]) hands it, pinned
//! to a CPU with `--pin_workers`.

use tokio::runtime::{Handle, Runtime};
use tokio::sync::oneshot;

/// A single-threaded runtime, such as each worker runs.
pub fn runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A worker thread with a [`runtime`] of its own, which serves the connections
/// [`crate::server::run_on`] hands it until the worker is dropped.
pub struct Worker {
    handle: Handle,
    /// Dropped to stop the thread.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts worker `i` (which keeps its own idle upstream connections, see
    /// [`crate::upstream::set_worker`]) on a thread named `sluice-worker-i`,
    /// pinned to `cpu` if one is given (see [`pin_thread`]). Returns once the
    /// thread runs under its name, on its CPU.
    pub fn start(i: usize, cpu: Option<usize>) -> std::io::Result<Worker> {
        let rt = runtime()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("sluice-worker-{i}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    pin_thread(cpu);
                }
                crate::upstream::set_worker(i);
                let _ = ready.send(());
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        // An error means the thread ended early (it panicked): nothing to wait for.
        let _ = is_ready.recv();
        Ok(Worker {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where to spawn work on this worker.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// The CPUs this process may run on (as `taskset` or a container's cpuset left
/// them), in order: where `--pin_workers` puts worker 0, 1, ... in turn. Empty
/// where it cannot be read.
pub fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    if let Ok(set) = rustix::thread::sched_getaffinity(None) {
        return (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&cpu| set.is_set(cpu))
            .collect();
    }
    Vec::new()
}

/// Keeps the calling thread on `cpu` from now on. A worker kept on one CPU is
/// woken there, instead of being queued behind the process that woke it on that
/// process's CPU, and finds its code and data in its own core's caches: at 1,000
/// req/s this took about 0.01 ms off the latency sluice adds on one 2-core Intel
/// host, and made no difference on a 2-core AMD one (perf/RESULTS.md, rounds
/// sixteen and seventeen). Threads the caller starts afterwards inherit
/// the CPU. Where the CPU cannot be set, the thread runs where the scheduler puts
/// it, with a warning: pinning is an optimisation.
pub fn pin_thread(cpu: usize) {
    #[cfg(target_os = "linux")]
    let pinned = {
        let mut set = rustix::thread::CpuSet::new();
        if cpu < rustix::thread::CpuSet::MAX_CPU {
            set.set(cpu);
        }
        rustix::thread::sched_setaffinity(None, &set).map_err(std::io::Error::from)
    };
    #[cfg(not(target_os = "linux"))]
    let pinned: std::io::Result<()> = Err(std::io::ErrorKind::Unsupported.into());
    if let Err(error) = pinned {
        let thread = std::thread::current();
        tracing::warn!(thread = thread.name(), cpu, %error, "worker not pinned to its CPU");
    }
}

impl Drop for Worker {
    /// Stops the worker's runtime, dropping what still runs on it, and waits for
    /// its thread.
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
