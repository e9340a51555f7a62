//! The monitor: one lightweight task per running container, woken by the
//! readiness of the supervisor's pidfd (no polling). On wake-up it reaps the
//! shim with waitpid(pid, WNOHANG) (only our own child, never -1), reads the
//! exit status the shim left in exit.json and records it.
use super::cleanup;
use crate::engine::Shared;
use crate::error::Result;
use crate::model::{Container, ExitInfo, now_ns};
use quilt_runtime::{cgroup, exitfile, proc};
use std::os::fd::OwnedFd;
use std::sync::Arc;

pub(crate) fn watch(shared: Arc<Shared>, id: String, shim_pid: i32, shim_fd: OwnedFd) {
    tokio::spawn(async move {
        if let Err(e) = quilt_runtime::pidfd_exited(shim_fd).await {
            tracing::error!(container = %id, error = %e, "cannot watch the supervisor's pidfd");
            return;
        }
        // The exit happened: keep trying to record it while the database
        // cannot take it (a full disk, a replaced connection), so it is never
        // lost. The shim is reaped on the first try only.
        let mut delay = std::time::Duration::from_millis(100);
        let mut pid = shim_pid;
        loop {
            match on_exit(&shared, &id, pid).await {
                Ok(()) => return,
                Err(e) if shared.is_closing() => {
                    // The next quiltd records it from exit.json.
                    tracing::warn!(container = %id, error = %e, "exit not recorded before shutdown");
                    return;
                }
                Err(e) => {
                    tracing::error!(container = %id, error = %e, retry_in = ?delay, "recording exit failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                    pid = 0;
                }
            }
        }
    });
}

/// The supervisor is gone: record how the workload ended.
pub(crate) async fn on_exit(shared: &Arc<Shared>, id: &str, shim_pid: i32) -> Result<()> {
    // Reaped first, whatever became of the row (a removal that gave up
    // waiting may have deleted it): the shim is our child.
    if shim_pid > 0
        && let Err(e) = tokio::task::spawn_blocking(move || proc::try_reap(shim_pid)).await?
    {
        tracing::warn!(container = %id, error = %e, "cannot reap the supervisor");
    }
    let Some(c) = shared.store().get(id).await? else {
        return Ok(());
    };
    let dir = shared.cfg().container_dir(id);
    let spec = shared.cgroup_spec(&c);
    if c.node.is_some() && c.node.as_deref() != shared.node() {
        // The cluster placed it on another node while this one was away:
        // the row is that node's. Only this host's copy is ended here.
        return crate::cluster::end_local_copy(shared, id).await;
    }
    let record = tokio::task::spawn_blocking(move || {
        let rec = exitfile::read(&dir);
        if !matches!(rec, Ok(Some(_))) {
            // Without its supervisor nothing captures the container's output:
            // end whatever is left of it.
            if let Err(e) = cgroup::remove(&spec) {
                tracing::warn!(cgroup = %spec.path, error = %e, "cannot end a workload whose supervisor is gone");
            }
        }
        rec
    })
    .await?;
    match record {
        Ok(Some(r)) if r.killed_because.is_some() => {
            let why = r.killed_because.unwrap_or_default();
            // record_failure removes an auto-remove container itself.
            return record_failure(shared, &c, r.exit_code, &why).await;
        }
        Ok(Some(r)) => {
            let exit = ExitInfo {
                exit_code: r.exit_code,
                signal: r.signal,
                oom_killed: r.oom_killed,
                finished_at_ns: Some(r.finished_at_ns),
            };
            if let Some(state) = shared.store().record_exit(id, &exit).await? {
                shared.metrics().exited(exit.oom_killed);
                shared.emit(&c, state, "exited", Some(exit), None);
                if let Some(now) = shared.store().get(id).await?
                    && now.restart_due()
                {
                    super::restarter::schedule(shared.clone(), &now);
                }
            }
        }
        other => {
            let why = match other {
                Err(e) => format!("the supervisor exited and its exit record is unreadable: {e}"),
                _ => "the supervisor (quilt-shim) exited without recording the workload's exit status".into(),
            };
            // record_failure removes an auto-remove container itself.
            return record_failure(shared, &c, 137, &why).await;
        }
    }
    if c.auto_remove && !c.state.is_removing() {
        cleanup::spawn_remove(shared.clone(), id.to_owned());
    }
    Ok(())
}

/// Records that a container failed (could not start, or lost its
/// supervisor) and emits the state stored; an auto-remove container is then
/// removed. Nothing happens when the row had already finished.
pub(crate) async fn record_failure(
    shared: &Arc<Shared>,
    c: &Container,
    code: i32,
    reason: &str,
) -> Result<()> {
    let at = now_ns();
    let Some(state) = shared.store().set_failed(&c.id, code, reason, at).await? else {
        return Ok(());
    };
    let exit = ExitInfo {
        exit_code: code,
        signal: 0,
        oom_killed: false,
        finished_at_ns: Some(at),
    };
    shared.emit(c, state, "failed", Some(exit), Some(reason.to_owned()));
    if c.auto_remove && !state.is_removing() {
        cleanup::spawn_remove(shared.clone(), c.id.clone());
    }
    Ok(())
}
