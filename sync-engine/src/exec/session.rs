//! Exec: runs a command inside a running container through `quilt-shim
//! exec`, which joins the container's namespaces and cgroup and relays the
//! command's streams as frames (quilt_runtime::execproto). The helper is a
//! tokio child process: every read and write is event driven, and its
//! output is written to the exec's output file (for ExecLogs) and, for an
//! attached exec, to the caller's channel (backpressure to the command).
use super::registry::{ExecExit, ExecRecord, ExecState};
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::Container;
use crate::model::now_ns;
use crate::support::{env, signals};
use quilt_runtime::execproto::{self as proto, FrameKind};
use quilt_runtime::signal::Signal;
use quilt_runtime::spec::{CgroupSpec, EXIT_SETUP, ExecConfig};
use quilt_runtime::{cgroup, proc};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, watch};

/// Bytes of output kept in an exec's output file; the rest is only relayed.
const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;
/// Frames buffered between the helper and an attached caller.
pub(crate) const OUTPUT_QUEUE: usize = 16;
const INPUT_QUEUE: usize = 16;
/// How long KillExec waits for a just-started exec to report its pid.
pub(crate) const PID_WAIT: Duration = Duration::from_secs(10);

/// What to run (the ExecStart frame).
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub container: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub rows: u16,
    pub cols: u16,
    pub attach_stdin: bool,
    pub detach: bool,
    /// "UID[:GID]" or "NAME[:GROUP]"; None: the container's user.
    pub user: Option<String>,
}

/// Input for a running exec.
#[derive(Debug, Clone)]
pub enum ExecInput {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize {
        rows: u16,
        cols: u16,
    },
    /// Signal name or number; unknown ones are ignored.
    Signal(String),
}

/// Output of an exec; `Exit` comes last.
#[derive(Debug, Clone)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExecExit),
}

/// A started exec. Dropping `input` closes the command's stdin; dropping
/// `output` (an attached exec whose caller went away) kills the command.
#[derive(Debug)]
pub struct ExecSession {
    pub id: String,
    pub input: mpsc::Sender<ExecInput>,
    /// None for a detached exec.
    pub output: Option<mpsc::Receiver<ExecEvent>>,
}

