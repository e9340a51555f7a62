//! GetLogs: reads the log files the shim writes (the rotated ones oldest
//! first, then `container.log`), optionally only their tail and only records
//! from a given time on, and in follow mode keeps reading as they grow
//! (woken by inotify on the container directory, not by polling) until the
//! container has exited, then ends with its exit status.
//!
//! A follower keeps its file open. When the shim rotates, the file it reads
//! is renamed to `container.log.1`: the follower sees that `container.log`
//! is another inode, finishes the file it holds and moves on to the next
//! newer one, so it loses nothing unless it falls more than the number of
//! kept files behind (then it continues with the oldest file still there).
use crate::engine::Shared;
use crate::engine::{Waited, Watch};
use crate::error::{EngineError, Result};
use crate::model::{Container, State, WaitResult};
use crate::support::fswatch::FsWatch;
use futures::{FutureExt, StreamExt};
use inotify::{Inotify, WatchMask};
use quilt_runtime::logfile::reader::{self as logset, FileId};
use quilt_runtime::logfile::{self, LOG_FILE, Stream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
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

/// Which records to send.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Filter {
    /// Only records at or after this unix time (ns).
    pub since_ns: Option<i64>,
}

/// The file a reader is on, positioned at the next unread byte.
struct Cursor {
    file: tokio::fs::File,
    id: FileId,
}

impl Cursor {
    fn new((file, id): (std::fs::File, FileId)) -> Cursor {
        Cursor {
            file: tokio::fs::File::from_std(file),
            id,
        }
    }
}

pub(crate) async fn stream(
    shared: &Arc<Shared>,
    c: Container,
    follow: bool,
    tail: Option<u64>,
    filter: Filter,
    mut watch: Watch,
    tx: &mpsc::Sender<Result<LogItem>>,
) -> Result<()> {
    let dir = shared.cfg().container_dir(&c.id);
    if follow && matches!(c.state, State::Created | State::Starting) {
        // Nothing to read before the shim runs. A created container may
        // wait for its start indefinitely: `quilt run` follows before it
        // starts.
        let begun = |row: Option<&Container>| {
            row.is_none_or(|c| !matches!(c.state, State::Created | State::Starting))
        };
        match shared
            .wait_until(&mut watch, &c.id, begun, None, tx.closed())
            .await?
        {
            Waited::Met(Some(_)) => {}
            Waited::Met(None) | Waited::Cancelled | Waited::TimedOut => return Ok(()),
        }
    }
    // Watch before the first read so no write between the two is missed.
    let d = dir.clone();
    let (mut notify, (older, mut cur)) = tokio::task::spawn_blocking(move || {
        let notify = if follow { Some(watch_dir(&d)?) } else { None };
        Ok::<_, EngineError>((notify, open_from(&d, tail)?))
    })
    .await??;
    let mut carry = Vec::new();
    for mut c in older {
        if !read_to_end(&mut c, &mut carry, filter, tx).await? {
            return Ok(());
        }
        carry.clear();
    }
    loop {
        if !drain(&dir, &mut cur, &mut carry, follow, filter, tx).await? {
            return Ok(()); // receiver gone
        }
        let Some(n) = notify.as_mut() else {
            return Ok(());
        };
        if let Some(done) = finished(shared, &c.id).await? {
            // The shim writes every line before it exits, and the exit is
            // recorded after that: one last pass gets the rest.
            drain(&dir, &mut cur, &mut carry, follow, filter, tx).await?;
            let _ = tx.send(Ok(LogItem::Exit(done))).await;
            return Ok(());
        }
        tokio::select! {
            _ = n.next() => {
                // One pass reads everything written so far: drop the
                // events already queued for the same writes.
                for _ in 0..1024 {
                    if n.next().now_or_never().is_none() {
                        break;
                    }
                }
            }
            more = watch.changed(&c.id) => if !more {
                return Ok(());
            },
            _ = tx.closed() => return Ok(()),
        }
    }
}

