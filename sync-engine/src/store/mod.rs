//! Persistence: the only module that runs SQL. Two backends run the same
//! code and the same SQL text: an embedded SQLite file (the default: one
//! host) and a PostgreSQL server (`quiltd --database postgres://...`: many
//! hosts sharing one state). The files in `sql/` are compiled once per
//! backend (`sqlite.rs`, `postgres.rs`), each time against that backend's
//! concrete sqlx types, so neither pays for the other and the compiler
//! checks both; what differs in the SQL itself (JSON functions, a few
//! scalar functions) comes from the backend's `dialect`. `Store` hands each
//! call to the backend it opened.
//!
//! Writes go through one writer connection per daemon (writes queue fairly
//! in the pool; a write that answers Ok was committed). On SQLite a small
//! pool of readers serves reads; WAL, foreign keys, busy timeout. A schema
//! change touches `migrations/` and `migrations-postgres/` (the same
//! versions, the same tables and columns; SQLite's 0022 alone drops two
//! indexes that only PostgreSQL reads) and this folder only.
//!
//! - `sql/containers.rs`: containers and their labels, with the state
//!   transitions as guarded updates rendered from `model::state`'s sets;
//! - `sql/listing.rs`: listing containers, filtered, ordered and paged;
//! - `sql/images.rs`: image rows and their names;
//! - `sql/volumes.rs`: named volumes and who uses them;
//! - `sql/userns.rs`: the host id ranges of private user namespaces;
//! - `sql/networks.rs`: networks, addresses (IPAM), published ports and
//!   the network namespace each container holds;
//! - `sql/execs.rs`: detached execs.
/// One write on the writer connection: `$body` (which may use `?`) runs with
/// `$c: &mut Conn` (the backend's connection) and evaluates to a `Result`.
/// After an error the connection is discarded (see `Writer`). A write whose
/// group of writes failed for another write's sake committed nothing: its
/// body runs once more.
macro_rules! db_write {
    ($store:expr, |$c:ident| $body:expr) => {
        db_write!(@on $store.write_conn(), |$c| $body)
    };
    (@on $writer:expr, |$c:ident| $body:expr) => {{
        let mut again = true;
        loop {
            let mut writer = $writer.await?;
            let result: $crate::error::Result<_> = async {
                let $c: &mut super::Conn = &mut writer;
                $body
            }
            .await;
            match writer.finish(result).await {
                $crate::store::writer::Finished::Done(r) => break r,
                $crate::store::writer::Finished::Lost(e) if again => {
                    tracing::debug!(error = %e, "a write's group failed; writing it again");
                    again = false;
                }
                $crate::store::writer::Finished::Lost(e) => break Err(e),
            }
        }
    }};
}

/// A write of the node lease, as `db_write!`, on the lease's connection.
macro_rules! lease_write {
    ($store:expr, |$c:ident| $body:expr) => {
        db_write!(@on $store.lease_writer(), |$c| $body)
    };
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

mod checkpoint;
mod index;
mod postgres;
mod reserve;
mod sqlite;
mod writer;

use crate::config::UsernsIds;
use crate::error::Result;
use crate::model::{
    Container, ExitInfo, Expired, IdRange, ImageInfo, ListFilter, ListPage, ListQuery, NetSettings,
    NetworkInfo, NodeInfo, NodeSpec, State, Volume,
};
use reserve::Reserve;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

/// A detached exec as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRow {
    pub id: String,
    pub container_id: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub started_at_ns: i64,
    pub helper_pid: i32,
    pub helper_start_time: u64,
    /// (exit code, signal, oom killed, finished at) once recorded.
    pub exit: Option<(i32, i32, bool, i64)>,
}

