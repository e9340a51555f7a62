//! GetLogs: reads the log file the shim writes, optionally only its tail,
//! and in follow mode keeps reading as it grows (woken by inotify, not by
//! polling) until the container has exited, then ends with its exit status.
use crate::engine::{Engine, Inner};
use crate::error::{EngineError, Result};
use crate::lifecycle::{WaitResult, has_ended};
use crate::model::{Container, Event, State};
use futures::StreamExt;
use inotify::{Inotify, WatchMask};
use quilt_runtime::logfile::{self, LOG_FILE, Stream};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

/// One captured line (or part of a line) of output.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub ts_ns: i64,
    pub stream: Stream,
    /// The bytes, including the newline unless `partial`.
    pub data: Vec<u8>,
    pub partial: bool,
}

#[derive(Debug, Clone)]
pub enum LogItem {
    Line(LogLine),
    /// Last item of a follow stream.
    Exit(WaitResult),
}

const CHUNK: usize = 256 * 1024;

impl Engine {
    /// The receiver yields the lines, then (follow mode) the exit. The
    /// follower is registered before this returns, so a container removed
    /// on exit (`--rm`) keeps its files until the follower has read them.
    pub async fn logs(
        &self,
        reference: &str,
        follow: bool,
        tail: Option<u64>,
    ) -> Result<mpsc::Receiver<Result<LogItem>>> {
        let inner = self.inner.clone();
        let events = inner.events.subscribe();
        let c = inner.store.resolve(reference).await?;
        if c.state == State::Removing {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is being removed",
                c.name
            )));
        }
        let guard = inner.live(&c.id).attach.clone().read_owned().await;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let res = stream(&inner, c, follow, tail, events, &tx).await;
            if let Err(e) = res {
                let _ = tx.send(Err(e)).await;
            }
            drop(guard);
        });
        Ok(rx)
    }
}

async fn stream(
    inner: &Arc<Inner>,
    c: Container,
    follow: bool,
    tail: Option<u64>,
    mut events: broadcast::Receiver<Event>,
    tx: &mpsc::Sender<Result<LogItem>>,
) -> Result<()> {
    let path = inner.cfg.container_dir(&c.id).join(LOG_FILE);
    if follow && matches!(c.state, State::Created | State::Starting) {
        // Nothing to read before the shim runs.
        if wait_state_change(inner, &c.id, &mut events, |s| {
            !matches!(s, State::Created | State::Starting)
        })
        .await?
        .is_none()
        {
            return Ok(());
        }
    }
    // Watch before the first read so no write between the two is missed.
    let mut notify = if follow { Some(watch(&path)?) } else { None };
    let mut offset = match tail {
        Some(n) => {
            let p = path.clone();
            tokio::task::spawn_blocking(move || tail_offset(&p, n)).await??
        }
        None => 0,
    };
    let mut carry = Vec::new();
    loop {
        if !read_new(&path, &mut offset, &mut carry, tx).await? {
            return Ok(()); // receiver gone
        }
        let Some(n) = notify.as_mut() else {
            return Ok(());
        };
        if let Some(done) = finished(inner, &c.id).await? {
            // The shim writes every line before it exits, and the exit is
            // recorded after that: one last read gets the rest.
            read_new(&path, &mut offset, &mut carry, tx).await?;
            let _ = tx.send(Ok(LogItem::Exit(done))).await;
            return Ok(());
        }
        tokio::select! {
            _ = n.next() => {}
            ev = events.recv() => match ev {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = tx.closed() => return Ok(()),
        }
    }
}

/// The exit status once the container has finished (or its row is gone).
async fn finished(inner: &Inner, id: &str) -> Result<Option<WaitResult>> {
    Ok(match inner.store.get(id).await? {
        None => Some(WaitResult {
            id: id.to_owned(),
            state: State::Exited,
            exit: None,
            failure_reason: None,
        }),
        Some(c) if has_ended(&c) => Some(WaitResult::of(&c)),
        Some(_) => None,
    })
}

async fn wait_state_change(
    inner: &Inner,
    id: &str,
    events: &mut broadcast::Receiver<Event>,
    done: impl Fn(State) -> bool,
) -> Result<Option<State>> {
    loop {
        match inner.store.get(id).await? {
            None => return Ok(None),
            Some(c) if done(c.state) => return Ok(Some(c.state)),
            Some(_) => {}
        }
        match events.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return Ok(None),
        }
    }
}

