//! Attach: input for a container's terminal or stdin (`-t`, `-i`), through
//! the socket its shim serves while the workload runs
//! (`quilt_runtime::attach`). Its output is its log (`logs`).
use crate::engine::{ActivityGuard, Engine, Waited};
use crate::error::{EngineError, Result};
use crate::model::{Container, State};
use quilt_runtime::execproto::{self as proto, FrameKind};
use std::future::Future;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// An attached client's input to one run of a container's workload.
#[derive(Debug)]
pub struct AttachInput {
    stream: UnixStream,
    /// Whether the end of this client's input closes the workload's stdin.
    pub stdin_once: bool,
    /// The workload has a terminal.
    pub tty: bool,
    /// Created with an open stdin: without it (`-t` alone) only the
    /// terminal's size is taken, as docker ignores input then.
    open_stdin: bool,
    _activity: ActivityGuard,
}

fn gone() -> EngineError {
    EngineError::FailedPrecondition("the container's workload has exited".into())
}

impl AttachInput {
    async fn send(&mut self, kind: FrameKind, payload: &[u8]) -> Result<()> {
        let mut wire = Vec::with_capacity(proto::HEADER_LEN + payload.len());
        if payload.is_empty() {
            proto::encode(&mut wire, kind, payload);
        }
        for piece in payload.chunks(proto::MAX_PAYLOAD) {
            proto::encode(&mut wire, kind, piece);
        }
        self.stream.write_all(&wire).await.map_err(|_| gone())
    }

    fn no_stdin(&self) -> Result<()> {
        match self.open_stdin {
            true => Ok(()),
            false => Err(EngineError::FailedPrecondition(
                "the container was created without -i: its stdin takes no input".into(),
            )),
        }
    }

    /// Bytes typed into the terminal or written to stdin.
    pub async fn stdin(&mut self, data: &[u8]) -> Result<()> {
        self.no_stdin()?;
        if data.is_empty() {
            return Ok(());
        }
        self.send(FrameKind::Stdin, data).await
    }

    /// The terminal's new size (ignored without a terminal).
    pub async fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        self.send(FrameKind::Resize, &proto::resize_payload(rows, cols))
            .await
    }

    /// End of input: the stdin pipe is closed (^D on a terminal).
    pub async fn close_stdin(&mut self) -> Result<()> {
        self.no_stdin()?;
        self.send(FrameKind::CloseStdin, &[]).await
    }
}

impl Engine {
    /// Connects to the workload's input. A container not started yet is
    /// waited for (`run -i` attaches before it starts), until `cancel`
    /// resolves. FAILED_PRECONDITION: created without `-i`/`-t`, or it ended
    /// before it ran.
    pub async fn attach_input(
        &self,
        reference: &str,
        cancel: impl Future<Output = ()>,
    ) -> Result<AttachInput> {
        let shared = self.shared.clone();
        let mut watch = shared.watch();
        let c = shared.resolve_here(reference).await?;
        if !c.stdio.attachable() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} was created without -i or -t: it has no input to attach to",
                c.name
            )));
        }
        let running = |row: Option<&Container>| {
            row.is_none_or(|c| !matches!(c.state, State::Created | State::Starting))
        };
        let c = match shared
            .wait_until(&mut watch, &c.id, running, None, cancel)
            .await?
        {
            Waited::Met(Some(c)) if matches!(c.state, State::Running | State::Paused) => c,
            Waited::Met(Some(c)) => {
                return Err(EngineError::FailedPrecondition(format!(
                    "container {} is not running",
                    c.name
                )));
            }
            Waited::Met(None) => return Err(EngineError::NotFound(c.name)),
            Waited::Cancelled | Waited::TimedOut => {
                return Err(EngineError::FailedPrecondition("attach cancelled".into()));
            }
        };
        let dir = shared.cfg().container_dir(&c.id);
        let stream = tokio::task::spawn_blocking(move || {
            let d = quilt_runtime::attach::open_dir(&dir)?;
            let s = std::os::unix::net::UnixStream::connect(quilt_runtime::attach::socket_path(
                std::os::fd::AsFd::as_fd(&d),
            ))?;
            s.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(s)
        })
        .await?
        .map_err(|e| {
            tracing::debug!(container = %c.id, error = %e, "attach socket");
            gone()
        })?;
        Ok(AttachInput {
            stream: UnixStream::from_std(stream).map_err(|_| gone())?,
            stdin_once: c.stdio.stdin_once,
            tty: c.stdio.tty,
            open_stdin: c.stdio.open_stdin,
            _activity: shared.activity(&c.id),
        })
    }

    /// Sets the size of a running container's terminal.
    pub async fn resize_terminal(&self, reference: &str, rows: u16, cols: u16) -> Result<()> {
        let c = self.shared.resolve_here(reference).await?;
        if !c.stdio.tty {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} has no terminal (created without -t)",
                c.name
            )));
        }
        if !matches!(c.state, State::Running | State::Paused) {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not running",
                c.name
            )));
        }
        let mut input = self.attach_input(&c.id, std::future::pending()).await?;
        input.resize(rows, cols).await
    }
}