/// The store of one backend: `DB` is `sqlx::Sqlite` or `sqlx::Postgres`.
/// Its methods are in `sql/`, compiled for each.
#[derive(Debug)]
pub(crate) struct SqlStore<DB: sqlx::Database> {
    writer: sqlx::Pool<DB>,
    /// SQLite: the writer's one connection, kept out of its pool between
    /// writes (see `writer.rs`). None: each write borrows it from the pool.
    held: Option<Arc<writer::Held<DB>>>,
    reader: sqlx::Pool<DB>,
    /// The connection of a node's lease (its renewal, and the expiry of
    /// others'): never queued behind this node's writes, so a busy writer
    /// does not make a healthy node miss its lease. None: the writer
    /// (SQLite, which has one node).
    lease: Option<sqlx::Pool<DB>>,
    /// Disk space held back for the writes that must never be lost (the
    /// SQLite file's disk; PostgreSQL keeps its own).
    reserve: Reserve,
    /// The containers, decoded, in listing order (see `index.rs`): SQLite
    /// only, where this daemon is the only writer. With PostgreSQL other
    /// nodes write too, and listings are read from the database.
    index: Option<Arc<index::Index>>,
    /// Where write latencies are recorded (the engine's metrics).
    metrics: Arc<crate::metrics::Metrics>,
    /// SQLite: the WAL checkpoints, run off the writer (see
    /// `checkpoint.rs`). None: PostgreSQL.
    checkpoint: Option<checkpoint::Checkpointer>,
    /// This node's name in a cluster (set once, before any service runs):
    /// writes of what happened on this host apply to its rows only.
    node: std::sync::OnceLock<String>,
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// This node's name (None on a daemon of its own).
    fn me(&self) -> Option<&str> {
        self.node.get().map(String::as_str)
    }

    /// The writer connection for one write (writes queue for it in turn).
    async fn writer(&self) -> Result<writer::Writer<'_, DB>> {
        match &self.held {
            Some(held) => writer::Writer::held(
                held,
                &self.writer,
                &self.reserve,
                &self.metrics,
                self.index.as_ref(),
                // An overdue checkpoint runs on the writer outside any
                // group (see `SqlStore::write_conn`): no new group until.
                !self.checkpoint.as_ref().is_some_and(|c| c.is_overdue()),
            )
            .await
            .map(|w| w.checkpointed_by(self.checkpoint.as_ref())),
            None => Ok(writer::Writer::new(
                self.writer.acquire().await?,
                &self.reserve,
                Some(&self.metrics),
            )),
        }
    }

    /// The connection for one write of the node lease (see `lease`).
    async fn lease_writer(&self) -> Result<writer::Writer<'_, DB>> {
        match &self.lease {
            Some(pool) => Ok(writer::Writer::new(
                pool.acquire().await?,
                &self.reserve,
                None,
            )),
            None => self.writer().await,
        }
    }
}

#[derive(Debug)]
enum Backend {
    Sqlite(SqlStore<sqlx::Sqlite>),
    Postgres(SqlStore<sqlx::Postgres>),
}

