//! The in-memory companion of a container row: per-container serialisation
//! of lifecycle operations, the lock log followers share with removal, and
//! its restart and activity counters. No descriptor per container is kept
//! here: its PID 1 is signalled through a pidfd opened when needed (see
//! `support::signals`), so quiltd's descriptor table, which every spawn
//! copies, stays one pidfd (the supervisor's) per running container.
use std::sync::{Arc, Mutex};

use tokio::sync::RwLock;

#[derive(Debug, Default)]
pub(crate) struct Live {
    /// The lifecycle lock: held by start, stop, remove and copies into a
    /// stopped container, so they never interleave.
    pub lifecycle: tokio::sync::Mutex<()>,
    /// Log followers hold it shared; removal takes it exclusively, so an
    /// attached `run --rm` sees every line before the files go.
    pub followers: Arc<RwLock<()>>,
    /// Consecutive runs shorter than the back-off reset (restart policies;
    /// starts again from the first back-off after a daemon restart).
    pub restart_streak: Mutex<u32>,
    /// Execs, attaches, log follows and copies under way (idle timeouts).
    pub active: std::sync::atomic::AtomicU32,
    /// The end of the latest of them (unix ns; 0: none since quiltd started).
    pub last_activity_ns: std::sync::atomic::AtomicI64,
    /// A warm pool's container is being adopted: its row may say running
    /// before its workload has exec'd (see `pool::adopt`). Set and cleared
    /// by the start, under the lifecycle lock.
    pub adopting: std::sync::atomic::AtomicBool,
}

impl Live {
    /// Waits until an adoption under way has ended (the start holds the
    /// lifecycle lock until its outcome is recorded). True if it waited:
    /// the caller reads the row again.
    pub async fn adoption_settled(&self) -> bool {
        if !self.adopting.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        drop(self.lifecycle.lock().await);
        true
    }
}

/// Marks an adoption under way while it lives (see [`Live::adopting`]).
#[derive(Debug)]
pub(crate) struct Adopting<'a>(&'a Live);

impl<'a> Adopting<'a> {
    pub fn new(live: &'a Live) -> Adopting<'a> {
        live.adopting
            .store(true, std::sync::atomic::Ordering::Release);
        Adopting(live)
    }
}

impl Drop for Adopting<'_> {
    fn drop(&mut self) {
        self.0
            .adopting
            .store(false, std::sync::atomic::Ordering::Release);
    }
}
