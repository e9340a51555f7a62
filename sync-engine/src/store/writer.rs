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
//!
//! Group commit: a write that takes the slot while others wait for it
//! opens a transaction (BEGIN) that the waiting writes join in turn; each
//! gives the slot to the next as soon as its statements are done, and all
//! are answered once a flush, queued for the slot behind them, commits the
//! group. The pages that every state change touches (the table's and the
//! free list's) then reach the WAL once per group, and SQLite's locking
//! calls run once per group, instead of once per write: on the single
//! writer that every start, exit and removal queues for. A write that
//! finds no one waiting commits alone, at once (nothing is held back). A
//! write's statements that fail the way that leaves the connection sound
//! (a constraint, a refusal of our own) are undone by SQLite (a statement)
//! or by its own savepoint (a nested transaction) and the group goes on;
//! any other failure, or a write abandoned half-way, fails the whole group.
//! Nothing of it committed: the write that failed gets its error, and each
//! of the others (`Finished::Lost`) runs again, once, by `db_write!`. The
//! listing index takes a group's changes only once it commits.
use super::index::Index;
use super::reserve::Reserve;
use crate::error::{EngineError, Result};
use sqlx::pool::PoolConnection;
use sqlx::{Database, TransactionManager};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Mutex, MutexGuard, watch};

/// SQLite's writer connection kept out of its pool (see above), and the
/// writes waiting for it.
#[derive(Debug)]
pub(super) struct Held<DB: Database> {
    slot: Mutex<Slot<DB>>,
    /// Writes waiting for the slot: a write that takes it while any are
    /// opens a group for them to join.
    queued: AtomicUsize,
    /// Groups begun (tests).
    groups: std::sync::atomic::AtomicU64,
}