#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and runs
    /// the migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        Ok(Store {
            backend: Arc::new(Backend::Sqlite(sqlite::open(path).await?)),
        })
    }

    /// Connects to the PostgreSQL database at `url` (postgres://...) and
    /// runs the migrations.
    pub async fn connect_postgres(url: &str) -> Result<Store> {
        Ok(Store {
            backend: Arc::new(Backend::Postgres(postgres::connect(url).await?)),
        })
    }

    /// Opens the database a `--database` value names: a postgres:// or
    /// postgresql:// URL, or else the SQLite file at `default_path`.
    pub async fn open_database(database: Option<&str>, default_path: &Path) -> Result<Store> {
        match database {
            Some(url) if is_postgres_url(url) => Store::connect_postgres(url).await,
            Some(other) => {
                let path = other.strip_prefix("sqlite:").unwrap_or(other);
                Store::open(Path::new(path)).await
            }
            None => Store::open(default_path).await,
        }
    }

    /// Makes this store a cluster node's: host writes apply to its rows.
    pub fn set_node(&self, name: &str) {
        let cell = match &*self.backend {
            Backend::Sqlite(b) => &b.node,
            Backend::Postgres(b) => &b.node,
        };
        let _ = cell.set(name.to_owned());
    }

    /// The backend's name ("sqlite" or "postgres").
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// A number that changes whenever a listing could (SQLite's listing
    /// index); a page read at the same version lists the same rows, in
    /// the same order. None: not known (PostgreSQL, or a stale index).
    pub fn list_version(&self) -> Option<u64> {
        match &*self.backend {
            Backend::Sqlite(b) => b.list_version(),
            Backend::Postgres(b) => b.list_version(),
        }
    }

    /// The network mode of container `id` when it is known without a read
    /// (SQLite's listing index; PostgreSQL has none); None otherwise.
    pub fn indexed_network(&self, id: &str) -> Option<crate::model::Network> {
        match &*self.backend {
            Backend::Sqlite(b) => b.indexed_network(id),
            Backend::Postgres(b) => b.indexed_network(id),
        }
    }

    /// The engine's metrics (made with the store, which times its writes).
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        match &*self.backend {
            Backend::Sqlite(b) => &b.metrics,
            Backend::Postgres(b) => &b.metrics,
        }
    }

    /// How many groups of writes the SQLite writer has begun (see
    /// `writer.rs`); 0 on PostgreSQL.
    #[cfg(test)]
    pub fn write_groups(&self) -> u64 {
        match &*self.backend {
            Backend::Sqlite(b) => b.held.as_ref().map_or(0, |h| h.groups()),
            Backend::Postgres(_) => 0,
        }
    }

    pub async fn close(&self) {
        match &*self.backend {
            Backend::Sqlite(b) => {
                b.reader.close().await;
                // The held connection goes back first: close waits for it.
                if let Some(held) = &b.held {
                    drop(held.close(b.index.as_ref()).await);
                }
                // The writer's close is the last: it checkpoints the WAL
                // and removes it.
                if let Some(checkpoint) = &b.checkpoint {
                    checkpoint.close().await;
                }
                b.writer.close().await;
            }
            Backend::Postgres(b) => {
                b.reader.close().await;
                b.writer.close().await;
            }
        }
    }
}

pub(crate) use postgres::Notifications;

/// The channel a node listens on for starts placed on it (the payload is
/// the node's name).
pub(crate) const START_CHANNEL: &str = "quilt_start";
/// The channel of the nodes' container events (JSON payloads).
pub(crate) const EVENT_CHANNEL: &str = "quilt_events";

impl Store {
    /// Listens for the notifications of other nodes on `channels`; None
    /// on SQLite (a daemon of its own).
    pub(crate) async fn listen(&self, channels: &[&str]) -> Result<Option<Notifications>> {
        match &*self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(b) => Ok(Some(Notifications::listen(b, channels).await?)),
        }
    }

    /// Tells the nodes listening on `channel` (nothing on SQLite). Not a
    /// write of state: sent on a reader connection, at once.
    pub(crate) async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        match &*self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(b) => postgres::notify(b, channel, payload).await,
        }
    }
}

