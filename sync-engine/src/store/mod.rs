//! SQLite persistence: the only module that runs SQL. One writer connection
//! (writes queue fairly in the pool instead of spinning in SQLite's busy
//! handler) and a small pool of readers; WAL, foreign keys, busy timeout and
//! migrations. A schema change touches `migrations/` and this folder only.
//!
//! - `containers.rs`: containers and their labels, with the state
//!   transitions as guarded updates rendered from `model::state`'s sets;
//! - `listing.rs`: listing containers, filtered, ordered and paged in SQL;
//! - `images.rs`: image rows and their names;
//! - `volumes.rs`: named volumes and who uses them;
//! - `userns.rs`: the host id ranges of private user namespaces;
//! - `networks.rs`: networks, addresses (IPAM), published ports and the
//!   network namespace each container holds.
/// One write on the writer connection: `$body` (which may use `?`) runs with
/// `$c: &mut SqliteConnection` and evaluates to a `Result`. After an error
/// the connection is discarded (see `Writer`).
macro_rules! db_write {
    ($store:expr, |$c:ident| $body:expr) => {{
        let mut writer = $store.writer().await?;
        let result: $crate::error::Result<_> = async {
            let $c: &mut sqlx::SqliteConnection = &mut writer;
            $body
        }
        .await;
        writer.finish(result).await
    }};
}

/// A write that records what already happened (an exit, a failure, a
/// removal): when the disk is full, the space held in reserve is given up
/// and the write is tried once more, so such facts are not lost while new
/// work is refused.
macro_rules! db_write_critical {
    ($store:expr, |$c:ident| $body:expr) => {{
        let mut retried = false;
        loop {
            match db_write!($store, |$c| $body) {
                Err($crate::error::EngineError::ResourceExhausted(e))
                    if !retried && $store.reserve.release().await =>
                {
                    tracing::warn!(error = %e, "disk full: released the reserve to record a state change");
                    retried = true;
                }
                r => break r,
            }
        }
    }};
}

mod containers;
mod execs;
mod images;
mod index;
mod listing;
mod networks;
mod reserve;
mod userns;
mod volumes;
mod writer;

use crate::error::{EngineError, Result};
use crate::model::State;
pub(crate) use execs::ExecRow;
use reserve::Reserve;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;
use writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Disk space held back for the writes that must never be lost.
    reserve: Reserve,
    /// The containers, decoded, in listing order (see `index.rs`).
    index: std::sync::Arc<index::Index>,
    /// Where write latencies are recorded (the engine's metrics).
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Store {
    /// Opens (creating if needed) the database and runs the migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| EngineError::internal("database migration", e))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(2)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.read_only(true))
            .await?;
        let reserve = Reserve::new(path);
        reserve.ensure().await;
        let store = Store {
            writer,
            reader,
            reserve,
            index: Default::default(),
            metrics: Default::default(),
        };
        let all = store.list(&crate::model::ListFilter::default()).await?;
        store.index.load(all);
        Ok(store)
    }

    /// The writer connection for one write (writes queue in the pool).
    async fn writer(&self) -> Result<Writer<'_>> {
        Ok(Writer::new(
            self.writer.acquire().await?,
            &self.reserve,
            &self.metrics,
        ))
    }

    /// The engine's metrics (made with the store, which times its writes).
    pub fn metrics(&self) -> &std::sync::Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// A state set as an SQL list: `'created', 'exited'`.
fn states_sql(states: &[State]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value stored as JSON text.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
