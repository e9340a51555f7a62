//! The writer connection, lent for one write. A write that fails is never
//! followed by another on the same connection: when a statement fails inside
//! a transaction (a full disk, an I/O error), SQLite rolls the transaction
//! back by itself while sqlx still counts it as open, and the next "commit"
//! on that connection would only release a savepoint (launchbadge/sqlx#3742)
//! — an acknowledged write that never reaches the database. So after such
//! an error the connection is closed and the pool opens a fresh one; a write
//! that answers Ok was committed. PostgreSQL keeps a failed transaction
//! open until it is rolled back; closing the connection is right there too.
//!
//! SQLite's one writer connection is kept out of its pool between writes,
//! in a [`Held`] slot: sqlx tests every connection given back to a pool
//! with a ping, from a task it spawns, and the pool lends it again only
//! after that round trip to the connection's thread. On the single writer
//! that ping sat between every two writes. A write takes the slot's lock
//! (FIFO, so writes still queue fairly), uses the connection and puts it
//! back; a connection discarded after an error leaves the slot empty, and
//! the next write takes a fresh one from the pool.
use super::index::Index;
use super::reserve::Reserve;
use crate::error::{EngineError, Result};
use sqlx::Database;
use sqlx::pool::PoolConnection;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// The slot of a writer connection kept out of its pool (see above).
pub(super) type Held<DB> = Mutex<Option<PoolConnection<DB>>>;

#[derive(Debug)]
pub(super) struct Writer<'s, DB: Database> {
    /// None once handed back or discarded.
    conn: Option<PoolConnection<DB>>,
    /// The held slot, locked for this write: a sound connection goes back
    /// there. None: it goes back to its pool.
    slot: Option<MutexGuard<'s, Option<PoolConnection<DB>>>>,
    reserve: &'s Reserve,
    /// Where the write's time is recorded (None: a connection that is not
    /// the store's writer, such as PostgreSQL's lease connection).
    metrics: Option<&'s crate::metrics::Metrics>,
    /// Told of each committed write (SQLite's store writer).
    checkpoint: Option<&'s super::checkpoint::Checkpointer>,
    /// The listing index the write keeps in step (SQLite's store writer):
    /// marked stale when the write is abandoned half-way or fails in a way
    /// that replaces the connection, when its entry may not be the row's.
    index: Option<&'s Arc<Index>>,
    since: std::time::Instant,
}

impl<'s, DB: Database> Writer<'s, DB> {
    /// A write on a connection lent by a pool, given back to it after.
    pub fn new(
        conn: PoolConnection<DB>,
        reserve: &'s Reserve,
        metrics: Option<&'s crate::metrics::Metrics>,
    ) -> Writer<'s, DB> {
        Writer {
            conn: Some(conn),
            slot: None,
            reserve,
            metrics,
            checkpoint: None,
            index: None,
            since: std::time::Instant::now(),
        }
    }

    /// A write on the connection held in `held` (waiting for the writes
    /// queued before it), or, when the slot is empty, on a fresh one from
    /// `pool`.
    pub async fn held(
        held: &'s Held<DB>,
        pool: &sqlx::Pool<DB>,
        reserve: &'s Reserve,
        metrics: &'s crate::metrics::Metrics,
    ) -> Result<Writer<'s, DB>> {
        let mut slot = held.lock().await;
        let conn = match slot.take() {
            Some(conn) => conn,
            None => pool.acquire().await?,
        };
        Ok(Writer {
            conn: Some(conn),
            slot: Some(slot),
            reserve,
            metrics: Some(metrics),
            checkpoint: None,
            index: None,
            since: std::time::Instant::now(),
        })
    }

    /// Tells `checkpoint` of the write once it is committed.
    pub fn checkpointed_by(
        mut self,
        checkpoint: Option<&'s super::checkpoint::Checkpointer>,
    ) -> Writer<'s, DB> {
        self.checkpoint = checkpoint;
        self
    }

    /// Marks `index` stale should the write not end as it was meant to (see
    /// the field).
    pub fn indexed_by(mut self, index: Option<&'s Arc<Index>>) -> Writer<'s, DB> {
        self.index = index;
        self
    }

    /// Gives a sound connection back: to the held slot, or to its pool.
    fn give_back(&mut self, conn: PoolConnection<DB>) {
        match self.slot.as_mut() {
            Some(slot) => **slot = Some(conn),
            None => drop(conn),
        }
    }

    /// Ends the write with its result: the connection goes back to the
    /// pool, or, after an error that may have left it inconsistent, is
    /// closed.
    pub async fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        let conn = self.conn.take().expect("a writer is finished once");
        match &result {
            Ok(_) => {
                self.give_back(conn);
                if let Some(metrics) = self.metrics {
                    metrics.observe_db_write(self.since.elapsed());
                }
                if let Some(checkpoint) = self.checkpoint {
                    checkpoint.wrote();
                }
                self.reserve.refill_if_released();
            }
            // A refusal of our own, or a constraint violation (SQLite rolls
            // back the statement only), leaves the connection sound.
            Err(
                EngineError::NotFound(_)
                | EngineError::AlreadyExists(_)
                | EngineError::FailedPrecondition(_)
                | EngineError::InvalidArgument(_),
            ) => self.give_back(conn),
            Err(e) => {
                if let (EngineError::ResourceExhausted(_), Some(metrics)) = (e, self.metrics) {
                    metrics.rejected("disk_full");
                }
                tracing::warn!(error = %e, "database write failed; replacing its connection");
                // It may have committed all the same (a connection lost
                // after its COMMIT), before the index took it. No rebuild
                // reads the table before the close: the slot is held till
                // then.
                if let Some(index) = self.index {
                    index.mark_stale();
                }
                let _ = sqlx::Connection::close(conn.detach()).await;
            }
        }
        result
    }
}

impl<DB: Database> Drop for Writer<'_, DB> {
    /// A write abandoned half-way (its task was cancelled): the connection
    /// may be mid-transaction, so it is not given back (the held slot stays
    /// empty). What it wrote may still commit (a statement that reached
    /// SQLite's thread runs to its end) without reaching the index: the
    /// index is marked stale now, and again once the connection is closed
    /// (the close waits for the statements it was handed), since a rebuild
    /// in between may have read the table before that commit.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let conn = conn.detach();
        let Some(index) = self.index.map(Arc::clone) else {
            drop(conn);
            return;
        };
        index.mark_stale();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = sqlx::Connection::close(conn).await;
                    index.mark_stale();
                });
            }
            Err(_) => drop(conn),
        }
    }
}

impl<DB: Database> Deref for Writer<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        self.conn.as_ref().expect("writer in use")
    }
}

impl<DB: Database> DerefMut for Writer<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.conn.as_mut().expect("writer in use")
    }
}
