//! SQLite's WAL checkpoints, off the writer. By default SQLite copies the
//! WAL back into the database, and syncs both files, inside the commit
//! that takes the WAL past 1,000 pages: that one write took milliseconds,
//! and with a few pages per create it was the p99 of CreateContainer. The
//! store's connections have automatic checkpoints off; a connection of
//! the checkpointer's own runs a PASSIVE checkpoint (it waits for no
//! reader or writer) after every `EVERY` writes, told by the writer. The
//! WAL then stays about as small as before, and no write pays for it.
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Writes between two checkpoints: at a few WAL pages per write, about
/// the 1,000 pages at which SQLite would checkpoint by itself.
const EVERY: u64 = 200;
/// The WAL's length, in frames (pages), past which writes wait for a
/// checkpoint that starts it again: 64 MiB of 4 KiB pages (4 MiB in the
/// tests, which write that much).
#[cfg(not(test))]
const MAX_FRAMES: i64 = 16_384;
#[cfg(test)]
const MAX_FRAMES: i64 = 1_024;
/// How long that checkpoint waits for a reader or the writer before it
/// gives up until the next time (writes wait for it meanwhile).
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer's side: counts writes and wakes the checkpointer's task,
/// which ends when this is dropped (with the store).
#[derive(Debug)]
pub(super) struct Checkpointer {
    writes: AtomicU64,
    wake: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts the task that checkpoints the database of `opts` (on a
    /// connection of its own, opened when first needed).
    pub fn start(opts: SqliteConnectOptions) -> Checkpointer {
        let opts = opts.busy_timeout(PATIENCE);
        let (wake, mut woken) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            let mut conn: Option<SqliteConnection> = None;
            while woken.recv().await.is_some() {
                if let Err(e) = checkpoint(&mut conn, &opts).await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; trying again later");
                    // A fresh connection next time.
                    conn = None;
                }
            }
            if let Some(c) = conn {
                let _ = c.close().await;
            }
        });
        Checkpointer {
            writes: AtomicU64::new(0),
            wake,
        }
    }

    /// After a committed write: every `EVERY`th wakes the task (a wake
    /// while one is pending adds nothing).
    pub fn wrote(&self) {
        if (self.writes.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(EVERY) {
            let _ = self.wake.try_send(());
        }
    }
}

async fn checkpoint(
    conn: &mut Option<SqliteConnection>,
    opts: &SqliteConnectOptions,
) -> sqlx::Result<()> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(SqliteConnection::connect_with(opts).await?),
    };
    // fetch_all: the statement runs to completion (it returns one row).
    let r: Vec<(i64, i64, i64)> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_all(&mut *c)
        .await?;
    // A WAL starts again from its beginning only at a write that begins
    // once all of it is checkpointed: under writes that never pause it
    // grows. Past `MAX_FRAMES`, a TRUNCATE checkpoint (which holds writes
    // back while it runs) starts it again.
    if r.first().is_some_and(|&(_, log, _)| log > MAX_FRAMES) {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_all(c)
            .await?;
    }
    Ok(())
}
