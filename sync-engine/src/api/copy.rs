//! CopyIn / CopyOut: tar streams into and out of a container, through the
//! `quilt-shim cp-in|cp-out` helper (which enters the container's root, so
//! the kernel keeps paths and symlinks inside it). Streams in bounded chunks
//! with backpressure through the helper's pipes; the size and sha256 of the
//! tar stream are computed on the way.
use crate::engine::{Engine, Shared};
use crate::error::{EngineError, Result};
use crate::model::Container;
use crate::validate;
use quilt_runtime::copy::{
    self, CP_EXIT_INVALID, CP_EXIT_NOT_FOUND, CopyConfig, CopyMode, CopyRoot,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Chunk size of the streams.
pub const CHUNK: usize = 256 * 1024;
/// How much of the helper's stderr is kept for the error message.
const STDERR_MAX: u64 = 16 * 1024;

/// Size and lowercase hex sha256 of a tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyDigest {
    pub size: u64,
    pub sha256: String,
}

/// A path inside the container: absolute (a relative one is taken from `/`),
/// without `..` components or NUL bytes.
fn check_path(path: &str) -> Result<String> {
    if path.is_empty() {
        return Err(EngineError::InvalidArgument(
            "a container path is required".into(),
        ));
    }
    if path.contains('\0') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid path {}: NUL byte",
            validate::echo(path)
        )));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(EngineError::InvalidArgument(format!(
            "invalid path {}: '..' is not allowed",
            validate::echo(path)
        )));
    }
    Ok(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    })
}

impl Engine {
    /// Streams `path` of the container as a tar stream into `tx`, in chunks
    /// of at most CHUNK bytes; returns the size and sha256 of what was sent.
    pub async fn copy_out(
        &self,
        reference: &str,
        path: &str,
        tx: mpsc::Sender<Vec<u8>>,
    ) -> Result<CopyDigest> {
        let path = check_path(path)?;
        let c = self.shared.resolve_here(reference).await?;
        run_copy(&self.shared, c, path, CopyMode::Out, Io::Out(tx), false).await
    }

    /// Streams the container's root filesystem as `docker export` does (a
    /// tar stream named from the root; volumes, bind mounts and the
    /// kernel's filesystems left out, their mount points kept).
    pub async fn export_container(
        &self,
        reference: &str,
        tx: mpsc::Sender<Vec<u8>>,
    ) -> Result<CopyDigest> {
        let c = self.shared.resolve_here(reference).await?;
        run_copy(
            &self.shared,
            c,
            "/".into(),
            CopyMode::Out,
            Io::Out(tx),
            true,
        )
        .await
    }

    /// Extracts the tar stream read from `rx` into the directory `path` of
    /// the container; returns the size and sha256 of what was received.
    pub async fn copy_in(
        &self,
        reference: &str,
        path: &str,
        rx: mpsc::Receiver<Vec<u8>>,
    ) -> Result<CopyDigest> {
        let path = check_path(path)?;
        let c = self.shared.resolve_here(reference).await?;
        run_copy(&self.shared, c, path, CopyMode::In, Io::In(rx), false).await
    }
}

enum Io {
    Out(mpsc::Sender<Vec<u8>>),
    In(mpsc::Receiver<Vec<u8>>),
}

