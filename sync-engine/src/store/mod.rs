//! SQLite persistence: the only module that runs SQL. One writer connection
//! (writes queue fairly in the pool instead of spinning in SQLite's busy
//! handler) and a small pool of readers; WAL, foreign keys, busy timeout and
//! migrations. A schema change touches `migrations/` and this folder only.
//!
//! - `containers.rs`: containers and their labels, with the state
//!   transitions as guarded updates rendered from `model::state`'s sets;
//! - `images.rs`: image rows and their names;
//! - `volumes.rs`: named volumes and who uses them.
mod containers;
mod images;
mod volumes;

use crate::error::{EngineError, Result};
use crate::model::State;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
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
        Ok(Store { writer, reader })
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
