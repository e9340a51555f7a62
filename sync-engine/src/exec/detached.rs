//! Detached execs (`exec -d`), which outlive the daemon: the helper writes
//! its frames (the command's pid, its output, its exit) to the exec's frame
//! file itself and depends on nothing of quiltd's. The daemon records the
//! exec in SQLite, watches the helper (pidfd, no polling), and learns how
//! the command ended from the file's EXIT frame; after a restart it adopts
//! helpers still running (pid and start time) and reads the ends of those
//! that finished meanwhile.
use super::registry::{ExecExit, ExecRecord, ExecState};
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::now_ns;
use crate::store::ExecRow;
use crate::support::fswatch::FsWatch;
use futures::StreamExt;
use quilt_runtime::execproto::{self as proto, FrameKind};
use quilt_runtime::proc;
use quilt_runtime::spec::EXIT_SETUP;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// What the frame file says so far: the command's pid and its exit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan {
    pub pid: Option<i32>,
    pub exit: Option<(i32, i32)>,
}

/// Reads a frame file through (blocking).
pub(crate) fn scan(path: &Path) -> std::io::Result<Scan> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let mut out = Scan::default();
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(out);
        }
        buf.extend_from_slice(&chunk[..n]);
        let frames = proto::split(&mut buf).map_err(std::io::Error::other)?;
        for (kind, payload) in frames {
            match kind {
                FrameKind::Pid => out.pid = proto::read_i32(&payload, 0),
                FrameKind::Exit => {
                    out.exit = Some((
                        proto::read_i32(&payload, 0).unwrap_or(EXIT_SETUP),
                        proto::read_i32(&payload, 4).unwrap_or(0),
                    ))
                }
                _ => {}
            }
        }
    }
}

/// The record of a detached exec, registered with the engine.
pub(crate) fn record(row: &ExecRow, log_path: PathBuf) -> Arc<ExecRecord> {
    let exit = row.exit.map(|(code, signal, oom, _)| ExecExit {
        exit_code: code,
        signal,
        oom_killed: oom,
    });
    Arc::new(ExecRecord {
        id: row.id.clone(),
        container_id: row.container_id.clone(),
        command: row.command.clone(),
        tty: row.tty,
        detached: true,
        started_at_ns: row.started_at_ns,
        log_path,
        state: watch::Sender::new(ExecState {
            running: exit.is_none(),
            exit,
            finished_at_ns: row.exit.map(|e| e.3),
            helper_pid: Some(row.helper_pid),
            ..Default::default()
        }),
    })
}

/// Watches a running detached exec's helper until it ends, then records
/// how the command exited. `child`: the helper when we spawned it (reaped
/// here); None after a restart (not our child: its pidfd tells the end).
pub(crate) fn watch(
    shared: Arc<Shared>,
    rec: Arc<ExecRecord>,
    child: Option<tokio::process::Child>,
    helper_fd: Option<OwnedFd>,
) {
    tokio::spawn(async move {
        match (child, helper_fd) {
            (Some(mut child), _) => {
                let _ = child.wait().await;
            }
            (None, Some(fd)) => {
                if let Err(e) = quilt_runtime::pidfd_exited(fd).await {
                    tracing::warn!(exec = %rec.id, error = %e, "cannot watch a detached exec's helper");
                    return;
                }
            }
            (None, None) => {}
        }
        finish(&shared, &rec).await;
    });
}