/// Spawns `quilt-shim exec` for a checked request on running container `c`
/// (PID 1 `pid`, supervised by `shim_pid`) and wires its streams.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    c: &Container,
    spec: ExecSpec,
    pid: i32,
    shim_pid: i32,
) -> Result<ExecSession> {
    let security = match crate::security::ready_exec_config(shared, c, spec.user.as_deref())? {
        Some(security) => security,
        None => {
            let (shared2, c2, user) = (shared.clone(), c.clone(), spec.user.clone());
            tokio::task::spawn_blocking(move || {
                crate::security::exec_config(&shared2, &c2, user.as_deref())
            })
            .await??
        }
    };
    let cgroup = shared.cgroup_spec(c);
    let cfg = ExecConfig {
        pid,
        argv: spec.argv.clone(),
        env: env::build(c, &spec.env),
        workdir: spec
            .workdir
            .clone()
            .unwrap_or_else(|| c.working_dir.clone()),
        cgroup: cgroup.clone(),
        tty: spec.tty,
        rows: spec.rows,
        cols: spec.cols,
        attach_stdin: spec.attach_stdin,
        shim_pid: Some(shim_pid),
        security,
        detached_log: None,
    };
    let config =
        serde_json::to_vec(&cfg).map_err(|e| EngineError::internal("encode exec config", e))?;
    let id = crate::support::ids::new_id()[..32].to_owned();
    let dir = shared.cfg().container_dir(&c.id).join("execs");
    let log_path = dir.join(format!("{id}.log"));
    let (oom_before, log) = {
        let (cg, dir, path) = (cgroup.clone(), dir.clone(), log_path.clone());
        tokio::task::spawn_blocking(move || -> Result<_> {
            // Not create_dir_all: a container removed meanwhile must not
            // get its directory back.
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(EngineError::FailedPrecondition(
                        "the container is being removed".into(),
                    ));
                }
                Err(e) => return Err(EngineError::internal("create exec directory", e)),
            }
            let f = std::fs::File::create(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    EngineError::FailedPrecondition("the container is being removed".into())
                } else {
                    EngineError::internal("create exec output file", e)
                }
            })?;
            Ok((cgroup::oom_kills(&cg).unwrap_or(0), f))
        })
        .await??
    };
    if spec.detach {
        drop(log);
        return start_detached(shared, c, spec, cfg, id, log_path).await;
    }
    let mut child = tokio::process::Command::new(&shared.cfg().shim_path)
        .arg("exec")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // A process group of its own: `kill 0` from the command (which
        // makes a session of its own too) can never reach quiltd.
        .process_group(0)
        .spawn();
    let mut stdin = match child.as_mut().map(|c| c.stdin.take()) {
        Ok(Some(s)) => s,
        Ok(None) | Err(_) => {
            discard(log_path);
            let e = child.err().map_or("no stdin".to_owned(), |e| e.to_string());
            return Err(EngineError::internal("spawn exec helper", e));
        }
    };
    let mut child = child.map_err(|e| EngineError::internal("spawn exec helper", e))?;
    if let Err(e) = stdin
        .write_all(&proto::frame(FrameKind::Config, &config))
        .await
    {
        let _ = child.start_kill();
        discard(log_path);
        return Err(EngineError::internal("send exec config", e));
    }

    let rec = Arc::new(ExecRecord {
        id: id.clone(),
        container_id: c.id.clone(),
        command: spec.argv,
        tty: spec.tty,
        detached: spec.detach,
        started_at_ns: now_ns(),
        log_path,
        state: watch::Sender::new(ExecState {
            running: true,
            ..Default::default()
        }),
    });
    super::register(shared, rec.clone());

    let (in_tx, in_rx) = mpsc::channel(INPUT_QUEUE);
    tokio::spawn(feed_input(rec.clone(), stdin, in_rx));
    let (out_tx, out_rx) = if spec.detach {
        (None, None)
    } else {
        let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
        (Some(tx), Some(rx))
    };
    let out = OutputTask {
        _activity: shared.activity(&c.id),
        rec,
        log: tokio::fs::File::from_std(log),
        log_full: false,
        attached: out_tx,
        cgroup,
        oom_before,
    };
    tokio::spawn(out.run(child));
    tracing::debug!(exec = %id, container = %c.id, "exec started");
    Ok(ExecSession {
        id,
        input: in_tx,
        output: out_rx,
    })
}

/// A detached exec: the helper writes its frame file itself and outlives
/// the daemon; the exec is recorded in SQLite and its helper watched.
async fn start_detached(
    shared: &Arc<Shared>,
    c: &Container,
    spec: ExecSpec,
    mut cfg: ExecConfig,
    id: String,
    log_path: std::path::PathBuf,
) -> Result<ExecSession> {
    cfg.detached_log = Some(log_path.clone());
    cfg.attach_stdin = false;
    let config =
        serde_json::to_vec(&cfg).map_err(|e| EngineError::internal("encode exec config", e))?;
    let spawned = tokio::process::Command::new(&shared.cfg().shim_path)
        .arg("exec")
        // Never bound to quiltd's life, not even before it reads its config.
        .arg("--detached")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Not killed with quiltd: it is meant to outlive it.
        .kill_on_drop(false)
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            discard(log_path);
            return Err(EngineError::internal("spawn exec helper", e));
        }
    };
    let helper_pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let mut stdin = child.stdin.take().expect("stdin piped");
    let sent = stdin
        .write_all(&proto::frame(FrameKind::Config, &config))
        .await;
    drop(stdin);
    if let Err(e) = sent {
        let _ = child.start_kill();
        let _ = child.wait().await;
        discard(log_path);
        return Err(EngineError::internal("send exec config", e));
    }
    let helper_start_time = tokio::task::spawn_blocking(move || proc::start_time(helper_pid))
        .await?
        .unwrap_or(0);
    let row = crate::store::ExecRow {
        id: id.clone(),
        container_id: c.id.clone(),
        command: spec.argv,
        tty: spec.tty,
        started_at_ns: now_ns(),
        helper_pid,
        helper_start_time,
        exit: None,
    };
    if let Err(e) = shared.store().exec_insert(&row).await {
        // Not recorded: it must not run unaccounted for.
        let _ = child.start_kill();
        let _ = child.wait().await;
        discard(log_path);
        return Err(e);
    }
    let rec = super::detached::record(&row, log_path);
    super::register(shared, rec.clone());
    super::detached::watch(shared.clone(), rec, Some(child), None);
    tracing::debug!(exec = %id, container = %c.id, "detached exec started");
    // Input to a detached exec goes nowhere: its stdin is closed.
    let (in_tx, _) = mpsc::channel(1);
    Ok(ExecSession {
        id,
        input: in_tx,
        output: None,
    })
}

