//! Exec: runs a command inside a running container through `quilt-shim
//! exec`, which joins the container's namespaces and cgroup. The helper is
//! awaited asynchronously (tokio::process), never on the reactor.
use crate::engine::Engine;
use crate::env;
use crate::error::{EngineError, Result};
use crate::lifecycle::wait_started;
use crate::model::State;
use crate::validate;
use quilt_runtime::spec::ExecConfig;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Output kept per stream; the rest is read and dropped.
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Engine {
    pub async fn exec(
        &self,
        reference: &str,
        argv: Vec<String>,
        extra_env: Vec<String>,
        workdir: Option<String>,
    ) -> Result<ExecOutput> {
        validate::command(&argv)?;
        for e in &extra_env {
            validate::env_entry(e)?;
        }
        if let Some(w) = &workdir {
            validate::working_dir(w)?;
        }
        let inner = &self.inner;
        let mut events = inner.events.subscribe();
        let mut c = inner.store.resolve(reference).await?;
        if matches!(c.state, State::Created | State::Starting) {
            // Created and started moments ago: exec once it runs.
            c = wait_started(inner, &c.id, &mut events).await?;
        }
        let (State::Running, Some(pid)) = (c.state, c.pid) else {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not running (state: {})",
                c.name,
                c.state.as_str()
            )));
        };
        let cfg = ExecConfig {
            pid,
            argv,
            env: env::build(&c, &extra_env),
            workdir: workdir.unwrap_or_else(|| c.working_dir.clone()),
            cgroup: inner.cgroup_spec(&c),
        };
        let input =
            serde_json::to_vec(&cfg).map_err(|e| EngineError::internal("encode exec config", e))?;
        let mut child = tokio::process::Command::new(&inner.cfg.shim_path)
            .arg("exec")
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| EngineError::internal("spawn exec helper", e))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| EngineError::Internal("exec helper stdin".into()))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| EngineError::Internal("exec helper stdout".into()))?;
        let err = child
            .stderr
            .take()
            .ok_or_else(|| EngineError::Internal("exec helper stderr".into()))?;
        let feed = async move {
            let r = stdin.write_all(&input).await;
            drop(stdin);
            r
        };
        let (fed, stdout, stderr, status) =
            tokio::join!(feed, capped(out), capped(err), child.wait());
        let status = status.map_err(|e| EngineError::internal("wait exec helper", e))?;
        fed.map_err(|e| EngineError::internal("send exec config", e))?;
        let exit_code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Ok(ExecOutput {
            exit_code,
            stdout: stdout?,
            stderr: stderr?,
        })
    }
}

async fn capped(mut r: impl AsyncRead + Unpin) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r
            .read(&mut buf)
            .await
            .map_err(|e| EngineError::internal("read exec output", e))?;
        if n == 0 {
            return Ok(out);
        }
        let room = MAX_OUTPUT.saturating_sub(out.len());
        out.extend_from_slice(&buf[..n.min(room)]);
    }
}
