//! The monitor: one lightweight task per running container, woken by the
//! readiness of the supervisor's pidfd (no polling). On wake-up it reaps the
//! shim with waitpid(pid, WNOHANG) (only our own child, never -1), reads the
//! exit status the shim left in exit.json and records it.
use crate::cleanup;
use crate::engine::Inner;
use crate::error::Result;
use crate::model::{ExitInfo, State, now_ns};
use quilt_runtime::{cgroup, exitfile, proc};
use std::os::fd::OwnedFd;
use std::sync::Arc;

pub(crate) fn watch(inner: Arc<Inner>, id: String, shim_pid: i32, shim_fd: OwnedFd) {
    tokio::spawn(async move {
        if let Err(e) = quilt_runtime::pidfd_exited(shim_fd).await {
            tracing::error!(container = %id, error = %e, "cannot watch the supervisor's pidfd");
            return;
        }
        if let Err(e) = on_exit(&inner, &id, shim_pid).await {
            tracing::error!(container = %id, error = %e, "recording exit failed");
        }
    });
}

/// The supervisor is gone: record how the workload ended.
pub(crate) async fn on_exit(inner: &Arc<Inner>, id: &str, shim_pid: i32) -> Result<()> {
    let Some(c) = inner.store.get(id).await? else {
        return Ok(());
    };
    let dir = inner.cfg.container_dir(id);
    let spec = inner.cgroup_spec(&c);
    let record = tokio::task::spawn_blocking(move || {
        if shim_pid > 0 {
            let _ = proc::try_reap(shim_pid);
        }
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
    inner.live(id).set_target(None);
    match record {
        Ok(Some(r)) => {
            let exit = ExitInfo {
                exit_code: r.exit_code,
                signal: r.signal,
                oom_killed: r.oom_killed,
                finished_at_ns: Some(r.finished_at_ns),
            };
            if inner.store.record_exit(id, &exit).await? {
                let state = if c.state == State::Removing {
                    State::Removing
                } else {
                    State::Exited
                };
                inner.emit(&c, state, "exited", Some(exit), None);
            }
        }
        other => {
            let why = match other {
                Err(e) => format!("the supervisor exited and its exit record is unreadable: {e}"),
                _ => "the supervisor (quilt-shim) exited without recording the workload's exit status".into(),
            };
            let at = now_ns();
            if inner.store.set_failed(id, 137, &why, at).await? {
                let exit = ExitInfo {
                    exit_code: 137,
                    signal: 0,
                    oom_killed: false,
                    finished_at_ns: Some(at),
                };
                inner.emit(&c, State::Failed, "failed", Some(exit), Some(why));
            }
        }
    }
    if c.auto_remove && c.state != State::Removing {
        cleanup::spawn_remove(inner.clone(), id.to_owned());
    }
    Ok(())
}
