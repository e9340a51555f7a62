//! The exec verbs: start a command in a running container, list, wait for,
//! signal and replay execs. The helper and its streams are `exec::session`.
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::exec::detached;
use crate::exec::session::{self, OUTPUT_QUEUE, PID_WAIT};
use crate::exec::{ExecEvent, ExecInfo, ExecSession, ExecSpec};
use crate::support::signals;
use crate::validate;
use tokio::sync::mpsc;

impl Engine {
    /// Starts a command in a running container.
    pub async fn exec_start(&self, spec: ExecSpec) -> Result<ExecSession> {
        validate::arg_budget("the exec'd command", &spec.argv, &spec.env)?;
        if let Some(w) = &spec.workdir {
            validate::path_budget("working directory", w)?;
        }
        validate::command(&spec.argv)?;
        for e in &spec.env {
            validate::env_entry(e)?;
        }
        if let Some(w) = &spec.workdir {
            validate::working_dir(w)?;
        }
        let shared = &self.shared;
        let mut watch = shared.watch();
        let mut c = shared.resolve_here(&spec.container).await?;
        if c.is_pending_start() {
            // Created and started moments ago: exec once it runs.
            c = shared.wait_started(&mut watch, &c.id).await?;
        }
        if shared.live(&c.id).adoption_settled().await {
            // Its row said running while its adoption finished.
            c = shared.resolve_here(&spec.container).await?;
        }
        if c.state.is_paused() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is paused: unpause it first",
                c.name
            )));
        }
        let (true, Some(pid), Some(shim_pid)) = (c.state.can_exec(), c.pid, c.shim_pid) else {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not running (state: {})",
                c.name,
                c.state.as_str()
            )));
        };
        session::start(shared, &c, spec, pid, shim_pid).await
    }

    /// The execs of a container that are still remembered.
    pub async fn list_execs(&self, reference: &str) -> Result<Vec<ExecInfo>> {
        let c = self.shared.resolve_here(reference).await?;
        Ok(self
            .shared
            .execs()
            .of_container(&c.id)
            .iter()
            .map(|r| r.info())
            .collect())
    }

    /// Returns once the exec has exited.
    pub async fn wait_exec(&self, exec_id: &str) -> Result<ExecInfo> {
        let rec = self.shared.execs().get(exec_id)?;
        let mut rx = rec.state.subscribe();
        // The sender lives in `rec`: the wait ends with the exec.
        let _ = rx.wait_for(|s| !s.running).await;
        Ok(rec.info())
    }

    /// Sends a signal (name or number; SIGKILL when empty) to the command.
    pub async fn kill_exec(&self, exec_id: &str, signal: &str) -> Result<()> {
        let sig = signals::requested(signal)?;
        let rec = self.shared.execs().get(exec_id)?;
        if rec.detached && rec.state.borrow().pidfd.is_none() {
            // Its helper reports the command's pid in the frame file.
            if let Some(fd) = detached::command_pidfd(&rec).await? {
                rec.state.send_modify(|s| s.pidfd = Some(fd));
            }
        }
        let mut rx = rec.state.subscribe();
        // Bounded: a just-started exec reports its pid within moments.
        let _ =
            tokio::time::timeout(PID_WAIT, rx.wait_for(|s| s.pidfd.is_some() || !s.running)).await;
        let st = rec.state.borrow().clone();
        if !st.running {
            return Err(EngineError::FailedPrecondition(format!(
                "exec {} is not running",
                rec.id
            )));
        }
        let Some(fd) = st.pidfd else {
            return Err(EngineError::Unavailable(format!(
                "exec {} has not started its command yet",
                rec.id
            )));
        };
        session::signal_command(&fd, sig)
    }

    /// The output of an exec from its start: events read from its output
    /// file; with `follow`, until it exits. Ends with `Exit` once it has.
    pub async fn exec_logs(
        &self,
        exec_id: &str,
        follow: bool,
    ) -> Result<mpsc::Receiver<Result<ExecEvent>>> {
        let rec = self.shared.execs().get(exec_id)?;
        if rec.detached {
            let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
            tokio::spawn(detached::replay(rec, follow, tx));
            return Ok(rx);
        }
        let path = rec.log_path.clone();
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| EngineError::internal("open exec output", e))?;
        let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
        tokio::spawn(session::replay(rec, file, follow, tx));
        Ok(rx)
    }
}