impl<DB: Database> Default for Held<DB> {
    fn default() -> Self {
        Held {
            slot: Mutex::new(Slot {
                conn: None,
                group: None,
            }),
            queued: AtomicUsize::new(0),
            groups: Default::default(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Slot<DB: Database> {
    conn: Option<PoolConnection<DB>>,
    /// The group whose transaction is open on `conn` (never without it).
    group: Option<Arc<Group>>,
}

/// Writes that commit together, and how their commit went.
#[derive(Debug)]
pub(super) struct Group {
    outcome: watch::Sender<Option<Outcome>>,
}

#[derive(Debug, Clone)]
enum Outcome {
    Committed,
    /// Nothing of the group committed: `disk_full` as
    /// `EngineError::ResourceExhausted`, else as `Internal`.
    Failed {
        disk_full: bool,
        message: String,
    },
}

impl Group {
    fn end(&self, outcome: Outcome) {
        self.outcome.send_replace(Some(outcome));
    }

    fn failed(&self, e: &EngineError) {
        self.end(Outcome::Failed {
            disk_full: matches!(e, EngineError::ResourceExhausted(_)),
            message: e.to_string(),
        });
    }
}

/// What a write of a group waits on: the group's end. Only the slot and
/// the flush hold the group itself, so a group that ends without an
/// outcome (its flush gone, a close cancelled half-way) reads as failed.
type Member = watch::Receiver<Option<Outcome>>;

async fn wait(mut member: Member) -> Outcome {
    let outcome = match member.wait_for(Option::is_some).await {
        Ok(o) => o.clone(),
        Err(_) => None,
    };
    outcome.unwrap_or_else(|| Outcome::Failed {
        disk_full: false,
        message: "database: the group of writes ended without a commit".into(),
    })
}

/// How a write ended (`Writer::finish`).
#[must_use]
pub(super) enum Finished<T> {
    Done(Result<T>),
    /// Its group failed for another write's sake: nothing of this write
    /// was committed, and it may run again (`db_write!` does, once).
    Lost(EngineError),
}

impl<DB: Database> Held<DB> {
    /// Commits the open group, if it is still `group` (any group when
    /// None): its writes are answered, the index takes their changes.
    /// With the slot locked.
    async fn end_group(
        slot: &mut Slot<DB>,
        group: Option<&Arc<Group>>,
        index: Option<&Arc<Index>>,
    ) {
        let open = match (&slot.group, group) {
            (Some(open), Some(g)) if !Arc::ptr_eq(open, g) => return,
            (Some(open), _) => open.clone(),
            (None, _) => return,
        };
        slot.group = None;
        let Some(mut conn) = slot.conn.take() else {
            if let Some(index) = index {
                index.discard();
            }
            open.failed(&EngineError::Internal(
                "database: a group of writes lost its connection".into(),
            ));
            return;
        };
        match <DB::TransactionManager as TransactionManager>::commit(&mut conn).await {
            Ok(()) => {
                slot.conn = Some(conn);
                if let Some(index) = index {
                    index.release();
                }
                open.end(Outcome::Committed);
            }
            Err(e) => {
                let e = EngineError::from(e);
                tracing::warn!(error = %e, "database commit of a group of writes failed; replacing its connection");
                if let Some(index) = index {
                    index.discard();
                }
                open.failed(&e);
                let _ = sqlx::Connection::close(conn.detach()).await;
            }
        }
    }

    /// How many groups of writes have begun.
    #[cfg(test)]
    pub fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// The slot, for a caller that holds the writes off (an index rebuild).
    pub async fn lock(&self) -> MutexGuard<'_, Slot<DB>> {
        self.slot.lock().await
    }

    /// Ends whatever group is open (at close).
    pub async fn close(&self, index: Option<&Arc<Index>>) -> Option<PoolConnection<DB>> {
        let mut slot = self.slot.lock().await;
        Self::end_group(&mut slot, None, index).await;
        slot.conn.take()
    }
}

/// Counts a write waiting for the slot until it has it (or gives up).
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn new(n: &'a AtomicUsize) -> Queued<'a> {
        n.fetch_add(1, Ordering::SeqCst);
        Queued(n)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
pub(super) struct Writer<'s, DB: Database> {
    /// None once handed back or discarded.
    conn: Option<PoolConnection<DB>>,
    /// The held slot, locked for this write: a sound connection goes back
    /// there. None: it goes back to its pool.
    slot: Option<MutexGuard<'s, Slot<DB>>>,
    /// The group this write is part of (its answer waits for the commit).
    group: Option<Member>,
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
            group: None,
            reserve,
            metrics,
            checkpoint: None,
            index: None,
            since: std::time::Instant::now(),
        }
    }

    /// A write on the connection held in `held` (waiting for the writes
    /// queued before it), or, when the slot is empty, on a fresh one from
    /// `pool`; in the open group, or in a new one when other writes wait
    /// (see above), unless `may_group` is false (the write then runs alone
    /// if no group is open). `index` takes the changes (a group's once it
    /// commits).
    pub async fn held(
        held: &'s Arc<Held<DB>>,
        pool: &sqlx::Pool<DB>,
        reserve: &'s Reserve,
        metrics: &'s Arc<crate::metrics::Metrics>,
        index: Option<&'s Arc<Index>>,
        may_group: bool,
    ) -> Result<Writer<'s, DB>> {
        let queued = Queued::new(&held.queued);
        let mut slot = held.slot.lock().await;
        drop(queued);
        let mut conn = match slot.conn.take() {
            Some(conn) => conn,
            None => pool.acquire().await?,
        };
        let group = match &slot.group {
            Some(open) => Some(open.outcome.subscribe()),
            None if may_group && held.queued.load(Ordering::SeqCst) > 0 => {
                let since = std::time::Instant::now();
                if let Err(e) =
                    <DB::TransactionManager as TransactionManager>::begin(&mut conn, None).await
                {
                    let _ = sqlx::Connection::close(conn.detach()).await;
                    return Err(e.into());
                }
                metrics.observe_db_busy(since.elapsed());
                held.groups.fetch_add(1, Ordering::Relaxed);
                let (outcome, member) = watch::channel(None);
                let group = Arc::new(Group { outcome });
                slot.group = Some(group.clone());
                if let Some(index) = index {
                    index.hold();
                }
                // The commit queues for the slot behind the writes that
                // wait for it now: they join the group first.
                let (held, index, metrics) = (held.clone(), index.cloned(), metrics.clone());
                tokio::spawn(async move {
                    let mut slot = held.slot.lock().await;
                    let since = std::time::Instant::now();
                    Held::end_group(&mut slot, Some(&group), index.as_ref()).await;
                    metrics.observe_db_busy(since.elapsed());
                });
                Some(member)
            }
            None => None,
        };
        Ok(Writer {
            conn: Some(conn),
            slot: Some(slot),
            group,
            reserve,
            metrics: Some(metrics),
            checkpoint: None,
            index,
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

    /// Whether the write is part of a group (its transaction is open).
    pub fn in_group(&self) -> bool {
        self.group.is_some()
    }

    /// Gives a sound connection back: to the held slot, or to its pool.
    fn give_back(&mut self, conn: PoolConnection<DB>) {
        match self.slot.as_mut() {
            Some(slot) => slot.conn = Some(conn),
            None => drop(conn),
        }
    }

    /// Fails the group open on this write's connection (which goes away).
    fn fail_group(&mut self, e: &EngineError) {
        if let Some(group) = self.slot.as_mut().and_then(|s| s.group.take()) {
            if let Some(index) = self.index {
                index.discard();
            }
            group.failed(e);
        }
    }

    /// Ends the write with its result: the connection goes back to the
    /// pool, or, after an error that may have left it inconsistent, is
    /// closed. A write of a group is answered once the group commits.
    pub async fn finish<T>(mut self, result: Result<T>) -> Finished<T> {
        let conn = self.conn.take().expect("a writer is finished once");
        match &result {
            Ok(_) => {
                self.give_back(conn);
                if let Some(metrics) = self.metrics {
                    metrics.observe_db_write(self.since.elapsed());
                }
            }
            // A refusal of our own, or a constraint violation (the database
            // undoes the statement only), leaves the connection sound, and
            // the group goes on.
            Err(
                EngineError::NotFound(_)
                | EngineError::AlreadyExists(_)
                | EngineError::FailedPrecondition(_)
                | EngineError::InvalidArgument(_)
                | EngineError::Aborted(_),
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
                self.fail_group(e);
                let _ = sqlx::Connection::close(conn.detach()).await;
            }
        }
        // The next write goes on while this one waits for its group.
        drop(self.slot.take());
        if result.is_ok()
            && let Some(member) = self.group.take()
            && let Outcome::Failed { disk_full, message } = wait(member).await
        {
            return Finished::Lost(match disk_full {
                true => EngineError::ResourceExhausted(message),
                false => EngineError::Internal(message),
            });
        }
        if result.is_ok() {
            if let Some(checkpoint) = self.checkpoint {
                checkpoint.wrote();
            }
            self.reserve.refill_if_released();
        }
        Finished::Done(result)
    }
}

impl<DB: Database> Drop for Writer<'_, DB> {
    /// A write abandoned half-way (its task was cancelled): the connection
    /// may be mid-transaction, so it is not given back (the held slot stays
    /// empty), and the group open on it fails. What it wrote may still
    /// commit (a statement that reached SQLite's thread runs to its end)
    /// without reaching the index: the index is marked stale now, and again
    /// once the connection is closed (the close waits for the statements
    /// it was handed), since a rebuild in between may have read the table
    /// before that commit.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        self.fail_group(&EngineError::Internal(
            "database: a write of its group was abandoned half-way".into(),
        ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    type Db = sqlx::Sqlite;

    /// A writer slot over a table t (x INTEGER UNIQUE) in a file of its own.
    struct Fixture {
        dir: tempfile::TempDir,
        pool: sqlx::Pool<Db>,
        held: Arc<Held<Db>>,
        reserve: Arc<Reserve>,
        metrics: Arc<Metrics>,
    }

    impl Fixture {
        async fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join("w.db"))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
                .unwrap();
            sqlx::query("CREATE TABLE t (x INTEGER UNIQUE)")
                .execute(&pool)
                .await
                .unwrap();
            Fixture {
                dir,
                pool,
                held: Arc::default(),
                reserve: Arc::new(Reserve::none()),
                metrics: Arc::new(Metrics::new()),
            }
        }

        /// A write of x, in a task: whether it was in a group, and how it
        /// ended. With `hang`, it never ends once its row is in.
        fn insert(
            &self,
            x: i64,
            hang: bool,
        ) -> tokio::task::JoinHandle<Result<(bool, Finished<()>)>> {
            let (held, pool, reserve, metrics) = (
                self.held.clone(),
                self.pool.clone(),
                self.reserve.clone(),
                self.metrics.clone(),
            );
            tokio::spawn(async move {
                let mut w = Writer::held(&held, &pool, &reserve, &metrics, None, true).await?;
                let grouped = w.in_group();
                let r = sqlx::query("INSERT INTO t (x) VALUES ($1)")
                    .bind(x)
                    .execute(&mut *w)
                    .await
                    .map(|_| ())
                    .map_err(EngineError::from);
                if hang {
                    std::future::pending::<()>().await;
                }
                Ok((grouped, w.finish(r).await))
            })
        }

        /// Waits until `n` writes wait for the slot.
        async fn queued(&self, n: usize) {
            while self.held.queued.load(Ordering::SeqCst) < n {
                tokio::task::yield_now().await;
            }
        }

        /// The committed rows, read on a connection of their own (the
        /// writer's is kept out of its pool).
        async fn rows(&self) -> Vec<i64> {
            let opts =
                sqlx::sqlite::SqliteConnectOptions::new().filename(self.dir.path().join("w.db"));
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&opts)
                .await
                .unwrap();
            sqlx::query_scalar("SELECT x FROM t ORDER BY x")
                .fetch_all(&mut c)
                .await
                .unwrap()
        }
    }

