//! The SQLite backend: one file next to the daemon's data. One writer
//! connection, a few readers (WAL), and the in-memory listing index, which
//! the writer keeps in step because this daemon is the only writer.
use super::{SqlStore, index::Index, reserve::Reserve};
use crate::error::{EngineError, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Db = sqlx::Sqlite;
type Conn = sqlx::SqliteConnection;
type DbRow = sqlx::sqlite::SqliteRow;

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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What SQLite spells differently from PostgreSQL.
mod dialect {
    /// The value at `path` (object keys) inside the JSON text of `col`:
    /// text for a string, JSON text for an array or object, NULL if absent.
    pub fn json_text(col: &str, path: &[&str]) -> String {
        format!("json_extract({col}, '$.{}')", path.join("."))
    }

    /// The rows' values as the text of a JSON array ("[]" without rows).
    pub fn json_array_agg(value: &str) -> String {
        format!("json_group_array({value})")
    }

    /// A FROM item: the elements of the JSON array text in `col`, as
    /// `alias.value`.
    pub fn json_elements(col: &str, alias: &str) -> String {
        format!("json_each({col}) {alias}")
    }

    /// True when `needle` occurs in `hay`.
    pub fn contains(hay: &str, needle: &str) -> String {
        format!("instr({hay}, {needle}) > 0")
    }

    /// The larger of two values.
    pub fn greatest(a: &str, b: &str) -> String {
        format!("max({a}, {b})")
    }

    /// Locks the rows a SELECT reads until the transaction ends (SQLite
    /// has one writer: nothing to lock).
    pub const FOR_UPDATE: &str = "";
    /// Serialises the allocations (addresses, ports, id ranges) of
    /// concurrent inserts: SQLite's single writer already does.
    pub const ALLOCATION_LOCK: Option<&str> = None;
    pub const FOR_SHARE: &str = "";

    /// The database's clock, in unix nanoseconds (millisecond precision).
    pub const NOW_NS: &str =
        "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 1000000";

    /// Tells the nodes listening on `channel` (none: SQLite has one node).
    pub fn notify(_channel: &str, _payload: &str) -> Option<String> {
        None
    }
}

impl SqlStore<Db> {
    /// The writer for one write (`db_write!`). When the WAL has grown past
    /// what checkpoints on another connection can start again (see
    /// `checkpoint.rs`), the writer checkpoints it first.
    async fn write_conn(&self) -> Result<super::writer::Writer<'_, Db>> {
        let mut w = self.writer().await?;
        // Not inside a group's open transaction (the next write alone
        // checkpoints).
        if !w.in_group()
            && self.checkpoint.as_ref().is_some_and(|c| c.overdue())
            && let Err(e) = super::checkpoint::passive(&mut w).await
        {
            tracing::warn!(error = %e, "WAL checkpoint on the writer failed");
        }
        Ok(w)
    }
}

/// Opens (creating if needed) the database and runs the migrations.
pub(super) async fn open(path: &Path) -> Result<SqlStore<Db>> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        .pragma("temp_store", "memory")
        // Checkpoints run off the writer (see `checkpoint.rs`).
        .pragma("wal_autocheckpoint", "0");
    // No ping before each use (sqlx's default): on SQLite it is one more
    // round trip to the connection's thread per query, held with the only
    // writer, and a local file's connection has nothing to lose in between;
    // a write that fails closes its connection anyway (see `writer.rs`).
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
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
        .test_before_acquire(false)
        .connect_with(opts.clone().read_only(true))
        .await?;
    let reserve = Reserve::new(path);
    reserve.ensure().await;
    let store = SqlStore {
        held: Some(Arc::default()),
        lease: None,
        writer,
        reader,
        reserve,
        index: Some(Arc::new(Index::default())),
        checkpoint: Some(super::checkpoint::Checkpointer::start(opts)),
        metrics: Default::default(),
        node: Default::default(),
    };
    store.reload_index().await?;
    Ok(store)
}

/// A store in a temp dir, for the tests in `sql/` (run on both backends).
#[cfg(test)]
async fn test_store() -> (tempfile::TempDir, super::Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = super::Store::open(&dir.path().join("q.db")).await.unwrap();
    (dir, s)
}