/// Reads the current file to its end; when following, also every file that
/// replaced it since (rotation). False when the receiver has gone away.
async fn drain(
    dir: &Path,
    cur: &mut Option<Cursor>,
    carry: &mut Vec<u8>,
    follow: bool,
    filter: Filter,
    tx: &mpsc::Sender<Result<LogItem>>,
) -> Result<bool> {
    loop {
        let c = match cur {
            Some(c) => c,
            None => {
                let p = dir.join(LOG_FILE);
                match tokio::task::spawn_blocking(move || open_id(&p)).await?? {
                    Some(c) => cur.insert(c),
                    None => return Ok(true), // not written yet
                }
            }
        };
        if !read_to_end(c, carry, filter, tx).await? {
            return Ok(false);
        }
        if !follow {
            return Ok(true);
        }
        let (d, id) = (dir.to_path_buf(), c.id);
        match tokio::task::spawn_blocking(move || successor(&d, id)).await?? {
            Some(next) => {
                // The shim wrote the last records of the old file before it
                // renamed it away: read them, now that the rotation is seen.
                if !read_to_end(c, carry, filter, tx).await? {
                    return Ok(false);
                }
                // Files hold whole records; anything left is a torn write.
                carry.clear();
                *cur = Some(next);
            }
            None => return Ok(true),
        }
    }
}

/// The exit status once the container has finished (or its row is gone).
async fn finished(shared: &Shared, id: &str) -> Result<Option<WaitResult>> {
    Ok(match shared.store().get(id).await? {
        None => Some(WaitResult::removed(id)),
        Some(c) if c.has_ended() => Some(WaitResult::of(&c)),
        Some(_) => None,
    })
}

/// Watches the container directory: writes to the log, and its rotation
/// (renames, a new `container.log`).
fn watch_dir(dir: &Path) -> Result<FsWatch> {
    let ino = Inotify::init().map_err(|e| EngineError::internal("inotify", e))?;
    // The directory may not exist yet (a start that failed early): watch its parent.
    let target = if dir.exists() {
        dir.to_path_buf()
    } else {
        dir.parent().map(PathBuf::from).unwrap_or_default()
    };
    ino.watches()
        .add(
            &target,
            WatchMask::MODIFY
                | WatchMask::CREATE
                | WatchMask::CLOSE_WRITE
                | WatchMask::MOVED_FROM
                | WatchMask::MOVED_TO
                | WatchMask::DELETE,
        )
        .map_err(|e| EngineError::internal(&format!("watch {}", target.display()), e))?;
    ino.into_event_stream(vec![0u8; 4096])
        .map(FsWatch::new)
        .map_err(|e| EngineError::internal("inotify stream", e))
}

/// Sends every complete record from the cursor's position to the end of
/// its file; a trailing incomplete record stays in `carry`. False when the
/// receiver has gone away.
async fn read_to_end(
    c: &mut Cursor,
    carry: &mut Vec<u8>,
    filter: Filter,
    tx: &mpsc::Sender<Result<LogItem>>,
) -> Result<bool> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = c
            .file
            .read(&mut buf)
            .await
            .map_err(|e| EngineError::internal("read log", e))?;
        if n == 0 {
            return Ok(true);
        }
        carry.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(nl) = carry[start..].iter().position(|&b| b == b'\n') {
            let line = &carry[start..start + nl];
            start += nl + 1;
            let Some(rec) = logfile::parse(line) else {
                continue;
            };
            if filter.since_ns.is_some_and(|s| rec.ts_ns < s) {
                continue;
            }
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
        carry.drain(..start);
    }
}

// The rotation-aware reading of the files lives next to their writer, in
// quilt_runtime::logfile::reader; these wrap its files for tokio.

fn read_error(e: logset::ReadError) -> EngineError {
    EngineError::Internal(e.to_string())
}

fn open_id(p: &Path) -> Result<Option<Cursor>> {
    Ok(logset::open(p).map_err(read_error)?.map(Cursor::new))
}

/// The files to read, positioned for `tail`: the older ones, read through
/// and left, and the newest, which a follower keeps reading.
fn open_from(dir: &Path, tail: Option<u64>) -> Result<(Vec<Cursor>, Option<Cursor>)> {
    let (older, last) = logset::open_from(dir, tail).map_err(read_error)?;
    Ok((
        older.into_iter().map(Cursor::new).collect(),
        last.map(Cursor::new),
    ))
}

/// After the reader finished the file `id`: the next newer log file, if
/// `id` has been rotated away.
fn successor(dir: &Path, id: FileId) -> Result<Option<Cursor>> {
    Ok(logset::successor(dir, id)
        .map_err(read_error)?
        .map(Cursor::new))
}
