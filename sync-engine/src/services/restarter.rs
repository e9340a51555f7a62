//! Restart policies at work. When the monitor has recorded an exit that the
//! container's policy restarts (`Container::restart_due`), [`schedule`]
//! starts a timer for the back-off (100 ms, doubling with each run shorter
//! than 10 s, up to a minute) and then queues a new start, unless the user
//! stopped, started or removed the container meanwhile. Reconciliation
//! schedules the restarts a previous quiltd left due. No polling: one tokio
//! timer per pending restart.
use crate::engine::Shared;
use crate::error::Result;
use crate::model::restart::{BACKOFF_RESET_AFTER, backoff};
use crate::model::{Container, State};
use std::sync::Arc;
use std::time::Duration;

/// Schedules the restart of a container whose policy calls for one.
pub(crate) fn schedule(shared: Arc<Shared>, c: &Container) {
    let ran = match (
        c.started_at_ns,
        c.exit.as_ref().and_then(|e| e.finished_at_ns),
    ) {
        (Some(s), Some(f)) if f > s => Duration::from_nanos((f - s) as u64),
        _ => Duration::ZERO,
    };
    let delay = {
        let live = shared.live(&c.id);
        let mut quick = live
            .restart_streak
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if ran >= BACKOFF_RESET_AFTER {
            *quick = 0;
        }
        let d = backoff(*quick);
        *quick = quick.saturating_add(1);
        d
    };
    let id = c.id.clone();
    tracing::info!(container = %id, delay = ?delay, policy = c.restart.name(), "restart scheduled");
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Err(e) = restart(&shared, &id).await {
            // The row still says a restart is due: the next quiltd does it.
            tracing::warn!(container = %id, error = %e, "restart failed");
        }
    });
}

/// Queues the restart if it is still due.
async fn restart(shared: &Arc<Shared>, id: &str) -> Result<()> {
    if shared.is_closing() {
        return Ok(());
    }
    let live = shared.live(id);
    let _lifecycle = live.lifecycle.lock().await;
    let Some(c) = shared.store().get(id).await? else {
        return Ok(());
    };
    if !c.restart_due() {
        return Ok(());
    }
    if !shared.store().reset_for_restart(id).await? {
        return Ok(()); // stopped by the user, or changed meanwhile
    }
    shared.emit(&c, State::Created, "restarting", None, None);
    // Queued in the row: if the queue cannot take it now, reconciliation
    // of the next quiltd does.
    crate::cluster::note_taken(shared, id);
    shared.queue().push(id.to_owned()).await
}