/// True for a PostgreSQL connection URL.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The store's calls, each handed to the backend that was opened.
macro_rules! delegate {
    ($( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret> {
                    match &*self.backend {
                        Backend::Sqlite(b) => b.$name($($arg),*).await,
                        Backend::Postgres(b) => b.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    // Containers (sql/containers.rs).
    #[cfg(test)]
    fn insert(&self, c: &Container) -> ();
    /// Inserts the container with its labels, a volume row for each named
    /// volume it mounts, an id range for a private user namespace and, on
    /// a bridge network, its address and published ports, in one
    /// transaction (one statement for the row alone). Returns its id range
    /// and network settings as stored. `slot`: a warm pool's network
    /// namespace, for a container inserted as `starting`.
    fn insert_full(&self, c: &Container, ids: Option<&UsernsIds>, slot: Option<&str>) -> (Option<IdRange>, NetSettings);
    #[cfg(test)]
    fn insert_with_ids(&self, c: &Container, ids: Option<&UsernsIds>) -> Option<IdRange>;
    /// The container with id `id` (SQLite: from the listing index).
    fn get(&self, id: &str) -> Option<Container>;
    /// Finds a container by full id, then exact name, then unique id prefix.
    fn resolve(&self, reference: &str) -> Container;
    /// The same from the listing index (SQLite): GetContainer's read.
    fn resolve_listed(&self, reference: &str) -> Container;
    /// created (queued) -> starting; the row as it now is. None when it is
    /// not queued any more (removed, started by someone else, or its start
    /// cancelled). `slot`: the network namespace it starts in (a warm
    /// pool's), recorded with the change.
    fn set_starting(&self, id: &str, slot: Option<&str>) -> Option<Container>;
    /// created (queued or not) -> starting in `slot`: a warm pool's
    /// container's first start, begun at once. None when not `created`.
    fn begin_claimed_start(&self, id: &str, slot: &str) -> Option<Container>;
    /// Gives `id` the name `name` unless it is being removed. False when it
    /// is (or is gone); ALREADY_EXISTS when another container has the name.
    fn rename(&self, id: &str, name: &str) -> bool;
    /// Cancels a start that is queued but not begun.
    fn cancel_queued_start(&self, id: &str) -> bool;
    /// running <-> paused, once the cgroup is frozen or thawed.
    fn set_paused(&self, id: &str, paused: bool) -> bool;
    /// starting -> running, with the processes that now exist.
    fn set_running(&self, id: &str, pid: i32, shim_pid: i32, shim_start_time: u64, at: i64) -> bool;
    /// Records that the container could not start (or its supervisor was
    /// lost); returns the state now stored.
    fn set_failed(&self, id: &str, exit_code: i32, reason: &str, at: i64) -> Option<State>;
    /// lost -> created (queued) on `node`: a start of a lost container.
    fn replace_lost(&self, id: &str, node: &str) -> bool;
    /// lost -> running: this node came back and found the workload alive.
    fn set_found(&self, id: &str, paused: bool) -> bool;
    /// Records the workload's exit; returns the state now stored.
    fn record_exit(&self, id: &str, exit: &ExitInfo) -> Option<State>;
    /// Back to `created` and queued for another start by the user, if it
    /// is still as `seen` (its state and its last run's start).
    fn reset_for_start(&self, seen: &Container) -> bool;
    /// The same for a restart by the container's policy.
    fn reset_for_restart(&self, id: &str) -> bool;
    /// Records that the user stopped (or killed) the container.
    fn set_manual_stop(&self, id: &str) -> ();
    /// Moves the TTL deadline (and the TTL) of a container.
    fn set_expiry(&self, id: &str, ttl_ns: i64, expires_at: Option<i64>) -> bool;
    /// Records the end of an exec, attach, logs follow or copy.
    fn set_last_activity(&self, id: &str, at: i64) -> ();
    /// Back to `created` (queued) after a start that could not finish.
    fn requeue_interrupted_start(&self, id: &str) -> ();
    /// Persists the intent to remove; returns the state it had and the
    /// row as it now is.
    fn set_removing(&self, id: &str) -> Option<(State, Container)>;
    fn delete(&self, id: &str) -> ();
    #[cfg(test)]
    fn count_rows(&self, table: &str) -> i64;
    #[cfg(test)]
    fn rename_abandoned(&self, id: &str, name: &str) -> ();
    #[cfg(test)]
    fn spoil_index(&self, id: &str) -> ();

    // Listing (sql/listing.rs).
    /// Every container matching `filter`, newest first, fully loaded.
    fn list(&self, filter: &ListFilter) -> Vec<Container>;
    /// How many containers are in each state.
    fn count_by_state(&self) -> HashMap<State, usize>;
    /// One page of a listing (see `ListQuery`).
    fn list_page(&self, q: &ListQuery) -> ListPage;

    // Detached execs (sql/execs.rs).
    fn exec_insert(&self, e: &ExecRow) -> ();
    /// Records how a detached exec ended (once).
    fn exec_finish(&self, id: &str, exit_code: i32, signal: i32, oom_killed: bool, at: i64) -> ();
    fn exec_delete(&self, id: &str) -> ();
    /// Every stored detached exec, oldest first.
    fn execs_detached(&self, node: Option<&str>) -> Vec<ExecRow>;

    // Images (sql/images.rs).
    fn image_add(&self, info: &ImageInfo, layer_sizes: &[u64], name: Option<&str>) -> ();
    fn image_list(&self) -> Vec<ImageInfo>;
    fn image_get(&self, id: &str) -> Option<ImageInfo>;
    /// The id a reference names (a name, an id or a unique id prefix).
    fn image_resolve(&self, reference: &str) -> Option<String>;
    fn image_tag(&self, id: &str, name: &str) -> bool;
    fn image_untag(&self, name: &str) -> bool;
    fn image_users(&self, id: &str) -> Vec<(String, State)>;
    fn known_image_ids(&self) -> HashSet<String>;
    fn image_delete(&self, id: &str) -> Option<Vec<(String, u64)>>;
    fn image_prune(&self) -> (Vec<String>, Vec<(String, u64)>);
    fn layer_usage(&self) -> (u64, u64);
    fn layer_digests(&self) -> HashSet<String>;

    // Networks (sql/networks.rs).
    fn networks(&self) -> Vec<NetworkInfo>;
    fn network(&self, name: &str) -> Option<NetworkInfo>;
    fn network_insert(&self, n: &NetworkInfo) -> ();
    fn network_delete(&self, name: &str) -> ();
    fn egress_set(&self, id: &str, policy: Option<&quilt_network::EgressPolicy>) -> bool;
    fn egress_of(&self, id: &str) -> Option<quilt_network::EgressPolicy>;
    fn slot_set(&self, id: &str, slot: &str) -> ();
    fn slot_taint(&self, id: &str) -> ();
    fn slot_clear(&self, id: &str) -> ();
    /// The network namespace slots held by the containers of `node` (all
    /// with None).
    fn slots(&self, node: Option<&str>) -> Vec<(String, String, bool)>;
    fn slot_tainted(&self, id: &str) -> bool;
    fn joiners(&self, id: &str) -> Vec<String>;
    fn network_members(&self, name: &str) -> Vec<(String, String, Ipv4Addr)>;
    /// (network, id, name, aliases, address) of the containers of `node`
    /// (all with None) on bridge networks.
    fn network_records(&self, node: Option<&str>) -> Vec<(String, String, String, Vec<String>, Ipv4Addr)>;
    /// The containers whose /etc/hosts names those of network `name`.
    fn hosts_followers(&self, name: &str) -> Vec<String>;
    fn network_usage(&self) -> (i64, i64, i64);

    // Nodes of a cluster (sql/nodes.rs).
    /// Registers this node; true when it had been marked down meanwhile.
    fn node_register(&self, n: &NodeSpec, lease_ns: i64) -> bool;
    /// Renews this node's lease: None when it must register again, else
    /// whether it had been marked down meanwhile.
    fn node_renew(&self, name: &str, id: &str, lease_ns: i64) -> Option<bool>;
    /// Every node with its lease and load.
    fn nodes(&self) -> Vec<NodeInfo>;
    /// The node a new container goes to (None: no cluster).
    fn place(&self, wanted: Option<&str>, labels: &BTreeMap<String, String>) -> Option<String>;
    /// The queued starts placed on `node`.
    fn queued_on(&self, node: &str) -> Vec<String>;
    /// Ends the leases that ran out; see `Expired`.
    fn nodes_expire(&self, grace_ns: i64) -> Expired;

    // User namespaces (sql/userns.rs).
    fn userns_reconcile(&self, ids: &UsernsIds) -> (u64, usize);

    // Volumes (sql/volumes.rs).
    fn volume_insert(&self, name: &str, labels: &BTreeMap<String, String>) -> bool;
    fn volumes_ensure(&self, c: &Container) -> ();
    fn volume_names(&self) -> Vec<String>;
    fn volume_get(&self, name: &str) -> Option<Volume>;
    fn volume_delete(&self, name: &str, force: bool) -> bool;
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

/// (Tests of upgrades) The migrations in the crate's `dir` before
/// `version`, copied into `into`: what an older quiltd created.
#[cfg(test)]
async fn migrator_before(dir: &str, version: &str, into: &Path) -> sqlx::migrate::Migrator {
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    for e in std::fs::read_dir(&all).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.as_str() < version {
            std::fs::copy(e.path(), into.join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(into).await.unwrap()
}

/// (Tests of upgrades) Migrates `pool`'s database as a quiltd before 0019
/// did (the crate's migrations in `dir`, copied into `into`), writes
/// `ROWS_BEFORE_0019` and closes the pool.
#[cfg(test)]
async fn write_rows_before_0019<DB>(pool: sqlx::Pool<DB>, dir: &str, into: &Path)
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    migrator_before(dir, "0019", into)
        .await
        .run(&pool)
        .await
        .unwrap();
    for sql in ROWS_BEFORE_0019 {
        sqlx::query::<DB>(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

/// (Tests of upgrades) Rows as a quiltd before migration 0019 wrote
/// them: labels in their own table, a namespace slot in `netns_slots`.
#[cfg(test)]
const ROWS_BEFORE_0019: [&str; 3] = [
    "INSERT INTO containers (id, name, image, command, env, working_dir, hostname, \
     network, state, created_at) \
     VALUES ('c1', 'one', 'default', '[]', '[]', '/', 'one', 'none', 'created', 1), \
     ('c2', 'two', 'default', '[]', '[]', '/', 'two', 'none', 'created', 2)",
    "INSERT INTO labels VALUES ('c1', 'team', 'a'), ('c1', 'say', 'a \"b\"')",
    "INSERT INTO netns_slots (container_id, slot, tainted) VALUES ('c2', 'slot-9', TRUE)",
];

/// (Tests of upgrades) `ROWS_BEFORE_0019` after the upgrade: the labels
/// come back with their row and still filter, the slot and its taint are
/// the row's, and a create after the upgrade fills both.
#[cfg(test)]
async fn check_rows_after_0020(s: &Store) {
    let c1 = s.get("c1").await.unwrap().unwrap();
    let want: BTreeMap<String, String> = [
        ("team".to_string(), "a".to_string()),
        ("say".to_string(), "a \"b\"".to_string()),
    ]
    .into();
    assert_eq!(c1.labels, want);
    assert!(s.get("c2").await.unwrap().unwrap().labels.is_empty());
    let team = ListFilter {
        labels: [("team".to_string(), "a".to_string())].into(),
        ..Default::default()
    };
    let ids = |v: Vec<Container>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(s.list(&team).await.unwrap()), ["c1"]);
    assert_eq!(
        s.slots(None).await.unwrap(),
        [("c2".to_string(), "slot-9".to_string(), true)]
    );
    assert!(s.slot_tainted("c2").await.unwrap());
    let mut spec = crate::model::CreateSpec::new("default");
    spec.name = Some("three".into());
    spec.labels = [("team".to_string(), "a".to_string())].into();
    spec.start = true;
    let c3 = Container::new("c3".into(), spec, "default".into(), Vec::new(), 3);
    s.insert(&c3).await.unwrap();
    assert_eq!(ids(s.list(&team).await.unwrap()), ["c3", "c1"]);
    assert_eq!(s.get("c3").await.unwrap().unwrap().labels, c3.labels);
    assert!(
        s.set_starting("c3", Some("slot-10"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.slots(None).await.unwrap().len(), 2);
}

#[cfg(test)]
mod tests {
    use super::{Backend, Store};

    /// The two backends' migrations make the same tables, with the same
    /// columns, NULL where the other allows NULL.
    #[tokio::test]
    async fn both_backends_have_the_same_tables_and_columns() {
        let dir = tempfile::tempdir().unwrap();
        let lite = Store::open(&dir.path().join("q.db")).await.unwrap();
        let pg = tokio::task::spawn_blocking(quilt_testkit::postgres::Postgres::start)
            .await
            .unwrap()
            .expect("the store tests need PostgreSQL (scripts/deps.sh)");
        let url = pg.create_database("schema").unwrap();
        let server = Store::connect_postgres(&url).await.unwrap();
        let a = match &*lite.backend {
            Backend::Sqlite(b) => super::sqlite::schema(b).await,
            Backend::Postgres(_) => unreachable!(),
        };
        let b = match &*server.backend {
            Backend::Postgres(b) => super::postgres::schema(b).await,
            Backend::Sqlite(_) => unreachable!(),
        };
        assert!(a.contains_key("containers") && a.contains_key("nodes"));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "tables"
        );
        for (table, cols) in &a {
            assert_eq!(cols, &b[table], "columns of {table} (name, nullable)");
        }
    }
}
