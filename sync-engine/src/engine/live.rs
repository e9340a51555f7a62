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
    /// Adoptions of a warm pool's container under way: the row may say
    /// running before its workload has exec'd (see `pool::adopt`). Counted
    /// up by a start under the lifecycle lock and down once it has ended,
    /// which may be after the next start has taken the lock and counted
    /// its own (a flag cleared then would leave that one unmarked).
    adopting: std::sync::atomic::AtomicU32,
}

impl Live {
    /// Whether an adoption is under way (see `adopting`).
    pub fn is_adopting(&self) -> bool {
        self.adopting.load(std::sync::atomic::Ordering::Acquire) > 0
    }

    /// Waits until an adoption under way has ended (the start holds the
    /// lifecycle lock until its outcome is recorded). True if it waited:
    /// the caller reads the row again.
    pub async fn adoption_settled(&self) -> bool {
        if !self.is_adopting() {
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
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Adopting(live)
    }
}

impl Drop for Adopting<'_> {
    fn drop(&mut self) {
        self.0
            .adopting
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adoption_that_ends_after_the_next_began_leaves_it_marked() {
        let live = Live::default();
        assert!(!live.is_adopting());
        let first = Adopting::new(&live);
        // The next start takes the lifecycle lock and marks its own before
        // the first start's mark goes.
        let second = Adopting::new(&live);
        drop(first);
        assert!(live.is_adopting());
        drop(second);
        assert!(!live.is_adopting());
    }
}
