//! SQLite's WAL checkpoints, off the writer. By default SQLite copies the
//! WAL back into the database, and syncs both files, inside the commit
//! that takes the WAL past 1,000 pages: that one write took milliseconds,
//! and with a few pages per create it was the p99 of CreateContainer. The
//! store's connections have automatic checkpoints off; a connection of
//! the checkpointer's own runs a PASSIVE checkpoint (it waits for no
//! reader or writer, and takes no lock a write needs) after every `EVERY`
//! writes, told by the writer.
//!
//! A WAL starts again from its beginning only at a write that begins once
//! all of it is checkpointed: under writes that never pause, a checkpoint
//! on another connection almost never ends between two of them, and the
//! WAL grows. Past `MAX_FRAMES` the writer checkpoints once more itself,
//! before its next write (what SQLite's automatic checkpoint does): that
//! write pays for it, and the one after starts the WAL again. No other
//! connection ever takes the write lock, so a transaction that reads and
//! then writes is never refused as busy.
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Writes between two checkpoints: at a few WAL pages per write, about
/// the 1,000 pages at which SQLite would checkpoint by itself.
const EVERY: u64 = 200;
/// The WAL's length, in frames (pages), past which the writer checkpoints
/// itself: 64 MiB of 4 KiB pages (4 MiB in the tests, which write that
/// much).
#[cfg(not(test))]
const MAX_FRAMES: i64 = 16_384;
#[cfg(test)]
const MAX_FRAMES: i64 = 1_024;

enum Wake {
    Checkpoint,
    /// Close the connection and end (the store closes).
    Close,
}

/// The writer's side: counts writes and wakes the checkpointer's task.
#[derive(Debug)]
pub(super) struct Checkpointer {
    writes: AtomicU64,
    /// Set by the task when the WAL is past `MAX_FRAMES`; taken by the
    /// writer (`overdue`).
    overdue: std::sync::Arc<AtomicBool>,
    wake: mpsc::Sender<Wake>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the task that checkpoints the database of `opts` (on a
    /// connection of its own, opened when first needed).
    pub fn start(opts: SqliteConnectOptions) -> Checkpointer {
        let (wake, mut woken) = mpsc::channel::<Wake>(1);
        let overdue = std::sync::Arc::new(AtomicBool::new(false));
        let flag = overdue.clone();
        let task = tokio::spawn(async move {
            let mut conn: Option<SqliteConnection> = None;
            while let Some(Wake::Checkpoint) = woken.recv().await {
                match checkpoint(&mut conn, &opts).await {
                    Ok(frames) if frames > MAX_FRAMES => flag.store(true, Ordering::Release),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpoint failed; trying again later");
                        // A fresh connection next time.
                        conn = None;
                    }
                }
            }
            // Closed before the writer: its close, the last, checkpoints
            // the WAL and removes it.
            if let Some(c) = conn {
                let _ = c.close().await;
            }
        });
        Checkpointer {
            writes: AtomicU64::new(0),
            overdue,
            wake,
            task: Mutex::new(Some(task)),
        }
    }

    /// After a committed write: every `EVERY`th wakes the task (a wake
    /// while one is pending adds nothing).
    pub fn wrote(&self) {
        if (self.writes.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(EVERY) {
            let _ = self.wake.try_send(Wake::Checkpoint);
        }
    }

    /// Whether a checkpoint on the writer is due (see `overdue`), without
    /// taking it.
    pub fn is_overdue(&self) -> bool {
        self.overdue.load(Ordering::Acquire)
    }

    /// Whether the writer should checkpoint before its next write (the WAL
    /// is past `MAX_FRAMES`); true once per time it is.
    pub fn overdue(&self) -> bool {
        self.overdue.swap(false, Ordering::AcqRel)
    }

    /// Ends the task and closes its connection (before the writer's).
    pub async fn close(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = self.wake.send(Wake::Close).await;
            let _ = task.await;
        }
    }
}

/// A PASSIVE checkpoint; returns the WAL's length in frames.
async fn checkpoint(
    conn: &mut Option<SqliteConnection>,
    opts: &SqliteConnectOptions,
) -> sqlx::Result<i64> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(SqliteConnection::connect_with(opts).await?),
    };
    passive(c).await
}

/// `PRAGMA wal_checkpoint(PASSIVE)` on `c`; returns the WAL's length in
/// frames (fetch_all: the statement runs to completion).
pub(super) async fn passive(c: &mut SqliteConnection) -> sqlx::Result<i64> {
    let r: Vec<(i64, i64, i64)> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_all(c)
        .await?;
    Ok(r.first().map_or(0, |&(_, frames, _)| frames))
}