    /// How a write ended, for a comparison: Ok, the error's text, or lost.
    fn ended(f: Finished<()>) -> String {
        match f {
            Finished::Done(Ok(())) => "ok".into(),
            Finished::Done(Err(EngineError::Aborted(_))) => "aborted".into(),
            Finished::Done(Err(e)) => format!("error: {e}"),
            Finished::Lost(_) => "lost".into(),
        }
    }

    /// Two writes queued while the slot is taken: the first opens a group,
    /// the second joins it. When the second is abandoned half-way (its task
    /// aborted while it holds the writer), the first, whose statement is
    /// done, is lost with the group (`db_write!` runs it again), and
    /// nothing of the group is in the table; the next write commits alone
    /// on a fresh connection.
    #[tokio::test]
    async fn a_write_abandoned_in_a_group_fails_the_group() {
        let f = Fixture::new().await;
        let taken = f.held.lock().await;
        let first = f.insert(1, false);
        f.queued(1).await;
        let second = f.insert(2, true);
        f.queued(2).await;
        drop(taken);
        // The second holds the writer once its row is in (uncommitted).
        loop {
            tokio::task::yield_now().await;
            if f.held.slot.try_lock().is_err() && f.held.queued.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                break;
            }
        }
        second.abort();
        let (grouped, first) = first.await.unwrap().unwrap();
        assert!(grouped);
        assert_eq!(ended(first), "lost");
        assert_eq!(f.held.groups(), 1);
        assert_eq!(f.rows().await, Vec::<i64>::new());
        // Alone (no one waits): no group, committed at once.
        let (grouped, third) = f.insert(3, false).await.unwrap().unwrap();
        assert!(!grouped);
        assert_eq!(ended(third), "ok");
        assert_eq!(f.rows().await, [3]);
    }

    /// A write that breaks a unique constraint inside a group fails alone
    /// (ABORTED): the group commits the others.
    #[tokio::test]
    async fn a_refused_write_in_a_group_fails_alone() {
        let f = Fixture::new().await;
        let taken = f.held.lock().await;
        let tasks: Vec<_> = [1, 2, 1, 3]
            .into_iter()
            .map(|x| f.insert(x, false))
            .collect();
        f.queued(4).await;
        drop(taken);
        let mut answers = Vec::new();
        for t in tasks {
            let (grouped, end) = t.await.unwrap().unwrap();
            answers.push((grouped, ended(end)));
        }
        let grouped = |e: &str| (true, e.to_string());
        assert_eq!(
            answers,
            [
                grouped("ok"),
                grouped("ok"),
                grouped("aborted"),
                grouped("ok")
            ]
        );
        assert_eq!(f.rows().await, [1, 2, 3]);
        assert_eq!(f.held.groups(), 1);
    }
}
