//! Start-up reconciliation: make the recorded state true again after quiltd
//! was down. Running containers whose supervisor is alive are adopted (a
//! monitor is attached); those that ended meanwhile get the exit status their
//! supervisor left; interrupted starts are retried; unfinished removals and
//! auto-removals are resumed.
use super::cleanup;
use super::monitor;
use super::restarter;
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, State};
use quilt_runtime::{cgroup, proc};
use std::sync::Arc;

pub(crate) async fn run(shared: &Arc<Shared>) -> Result<()> {
    crate::security::startup(shared).await?;
    // What no row owns (a node's own sweep ran as it joined).
    if shared.node().is_none() {
        crate::cluster::end_moved(shared, true).await?;
    }
    // In a cluster, this node's containers only (the others are theirs).
    let mine = crate::model::ListFilter {
        node: shared.node().map(str::to_owned),
        ..Default::default()
    };
    let all = shared.store().list(&mine).await?;
    let mut adopted = 0usize;
    for c in all {
        // One container's trouble must not keep quiltd from starting.
        match one(shared, &c).await {
            Ok(true) => adopted += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(container = %c.id, error = %e, "reconciliation failed"),
        }
    }
    if adopted > 0 {
        tracing::info!(adopted, "adopted running containers");
    }
    Ok(())
}

/// Reconciles one container; true when a running one was adopted.
pub(crate) async fn one(shared: &Arc<Shared>, c: &Container) -> Result<bool> {
    match c.state {
        State::Removing => {
            // A removal interrupted before the workload's exit was recorded:
            // watch its supervisor again, so the removal sees the exit.
            if c.exit.is_none() && c.shim_pid.is_some() {
                adopt(shared, c).await?;
            }
            cleanup::spawn_remove(shared.clone(), c.id.clone())
        }
        State::Exited | State::Failed if c.auto_remove => {
            cleanup::spawn_remove(shared.clone(), c.id.clone())
        }
        // A restart the previous quiltd had due (or was waiting out).
        State::Exited if c.restart_due() => restarter::schedule(shared.clone(), c),
        State::Exited | State::Failed => {}
        State::Created if c.is_queued() => requeue(shared, c).await?,
        State::Created => {}
        State::Starting => {
            // The previous quiltd died mid-start: whatever it may have
            // spawned is unknown, so end it and start afresh.
            let spec = shared.cgroup_spec(c);
            tokio::task::spawn_blocking(move || cgroup::remove(&spec))
                .await?
                .map_err(|e| EngineError::internal("cgroup", e))?;
            shared.store().requeue_interrupted_start(&c.id).await?;
            requeue(shared, c).await?;
        }
        // A paused container stays frozen across the restart: adopted as is.
        State::Running | State::Paused => return adopt(shared, c).await,
        // This node's lease ran out while it was away (a cluster): what
        // still runs is taken back, what ended is recorded.
        State::Lost => {
            if adopt(shared, c).await? {
                return crate::cluster::take_back(shared, c).await;
            }
        }
    }
    Ok(false)
}

/// Queues a start; the starter is already running, so a full queue only
/// means waiting for room.
async fn requeue(shared: &Arc<Shared>, c: &Container) -> Result<()> {
    crate::cluster::note_taken(shared, &c.id);
    shared.queue().push(c.id.clone()).await
}

/// Attaches a monitor to a running container's supervisor, or records its
/// end if the supervisor is gone. True when adopted alive.
async fn adopt(shared: &Arc<Shared>, c: &Container) -> Result<bool> {
    let (Some(shim_pid), Some(start)) = (c.shim_pid, c.shim_start_time) else {
        monitor::on_exit(shared, &c.id, 0).await?;
        return Ok(false);
    };
    let handles = tokio::task::spawn_blocking(move || {
        // Same pid and same start time: the very supervisor we launched.
        if proc::start_time(shim_pid) != Some(start) {
            return None;
        }
        proc::pidfd_open(shim_pid).ok()
    })
    .await?;
    match handles {
        Some(shim_fd) => {
            monitor::watch(shared.clone(), c.id.clone(), shim_pid, shim_fd);
            Ok(true)
        }
        None => {
            monitor::on_exit(shared, &c.id, shim_pid).await?;
            Ok(false)
        }
    }
}
