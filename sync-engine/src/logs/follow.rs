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
use crate::engine::{Engine, Shared};
use crate::engine::{Waited, Watch};
use crate::error::{EngineError, Result};
use crate::model::{Container, State, WaitResult};
use crate::support::fswatch::FsWatch;
use futures::{FutureExt, StreamExt};
use inotify::{Inotify, WatchMask};
use quilt_runtime::logfile::{self, LOG_FILE, Stream, rotated_name};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
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
/// Rotated files are looked for up to this index.
const MAX_ROTATED: u32 = 1000;

/// Which records to send.
#[derive(Debug, Clone, Copy, Default)]
struct Filter {
    /// Only records at or after this unix time (ns).
    since_ns: Option<i64>,
}

/// Identity of a file: (device, inode).
type FileId = (u64, u64);

fn file_id(m: &std::fs::Metadata) -> FileId {
    (m.dev(), m.ino())
}

/// The file a reader is on, positioned at the next unread byte.
struct Cursor {
    file: tokio::fs::File,
    id: FileId,
}

impl Engine {
    /// The receiver yields the lines, then (follow mode) the exit. The
    /// follower is registered before this returns, so a container removed
    /// on exit (`--rm`) keeps its files until the follower has read them.
    /// `tail` counts the last records across all files; `since_ns` then
    /// drops records older than that time.
    pub async fn logs(
        &self,
        reference: &str,
        follow: bool,
        tail: Option<u64>,
        since_ns: Option<i64>,
    ) -> Result<mpsc::Receiver<Result<LogItem>>> {
        let shared = self.shared.clone();
        let watch = shared.watch();
        let c = shared.store().resolve(reference).await?;
        if c.state.is_removing() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is being removed",
                c.name
            )));
        }
        let guard = shared.live(&c.id).followers.clone().read_owned().await;
        let (tx, rx) = mpsc::channel(256);
        let filter = Filter { since_ns };
        tokio::spawn(async move {
            let res = stream(&shared, c, follow, tail, filter, watch, &tx).await;
            if let Err(e) = res {
                let _ = tx.send(Err(e)).await;
            }
            drop(guard);
        });
        Ok(rx)
    }
}

async fn stream(
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

fn open_std(p: &Path) -> Result<Option<(std::fs::File, FileId)>> {
    let f = match std::fs::File::open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::internal(&format!("open {}", p.display()), e)),
    };
    let m = f
        .metadata()
        .map_err(|e| EngineError::internal("stat log", e))?;
    Ok(Some((f, file_id(&m))))
}

fn open_id(p: &Path) -> Result<Option<Cursor>> {
    Ok(open_std(p)?.map(|(f, id)| Cursor {
        file: tokio::fs::File::from_std(f),
        id,
    }))
}

fn stat_id(p: &Path) -> Result<Option<FileId>> {
    match std::fs::metadata(p) {
        Ok(m) => Ok(Some(file_id(&m))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::internal(&format!("stat {}", p.display()), e)),
    }
}

/// Every log file of the directory, oldest first (the live one last when it
/// exists; before that, the newest rotated one). Opened newest first, skipping a file seen twice, so a rotation
/// in between never puts a file out of order.
fn open_all(dir: &Path) -> Result<Vec<(std::fs::File, FileId)>> {
    let mut out: Vec<(std::fs::File, FileId)> = Vec::new();
    out.extend(open_std(&dir.join(LOG_FILE))?);
    let mut misses = 0;
    for k in 1..=MAX_ROTATED {
        match open_std(&dir.join(rotated_name(k)))? {
            Some(f) => {
                misses = 0;
                if !out.iter().any(|(_, id)| *id == f.1) {
                    out.push(f);
                }
            }
            // A name is missing only for a moment during a rotation.
            None => {
                misses += 1;
                if misses == 2 {
                    break;
                }
            }
        }
    }
    out.reverse();
    Ok(out)
}

/// The files to read, positioned for `tail`: the older ones, read through
/// and left, and the newest, which a follower keeps reading.
fn open_from(dir: &Path, tail: Option<u64>) -> Result<(Vec<Cursor>, Option<Cursor>)> {
    let mut files = open_all(dir)?;
    if let Some(n) = tail {
        let mut left = n;
        let mut first = 0;
        for i in (0..files.len()).rev() {
            match tail_in(&mut files[i].0, left)? {
                Ok(off) => {
                    files[i]
                        .0
                        .seek(SeekFrom::Start(off))
                        .map_err(|e| EngineError::internal("seek log", e))?;
                    first = i;
                    break;
                }
                Err(seen) => {
                    left -= seen;
                    files[i]
                        .0
                        .rewind()
                        .map_err(|e| EngineError::internal("seek log", e))?;
                }
            }
        }
        files.drain(..first);
    }
    let mut cursors: Vec<Cursor> = files
        .into_iter()
        .map(|(f, id)| Cursor {
            file: tokio::fs::File::from_std(f),
            id,
        })
        .collect();
    let last = cursors.pop();
    Ok((cursors, last))
}