fn watch(path: &Path) -> Result<inotify::EventStream<Vec<u8>>> {
    let ino = Inotify::init().map_err(|e| EngineError::internal("inotify", e))?;
    // The file may not exist yet (a start that failed early): watch its directory.
    let target = if path.exists() {
        path.to_path_buf()
    } else {
        path.parent().map(PathBuf::from).unwrap_or_default()
    };
    ino.watches()
        .add(
            &target,
            WatchMask::MODIFY | WatchMask::CREATE | WatchMask::CLOSE_WRITE,
        )
        .map_err(|e| EngineError::internal(&format!("watch {}", target.display()), e))?;
    ino.into_event_stream(vec![0u8; 4096])
        .map_err(|e| EngineError::internal("inotify stream", e))
}

/// Sends every complete record past `offset`; a trailing incomplete record
/// stays in `carry`. False when the receiver has gone away.
async fn read_new(
    path: &Path,
    offset: &mut u64,
    carry: &mut Vec<u8>,
    tx: &mpsc::Sender<Result<LogItem>>,
) -> Result<bool> {
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(EngineError::internal("open log", e)),
    };
    f.seek(SeekFrom::Start(*offset))
        .await
        .map_err(|e| EngineError::internal("seek log", e))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| EngineError::internal("read log", e))?;
        if n == 0 {
            return Ok(true);
        }
        *offset += n as u64;
        carry.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(nl) = carry[start..].iter().position(|&b| b == b'\n') {
            let line = &carry[start..start + nl];
            start += nl + 1;
            if let Some(rec) = logfile::parse(line) {
                let mut data = rec.data.to_vec();
                if !rec.partial {
                    data.push(b'\n');
                }
                let item = LogLine {
                    ts_ns: rec.ts_ns,
                    stream: rec.stream,
                    data,
                    partial: rec.partial,
                };
                if tx.send(Ok(LogItem::Line(item))).await.is_err() {
                    return Ok(false);
                }
            }
        }
        carry.drain(..start);
    }
}

/// Byte offset where the last `n` records of the file begin.
fn tail_offset(path: &Path, n: u64) -> Result<u64> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(EngineError::internal("open log", e)),
    };
    let len = f
        .metadata()
        .map_err(|e| EngineError::internal("stat log", e))?
        .len();
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut seen = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))
            .map_err(|e| EngineError::internal("seek log", e))?;
        let chunk = &mut buf[..step as usize];
        f.read_exact(chunk)
            .map_err(|e| EngineError::internal("read log", e))?;
        for i in (0..chunk.len()).rev() {
            // The file's last byte is the newline of the last record: skip it.
            if chunk[i] == b'\n' && pos + (i as u64) + 1 != len {
                seen += 1;
                if seen == n {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::tail_offset;
    use std::io::Write;

    #[test]
    fn tail_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"a\nbb\nccc\n").unwrap();
        assert_eq!(tail_offset(&p, 1).unwrap(), 5);
        assert_eq!(tail_offset(&p, 2).unwrap(), 2);
        assert_eq!(tail_offset(&p, 3).unwrap(), 0);
        assert_eq!(tail_offset(&p, 10).unwrap(), 0);
        assert_eq!(tail_offset(&p, 0).unwrap(), 9);
        assert_eq!(tail_offset(&dir.path().join("none"), 3).unwrap(), 0);
    }
}
