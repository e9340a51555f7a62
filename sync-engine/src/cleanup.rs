//! Removal. The intent is persisted first (state `removing`), then every
//! step is idempotent: kill the workload, wait for followers of its logs,
//! remove its cgroups (rmdir in every controller), its directory, and last
//! its row. A failed or interrupted removal is retried, also by the next
//! quiltd at start-up.
use crate::engine::{Engine, Inner};
use crate::error::{EngineError, Result};
use crate::lifecycle::{signal_target, wait_finished};
use crate::model::{Container, State};
use quilt_runtime::cgroup;
use quilt_runtime::signal::Signal;
use std::sync::Arc;
use std::time::Duration;

const KILL_WAIT: Duration = Duration::from_secs(10);
const FOLLOWER_WAIT: Duration = Duration::from_secs(5);

impl Engine {
    /// Removes a container. Running ones are refused unless `force`.
    pub async fn remove(&self, reference: &str, force: bool) -> Result<String> {
        let c = self.inner.store.resolve(reference).await?;
        refuse_running(&c, force)?;
        remove_by_id(&self.inner, &c.id, force).await?;
        Ok(c.id)
    }
}

/// Removes in the background (auto-remove, reconciliation), retrying on failure.
pub(crate) fn spawn_remove(inner: Arc<Inner>, id: String) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(500);
        loop {
            match remove_by_id(&inner, &id, true).await {
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
fn refuse_running(c: &Container, force: bool) -> Result<()> {
    if matches!(c.state, State::Running | State::Starting) && !force {
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
pub(crate) async fn remove_by_id(inner: &Arc<Inner>, id: &str, force: bool) -> Result<()> {
    let live = inner.live(id);
    let _op = live.op.lock().await;
    if !force {
        match inner.store.get(id).await? {
            Some(c) => refuse_running(&c, force)?,
            None => return Err(EngineError::no_such_container(id)),
        }
    }
    let mut events = inner.events.subscribe();
    let Some(prev) = inner.store.set_removing(id).await? else {
        return Err(EngineError::no_such_container(id));
    };
    let Some(c) = inner.store.get(id).await? else {
        return Err(EngineError::no_such_container(id));
    };
    if prev != State::Removing {
        inner.emit(&c, State::Removing, "removing", None, None);
    }
    if c.exit.is_none() && c.shim_pid.is_some() {
        signal_target(inner, &c, Signal::KILL)?;
        if !wait_finished(inner, id, &mut events, KILL_WAIT).await? {
            tracing::warn!(container = %id, "workload not recorded as exited after SIGKILL; removing anyway");
        }
    }
    // Let attached log followers read to the end before the files go.
    let _excl = tokio::time::timeout(FOLLOWER_WAIT, live.attach.clone().write_owned()).await;

    let spec = inner.cgroup_spec(&c);
    let dir = inner.cfg.container_dir(id);
    tokio::task::spawn_blocking(move || -> Result<()> {
        cgroup::remove(&spec).map_err(|e| EngineError::internal("remove cgroup", e))?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::internal(
                &format!("remove {}", dir.display()),
                e,
            )),
        }
    })
    .await??;
    inner.store.delete(id).await?;
    inner.emit(
        &c,
        State::Removing,
        "removed",
        c.exit.clone(),
        c.failure_reason.clone(),
    );
    inner.forget(id);
    inner.execs.drop_container(id);
    Ok(())
}
