//! Activity on a container (an exec, an attach or logs follow, a copy),
//! for idle timeouts: a guard counts it as active while it lives and, when
//! dropped, records the time and wakes the lifetimes service.
use super::Shared;
use crate::model::now_ns;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Held for the length of one activity on a container.
#[derive(Debug)]
pub(crate) struct ActivityGuard {
    shared: Arc<Shared>,
    id: String,
}

impl Shared {
    /// Marks the start of an activity on container `id`.
    pub(crate) fn activity(self: &Arc<Self>, id: &str) -> ActivityGuard {
        self.live(id).active.fetch_add(1, Ordering::SeqCst);
        ActivityGuard {
            shared: self.clone(),
            id: id.to_owned(),
        }
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        let live = self.shared.live(&self.id);
        live.active.fetch_sub(1, Ordering::SeqCst);
        let at = now_ns();
        live.last_activity_ns.fetch_max(at, Ordering::SeqCst);
        let (shared, id) = (self.shared.clone(), std::mem::take(&mut self.id));
        // Stored for restarts; the service re-arms its timer.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = shared.store().set_last_activity(&id, at).await {
                    tracing::warn!(container = %id, error = %e, "cannot record activity");
                }
                shared.lifetimes_wake(&id);
            });
        }
    }
}
