//! The PostgreSQL backend (`quiltd --database postgres://...`): the state
//! of many nodes in one server database. The same SQL as SQLite's, compiled
//! here against sqlx's PostgreSQL types; the migrations in
//! `migrations-postgres/` make the same tables and columns as SQLite's
//! (booleans as BOOLEAN, 32-bit values as INTEGER, the rest as BIGINT,
//! because PostgreSQL decodes by exact type). There is no listing index:
//! other nodes write too, so listings are read from the database.
use super::{SqlStore, reserve::Reserve};
use crate::error::{EngineError, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

type Db = sqlx::Postgres;
type Conn = sqlx::PgConnection;
type DbRow = sqlx::postgres::PgRow;

#[path = "sql/containers.rs"]
#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
mod containers;
#[path = "sql/execs.rs"]
#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
mod execs;
#[path = "sql/images.rs"]
#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
mod images;
#[path = "sql/listing.rs"]
#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
mod listing;
#[path = "sql/networks.rs"]
#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
mod networks;
#[path = "sql/nodes.rs"]
#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
mod nodes;
#[path = "sql/userns.rs"]
#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
mod userns;
#[path = "sql/volumes.rs"]
#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
mod volumes;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// What PostgreSQL spells differently from SQLite. JSON is stored as text
/// (as in SQLite) and cast where it is looked into.
mod dialect {
    /// The value at `path` (object keys) inside the JSON text of `col`:
    /// text for a string, JSON text for an array or object, NULL if absent.
    pub fn json_text(col: &str, path: &[&str]) -> String {
        format!("(({col})::jsonb #>> '{{{}}}')", path.join(","))
    }

    /// The rows' values as the text of a JSON array ("[]" without rows).
    pub fn json_array_agg(value: &str) -> String {
        format!("COALESCE(json_agg({value})::text, '[]')")
    }

    /// A FROM item: the elements of the JSON array text in `col`, as
    /// `alias.value`.
    pub fn json_elements(col: &str, alias: &str) -> String {
        format!("json_array_elements(({col})::json) AS {alias}(value)")
    }

    /// True when `needle` occurs in `hay`.
    pub fn contains(hay: &str, needle: &str) -> String {
        format!("strpos({hay}, {needle}) > 0")
    }

    /// The larger of two values.
    pub fn greatest(a: &str, b: &str) -> String {
        format!("GREATEST({a}, {b})")
    }

    /// Locks the rows a SELECT reads until the transaction ends.
    pub const FOR_UPDATE: &str = " FOR UPDATE";
    /// Serialises the allocations (addresses, ports, id ranges) of inserts
    /// made by several nodes at once: each reads what is free, then takes
    /// it, in one transaction holding this lock until it ends.
    pub const ALLOCATION_LOCK: Option<&str> = Some("SELECT pg_advisory_xact_lock(7143001)");
    /// Keeps the rows a SELECT reads from changing until the transaction
    /// ends (others may read them too).
    pub const FOR_SHARE: &str = " FOR SHARE";

    /// The database's clock, in unix nanoseconds (the same for every node,
    /// whatever their own clocks say).
    pub const NOW_NS: &str =
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) * 1000";

    /// A statement that tells the nodes listening on `channel` (delivered
    /// when the transaction commits, in commit order). `payload` is bound
    /// as $1.
    pub fn notify(channel: &str, _payload: &str) -> Option<String> {
        Some(format!("SELECT pg_notify('{channel}', $1)"))
    }
}