/// After the reader finished the file `id`: the next newer log file, if
/// `id` has been rotated away. None while `id` is still the live file (or
/// the new live file is not created yet; its creation wakes the reader).
fn successor(dir: &Path, id: FileId) -> Result<Option<Cursor>> {
    let live = dir.join(LOG_FILE);
    // A rotation may run while we look: retry until the picture is stable.
    for _ in 0..16 {
        if stat_id(&live)? == Some(id) {
            return Ok(None);
        }
        let mut at = None;
        let mut oldest = None;
        let mut misses = 0;
        for k in 1..=MAX_ROTATED {
            match stat_id(&dir.join(rotated_name(k)))? {
                Some(x) if x == id => {
                    at = Some(k);
                    break;
                }
                Some(_) => {
                    misses = 0;
                    oldest = Some(k);
                }
                None => {
                    misses += 1;
                    if misses == 2 {
                        break;
                    }
                }
            }
        }
        let (next, check) = match (at, oldest) {
            (Some(1), _) => (live.clone(), Some(1)),
            (Some(k), _) => (dir.join(rotated_name(k - 1)), Some(k)),
            // Our file is gone (the reader fell behind, or rotation keeps
            // no old file): go on with the oldest one left.
            (None, Some(k)) => (dir.join(rotated_name(k)), None),
            (None, None) => (live.clone(), None),
        };
        let Some(c) = open_id(&next)? else {
            if next == live {
                return Ok(None);
            }
            continue;
        };
        // Still where we found it: nothing was renamed onto `next` meanwhile.
        match check {
            Some(k) if stat_id(&dir.join(rotated_name(k)))? != Some(id) => continue,
            _ => return Ok(Some(c)),
        }
    }
    Ok(None)
}

/// Where the last `n` records of the file begin: Ok(offset), or Err(count)
/// when the file holds only `count` < `n` records.
fn tail_in(f: &mut std::fs::File, n: u64) -> Result<std::result::Result<u64, u64>> {
    let len = f
        .metadata()
        .map_err(|e| EngineError::internal("stat log", e))?
        .len();
    if n == 0 {
        return Ok(Ok(len));
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
                    return Ok(Ok(pos + i as u64 + 1));
                }
            }
        }
    }
    // The first record has no newline before it.
    if len > 0 {
        seen += 1;
        if seen == n {
            return Ok(Ok(0));
        }
    }
    Ok(Err(seen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(p: &Path, data: &[u8]) {
        std::fs::File::create(p).unwrap().write_all(data).unwrap();
    }

    #[test]
    fn tail_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        write(&p, b"a\nbb\nccc\n");
        let mut f = std::fs::File::open(&p).unwrap();
        let mut t = |n| tail_in(&mut f, n).unwrap();
        assert_eq!(t(1), Ok(5));
        assert_eq!(t(2), Ok(2));
        assert_eq!(t(3), Ok(0));
        assert_eq!(t(10), Err(3));
        assert_eq!(t(0), Ok(9));
        let e = dir.path().join("empty");
        write(&e, b"");
        let mut f = std::fs::File::open(&e).unwrap();
        assert_eq!(tail_in(&mut f, 2).unwrap(), Err(0));
    }

    fn read_all(c: Cursor) -> String {
        let mut f = c.file.try_into_std().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn files_oldest_first_and_tail_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join(rotated_name(2)), b"1\n2\n");
        write(&d.join(rotated_name(1)), b"3\n4\n");
        write(&d.join(LOG_FILE), b"5\n");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _g = rt.enter();
        let texts = |tail| {
            let (older, last) = open_from(d, tail).unwrap();
            let mut v: Vec<String> = older.into_iter().map(read_all).collect();
            v.extend(last.map(read_all));
            v
        };
        assert_eq!(texts(None), ["1\n2\n", "3\n4\n", "5\n"]);
        assert_eq!(texts(Some(1)), ["5\n"]);
        assert_eq!(texts(Some(2)), ["4\n", "5\n"]);
        assert_eq!(texts(Some(4)), ["2\n", "3\n4\n", "5\n"]);
        assert_eq!(texts(Some(9)), ["1\n2\n", "3\n4\n", "5\n"]);
        assert_eq!(texts(Some(0)), [""]);
        // Before the live file exists, the newest rotated one is last.
        std::fs::remove_file(d.join(LOG_FILE)).unwrap();
        assert_eq!(texts(Some(3)), ["2\n", "3\n4\n"]);
    }

    #[test]
    fn successor_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _g = rt.enter();
        let id = |p: &Path| file_id(&std::fs::metadata(p).unwrap());
        write(&d.join(LOG_FILE), b"a\n");
        let a = id(&d.join(LOG_FILE));
        assert!(successor(d, a).unwrap().is_none(), "still live");
        // Rotated, new live file not there yet: wait for it.
        std::fs::rename(d.join(LOG_FILE), d.join(rotated_name(1))).unwrap();
        assert!(successor(d, a).unwrap().is_none());
        write(&d.join(LOG_FILE), b"b\n");
        let next = successor(d, a).unwrap().expect("the new live file");
        assert_eq!(read_all(next), "b\n");
        // Two rotations behind: .2 -> .1 -> live.
        let b = id(&d.join(LOG_FILE));
        std::fs::rename(d.join(rotated_name(1)), d.join(rotated_name(2))).unwrap();
        std::fs::rename(d.join(LOG_FILE), d.join(rotated_name(1))).unwrap();
        write(&d.join(LOG_FILE), b"c\n");
        assert_eq!(read_all(successor(d, a).unwrap().unwrap()), "b\n");
        assert_eq!(read_all(successor(d, b).unwrap().unwrap()), "c\n");
        // `a` deleted: continue with the oldest file left.
        std::fs::remove_file(d.join(rotated_name(2))).unwrap();
        assert_eq!(read_all(successor(d, a).unwrap().unwrap()), "b\n");
    }
}
