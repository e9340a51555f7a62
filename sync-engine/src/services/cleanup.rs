//! Removal. The intent is persisted first (state `removing`), then every
//! step is idempotent: kill the workload, wait for followers of its logs,
//! remove its cgroups (rmdir in every controller), its directory, and last
//! its row. A failed or interrupted removal is retried, also by the next
//! quiltd at start-up.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, State};
use crate::support::signals::signal_target;
use quilt_runtime::cgroup;
use quilt_runtime::signal::Signal;
use std::sync::Arc;
use std::time::Duration;

const KILL_WAIT: Duration = Duration::from_secs(10);
const FOLLOWER_WAIT: Duration = Duration::from_secs(5);

/// Removes in the background (auto-remove, reconciliation), retrying on failure.
pub(crate) fn spawn_remove(shared: Arc<Shared>, id: String) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(500);
        loop {
            match remove_by_id(&shared, &id, true).await {
                Ok(()) | Err(EngineError::NotFound(_)) => return,
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, retry_in = ?delay, "removal failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
    });
}

/// FAILED_PRECONDITION for a running container unless `force`.
pub(crate) fn refuse_running(c: &Container, force: bool) -> Result<()> {
    if !c.state.can_remove(force) {
        return Err(EngineError::FailedPrecondition(format!(
            "container {} is {}: stop it first or force the removal (rm -f)",
            c.name,
            c.state.as_str()
        )));
    }
    Ok(())
}

/// Removes a container; unless `force`, one that is running (checked again
/// under its lock: a start may have finished meanwhile) is refused.
pub(crate) async fn remove_by_id(shared: &Arc<Shared>, id: &str, force: bool) -> Result<()> {
    let live = shared.live(id);
    if force {
        // A forced removal does not queue behind a stop that is waiting out
        // its timeout (which holds the lifecycle lock): the kill goes first,
        // the stop sees the exit and lets go.
        if let Some(c) = shared.store().get(id).await?
            && (c.state.can_kill() || c.state.is_paused())
        {
            signal_target(&c, Signal::KILL).await?;
            if c.state.is_paused() {
                shared.thaw_cgroup(&c).await?;
            }
        }
    }
    let _lifecycle = live.lifecycle.lock().await;
    if !force {
        match shared.store().get(id).await? {
            Some(c) => {
                refuse_running(&c, force)?;
                crate::network::refuse_joined(shared, &c).await?;
            }
            None => return Err(EngineError::no_such_container(id)),
        }
    }
    let mut watch = shared.watch();
    let Some((prev, c)) = shared.store().set_removing(id).await? else {
        return Err(EngineError::no_such_container(id));
    };
    if prev != State::Removing {
        shared.emit(&c, State::Removing, "removing", None, None);
    }
    // A warm pool's container claimed by its create and never started.
    shared.pool().discard(shared, id).await;
    if c.exit.is_none() && c.shim_pid.is_some() {
        signal_target(&c, Signal::KILL).await?;
        if prev.is_paused() {
            // A frozen (v1) task acts on the SIGKILL once thawed.
            shared.thaw_cgroup(&c).await?;
        }
        if !shared.wait_exited(&mut watch, id, KILL_WAIT).await? {
            tracing::warn!(container = %id, "workload not recorded as exited after SIGKILL; removing anyway");
        }
    }
    // Let attached log followers read to the end before the files go.
    let _excl = tokio::time::timeout(FOLLOWER_WAIT, live.followers.clone().write_owned()).await;

    let spec = shared.cgroup_spec(&c);
    let dir = shared.cfg().container_dir(id);
    let sh = shared.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        cgroup::remove(&spec).map_err(|e| EngineError::internal("remove cgroup", e))?;
        // Its files are deleted in the background (see `support::trash`).
        sh.trash()
            .discard(&dir)
            .map_err(|e| EngineError::internal(&format!("remove {}", dir.display()), e))
    })
    .await??;
    // Off its network (and its names out of the resolver) before its
    // address can go to another container.
    crate::network::dns::remove(shared, id);
    let released = crate::network::release(shared, &c).await?;
    shared.store().delete(id).await?;
    released.give_back();
    if c.network == crate::model::Network::Bridge {
        crate::network::refresh_hosts(shared, &c.net.network, id).await;
    }
    shared.emit(
        &c,
        State::Removing,
        "removed",
        c.exit.clone(),
        c.failure_reason.clone(),
    );
    shared.forget(id);
    shared.execs().drop_container(id);
    Ok(())
}