/// Every table's columns, sorted, with whether each may be NULL (the
/// schema test compares the two backends').
#[cfg(test)]
pub(super) async fn schema(
    store: &SqlStore<Db>,
) -> std::collections::BTreeMap<String, Vec<(String, bool)>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&store.reader)
    .await
    .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for t in tables {
        let mut cols: Vec<(String, bool)> = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT name, \"notnull\", pk FROM pragma_table_info($1)",
        )
        .bind(&t)
        .fetch_all(&store.reader)
        .await
        .unwrap()
        .into_iter()
        // SQLite lets a (non-integer) primary key be NULL unless
        // declared NOT NULL; PostgreSQL never does.
        .map(|(n, notnull, pk)| (n, notnull == 0 && pk == 0))
        .collect();
        cols.sort();
        out.insert(t, cols);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use crate::model::{Lifetime, RestartPolicy, State};

    /// Automatic checkpoints are off; the checkpointer keeps the WAL
    /// bounded even under writes that never pause (without it, the WAL
    /// grew to 40 MB here).
    #[tokio::test]
    async fn the_wal_stays_bounded_without_automatic_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let s = Store::open(&path).await.unwrap();
        let labels: std::collections::BTreeMap<String, String> =
            [("k".to_string(), "v".repeat(2000))].into();
        for i in 0..3000 {
            assert!(s.volume_insert(&format!("vol{i}"), &labels).await.unwrap());
        }
        // The last checkpoint may still be running.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let wal = std::fs::metadata(dir.path().join("q.db-wal"))
            .unwrap()
            .len();
        assert!(wal < 16 * 1024 * 1024, "WAL of {wal} bytes");
        assert_eq!(s.volume_names().await.unwrap().len(), 3000);
        // Closed, the checkpointer's connection first: the writer's close
        // checkpoints the WAL and removes it, and the rows are all there.
        s.close().await;
        drop(s);
        // The last connection's thread may still be closing it (seen under
        // a loaded test run): the WAL must go, if not at once.
        let wal = dir.path().join("q.db-wal");
        let t0 = std::time::Instant::now();
        while wal.exists() && t0.elapsed() < std::time::Duration::from_secs(5) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!wal.exists(), "WAL left after close");
        let s = Store::open(&path).await.unwrap();
        assert_eq!(s.volume_names().await.unwrap().len(), 3000);
    }

    /// Labels and namespace slots stored before they moved into the row
    /// (0019, 0020) come through the upgrade.
    #[tokio::test]
    async fn labels_and_slots_move_into_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old-migrations");
        std::fs::create_dir(&old).unwrap();
        let db = dir.path().join("q.db");
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        super::super::write_rows_before_0019(pool, "migrations", &old).await;
        let s = Store::open(&db).await.unwrap();
        super::super::check_rows_after_0020(&s).await;
    }

    /// A database made by the migrations before the paused state (0009
    /// rebuilds the containers table) keeps its containers, labels, execs
    /// and id ranges, and their cascades, through the upgrade.
    #[tokio::test]
    async fn upgrade_keeps_rows_and_cascades() {
        use sqlx::sqlite::SqliteConnectOptions;
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old-migrations");
        std::fs::create_dir(&old).unwrap();
        let db = dir.path().join("q.db");
        let opts = SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(opts.clone()).await.unwrap();
        super::super::migrator_before("migrations", "0009", &old)
            .await
            .run(&pool)
            .await
            .unwrap();
        for sql in [
            "INSERT INTO containers (id, name, image, command, env, working_dir, hostname, \
             network, state, created_at, pid) \
             VALUES ('c1', 'one', 'default', '[\"sleep\"]', '[]', '/', 'one', 'none', 'running', 1, 42)",
            "INSERT INTO labels VALUES ('c1', 'team', 'a')",
            "INSERT INTO execs (id, container_id, command, started_at, helper_pid, \
             helper_start_time) VALUES ('e1', 'c1', '[]', 1, 2, 3)",
            "INSERT INTO userns_ranges VALUES ('c1', 100000, 65536)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let s = Store::open(&db).await.unwrap();
        let c = s.get("c1").await.unwrap().unwrap();
        assert_eq!((c.state, c.pid), (State::Running, Some(42)));
        assert_eq!(c.labels.get("team").map(String::as_str), Some("a"));
        let team = crate::model::ListFilter {
            labels: [("team".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(s.list(&team).await.unwrap().len(), 1);
        assert_eq!(c.id_range.map(|r| r.host_id), Some(100_000));
        assert_eq!(c.restart, RestartPolicy::No);
        assert_eq!(c.lifetime, Lifetime::default());
        assert!(s.set_paused("c1", true).await.unwrap(), "paused refused");
        assert_eq!(s.execs_detached(None).await.unwrap().len(), 1);
        // The references point at the new table: a delete still cascades.
        s.delete("c1").await.unwrap();
        s.close().await;
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        for t in ["labels", "execs", "userns_ranges"] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(n, 0, "{t}");
        }
    }
}