/// Removes the output file of an exec that could not be started.
fn discard(path: std::path::PathBuf) {
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_file(path);
    });
}

pub(crate) fn signal_command(fd: &std::os::fd::OwnedFd, sig: Signal) -> Result<()> {
    signals::send(fd, sig, "the exec'd command")
}

/// Relays input from the caller to the helper until the caller is done
/// (its sender dropped), then closes the helper's stdin.
async fn feed_input(
    rec: Arc<ExecRecord>,
    mut stdin: ChildStdin,
    mut rx: mpsc::Receiver<ExecInput>,
) {
    while let Some(item) = rx.recv().await {
        let frame = match item {
            ExecInput::Stdin(b) if b.is_empty() => continue,
            ExecInput::Stdin(b) => proto::frame(FrameKind::Stdin, &b),
            ExecInput::CloseStdin => proto::frame(FrameKind::CloseStdin, &[]),
            ExecInput::Resize { rows, cols } => {
                proto::frame(FrameKind::Resize, &proto::resize_payload(rows, cols))
            }
            ExecInput::Signal(s) => {
                let Some(sig) = Signal::parse(&s) else {
                    tracing::debug!(exec = %rec.id, signal = %s, "ignoring unknown signal");
                    continue;
                };
                let fd = rec.state.borrow().pidfd.clone();
                match fd {
                    Some(fd) => {
                        let _ = signal_command(&fd, sig);
                        continue;
                    }
                    None => proto::frame(FrameKind::Signal, &proto::i32_payload(sig.number())),
                }
            }
        };
        if stdin.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = stdin.shutdown().await;
}

struct OutputTask {
    /// The exec counts as activity (idle timeouts) until its output ends.
    _activity: crate::engine::ActivityGuard,
    rec: Arc<ExecRecord>,
    log: tokio::fs::File,
    log_full: bool,
    attached: Option<mpsc::Sender<ExecEvent>>,
    cgroup: CgroupSpec,
    oom_before: u64,
}

impl OutputTask {
    async fn run(mut self, mut child: Child) {
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut echunk = vec![0u8; 16 * 1024];
        let mut reported: Option<(i32, i32)> = None;
        while out.is_some() || err.is_some() {
            let closed = async {
                match &self.attached {
                    Some(tx) => tx.closed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = async { out.as_mut().expect("guarded").read(&mut chunk).await }, if out.is_some() => {
                    match r {
                        Ok(0) | Err(_) => out = None,
                        Ok(n) => {
                            buf.extend_from_slice(&chunk[..n]);
                            match proto::split(&mut buf) {
                                Ok(frames) => {
                                    for (kind, payload) in frames {
                                        if let Some(e) = self.on_frame(kind, payload).await {
                                            reported = Some(e);
                                        }
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(exec = %self.rec.id, error = %e, "bad frame from exec helper");
                                    out = None;
                                    let _ = child.start_kill();
                                }
                            }
                        }
                    }
                }
                r = async { err.as_mut().expect("guarded").read(&mut echunk).await }, if err.is_some() => {
                    match r {
                        Ok(0) | Err(_) => err = None,
                        Ok(n) => self.emit(FrameKind::Stderr, echunk[..n].to_vec()).await,
                    }
                }
                () = closed => {
                    // An attached caller went away: the command goes too.
                    self.attached = None;
                    if !self.rec.detached {
                        self.kill_command(&mut child);
                    }
                }
            }
        }
        let status = child.wait().await;
        let (exit_code, signal) = match (reported, status) {
            (Some(r), _) => r,
            (None, Ok(s)) => match (s.code(), s.signal()) {
                (Some(c), _) => (c, 0),
                (None, Some(sig)) => (128 + sig, sig),
                (None, None) => (EXIT_SETUP, 0),
            },
            (None, Err(e)) => {
                tracing::warn!(exec = %self.rec.id, error = %e, "waiting for exec helper");
                (EXIT_SETUP, 0)
            }
        };
        let oom_killed = signal == Signal::KILL.number() && {
            let cg = self.cgroup.clone();
            let before = self.oom_before;
            tokio::task::spawn_blocking(move || cgroup::oom_kills(&cg).unwrap_or(0) > before)
                .await
                .unwrap_or(false)
        };
        let exit = ExecExit {
            exit_code,
            signal,
            oom_killed,
        };
        let _ = self.log.flush().await;
        self.rec.state.send_modify(|s| {
            s.running = false;
            s.exit = Some(exit);
            s.finished_at_ns = Some(now_ns());
            s.pidfd = None;
        });
        if let Some(tx) = &self.attached {
            let _ = tx.send(ExecEvent::Exit(exit)).await;
        }
        tracing::debug!(exec = %self.rec.id, exit_code, signal, oom_killed, "exec exited");
    }

    fn kill_command(&self, child: &mut Child) {
        match self.rec.state.borrow().pidfd.clone() {
            Some(fd) => {
                let _ = signal_command(&fd, Signal::KILL);
            }
            // Not forked yet: the helper goes, and with it the command.
            None => {
                let _ = child.start_kill();
            }
        }
    }

    /// Handles one frame; Some((code, signal)) for EXIT.
    async fn on_frame(&mut self, kind: FrameKind, payload: Vec<u8>) -> Option<(i32, i32)> {
        match kind {
            FrameKind::Pid => {
                if let Some(pid) = proto::read_i32(&payload, 0) {
                    match proc::pidfd_open(pid) {
                        Ok(fd) => self.rec.state.send_modify(|s| s.pidfd = Some(Arc::new(fd))),
                        Err(e) => {
                            tracing::warn!(exec = %self.rec.id, pid, error = %e, "pidfd_open")
                        }
                    }
                }
                None
            }
            FrameKind::Stdout | FrameKind::Stderr => {
                self.emit(kind, payload).await;
                None
            }
            FrameKind::Exit => Some((
                proto::read_i32(&payload, 0).unwrap_or(EXIT_SETUP),
                proto::read_i32(&payload, 4).unwrap_or(0),
            )),
            _ => None,
        }
    }

    /// Appends a chunk to the output file and hands it to the caller.
    async fn emit(&mut self, kind: FrameKind, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        if !self.log_full {
            let len = self.rec.state.borrow().log_len;
            let framed = proto::frame(kind, &data);
            if len + framed.len() as u64 > MAX_LOG_BYTES {
                self.log_full = true;
            } else {
                match self.log.write_all(&framed).await {
                    Ok(()) if self.log.flush().await.is_ok() => {
                        let n = framed.len() as u64;
                        self.rec.state.send_modify(|s| s.log_len += n);
                    }
                    _ => self.log_full = true,
                }
            }
        }
        if let Some(tx) = &self.attached {
            let ev = if kind == FrameKind::Stderr {
                ExecEvent::Stderr(data)
            } else {
                ExecEvent::Stdout(data)
            };
            if tx.send(ev).await.is_err() {
                self.attached = None;
            }
        }
    }
}

/// Replays an exec's output file, following it while the exec runs.
pub(crate) async fn replay(
    rec: Arc<ExecRecord>,
    mut file: tokio::fs::File,
    follow: bool,
    tx: mpsc::Sender<Result<ExecEvent>>,
) {
    let mut rx = rec.state.subscribe();
    let mut pos: u64 = 0;
    let mut buf = Vec::new();
    loop {
        let st = rx.borrow_and_update().clone();
        if pos < st.log_len {
            let want = (st.log_len - pos).min(1 << 20) as usize;
            let mut chunk = vec![0u8; want];
            if let Err(e) = file.read_exact(&mut chunk).await {
                let _ = tx
                    .send(Err(EngineError::internal("read exec output", e)))
                    .await;
                return;
            }
            pos += want as u64;
            buf.extend_from_slice(&chunk);
            let frames = proto::split(&mut buf).unwrap_or_default();
            for (kind, data) in frames {
                let ev = if kind == FrameKind::Stderr {
                    ExecEvent::Stderr(data)
                } else {
                    ExecEvent::Stdout(data)
                };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            continue;
        }
        if !st.running {
            if let Some(exit) = st.exit {
                let _ = tx.send(Ok(ExecEvent::Exit(exit))).await;
            }
            return;
        }
        if !follow {
            return;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            () = tx.closed() => return,
        }
    }
}
