//! The writer connection, lent for one write. A write that fails is never
//! followed by another on the same connection: when a statement fails inside
//! a transaction (a full disk, an I/O error), SQLite rolls the transaction
//! back by itself while sqlx still counts it as open, and the next "commit"
//! on that connection would only release a savepoint (launchbadge/sqlx#3742)
//! — an acknowledged write that never reaches the database. So after such
//! an error the connection is closed and the pool opens a fresh one; a write
//! that answers Ok was committed. PostgreSQL keeps a failed transaction
//! open until it is rolled back; closing the connection is right there too.
use super::reserve::Reserve;
use crate::error::{EngineError, Result};
use sqlx::Database;
use sqlx::pool::PoolConnection;
use std::ops::{Deref, DerefMut};

#[derive(Debug)]
pub(super) struct Writer<'s, DB: Database> {
    /// None once handed back or discarded.
    conn: Option<PoolConnection<DB>>,
    reserve: &'s Reserve,
    metrics: &'s crate::metrics::Metrics,
    since: std::time::Instant,
}

impl<'s, DB: Database> Writer<'s, DB> {
    pub fn new(
        conn: PoolConnection<DB>,
        reserve: &'s Reserve,
        metrics: &'s crate::metrics::Metrics,
    ) -> Writer<'s, DB> {
        Writer {
            conn: Some(conn),
            reserve,
            metrics,
            since: std::time::Instant::now(),
        }
    }

    /// Ends the write with its result: the connection goes back to the
    /// pool, or, after an error that may have left it inconsistent, is
    /// closed.
    pub async fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        let conn = self.conn.take().expect("a writer is finished once");
        match &result {
            Ok(_) => {
                drop(conn);
                self.metrics.observe_db_write(self.since.elapsed());
                self.reserve.refill_if_released();
            }
            // A refusal of our own, or a constraint violation (SQLite rolls
            // back the statement only), leaves the connection sound.
            Err(
                EngineError::NotFound(_)
                | EngineError::AlreadyExists(_)
                | EngineError::FailedPrecondition(_)
                | EngineError::InvalidArgument(_),
            ) => drop(conn),
            Err(e) => {
                if matches!(e, EngineError::ResourceExhausted(_)) {
                    self.metrics.rejected("disk_full");
                }
                tracing::warn!(error = %e, "database write failed; replacing the writer connection");
                let _ = sqlx::Connection::close(conn.detach()).await;
            }
        }
        result
    }
}

impl<DB: Database> Drop for Writer<'_, DB> {
    /// A write abandoned half-way (its task was cancelled): the connection
    /// may be mid-transaction, so it is not given back.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
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