async fn run_copy(
    shared: &Arc<Shared>,
    c: Container,
    path: String,
    mode: CopyMode,
    io: Io,
    export: bool,
) -> Result<CopyDigest> {
    let live = shared.live(&c.id);
    let _activity = shared.activity(&c.id);
    // A stopped container is held stopped while its overlay is mounted by the helper.
    let mut _lifecycle = None;
    let c = if c.state.can_exec() || c.state.is_paused() {
        c
    } else {
        _lifecycle = Some(live.lifecycle.lock().await);
        shared
            .store()
            .get(&c.id)
            .await?
            .ok_or_else(|| EngineError::no_such_container(&c.id))?
    };
    if !c.state.can_copy() {
        return Err(EngineError::FailedPrecondition(format!(
            "container {} is {}: try again",
            c.name,
            c.state.as_str()
        )));
    }
    let root = match (c.pid, c.shim_pid) {
        (Some(pid), Some(shim_pid)) if !c.state.is_stopped() => CopyRoot::Running { pid, shim_pid },
        _ if c.state.is_stopped() => {
            // A warm pool's container waiting for this one's first start
            // has its overlay mounted: it goes (the start is then cold).
            shared.pool().discard(shared, &c.id).await;
            let images = shared.images().clone();
            let image = c.image.clone();
            let image_rootfs = tokio::task::spawn_blocking(move || images.prepare(&image))
                .await?
                .map_err(|e| EngineError::FailedPrecondition(format!("image: {e}")))?;
            CopyRoot::Stopped {
                dir: shared.cfg().container_dir(&c.id),
                image_rootfs,
            }
        }
        _ => {
            return Err(EngineError::Internal(format!(
                "container {} is running without a recorded pid",
                c.name
            )));
        }
    };
    let cfg = CopyConfig {
        root,
        path,
        idmap: crate::security::idmap(&c)?,
        export,
    };
    let mut child = copy::spawn(&shared.cfg().shim_path, mode, &cfg)
        .map_err(|e| EngineError::internal("spawn the copy helper", e))?;
    let mut stderr = child.stderr.take().expect("stderr piped");
    let err_task = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = (&mut stderr).take(STDERR_MAX).read_to_end(&mut s).await;
        // Keep draining so the helper never blocks on a full stderr pipe.
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        String::from_utf8_lossy(&s).trim().to_string()
    });
    let idle = shared.cfg().copy_idle_timeout;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut aborted = false;
    let mut idled = false;
    match io {
        Io::Out(tx) => {
            let mut out = child.stdout.take().expect("stdout piped");
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = out
                    .read(&mut buf)
                    .await
                    .map_err(|e| EngineError::internal("reading the copy helper", e))?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                hasher.update(&buf);
                size += n as u64;
                match tokio::time::timeout(idle, tx.send(buf)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        // The client went away.
                        aborted = true;
                        break;
                    }
                    Err(_) => {
                        idled = true;
                        break;
                    }
                }
            }
        }
        Io::In(mut rx) => {
            let mut stdin = Some(child.stdin.take().expect("stdin piped"));
            loop {
                let chunk = match tokio::time::timeout(idle, rx.recv()).await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(_) => {
                        idled = true;
                        break;
                    }
                };
                hasher.update(&chunk);
                size += chunk.len() as u64;
                if let Some(w) = stdin.as_mut()
                    && w.write_all(&chunk).await.is_err()
                {
                    // The helper stopped reading (it failed): keep hashing, report below.
                    stdin = None;
                }
            }
            if idled {
                // The stream is incomplete: the helper dies before its stdin
                // closes, so a truncated tar is never taken as whole.
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
            if let Some(mut w) = stdin {
                let _ = w.shutdown().await;
            }
        }
    }
    if aborted || idled {
        let _ = child.start_kill();
    }
    let status = child
        .wait()
        .await
        .map_err(|e| EngineError::internal("waiting for the copy helper", e))?;
    let msg = err_task.await.unwrap_or_default();
    if aborted {
        return Err(EngineError::Unavailable("the client went away".into()));
    }
    if idled {
        return Err(EngineError::DeadlineExceeded(format!(
            "the copy was idle for {} s: the client {} nothing",
            idle.as_secs_f64(),
            if matches!(mode, CopyMode::In) {
                "sent"
            } else {
                "read"
            }
        )));
    }
    match status.code() {
        Some(0) => Ok(CopyDigest {
            size,
            sha256: hex::encode(hasher.finalize()),
        }),
        Some(CP_EXIT_NOT_FOUND) => Err(EngineError::NotFound(msg)),
        Some(CP_EXIT_INVALID) => Err(EngineError::InvalidArgument(msg)),
        // Killed by a signal: the helper itself failed, not the request.
        None => Err(EngineError::internal("the copy helper", status)),
        _ => Err(EngineError::FailedPrecondition(if msg.is_empty() {
            format!("copy failed ({status})")
        } else {
            msg
        })),
    }
}