/// How long a call waits for a connection before it is answered
/// UNAVAILABLE (the server is down or overloaded).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url` and runs the migrations (under PostgreSQL's advisory
/// lock, so nodes starting together migrate once).
pub(super) async fn connect(url: &str) -> Result<SqlStore<Db>> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| EngineError::InvalidArgument(format!("--database: {e}")))?
        .application_name("quiltd")
        // A node cut off in the middle of a transaction must not hold its
        // locks for hours (until TCP gives up): the server ends such a
        // session, and probes idle connections; a lock that cannot be had
        // within 5 s is an error (UNAVAILABLE) rather than a wait without
        // end (a lease renewal behind an expiry, a write behind a stuck
        // one).
        .options([
            ("idle_in_transaction_session_timeout", "30s"),
            ("lock_timeout", "5s"),
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
        ]);
    let writer = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(opts.clone())
        .await
        .map_err(|e| EngineError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
    MIGRATOR
        .run(&writer)
        .await
        .map_err(|e| EngineError::internal("database migration", e))?;
    let reader = PgPoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(opts.clone())
        .await?;
    let lease = PgPoolOptions::new()
        .max_connections(2)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(opts)
        .await?;
    let store = SqlStore {
        held: None,
        lease: Some(lease),
        writer,
        reader,
        reserve: Reserve::none(),
        index: None,
        checkpoint: None,
        metrics: Default::default(),
        node: Default::default(),
    };
    store.reload_index().await?;
    Ok(store)
}

/// A store in a database of its own on a server of its own, for the tests
/// in `sql/` (run on both backends).
#[cfg(test)]
async fn test_store() -> (quilt_testkit::postgres::Postgres, super::Store) {
    let pg = tokio::task::spawn_blocking(quilt_testkit::postgres::Postgres::start)
        .await
        .unwrap()
        .expect("the store tests need PostgreSQL (scripts/deps.sh)");
    let url = pg.create_database("quilt").expect("create database");
    let s = super::Store::connect_postgres(&url).await.unwrap();
    (pg, s)
}

impl SqlStore<Db> {
    /// The writer for one write (`db_write!`).
    async fn write_conn(&self) -> Result<super::writer::Writer<'_, Db>> {
        self.writer().await
    }
}

/// Notifications from the other nodes (LISTEN), on a connection of its own.
#[derive(Debug)]
pub struct Notifications(sqlx::postgres::PgListener);

impl Notifications {
    pub(super) async fn listen(store: &SqlStore<Db>, channels: &[&str]) -> Result<Notifications> {
        let mut l = sqlx::postgres::PgListener::connect_with(&store.reader).await?;
        l.listen_all(channels.iter().copied()).await?;
        Ok(Notifications(l))
    }

    /// The next notification (channel, payload); None when the connection
    /// was lost (it is made again at the next call): notifications sent
    /// meanwhile are lost, so the caller reads again what they would have
    /// told.
    /// A notification already received and not yet read, if any (never
    /// waits).
    pub fn buffered(&mut self) -> Option<(String, String)> {
        self.0
            .next_buffered()
            .map(|n| (n.channel().to_owned(), n.payload().to_owned()))
    }

    pub async fn next(&mut self) -> Result<Option<(String, String)>> {
        Ok(self
            .0
            .try_recv()
            .await?
            .map(|n| (n.channel().to_owned(), n.payload().to_owned())))
    }
}

/// NOTIFY `channel` with `payload` on a reader connection (delivered at
/// once: it is a transaction of its own).
pub(super) async fn notify(store: &SqlStore<Db>, channel: &str, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&store.reader)
        .await?;
    Ok(())
}

/// Every table's columns, sorted, with whether each may be NULL (the
/// schema test compares the two backends').
#[cfg(test)]
pub(super) async fn schema(
    store: &SqlStore<Db>,
) -> std::collections::BTreeMap<String, Vec<(String, bool)>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&store.reader)
    .await
    .unwrap();
    let mut out: std::collections::BTreeMap<String, Vec<(String, bool)>> = Default::default();
    for (t, c, nullable) in rows {
        out.entry(t).or_default().push((c, nullable == "YES"));
    }
    for cols in out.values_mut() {
        cols.sort();
    }
    out
}

#[cfg(test)]
mod tests {
    /// Labels and namespace slots stored before they moved into the row
    /// (0019, 0020) come through the upgrade.
    #[tokio::test]
    async fn labels_and_slots_move_into_their_rows() {
        let pg = tokio::task::spawn_blocking(quilt_testkit::postgres::Postgres::start)
            .await
            .unwrap()
            .expect("the store tests need PostgreSQL (scripts/deps.sh)");
        let url = pg.create_database("quilt").expect("create database");
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        super::super::write_rows_before_0019(pool, "migrations-postgres", dir.path()).await;
        let s = super::super::Store::connect_postgres(&url).await.unwrap();
        super::super::check_rows_after_0020(&s).await;
    }
}