/// The helper is gone: read the command's exit from the frame file and
/// record it (a helper that died without one: EXIT_SETUP).
pub(crate) async fn finish(shared: &Shared, rec: &ExecRecord) {
    let path = rec.log_path.clone();
    let scanned = tokio::task::spawn_blocking(move || scan(&path))
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let (exit_code, signal) = scanned.exit.unwrap_or((EXIT_SETUP, 0));
    let exit = ExecExit {
        exit_code,
        signal,
        oom_killed: false,
    };
    let at = now_ns();
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        match shared
            .store()
            .exec_finish(&rec.id, exit_code, signal, false, at)
            .await
        {
            Ok(()) => break,
            // Gone with its container: nothing to record.
            Err(_) if shared.execs().get(&rec.id).is_err() => break,
            Err(e) if shared.is_closing() => {
                tracing::warn!(exec = %rec.id, error = %e, "detached exec's exit not recorded before shutdown");
                break;
            }
            Err(e) => {
                tracing::warn!(exec = %rec.id, error = %e, "recording a detached exec's exit");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
    rec.state.send_modify(|s| {
        s.running = false;
        s.exit = Some(exit);
        s.finished_at_ns = Some(at);
        s.pidfd = None;
    });
}

/// A pidfd of the detached exec's command, once its helper has reported it
/// (the pid must still be the helper's child: pid reuse is refused).
pub(crate) async fn command_pidfd(rec: &ExecRecord) -> Result<Option<Arc<OwnedFd>>> {
    let helper = rec.state.borrow().helper_pid;
    let path = rec.log_path.clone();
    let deadline = tokio::time::Instant::now() + super::session::PID_WAIT;
    loop {
        if !rec.state.borrow().running {
            return Ok(None);
        }
        let p = path.clone();
        let scanned = tokio::task::spawn_blocking(move || scan(&p))
            .await?
            .map_err(|e| EngineError::internal("read exec output", e))?;
        if let Some(pid) = scanned.pid {
            if scanned.exit.is_some() {
                return Ok(None);
            }
            let fd = tokio::task::spawn_blocking(move || {
                let fd = proc::pidfd_open(pid).ok()?;
                (helper.is_some() && proc::parent_pid(pid) == helper).then_some(fd)
            })
            .await?;
            return Ok(fd.map(Arc::new));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        // Reported within moments of the start: a short wait, bounded.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Replays a detached exec's frame file, following it (inotify) while the
/// exec runs; ends with the EXIT frame.
pub(crate) async fn replay(
    rec: Arc<ExecRecord>,
    follow: bool,
    tx: mpsc::Sender<Result<super::ExecEvent>>,
) {
    let mut state = rec.state.subscribe();
    let watch = if follow && rec.state.borrow().running {
        let p = rec.log_path.clone();
        tokio::task::spawn_blocking(move || watch_file(&p))
            .await
            .ok()
            .and_then(|w| w.ok())
    } else {
        None
    };
    let mut watch = watch;
    let mut file = match tokio::fs::File::open(&rec.log_path).await {
        Ok(f) => f,
        Err(e) => {
            let _ = tx
                .send(Err(EngineError::internal("open exec output", e)))
                .await;
            return;
        }
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match tokio::io::AsyncReadExt::read(&mut file, &mut chunk).await {
            Ok(n) => n,
            Err(e) => {
                let _ = tx
                    .send(Err(EngineError::internal("read exec output", e)))
                    .await;
                return;
            }
        };
        if n > 0 {
            buf.extend_from_slice(&chunk[..n]);
            for (kind, data) in proto::split(&mut buf).unwrap_or_default() {
                let ev = match kind {
                    FrameKind::Stdout => super::ExecEvent::Stdout(data),
                    FrameKind::Stderr => super::ExecEvent::Stderr(data),
                    FrameKind::Exit => {
                        let exit = rec.state.borrow().exit.unwrap_or(ExecExit {
                            exit_code: proto::read_i32(&data, 0).unwrap_or(EXIT_SETUP),
                            signal: proto::read_i32(&data, 4).unwrap_or(0),
                            oom_killed: false,
                        });
                        let _ = tx.send(Ok(super::ExecEvent::Exit(exit))).await;
                        return;
                    }
                    _ => continue,
                };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            continue;
        }
        // At the end of what is written so far.
        let st = state.borrow_and_update().clone();
        if !st.running {
            if let Some(exit) = st.exit {
                // The helper died without an EXIT frame.
                let _ = tx.send(Ok(super::ExecEvent::Exit(exit))).await;
            }
            return;
        }
        let Some(w) = watch.as_mut() else {
            return; // not following
        };
        tokio::select! {
            _ = w.next() => {}
            r = state.changed() => if r.is_err() { return },
            () = tx.closed() => return,
        }
    }
}

/// inotify on the frame file: its writes wake a follower.
fn watch_file(path: &Path) -> std::io::Result<FsWatch> {
    let ino = inotify::Inotify::init()?;
    ino.watches().add(
        path,
        inotify::WatchMask::MODIFY | inotify::WatchMask::CLOSE_WRITE,
    )?;
    Ok(FsWatch::new(ino.into_event_stream(vec![0u8; 1024])?))
}

/// At start-up: every stored detached exec is registered again; running
/// ones are adopted (same helper pid and start time) or, when their helper
/// is gone, finished from their frame file.
pub(crate) async fn reconcile(shared: &Arc<Shared>) -> Result<()> {
    for row in shared.store().execs_detached(shared.node()).await? {
        let log_path = shared
            .cfg()
            .container_dir(&row.container_id)
            .join("execs")
            .join(format!("{}.log", row.id));
        let rec = record(&row, log_path);
        super::register(shared, rec.clone());
        if row.exit.is_some() {
            continue;
        }
        let (pid, start) = (row.helper_pid, row.helper_start_time);
        let fd = tokio::task::spawn_blocking(move || {
            (proc::start_time(pid) == Some(start))
                .then(|| proc::pidfd_open(pid).ok())
                .flatten()
        })
        .await?;
        match fd {
            Some(fd) => watch(shared.clone(), rec, None, Some(fd)),
            None => finish(shared, &rec).await,
        }
    }
    Ok(())
}
