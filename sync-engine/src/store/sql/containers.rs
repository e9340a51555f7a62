//! The containers table and its labels. Every state transition is one
//! guarded `UPDATE ... WHERE state IN (...)`, its set taken from
//! `model::state::from`, so a transition that lost a race changes nothing.
use super::{Conn, DbRow, dialect, volumes};
use crate::config::UsernsIds;
use crate::error::{EngineError, Result};
use crate::model::state::from;
use crate::model::{
    Container, ExitInfo, IdRange, IdleAction, Lifetime, ListView, Network, RestartPolicy, State,
    Stdio, UsernsMode,
};
use crate::store::{SqlStore, json, states_sql};
use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Every column of a container row (`c`), its labels as a JSON object.
pub(super) static COLUMNS: &str = "c.id, c.name, c.image, c.command, c.env, c.working_dir, c.hostname, \
    c.memory_mb, c.cpus, c.pids_limit, c.network, c.auto_remove, c.autostart, c.init, c.state, c.pid, \
    c.shim_pid, c.shim_start_time, c.exit_code, c.exit_signal, c.oom_killed, c.failure_reason, \
    c.created_at, c.started_at, c.finished_at, c.mounts, c.security, c.disk_bytes, c.net, c.egress, \
    c.restart_policy, c.restart_max, c.restart_count, c.manual_stop, \
    c.ttl_ns, c.expires_at, c.idle_timeout_ns, c.idle_action, c.last_activity, c.stdio, c.node, c.node_labels, \
    c.labels, \
    (SELECT u.host_id FROM userns_ranges u WHERE u.container_id = c.id) AS userns_host_id, \
    (SELECT u.size FROM userns_ranges u WHERE u.container_id = c.id) AS userns_size";

/// `COLUMNS` for an `UPDATE containers ... RETURNING`, which names the
/// table, not an alias: the row as the statement left it, in the same
/// round trip as the change.
static RETURNED: LazyLock<String> = LazyLock::new(|| {
    format!(" {}", COLUMNS)
        .replace(" c.", " containers.")
        .trim_start()
        .to_owned()
});

/// `sql` (an UPDATE of one container) returning its whole row.
fn returning_row(sql: String) -> String {
    format!("{sql} RETURNING {}", *RETURNED)
}

/// The columns of a new row, bound by `bind_new_row` as $1..$31. Its
/// labels go in as a JSON object; the row's INSERT trigger puts them in
/// the labels table too (the index of label filters), in the same
/// statement. `netns_slot` is set for a warm pool's container whose start
/// begins with its create (inserted as `starting`).
const NEW_ROW_COLUMNS: &str = "id, name, image, command, env, working_dir, hostname, \
    memory_mb, cpus, pids_limit, network, auto_remove, autostart, init, state, created_at, mounts, \
    security, disk_bytes, net, restart_policy, restart_max, ttl_ns, idle_timeout_ns, \
    idle_action, egress, stdio, node, node_labels, labels, netns_slot";
const NEW_ROW_VALUES: &str = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
    $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31";

/// The INSERT of a new row.
static INSERT_ROW: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO containers ({NEW_ROW_COLUMNS}) VALUES ({NEW_ROW_VALUES})")
});

/// The same, inserting nothing unless its image ($3) is in the store.
static INSERT_ROW_IF_IMAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO containers ({NEW_ROW_COLUMNS}) SELECT {NEW_ROW_VALUES} \
         WHERE EXISTS (SELECT 1 FROM images WHERE id = $3)"
    )
});

/// `sql` (`INSERT_ROW` or `INSERT_ROW_IF_IMAGE`) with the values of `c`,
/// and the network namespace `slot` it starts in (see `NEW_ROW_COLUMNS`).
fn bind_new_row<'q>(
    sql: &'q str,
    c: &'q Container,
    slot: Option<&'q str>,
) -> sqlx::query::Query<'q, super::Db, <super::Db as sqlx::Database>::Arguments<'q>> {
    sqlx::query(sql)
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.image)
        .bind(json(&c.command))
        .bind(json(&c.env))
        .bind(&c.working_dir)
        .bind(&c.hostname)
        .bind(c.memory_mb)
        .bind(c.cpus)
        .bind(c.pids_limit)
        .bind(c.network.column())
        .bind(c.auto_remove)
        .bind(c.autostart)
        .bind(c.init)
        .bind(c.state.as_str())
        .bind(c.created_at_ns)
        .bind(json(&c.mounts))
        .bind(json(&c.security))
        .bind(i64::try_from(c.disk_bytes).unwrap_or(i64::MAX))
        .bind(json(&c.net))
        .bind(c.restart.name())
        .bind(i64::from(c.restart.max()))
        .bind(c.lifetime.ttl_ns)
        .bind(c.lifetime.idle_timeout_ns)
        .bind(c.lifetime.idle_action.as_str())
        .bind(c.net.egress.as_ref().map(json))
        .bind((c.stdio != Stdio::default()).then(|| json(&c.stdio)))
        .bind(&c.node)
        .bind((!c.node_labels.is_empty()).then(|| json(&c.node_labels)))
        .bind((!c.labels.is_empty()).then(|| json(&c.labels)))
        .bind(slot)
}

/// Whether a new container's row (with its labels) is all its create
/// writes: no volumes, address, published ports, id range or node to
/// take, check or record with it in one transaction.
/// The answer to an id prefix that names more than one container.
fn ambiguous(reference: &str) -> EngineError {
    EngineError::InvalidArgument(format!(
        "container id prefix {} is ambiguous",
        crate::validate::echo(reference)
    ))
}

fn row_only(c: &Container) -> bool {
    c.node.is_none()
        && c.network != Network::Bridge
        && c.net.ports.is_empty()
        && c.security.userns != UsernsMode::Private
        && !c.uses_volumes()
}

/// Inserts `c`'s row. An image of the store must still be there, checked
/// by the same statement: `image rm` checks for users on the same (single)
/// writer, so it cannot slip in between.
async fn insert_row(conn: &mut Conn, c: &Container, slot: Option<&str>) -> Result<()> {
    let sql = match c.image.starts_with("sha256:") {
        true => &*INSERT_ROW_IF_IMAGE,
        false => &*INSERT_ROW,
    };
    let inserted = bind_new_row(sql, c, slot)
        .execute(&mut *conn)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => EngineError::AlreadyExists(
                format!("the container name {:?} is already in use", c.name),
            ),
            _ => e.into(),
        })?;
    if inserted.rows_affected() == 0 {
        return Err(EngineError::NotFound(format!(
            "no such image: {} (removed meanwhile)",
            c.image
        )));
    }
    Ok(())
}

impl SqlStore<super::Db> {
    /// Inserts the container with its labels, as `insert_with_ids` does
    /// (no id range for a private user namespace: tests of the rest).
    #[cfg(test)]
    pub async fn insert(&self, c: &Container) -> Result<()> {
        self.insert_with_ids(c, None).await.map(drop)
    }

    /// Inserts the container as `insert_with_ids` does and, on a bridge
    /// network, gives it an address there and records its published ports,
    /// in the same transaction. Returns its id range and its network
    /// settings as stored. `slot`: the warm pool's network namespace of a
    /// container inserted as `starting` (see `NEW_ROW_COLUMNS`).
    pub async fn insert_full(
        &self,
        c: &Container,
        ids: Option<&UsernsIds>,
        slot: Option<&str>,
    ) -> Result<(Option<IdRange>, crate::model::NetSettings)> {
        self.insert_tx(c, ids, slot).await
    }

    /// Inserts the container with its labels and, for a private user
    /// namespace, gives it an id range of `ids`: one statement for a row
    /// alone (`row_only`), else one transaction. Returns the range given.
    #[cfg(test)]
    pub async fn insert_with_ids(
        &self,
        c: &Container,
        ids: Option<&UsernsIds>,
    ) -> Result<Option<IdRange>> {
        self.insert_tx(c, ids, None).await.map(|(r, _)| r)
    }

    async fn insert_tx(
        &self,
        c: &Container,
        ids: Option<&UsernsIds>,
        slot: Option<&str>,
    ) -> Result<(Option<IdRange>, crate::model::NetSettings)> {
        if row_only(c) {
            return self.insert_row_only(c, slot).await;
        }
        db_write!(self, |conn| {
            let mut tx = conn.begin().await?;
            // Addresses, ports and id ranges are read free, then taken: one
            // insert at a time across the cluster.
            if (c.network == Network::Bridge
                || !c.net.ports.is_empty()
                || c.security.userns == UsernsMode::Private)
                && let Some(sql) = dialect::ALLOCATION_LOCK
            {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            // Placed on a node of a cluster: that node is still live (its
            // row is locked until the commit, so it cannot expire between).
            if let Some(node) = &c.node {
                let sql = format!(
                    "SELECT n.name FROM nodes n WHERE n.name = $1 AND n.state = 'up' \
                     AND n.lease_until > {}{}",
                    dialect::NOW_NS,
                    dialect::FOR_SHARE
                );
                let live = sqlx::query(&sql)
                    .bind(node)
                    .fetch_optional(&mut *tx)
                    .await?;
                if live.is_none() {
                    return Err(EngineError::Unavailable(format!(
                        "node {node} went down while the container was placed on it: try again"
                    )));
                }
            }
            insert_row(&mut tx, c, slot).await?;
            volumes::insert_used(&mut tx, c).await?;
            let range = match (c.security.userns, ids) {
                (UsernsMode::Private, Some(ids)) => {
                    Some(super::userns::allocate(&mut tx, &c.id, ids).await?)
                }
                (UsernsMode::Private, None) => {
                    return Err(EngineError::Internal(
                        "a private user namespace without id ranges to take from".into(),
                    ));
                }
                _ => None,
            };
            let net = super::networks::attach_in_tx(&mut tx, c).await?;
            // A start placed on another node: it hears of it when (and
            // only if) this commits.
            if let Some(node) = c
                .node
                .as_deref()
                .filter(|n| c.autostart && Some(*n) != self.me())
                && let Some(sql) = dialect::notify(crate::store::START_CHANNEL, node)
            {
                sqlx::query(&sql).bind(node).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            self.index_inserted(c, range, &net);
            Ok((range, net))
        })
    }

    /// A new row alone (`row_only`): one statement, atomic by itself, where
    /// a transaction costs two more round trips to the database (BEGIN and
    /// COMMIT) on every create.
    async fn insert_row_only(
        &self,
        c: &Container,
        slot: Option<&str>,
    ) -> Result<(Option<IdRange>, crate::model::NetSettings)> {
        db_write!(self, |conn| {
            insert_row(conn, c, slot).await?;
            self.index_inserted(c, None, &c.net);
            Ok((None, c.net.clone()))
        })
    }

    /// The index takes a row just inserted.
    fn index_inserted(
        &self,
        c: &Container,
        range: Option<IdRange>,
        net: &crate::model::NetSettings,
    ) {
        if let Some(index) = &self.index {
            index.put(Container {
                id_range: range,
                net: net.clone(),
                ..c.clone()
            });
        }
    }

    /// After a change of row `id` (on the writer, so in commit order): its
    /// index entry from the row as committed. A failed read marks the index
    /// stale (it is rebuilt before its next use) instead of failing a write
    /// that happened.
    pub(super) async fn refresh(&self, conn: &mut Conn, id: &str) {
        if self.index.is_some() {
            let _ = self.reread(conn, id).await;
        }
    }

    /// Row `id` as just written, read on the writer; the index (if any)
    /// takes it too, or is marked stale when it cannot be read.
    async fn reread(&self, conn: &mut Conn, id: &str) -> Result<Option<Container>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {} FROM containers c WHERE c.id = $1", COLUMNS));
        let rows = sqlx::query(&SQL).bind(id).fetch_all(&mut *conn).await;
        let row = self.returned(id, rows.map_err(Into::into));
        if let (Ok(None), Some(index)) = (&row, &self.index) {
            // Gone.
            index.remove(id);
        }
        row
    }

    /// The row of `id` an UPDATE ... RETURNING (`returning_row`) or a
    /// re-read gave back, decoded; the index (if any) takes it too, or is
    /// marked stale when it cannot be decoded. None: no row (an UPDATE
    /// that changed nothing leaves the index as it is).
    fn returned(&self, id: &str, rows: Result<Vec<DbRow>>) -> Result<Option<Container>> {
        let row = rows.and_then(|rows| {
            rows.first()
                .map(|r| from_row(r, ListView::Full))
                .transpose()
        });
        if let Some(index) = &self.index {
            match &row {
                Ok(Some(c)) => index.put(c.clone()),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "cannot refresh a container's index entry");
                    index.mark_stale();
                }
            }
        }
        row
    }

    /// The state an UPDATE ... RETURNING (`returning_row`) left the row
    /// in (none: it changed nothing); the index takes the row.
    fn state_returned(&self, id: &str, rows: Vec<DbRow>) -> Result<Option<String>> {
        let state = rows.first().map(|r| r.try_get("state")).transpose();
        // A row that cannot be decoded only makes the index stale.
        let _ = self.returned(id, Ok(rows));
        Ok(state?)
    }

    /// The listing index's version (None: no index, or a stale one).
    pub fn list_version(&self) -> Option<u64> {
        self.index.as_ref()?.version()
    }

    /// (SQLite) The network mode of `id` as the listing index has it,
    /// without a read: None without an index, with a stale one, or for no
    /// such row.
    pub fn indexed_network(&self, id: &str) -> Option<crate::model::Network> {
        let index = self.index.as_ref()?;
        if index.is_stale() {
            return None;
        }
        index.get(id).map(|c| c.network)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Container>> {
        // SQLite: from the index, which holds every row as committed.
        if let Some(index) = self.fresh_index().await? {
            return Ok(index.get(id).map(|c| Container::clone(&c)));
        }
        let sql = format!("SELECT {} FROM containers c WHERE c.id = $1", COLUMNS);
        // fetch_all, not fetch_optional: a statement stepped to its first row
        // and not run to completion keeps that reader's WAL snapshot open,
        // and its next query would not see rows committed since.
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.reader).await?;
        rows.first()
            .map(|r| from_row(r, ListView::Full))
            .transpose()
    }

    /// Finds a container by full id, then exact name, then unique id prefix.
    pub async fn resolve(&self, reference: &str) -> Result<Container> {
        if reference.is_empty() {
            return Err(EngineError::InvalidArgument(
                "a container id or name is required".into(),
            ));
        }
        let sql = format!(
            "SELECT {} FROM containers c WHERE c.id = $1 OR c.name = $1",
            COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(reference)
            .fetch_all(&self.reader)
            .await?;
        if let Some(r) = rows
            .iter()
            .find(|r| r.get::<String, _>("id") == reference)
            .or(rows.first())
        {
            return from_row(r, ListView::Full);
        }
        let is_hex = reference
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        // (The listing index's `resolve` follows the same rules.)
        if is_hex {
            // Hex ids sort below 'g', so [prefix, prefix+'g') is the prefix range.
            let sql = format!(
                "SELECT {} FROM containers c WHERE c.id >= $1 AND c.id < $2 LIMIT 2",
                COLUMNS
            );
            let rows = sqlx::query(&sql)
                .bind(reference)
                .bind(format!("{reference}g"))
                .fetch_all(&self.reader)
                .await?;
            match rows.len() {
                1 => return from_row(&rows[0], ListView::Full),
                0 => {}
                _ => return Err(ambiguous(reference)),
            }
        }
        Err(EngineError::no_such_container(reference))
    }

    /// `resolve`, from the listing index where there is one (SQLite):
    /// what GetContainer answers, as ListContainers does, without a round
    /// trip to a reader's thread and a row decoded. From the table on
    /// PostgreSQL (other nodes write too).
    pub async fn resolve_listed(&self, reference: &str) -> Result<Container> {
        use super::super::index::Resolved;
        if reference.is_empty() {
            return self.resolve(reference).await;
        }
        let Some(index) = self.fresh_index().await? else {
            return self.resolve(reference).await;
        };
        match index.resolve(reference) {
            Resolved::One(c) => Ok(Container::clone(&c)),
            Resolved::Ambiguous => Err(ambiguous(reference)),
            Resolved::None => Err(EngineError::no_such_container(reference)),
        }
    }

    /// created (queued) -> starting; the row as it now is (read on the
    /// writer: the starter needs no read of its own). None when the row is
    /// not queued any more (removed, started by someone else, or its start
    /// cancelled by `stop`). With `slot` (a warm pool's container), the
    /// network namespace it starts in is recorded by the same statement,
    /// as `slot_set` would.
    pub async fn set_starting(&self, id: &str, slot: Option<&str>) -> Result<Option<Container>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            returning_row(format!(
                "UPDATE containers SET state = '{}', autostart = FALSE, \
                 netns_slot = COALESCE($3, netns_slot), \
                 netns_tainted = CASE WHEN $3 IS NULL OR netns_slot = $3 \
                 THEN netns_tainted ELSE FALSE END \
                 WHERE id = $1 AND state IN ({}) AND autostart = TRUE{}",
                State::Starting.as_str(),
                states_sql(from::BEGIN_START),
                mine(2)
            ))
        });
        self.to_starting(&SQL, id, slot).await
    }

    /// A change to `starting` (`sql`: $1 the id, $2 this node, $3 the
    /// namespace slot), returning the row as it now is.
    async fn to_starting(
        &self,
        sql: &str,
        id: &str,
        slot: Option<&str>,
    ) -> Result<Option<Container>> {
        // fetch_all for UPDATE ... RETURNING (see `set_failed`).
        db_write!(self, |c| {
            let rows = sqlx::query(sql)
                .bind(id)
                .bind(self.me())
                .bind(slot)
                .fetch_all(&mut *c)
                .await?;
            self.returned(id, Ok(rows))
        })
    }

    /// created (queued or not) -> starting, recording the network namespace
    /// `slot` it starts in: the first start of a warm pool's container,
    /// begun by StartContainer at once (no turn in the queue), as
    /// `reset_for_start` then `set_starting` would do in two. A claimed
    /// container never ran, so it has no run to forget and no namespace yet.
    /// The row as it now is; None when it is not `created` any more.
    pub async fn begin_claimed_start(&self, id: &str, slot: &str) -> Result<Option<Container>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            returning_row(format!(
                "UPDATE containers SET state = '{}', autostart = FALSE, manual_stop = FALSE, \
                 restart_count = 0, expires_at = NULL, netns_slot = $3, netns_tainted = FALSE \
                 WHERE id = $1 AND state IN ({}) AND netns_slot IS NULL{}",
                State::Starting.as_str(),
                states_sql(from::BEGIN_START),
                mine(2)
            ))
        });
        self.to_starting(&SQL, id, Some(slot)).await
    }

    /// Gives `id` the name `name` unless it is being removed. False when it
    /// is (or is gone); ALREADY_EXISTS when another container has the name.
    pub async fn rename(&self, id: &str, name: &str) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET name = $1 WHERE id = $2 AND state <> '{}'",
                State::Removing.as_str()
            )
        });
        let r = db_write!(self, |c| {
            let r = sqlx::query(&SQL).bind(name).bind(id).execute(&mut *c).await;
            match r {
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    Err(EngineError::AlreadyExists(format!(
                        "the container name {name:?} is already in use"
                    )))
                }
                Err(e) => Err(e.into()),
                Ok(r) => {
                    if r.rows_affected() > 0 {
                        self.refresh(c, id).await;
                    }
                    Ok(r)
                }
            }
        })?;
        Ok(r.rows_affected() == 1)
    }

    /// Cancels a start that is queued but not begun. False when there is
    /// none (never requested, or the starter got there first).
    pub async fn cancel_queued_start(&self, id: &str) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET autostart = FALSE \
                 WHERE id = $1 AND state IN ({}) AND autostart = TRUE",
                states_sql(from::CANCEL_START)
            )
        });
        let r = db_write!(self, |c| {
            let r = sqlx::query(&SQL).bind(id).execute(&mut *c).await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(r)
        })?;
        Ok(r.rows_affected() == 1)
    }

    /// running -> paused (`paused`), or paused -> running, once the cgroup
    /// is frozen or thawed. False when the row was not in the source state
    /// (it exited, or is being removed, meanwhile).
    pub async fn set_paused(&self, id: &str, paused: bool) -> Result<bool> {
        static PAUSE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET state = '{}' WHERE id = $1 AND state IN ({}){}",
                State::Paused.as_str(),
                states_sql(from::SET_PAUSED),
                mine(2)
            )
        });
        static UNPAUSE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET state = '{}' WHERE id = $1 AND state IN ({}){}",
                State::Running.as_str(),
                states_sql(from::SET_UNPAUSED),
                mine(2)
            )
        });
        let sql: &str = if paused { &PAUSE } else { &UNPAUSE };
        // A thaw has happened: record it even on a full disk.
        let r = db_write_critical!(self, |c| {
            let r = sqlx::query(sql)
                .bind(id)
                .bind(self.me())
                .execute(&mut *c)
                .await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(r)
        })?;
        Ok(r.rows_affected() == 1)
    }

    /// starting -> running, with the processes that now exist.
    pub async fn set_running(
        &self,
        id: &str,
        pid: i32,
        shim_pid: i32,
        shim_start_time: u64,
        at: i64,
    ) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            returning_row(format!(
                "UPDATE containers SET state = '{}', pid = $1, shim_pid = $2, shim_start_time = $3, \
                 started_at = $4, last_activity = $5, \
                 expires_at = CASE WHEN ttl_ns > 0 AND expires_at IS NULL THEN $6 + ttl_ns \
                 ELSE expires_at END \
                 WHERE id = $7 AND state IN ({}){}",
                State::Running.as_str(),
                states_sql(from::SET_RUNNING),
                mine(8)
            ))
        });
        // fetch_all for UPDATE ... RETURNING (see `set_failed`).
        let changed = db_write!(self, |c| {
            let rows = sqlx::query(&SQL)
                .bind(pid)
                .bind(shim_pid)
                .bind(shim_start_time as i64)
                .bind(at)
                .bind(at)
                .bind(at)
                .bind(id)
                .bind(self.me())
                .fetch_all(&mut *c)
                .await?;
            let changed = !rows.is_empty();
            // A row that cannot be decoded only makes the index stale.
            let _ = self.returned(id, Ok(rows));
            Ok(changed)
        })?;
        Ok(changed)
    }

    /// Records that the container could not start (or its supervisor was
    /// lost); returns the state now stored (`failed`, or `removing` during a
    /// removal), None when the row had already finished.
    pub async fn set_failed(
        &self,
        id: &str,
        exit_code: i32,
        reason: &str,
        at: i64,
    ) -> Result<Option<State>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            returning_row(format!(
                "UPDATE containers SET state = {}, \
                 exit_code = $1, exit_signal = 0, failure_reason = $2, finished_at = $3 \
                 WHERE id = $4 AND state IN ({}){}",
                keep_removing(State::Failed),
                states_sql(from::SET_FAILED),
                mine(5)
            ))
        });
        // fetch_all, never fetch_optional, for UPDATE ... RETURNING: the
        // implicit transaction commits when the statement runs to its end,
        // and a commit that fails there (a full disk) is reported only to a
        // caller that steps that far; one that stops at the first row would
        // take a rolled-back change for a recorded one.
        let state: Option<String> = db_write_critical!(self, |c| {
            let rows = sqlx::query(&SQL)
                .bind(exit_code)
                .bind(reason)
                .bind(at)
                .bind(id)
                .bind(self.me())
                .fetch_all(&mut *c)
                .await?;
            self.state_returned(id, rows)
        })?;
        Ok(state.as_deref().and_then(State::parse))
    }

    /// lost -> created (queued) on `node`: a start of a container whose
    /// node went down. False when it is not lost any more.
    pub async fn replace_lost(&self, id: &str, node: &str) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET node = $2, state = '{}', {RESET}, restart_count = 0, \
                 manual_stop = FALSE, expires_at = NULL WHERE id = $1 AND state = '{}'",
                State::Created.as_str(),
                State::Lost.as_str()
            )
        });
        let r = db_write!(self, |c| {
            let mut tx = c.begin().await?;
            let r = sqlx::query(&SQL)
                .bind(id)
                .bind(node)
                .execute(&mut *tx)
                .await?;
            // Another node hears of it when (and only if) this commits.
            if r.rows_affected() > 0
                && Some(node) != self.me()
                && let Some(sql) = dialect::notify(crate::store::START_CHANNEL, node)
            {
                sqlx::query(&sql).bind(node).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(r)
        })?;
        Ok(r.rows_affected() == 1)
    }

    /// lost -> running (or paused: its cgroup is frozen): this node came
    /// back and found the workload alive.
    pub async fn set_found(&self, id: &str, paused: bool) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET state = $2, failure_reason = NULL \
                 WHERE id = $1 AND state IN ({}){}",
                states_sql(from::FOUND),
                mine(3)
            )
        });
        let state = if paused {
            State::Paused
        } else {
            State::Running
        };
        let r = db_write_critical!(self, |c| {
            let r = sqlx::query(&SQL)
                .bind(id)
                .bind(state.as_str())
                .bind(self.me())
                .execute(&mut *c)
                .await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(r)
        })?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the workload's exit; returns the state now stored (`exited`,
    /// or `removing` during a removal), None when there was nothing to
    /// record (already recorded, or the row never ran).
    pub async fn record_exit(&self, id: &str, exit: &ExitInfo) -> Result<Option<State>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            returning_row(format!(
                "UPDATE containers SET state = {}, \
                 exit_code = $1, exit_signal = $2, oom_killed = $3, finished_at = $4 \
                 WHERE id = $5 AND state IN ({}) AND exit_code IS NULL{}",
                keep_removing(State::Exited),
                states_sql(from::RECORD_EXIT),
                mine(6)
            ))
        });
        // fetch_all, never fetch_optional, for UPDATE ... RETURNING: the
        // implicit transaction commits when the statement runs to its end,
        // and a commit that fails there (a full disk) is reported only to a
        // caller that steps that far; one that stops at the first row would
        // take a rolled-back change for a recorded one.
        let state: Option<String> = db_write_critical!(self, |c| {
            let rows = sqlx::query(&SQL)
                .bind(exit.exit_code)
                .bind(exit.signal)
                .bind(exit.oom_killed)
                .bind(exit.finished_at_ns)
                .bind(id)
                .bind(self.me())
                .fetch_all(&mut *c)
                .await?;
            self.state_returned(id, rows)
        })?;
        Ok(state.as_deref().and_then(State::parse))
    }

    /// A stored container back to `created` and queued, ready for another
    /// start by the user: its last run's processes and exit are forgotten,
    /// and so are its restart count and a stop by the user. Only while it
    /// is as `seen` (its state and its last run's start): a call that
    /// looked before another call started it (a start that may have ended
    /// already, with a workload that exits at once) changes nothing.
    pub async fn reset_for_start(&self, seen: &Container) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET state = '{}', {RESET}, restart_count = 0, manual_stop = FALSE, \
                 expires_at = NULL \
                 WHERE id = $1 AND state IN ({}) AND state = $3 AND COALESCE(started_at, 0) = $4{}",
                State::Created.as_str(),
                states_sql(from::RESET_FOR_START),
                mine(2)
            )
        });
        let as_seen = (seen.state.as_str(), seen.started_at_ns.unwrap_or(0));
        self.reset_with(&SQL, &seen.id, Some(as_seen)).await
    }

    /// The same for a restart by the container's policy: its restart count
    /// goes up. Nothing happens (false) when the user stopped it meanwhile,
    /// or it is not finished any more (started, or being removed).
    pub async fn reset_for_restart(&self, id: &str) -> Result<bool> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET state = '{}', {RESET}, restart_count = restart_count + 1 \
                 WHERE id = $1 AND state IN ({}) AND manual_stop = FALSE{}",
                State::Created.as_str(),
                states_sql(from::RESTART),
                mine(2)
            )
        });
        self.reset_with(&SQL, id, None).await
    }

    /// Records that the user stopped (or killed) the container, so that its
    /// restart policy leaves it stopped.
    pub async fn set_manual_stop(&self, id: &str) -> Result<()> {
        // A stop must work on a full disk too: recorded from the reserve.
        db_write_critical!(self, |c| {
            let r = sqlx::query("UPDATE containers SET manual_stop = TRUE WHERE id = $1")
                .bind(id)
                .execute(&mut *c)
                .await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(())
        })
    }

    /// Moves the TTL deadline (and the TTL) of a container.
    pub async fn set_expiry(&self, id: &str, ttl_ns: i64, expires_at: Option<i64>) -> Result<bool> {
        let r = db_write!(self, |c| {
            let r = sqlx::query("UPDATE containers SET ttl_ns = $1, expires_at = $2 WHERE id = $3")
                .bind(ttl_ns)
                .bind(expires_at)
                .bind(id)
                .execute(&mut *c)
                .await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(r)
        })?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the end of an exec, attach, logs follow or copy (the idle
    /// timeout counts from the latest).
    pub async fn set_last_activity(&self, id: &str, at: i64) -> Result<()> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET last_activity = {} WHERE id = $2",
                dialect::greatest("coalesce(last_activity, 0)", "$1")
            )
        });
        db_write!(self, |c| {
            let r = sqlx::query(&SQL).bind(at).bind(id).execute(&mut *c).await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(())
        })
    }

    /// A reset (`sql`: $1 the id, $2 this node and, with `seen`, $3 the
    /// state and $4 the start time it must still have).
    async fn reset_with(&self, sql: &str, id: &str, seen: Option<(&str, i64)>) -> Result<bool> {
        let r = db_write!(self, |c| {
            let mut q = sqlx::query(sql).bind(id).bind(self.me());
            if let Some((state, started_at)) = seen {
                q = q.bind(state).bind(started_at);
            }
            let r = q.execute(&mut *c).await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(r)
        })?;
        Ok(r.rows_affected() == 1)
    }

    /// Back to `created` (queued) after a start that the daemon could not finish.
    pub async fn requeue_interrupted_start(&self, id: &str) -> Result<()> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE containers SET state = '{}', autostart = TRUE WHERE id = $1 AND state IN ({}){}",
                State::Created.as_str(),
                states_sql(from::REQUEUE_INTERRUPTED),
                mine(2)
            )
        });
        db_write!(self, |c| {
            let r = sqlx::query(&SQL)
                .bind(id)
                .bind(self.me())
                .execute(&mut *c)
                .await?;
            if r.rows_affected() > 0 {
                self.refresh(c, id).await;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Persists the intent to remove; returns the state it had and the row
    /// as it now is (None: no such row). One statement: the state before
    /// is kept in `removing_from` (SET reads the row as it was) and
    /// returned with the row.
    pub async fn set_removing(&self, id: &str) -> Result<Option<(State, Container)>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            returning_row(format!(
                "UPDATE containers SET removing_from = state, state = '{}' \
                 WHERE id = $1 AND state IN ({})",
                State::Removing.as_str(),
                states_sql(from::SET_REMOVING)
            ))
            .replacen(" RETURNING ", " RETURNING containers.removing_from, ", 1)
        });
        // fetch_all for UPDATE ... RETURNING (see `set_failed`).
        let (prev, row) = db_write_critical!(self, |c| {
            let rows = sqlx::query(&SQL).bind(id).fetch_all(&mut *c).await?;
            let prev: Option<String> = rows
                .first()
                .map(|r| r.try_get("removing_from"))
                .transpose()?;
            // Committed: the index takes the row as the UPDATE left it,
            // while this still holds the writer (so in commit order: a
            // write of the same row right after cannot be overtaken).
            Ok((prev, self.returned(id, Ok(rows))))
        })?;
        let row = row?;
        Ok(match (prev.as_deref().and_then(State::parse), row) {
            (Some(prev), Some(row)) => Some((prev, row)),
            _ => None,
        })
    }

    /// How many rows `table` has (tests).
    #[cfg(test)]
    pub async fn count_rows(&self, table: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar(&format!("SELECT CAST(count(*) AS BIGINT) FROM {table}"))
                .fetch_one(&self.reader)
                .await?,
        )
    }

    /// Renames `id` as a write cancelled after its statement committed
    /// would (tests): the writer dropped before the index took the row.
    #[cfg(test)]
    pub async fn rename_abandoned(&self, id: &str, name: &str) -> Result<()> {
        let mut w = self.write_conn().await?;
        sqlx::query("UPDATE containers SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&mut *w)
            .await?;
        drop(w);
        Ok(())
    }

    /// Drops `id` from the listing index and marks it stale (tests: the
    /// next listing must rebuild it).
    #[cfg(test)]
    pub async fn spoil_index(&self, id: &str) -> Result<()> {
        if let Some(index) = &self.index {
            index.mark_stale();
            index.remove(id);
        }
        Ok(())
    }

    pub async fn delete(&self, id: &str) -> Result<()> {
        db_write_critical!(self, |c| {
            sqlx::query("DELETE FROM containers WHERE id = $1")
                .bind(id)
                .execute(&mut *c)
                .await?;
            if let Some(index) = &self.index {
                index.remove(id);
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// The guard of a write that records what happened on this host (a start,
/// an exit, a pause): the row is this node's (`$n` is its name; NULL on a
/// daemon of its own, and rows from before clusters have no node). A row
/// the cluster placed elsewhere meanwhile is that node's to change.
fn mine(n: usize) -> String {
    format!(" AND (${n} IS NULL OR node IS NULL OR node = ${n})")
}

/// The SQL value of `state` for a transition to `to` that keeps a row being
/// removed in `removing` (its data is recorded, its removal goes on).
/// The columns a new start resets (besides the state, back to `created`):
/// queued, the last run's processes and exit forgotten.
pub(super) const RESET: &str = "autostart = TRUE, pid = NULL, shim_pid = NULL, \
    shim_start_time = NULL, exit_code = NULL, exit_signal = NULL, oom_killed = FALSE, \
    failure_reason = NULL, started_at = NULL, finished_at = NULL";

fn keep_removing(to: State) -> String {
    format!(
        "CASE WHEN state = '{r}' THEN '{r}' ELSE '{to}' END",
        r = State::Removing.as_str(),
        to = to.as_str()
    )
}

/// A container from a row of `COLUMNS`, or of the summary view's columns
/// (env, mounts and security left empty, the supervisor unknown).
pub(super) fn from_row(r: &DbRow, view: ListView) -> Result<Container> {
    let bad = |what: &str| EngineError::Internal(format!("corrupt container row: {what}"));
    let full = view == ListView::Full;
    let state: String = r.try_get("state")?;
    let network: String = r.try_get("network")?;
    let net: String = r.try_get("net")?;
    let mut net: crate::model::NetSettings = serde_json::from_str(&net).map_err(|_| bad("net"))?;
    // Not in the summary view's columns.
    if let Ok(Some(e)) = r.try_get::<Option<String>, _>("egress") {
        net.egress = Some(serde_json::from_str(&e).map_err(|_| bad("egress"))?);
    }
    let command: String = r.try_get("command")?;
    let labels: Option<String> = r.try_get("labels")?;
    let exit_code: Option<i32> = r.try_get("exit_code")?;
    let finished_at: Option<i64> = r.try_get("finished_at")?;
    let exit = exit_code.map(|code| -> Result<ExitInfo> {
        Ok(ExitInfo {
            exit_code: code,
            signal: r.try_get::<Option<i32>, _>("exit_signal")?.unwrap_or(0),
            oom_killed: r.try_get("oom_killed")?,
            finished_at_ns: finished_at,
        })
    });
    let labels: BTreeMap<String, String> = match labels {
        Some(s) if !s.is_empty() => serde_json::from_str(&s).map_err(|_| bad("labels"))?,
        _ => BTreeMap::new(),
    };
    let (env, mounts, security, shim_pid, shim_start_time) = if full {
        let env: String = r.try_get("env")?;
        let mounts: String = r.try_get("mounts")?;
        let security: String = r.try_get("security")?;
        (
            serde_json::from_str(&env).map_err(|_| bad("env"))?,
            serde_json::from_str(&mounts).map_err(|_| bad("mounts"))?,
            serde_json::from_str(&security).map_err(|_| bad("security"))?,
            r.try_get("shim_pid")?,
            r.try_get::<Option<i64>, _>("shim_start_time")?
                .map(|v| v as u64),
        )
    } else {
        Default::default()
    };
    Ok(Container {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        image: r.try_get("image")?,
        command: serde_json::from_str(&command).map_err(|_| bad("command"))?,
        env,
        working_dir: r.try_get("working_dir")?,
        hostname: r.try_get("hostname")?,
        memory_mb: r.try_get("memory_mb")?,
        cpus: r.try_get("cpus")?,
        pids_limit: r.try_get("pids_limit")?,
        network: match Network::parse(&network).ok_or_else(|| bad("network"))? {
            Network::None if !net.network.is_empty() => Network::Bridge,
            Network::None if !net.peer.is_empty() => Network::Container,
            n => n,
        },
        net,
        auto_remove: r.try_get("auto_remove")?,
        autostart: r.try_get("autostart")?,
        init: r.try_get("init")?,
        labels,
        state: State::parse(&state).ok_or_else(|| bad("state"))?,
        pid: r.try_get("pid")?,
        shim_pid,
        shim_start_time,
        exit: exit.transpose()?,
        failure_reason: r.try_get("failure_reason")?,
        created_at_ns: r.try_get("created_at")?,
        started_at_ns: r.try_get("started_at")?,
        finished_at_ns: finished_at,
        mounts,
        security,
        disk_bytes: u64::try_from(r.try_get::<i64, _>("disk_bytes")?).unwrap_or(0),
        restart: RestartPolicy::from_parts(
            &r.try_get::<String, _>("restart_policy")?,
            u32::try_from(r.try_get::<i64, _>("restart_max")?).map_err(|_| bad("restart_max"))?,
        )
        .map_err(|_| bad("restart policy"))?,
        restart_count: u32::try_from(r.try_get::<i64, _>("restart_count")?)
            .map_err(|_| bad("restart_count"))?,
        manual_stop: r.try_get("manual_stop")?,
        lifetime: Lifetime {
            ttl_ns: r.try_get("ttl_ns")?,
            expires_at_ns: r.try_get("expires_at")?,
            idle_timeout_ns: r.try_get("idle_timeout_ns")?,
            idle_action: IdleAction::parse(&r.try_get::<String, _>("idle_action")?)
                .ok_or_else(|| bad("idle_action"))?,
            last_activity_ns: r.try_get("last_activity")?,
        },
        stdio: match r.try_get::<Option<String>, _>("stdio")? {
            Some(s) => serde_json::from_str(&s).map_err(|_| bad("stdio"))?,
            None => Stdio::default(),
        },
        node: r.try_get("node")?,
        node_labels: match r.try_get::<Option<String>, _>("node_labels")? {
            Some(s) => serde_json::from_str(&s).map_err(|_| bad("node_labels"))?,
            None => BTreeMap::new(),
        },
        id_range: match (
            r.try_get::<Option<i64>, _>("userns_host_id")?,
            r.try_get::<Option<i64>, _>("userns_size")?,
        ) {
            (Some(h), Some(n)) => Some(IdRange {
                host_id: u32::try_from(h).map_err(|_| bad("userns range"))?,
                size: u32::try_from(n).map_err(|_| bad("userns range"))?,
            }),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ListFilter, ListQuery, now_ns};

    fn row(id: &str, name: &str) -> Container {
        Container {
            id: id.into(),
            name: name.into(),
            image: "default".into(),
            command: vec!["sh".into(), "-c".into(), "echo 'a  b'".into()],
            env: vec!["A=1".into()],
            working_dir: "/".into(),
            hostname: name.into(),
            memory_mb: 32,
            cpus: 0.5,
            pids_limit: 20,
            network: Network::None,
            net: Default::default(),
            auto_remove: false,
            autostart: true,
            init: false,
            labels: [("team".to_string(), "x".to_string())].into(),
            state: State::Created,
            pid: None,
            shim_pid: None,
            shim_start_time: None,
            exit: None,
            failure_reason: None,
            created_at_ns: now_ns(),
            started_at_ns: None,
            finished_at_ns: None,
            mounts: Vec::new(),
            disk_bytes: 0,
            security: Default::default(),
            id_range: None,
            restart: RestartPolicy::OnFailure { max: 3 },
            restart_count: 0,
            manual_stop: false,
            lifetime: Default::default(),
            stdio: Stdio::default(),
            node: None,
            node_labels: BTreeMap::new(),
        }
    }

    use crate::store::Store;

    /// Puts an image with id `image` in the store.
    async fn add_image(s: &Store, image: &str) {
        let info = crate::model::ImageInfo {
            id: image.to_owned(),
            names: Vec::new(),
            size_bytes: 1,
            created_at_ns: now_ns(),
            source: "rootfs-tar".into(),
            layers: Vec::new(),
            containers: 0,
            config: Default::default(),
        };
        s.image_add(&info, &[], Some("img")).await.unwrap();
    }

    /// A store of this backend (and what keeps it alive).
    async fn store() -> (impl Sized, Store) {
        super::super::test_store().await
    }

    /// What `get` returns for a row just inserted (SQLite: the entry the
    /// insert put in the index) is what the table decodes, for a row with
    /// every part the insert writes.
    #[tokio::test]
    async fn an_inserted_row_is_got_as_the_table_decodes_it() {
        use crate::model::{MountSource, MountSpec};
        let (_d, s) = store().await;
        let info = crate::model::NetworkInfo {
            name: "bridge".into(),
            id: "n1".into(),
            bridge: "qbr0".into(),
            subnet: quilt_network::Subnet::parse("10.88.0.0/16").unwrap(),
            internal: false,
            created_at_ns: 1,
            containers: Vec::new(),
        };
        s.network_insert(&info).await.unwrap();
        let mut c = row("full1", "full");
        c.network = Network::Bridge;
        c.net.network = "bridge".into();
        c.net.dns = vec!["1.1.1.1".parse().unwrap()];
        c.net.aliases = vec!["al".into()];
        c.net.extra_hosts = vec![quilt_network::HostEntry {
            name: "h".into(),
            ip: "10.1.1.1".parse().unwrap(),
        }];
        c.net.ports = vec![quilt_network::PortBinding {
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: 8080,
            container_port: 80,
            proto: quilt_network::Proto::Tcp,
        }];
        c.net.egress = Some(quilt_network::EgressPolicy {
            default_deny: true,
            allow: vec!["10.0.0.0/8".into()],
            deny: vec![],
        });
        c.security.userns = UsernsMode::Private;
        c.security.cap_add = vec!["NET_ADMIN".into()];
        c.mounts = vec![
            MountSpec {
                target: "/data".into(),
                read_only: false,
                source: MountSource::Volume("v1".into()),
            },
            MountSpec {
                target: "/t".into(),
                read_only: true,
                source: MountSource::Tmpfs { size_bytes: 4096 },
            },
        ];
        c.stdio = Stdio {
            tty: true,
            open_stdin: true,
            stdin_once: false,
        };
        c.node_labels = [("zone".to_string(), "a".to_string())].into();
        c.lifetime = Lifetime {
            ttl_ns: 5,
            expires_at_ns: None,
            idle_timeout_ns: 7,
            idle_action: IdleAction::Pause,
            last_activity_ns: None,
        };
        c.restart = RestartPolicy::Always;
        c.disk_bytes = 1 << 30;
        let ids = UsernsIds {
            base: 1_000_000,
            count: 4,
        };
        s.insert_full(&c, Some(&ids), None).await.unwrap();
        // One that joins its network namespace (the row alone), and one on
        // the host's network.
        let mut j = row("join1", "joiner");
        j.network = Network::Container;
        j.net.peer = "full1".into();
        j.labels = BTreeMap::new();
        s.insert_full(&j, None, None).await.unwrap();
        let mut h = row("host1", "hostnet");
        h.network = Network::Host;
        s.insert_full(&h, None, None).await.unwrap();
        for id in ["full1", "join1", "host1"] {
            let got = s.get(id).await.unwrap().unwrap();
            let table = s.resolve(id).await.unwrap();
            assert_eq!(format!("{got:?}"), format!("{table:?}"), "{id}");
        }
    }

    #[tokio::test]
    async fn insert_resolve_and_unique_names() {
        let (_d, s) = store().await;
        s.insert(&row("abc123", "web")).await.unwrap();
        s.insert(&row("abd456", "db")).await.unwrap();
        let c = s.resolve("web").await.unwrap();
        assert_eq!(c.id, "abc123");
        assert_eq!(c.command, vec!["sh", "-c", "echo 'a  b'"]);
        assert_eq!(c.labels.get("team").map(String::as_str), Some("x"));
        assert_eq!(s.resolve("abc").await.unwrap().name, "web");
        assert!(matches!(
            s.resolve("ab").await,
            Err(EngineError::InvalidArgument(_))
        ));
        assert!(matches!(
            s.resolve("zzz").await,
            Err(EngineError::NotFound(_))
        ));
        assert!(matches!(
            s.insert(&row("ffff", "web")).await,
            Err(EngineError::AlreadyExists(_))
        ));
        // The refused insert left nothing behind.
        assert_eq!(s.list(&ListFilter::default()).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_removed_store_image_cannot_be_used_and_a_used_one_cannot_be_removed() {
        let (_d, s) = store().await;
        let image = format!("sha256:{}", "cd".repeat(32));
        let mut c = row("img1", "uses-image");
        c.image = image.clone();
        // The image is gone (an `image rm` won the race): no row is left.
        assert!(matches!(s.insert(&c).await, Err(EngineError::NotFound(_))));
        assert!(s.list(&ListFilter::default()).await.unwrap().is_empty());
        add_image(&s, &image).await;
        s.insert(&c).await.unwrap();
        // Now that a container uses it, the image cannot be deleted.
        assert!(matches!(
            s.image_delete(&image).await,
            Err(EngineError::FailedPrecondition(_))
        ));
    }

    /// Transactions that read, then write (a store image's create), back
    /// to back for long enough that the WAL's checkpoints (SQLite) must
    /// start it again meanwhile: every one commits (no "database is
    /// locked" from a checkpoint holding the write lock).
    #[tokio::test]
    async fn read_then_write_transactions_all_commit_through_checkpoints() {
        let (_d, s) = store().await;
        let image = format!("sha256:{}", "ab".repeat(32));
        add_image(&s, &image).await;
        for i in 0..1500 {
            let mut c = row(&format!("rw{i:04}"), &format!("rw-{i}"));
            c.image = image.clone();
            c.labels.insert("pad".into(), "x".repeat(3000));
            s.insert(&c).await.unwrap();
        }
        assert_eq!(s.list(&ListFilter::default()).await.unwrap().len(), 1500);
    }

    /// Many writes at once: on SQLite they commit in groups (see
    /// `writer.rs`), each answered once its group committed; a write
    /// refused inside a group (its name taken) fails alone, and what the
    /// others did is in the table and in the index alike.
    #[tokio::test]
    async fn concurrent_writes_commit_in_groups_and_a_refusal_fails_alone() {
        let (_d, s) = store().await;
        s.insert(&row("taken0", "taken")).await.unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let id = format!("grp{i:03}");
                    let name = match i {
                        40 => "taken".to_string(),
                        _ => format!("grp-{i}"),
                    };
                    s.insert(&row(&id, &name)).await?;
                    s.set_starting(&id, None).await?;
                    s.set_running(&id, 10 + i, 9, 1, now_ns()).await?;
                    if i % 2 == 0 {
                        s.set_removing(&id).await?;
                        s.delete(&id).await?;
                    }
                    Ok::<_, EngineError>(())
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            match (i, t.await.unwrap()) {
                (40, Err(EngineError::AlreadyExists(_))) => {}
                (40, other) => panic!("the taken name: {other:?}"),
                (_, r) => r.unwrap(),
            }
        }
        // The table (a reader's view: committed rows only) and the index.
        let stored = s.list(&ListFilter::default()).await.unwrap();
        assert_eq!(stored.len(), 1 + 32, "taken0 and the odd ones");
        for c in &stored {
            let indexed = s.get(&c.id).await.unwrap().unwrap();
            assert_eq!(format!("{indexed:?}"), format!("{c:?}"));
            if c.id != "taken0" {
                assert_eq!(c.state, State::Running);
            }
        }
        for i in (0..64).step_by(2) {
            assert!(s.get(&format!("grp{i:03}")).await.unwrap().is_none());
        }
        let sqlite =
            std::any::TypeId::of::<super::super::Db>() == std::any::TypeId::of::<sqlx::Sqlite>();
        if sqlite {
            assert!(s.write_groups() > 0, "no write joined another's group");
        }
    }

    /// Labels go in with their row, in one statement whatever their
    /// number; the labels table that filters use gets them from the row's
    /// trigger, text as it was given.
    #[tokio::test]
    async fn labels_go_in_with_the_row_and_come_back_whole() {
        let (_d, s) = store().await;
        let mut c = row("many1", "many");
        c.labels = (0..300)
            .map(|i| (format!("key-{i:03}"), format!("value {i}")))
            .collect();
        for (k, v) in [
            ("quote\"d", "a \"b\" \\ c"),
            ("com.example/\u{e9}t\u{e9}", "\u{1f980}\nline two\t"),
            ("$.path[0]", "{\"json\": true}"),
            ("empty", ""),
        ] {
            c.labels.insert(k.into(), v.into());
        }
        assert!(row_only(&c), "labels need no transaction of their own");
        s.insert(&c).await.unwrap();
        assert_eq!(s.resolve("many").await.unwrap().labels, c.labels);
        assert_eq!(s.count_rows("labels").await.unwrap(), 304);
        // Each one filters (through the labels table).
        for (k, v) in [
            ("quote\"d", "a \"b\" \\ c"),
            ("empty", ""),
            ("key-299", "value 299"),
        ] {
            let f = ListFilter {
                labels: [(k.to_string(), v.to_string())].into(),
                ..Default::default()
            };
            let got = s.list(&f).await.unwrap();
            assert_eq!(got.len(), 1, "label {k:?}");
            assert_eq!(got[0].labels, c.labels);
        }
        // A refused insert (its name is taken) leaves none of its labels.
        let mut again = c.clone();
        again.id = "many2".into();
        again.labels.insert("other".into(), "x".into());
        assert!(matches!(
            s.insert(&again).await,
            Err(EngineError::AlreadyExists(_))
        ));
        // Nor does one whose store image went meanwhile.
        let mut gone = row("many3", "gone");
        gone.image = format!("sha256:{}", "9a".repeat(32));
        assert!(matches!(
            s.insert(&gone).await,
            Err(EngineError::NotFound(_))
        ));
        assert_eq!(s.count_rows("labels").await.unwrap(), 304);
        // A row without labels has none.
        let mut bare = row("bare1", "bare");
        bare.labels.clear();
        s.insert(&bare).await.unwrap();
        assert!(s.resolve("bare").await.unwrap().labels.is_empty());
        assert_eq!(s.count_rows("labels").await.unwrap(), 304);
    }

    /// A container's network namespace slot lives in its row: recorded by
    /// `slot_set` or with the change to `starting`, tainted, listed,
    /// cleared, one container's at a time, and gone with the row.
    #[tokio::test]
    async fn namespace_slots_live_in_the_row() {
        let (_d, s) = store().await;
        s.insert(&row("n1", "one")).await.unwrap();
        s.insert(&row("n2", "two")).await.unwrap();
        s.slot_set("n1", "slot-a").await.unwrap();
        assert!(!s.slot_tainted("n1").await.unwrap());
        s.slot_taint("n1").await.unwrap();
        assert!(s.slot_tainted("n1").await.unwrap());
        // Recorded again at a restart: the same namespace, still tainted
        // (what a container that joined it did there stays).
        s.slot_set("n1", "slot-a").await.unwrap();
        assert!(s.slot_tainted("n1").await.unwrap());
        // Another namespace: a fresh one, not tainted.
        s.slot_set("n1", "slot-a2").await.unwrap();
        assert!(!s.slot_tainted("n1").await.unwrap());
        s.slot_set("n1", "slot-a").await.unwrap();
        assert!(
            s.slot_set("n2", "slot-a").await.is_err(),
            "one slot, two rows"
        );
        assert!(matches!(
            s.slot_set("gone", "slot-z").await,
            Err(EngineError::NotFound(_))
        ));
        // Tainting a container without a namespace records nothing.
        s.slot_taint("n2").await.unwrap();
        assert!(!s.slot_tainted("n2").await.unwrap());
        // With the change to starting, in the same statement; a change that
        // does not apply (not queued any more) records nothing.
        assert!(
            s.set_starting("n2", Some("slot-b"))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            s.set_starting("n2", Some("slot-c"))
                .await
                .unwrap()
                .is_none()
        );
        let mut all = s.slots(None).await.unwrap();
        all.sort();
        assert_eq!(
            all,
            [
                ("n1".to_string(), "slot-a".to_string(), false),
                ("n2".to_string(), "slot-b".to_string(), false)
            ]
        );
        assert!(s.slots(Some("another-node")).await.unwrap().is_empty());
        s.slot_clear("n1").await.unwrap();
        assert_eq!(s.slots(None).await.unwrap().len(), 1);
        assert_eq!(s.network_usage().await.unwrap().2, 1);
        s.delete("n2").await.unwrap();
        assert_eq!(s.network_usage().await.unwrap().2, 0);
    }

    /// A warm pool's container begins its start at once: inserted as
    /// `starting` with its namespace, or changed from `created` (queued or
    /// not) by one statement that records it. Nothing else begins so: a row
    /// that is not `created`, or already has a namespace.
    #[tokio::test]
    async fn claimed_starts_begin_with_their_namespace() {
        let (_d, s) = store().await;
        let mut at_create = row("w1", "w1");
        at_create.state = State::Starting;
        at_create.autostart = false;
        s.insert_full(&at_create, None, Some("slot-w1"))
            .await
            .unwrap();
        let got = s.get("w1").await.unwrap().unwrap();
        assert_eq!((got.state, got.autostart), (State::Starting, false));
        // A claimed container's own start, from `created` (not queued).
        let mut created = row("w2", "w2");
        created.autostart = false;
        s.insert(&created).await.unwrap();
        let begun = s.begin_claimed_start("w2", "slot-w2").await.unwrap();
        let begun = begun.expect("created: begun");
        assert_eq!((begun.state, begun.autostart), (State::Starting, false));
        // Not again (w2: it is starting, and has its namespace), nor from
        // another state (w3), nor a row that has a namespace already (w4),
        // nor one that does not exist.
        s.insert(&row("w3", "w3")).await.unwrap();
        s.set_starting("w3", None).await.unwrap();
        s.insert(&row("w4", "w4")).await.unwrap();
        s.slot_set("w4", "slot-w4").await.unwrap();
        for (id, slot) in [
            ("w2", "slot-x"),
            ("w3", "slot-w3"),
            ("w4", "slot-y"),
            ("gone", "slot-z"),
        ] {
            let begun = s.begin_claimed_start(id, slot).await.unwrap();
            assert!(begun.is_none(), "{id} began in {slot}");
        }
        let mut all = s.slots(None).await.unwrap();
        all.sort();
        let want: Vec<(String, String, bool)> =
            [("w1", "slot-w1"), ("w2", "slot-w2"), ("w4", "slot-w4")]
                .iter()
                .map(|(i, s)| (i.to_string(), s.to_string(), false))
                .collect();
        assert_eq!(all, want);
        // A queued one begins too (its queued start is then skipped).
        s.insert(&row("w5", "w5")).await.unwrap();
        let begun = s.begin_claimed_start("w5", "slot-w5").await.unwrap();
        assert_eq!(begun.map(|c| c.state), Some(State::Starting));
        assert!(s.set_starting("w5", None).await.unwrap().is_none());
        // Back to created (queued) if the daemon died meanwhile, as any
        // start: the namespace stays recorded for the cold start.
        s.requeue_interrupted_start("w1").await.unwrap();
        let got = s.get("w1").await.unwrap().unwrap();
        assert_eq!((got.state, got.autostart), (State::Created, true));
        let slots = s.slots(None).await.unwrap();
        assert!(
            slots
                .iter()
                .any(|(id, slot, _)| id == "w1" && slot == "slot-w1")
        );
    }

    /// The change to `starting` keeps the taint of the namespace it
    /// records when that is the one already recorded (a restart), and
    /// clears it for another.
    #[tokio::test]
    async fn starting_keeps_the_taint_of_the_same_namespace() {
        let (_d, s) = store().await;
        for (id, slot) in [("t1", "slot-same"), ("t2", "slot-other")] {
            s.insert(&row(id, id)).await.unwrap();
            s.slot_set(id, &format!("{id}-slot")).await.unwrap();
            s.slot_taint(id).await.unwrap();
            let recorded = match slot {
                "slot-same" => format!("{id}-slot"),
                other => other.to_string(),
            };
            assert!(s.set_starting(id, Some(&recorded)).await.unwrap().is_some());
        }
        assert!(s.slot_tainted("t1").await.unwrap(), "same namespace");
        assert!(!s.slot_tainted("t2").await.unwrap(), "another namespace");
    }

    #[tokio::test]
    async fn a_row_alone_is_checked_as_a_transaction_would() {
        let (_d, s) = store().await;
        let image = format!("sha256:{}", "ef".repeat(32));
        let mut c = row("solo1", "solo");
        c.labels.clear();
        c.image = image.clone();
        // No volumes, address, ports or id range: one statement.
        let mut bridged = row("x", "y");
        bridged.network = Network::Bridge;
        assert!(row_only(&c) && !row_only(&bridged));
        assert!(matches!(s.insert(&c).await, Err(EngineError::NotFound(_))));
        assert!(s.list(&ListFilter::default()).await.unwrap().is_empty());
        add_image(&s, &image).await;
        s.insert(&c).await.unwrap();
        let got = s.resolve("solo").await.unwrap();
        assert_eq!(
            (got.id.as_str(), got.image.as_str()),
            ("solo1", image.as_str())
        );
        assert!(got.labels.is_empty());
        let mut again = row("solo2", "solo");
        again.labels.clear();
        assert!(matches!(
            s.insert(&again).await,
            Err(EngineError::AlreadyExists(_))
        ));
        // The listing (served from the index on SQLite) has the one row.
        let all = s.list(&ListFilter::default()).await.unwrap();
        assert_eq!(all.len(), 1);
        assert!(matches!(
            s.image_delete(&image).await,
            Err(EngineError::FailedPrecondition(_))
        ));
    }

    #[tokio::test]
    async fn pause_and_restart_transitions() {
        let (_d, s) = store().await;
        s.insert(&row("p1", "paused")).await.unwrap();
        assert!(
            !s.set_paused("p1", true).await.unwrap(),
            "paused while created"
        );
        assert!(s.set_starting("p1", None).await.unwrap().is_some());
        assert!(s.set_running("p1", 10, 9, 1234, now_ns()).await.unwrap());
        assert!(
            !s.set_paused("p1", false).await.unwrap(),
            "unpaused while running"
        );
        assert!(s.set_paused("p1", true).await.unwrap());
        assert!(!s.set_paused("p1", true).await.unwrap(), "paused twice");
        assert_eq!(s.get("p1").await.unwrap().unwrap().state, State::Paused);
        // A paused container's exit is recorded.
        let exit = ExitInfo {
            exit_code: 1,
            signal: 0,
            oom_killed: false,
            finished_at_ns: Some(now_ns()),
        };
        assert_eq!(
            s.record_exit("p1", &exit).await.unwrap(),
            Some(State::Exited)
        );
        let c = s.get("p1").await.unwrap().unwrap();
        assert_eq!(c.restart, RestartPolicy::OnFailure { max: 3 });
        assert!(c.restart_due());
        // A policy's restart counts; the user's stop ends the policy's
        // restarts, and the user's start resets both.
        assert!(s.reset_for_restart("p1").await.unwrap());
        assert!(!s.reset_for_restart("p1").await.unwrap(), "not finished");
        let c = s.get("p1").await.unwrap().unwrap();
        assert_eq!((c.restart_count, c.state), (1, State::Created));
        assert!(c.is_queued());
        s.set_manual_stop("p1").await.unwrap();
        assert!(s.cancel_queued_start("p1").await.unwrap());
        assert!(
            !s.reset_for_restart("p1").await.unwrap(),
            "stopped by the user"
        );
        let seen = s.get("p1").await.unwrap().unwrap();
        assert!(s.reset_for_start(&seen).await.unwrap());
        let c = s.get("p1").await.unwrap().unwrap();
        assert_eq!((c.restart_count, c.manual_stop), (0, false));
    }

    #[tokio::test]
    async fn layers_go_with_the_last_image_that_uses_them() {
        let (_d, s) = store().await;
        let layer = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let image = |c: char, layers: &[String], name: Option<&str>| {
            let info = crate::model::ImageInfo {
                id: format!("sha256:{}", c.to_string().repeat(64)),
                names: Vec::new(),
                size_bytes: 1,
                created_at_ns: now_ns(),
                source: "oci-layout".into(),
                layers: layers.to_vec(),
                containers: 0,
                config: Default::default(),
            };
            let sizes = vec![10; layers.len()];
            let s = &s;
            let name = name.map(str::to_owned);
            async move {
                s.image_add(&info, &sizes, name.as_deref()).await.unwrap();
                info.id
            }
        };
        let (base, top) = (layer('1'), layer('2'));
        let a = image('a', std::slice::from_ref(&base), Some("a")).await;
        let b = image('b', &[base.clone(), top.clone(), base.clone()], None).await;
        assert_eq!(s.layer_usage().await.unwrap(), (2, 20));
        // b still uses the base: nothing to remove with a.
        assert_eq!(s.image_delete(&a).await.unwrap(), Some(Vec::new()));
        assert_eq!(s.image_delete(&a).await.unwrap(), None);
        // Prune removes b (no name), and with it both layers.
        let (ids, mut orphans) = s.image_prune().await.unwrap();
        orphans.sort();
        assert_eq!(ids, [b]);
        assert_eq!(orphans, [(base, 10), (top, 10)]);
        assert_eq!(s.layer_usage().await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn state_transitions_are_guarded() {
        let (_d, s) = store().await;
        s.insert(&row("a1", "one")).await.unwrap();
        // The row as it now is.
        let started = s.set_starting("a1", None).await.unwrap().unwrap();
        assert_eq!(
            (started.id.as_str(), started.state),
            ("a1", State::Starting)
        );
        assert!(!started.autostart);
        assert!(
            s.set_starting("a1", None).await.unwrap().is_none(),
            "starting twice"
        );
        // A queued start cancelled by `stop` is never begun.
        s.insert(&row("a2", "two")).await.unwrap();
        assert!(s.cancel_queued_start("a2").await.unwrap());
        assert!(!s.cancel_queued_start("a2").await.unwrap());
        assert!(
            s.set_starting("a2", None).await.unwrap().is_none(),
            "a cancelled start began"
        );
        assert_eq!(s.get("a2").await.unwrap().unwrap().state, State::Created);
        assert!(s.set_running("a1", 10, 9, 1234, now_ns()).await.unwrap());
        let exit = ExitInfo {
            exit_code: 7,
            signal: 0,
            oom_killed: false,
            finished_at_ns: Some(now_ns()),
        };
        assert_eq!(
            s.record_exit("a1", &exit).await.unwrap(),
            Some(State::Exited)
        );
        assert_eq!(
            s.record_exit("a1", &exit).await.unwrap(),
            None,
            "exit recorded twice"
        );
        let exited = s.get("a1").await.unwrap().unwrap();
        assert_eq!(exited.state, State::Exited);
        assert_eq!(exited.exit.as_ref().unwrap().exit_code, 7);
        assert!(s.reset_for_start(&exited).await.unwrap());
        // A second call that saw it exited changes nothing: it is another
        // start's now.
        assert!(
            !s.reset_for_start(&exited).await.unwrap(),
            "reset again from a view before the first reset"
        );
        let c = s.get("a1").await.unwrap().unwrap();
        assert_eq!(
            (c.state, c.exit.is_none(), c.autostart),
            (State::Created, true, true)
        );
        // Nor once that start has run and exited too: the same state, a
        // later start.
        assert!(s.set_starting("a1", None).await.unwrap().is_some());
        assert!(s.set_running("a1", 11, 12, 1235, now_ns()).await.unwrap());
        s.record_exit("a1", &exit).await.unwrap();
        let again = s.get("a1").await.unwrap().unwrap();
        assert_eq!(again.state, State::Exited);
        assert_ne!(again.started_at_ns, exited.started_at_ns);
        assert!(
            !s.reset_for_start(&exited).await.unwrap(),
            "a view of the run before"
        );
        assert!(s.reset_for_start(&again).await.unwrap());
    }

    /// `set_removing`'s state before, with a check that the row it gives
    /// back is the stored one.
    async fn removing_from(s: &Store, id: &str) -> Option<State> {
        let (prev, row) = s.set_removing(id).await.unwrap()?;
        assert_eq!(row.state, State::Removing);
        let stored = s.get(id).await.unwrap().unwrap();
        assert_eq!(format!("{row:?}"), format!("{stored:?}"));
        Some(prev)
    }

    #[tokio::test]
    async fn removal_keeps_state_and_cascades_labels() {
        let (_d, s) = store().await;
        s.insert(&row("b1", "two")).await.unwrap();
        s.set_starting("b1", None).await.unwrap();
        s.set_running("b1", 10, 9, 1, now_ns()).await.unwrap();
        assert_eq!(removing_from(&s, "b1").await, Some(State::Running));
        // Again: it says so (the caller emits nothing twice); the index too.
        assert_eq!(removing_from(&s, "b1").await, Some(State::Removing));
        let listed = s
            .list_page(&ListQuery {
                limit: 10,
                max_bytes: usize::MAX,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.containers[0].state, State::Removing);
        // A paused one says it was paused (its removal thaws it).
        s.insert(&row("b2", "paused")).await.unwrap();
        s.set_starting("b2", None).await.unwrap();
        s.set_running("b2", 11, 12, 1, now_ns()).await.unwrap();
        assert!(s.set_paused("b2", true).await.unwrap());
        assert_eq!(removing_from(&s, "b2").await, Some(State::Paused));
        s.delete("b2").await.unwrap();
        let exit = ExitInfo {
            exit_code: 137,
            signal: 9,
            oom_killed: false,
            finished_at_ns: Some(now_ns()),
        };
        assert_eq!(
            s.record_exit("b1", &exit).await.unwrap(),
            Some(State::Removing)
        );
        assert_eq!(s.get("b1").await.unwrap().unwrap().state, State::Removing);
        s.delete("b1").await.unwrap();
        assert_eq!(removing_from(&s, "b1").await, None);
        let n = s.count_rows("labels").await.unwrap();
        assert_eq!(n, 0, "labels not removed with their container");
    }

    #[tokio::test]
    async fn list_filters() {
        let (_d, s) = store().await;
        s.insert(&row("c1", "alpha")).await.unwrap();
        let mut other = row("c2", "beta");
        other.labels.clear();
        s.insert(&other).await.unwrap();
        s.set_starting("c2", None).await.unwrap();
        let by_state = ListFilter {
            states: vec![State::Starting],
            ..Default::default()
        };
        assert_eq!(s.list(&by_state).await.unwrap().len(), 1);
        let by_name = ListFilter {
            name_contains: Some("lph".into()),
            ..Default::default()
        };
        assert_eq!(s.list(&by_name).await.unwrap()[0].id, "c1");
        let by_label = ListFilter {
            labels: [("team".into(), "x".into())].into(),
            ..Default::default()
        };
        assert_eq!(s.list(&by_label).await.unwrap()[0].id, "c1");
    }
    #[test]
    fn returned_columns_name_the_table() {
        assert!(RETURNED.starts_with("containers.id, containers.name"));
        assert!(!RETURNED.contains(" c.") && !RETURNED.contains("(c."));
        let aliased = format!(" {}", COLUMNS).matches(" c.").count();
        assert_eq!(RETURNED.matches("containers.").count(), aliased);
    }

    /// The index the listing is served from agrees with the table after
    /// every kind of write.
    #[tokio::test]
    async fn the_index_follows_every_write() {
        let (_d, s) = store().await;
        let ids: Vec<String> = (0..6).map(|i| format!("{i:064x}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let mut c = row(id, &format!("n{i}"));
            c.created_at_ns = 1000 + i as i64;
            s.insert(&c).await.unwrap();
        }
        // The row an UPDATE ... RETURNING gives back is the stored one.
        let starting = s.set_starting(&ids[0], None).await.unwrap().unwrap();
        let stored = s.get(&ids[0]).await.unwrap().unwrap();
        assert_eq!(format!("{starting:?}"), format!("{stored:?}"));
        assert!(s.set_running(&ids[0], 11, 12, 13, 14).await.unwrap());
        // One that changes nothing leaves the entry.
        assert!(!s.set_running(&ids[5], 1, 2, 3, 4).await.unwrap());
        assert!(s.cancel_queued_start(&ids[1]).await.unwrap());
        assert!(s.set_starting(&ids[2], None).await.unwrap().is_some());
        s.set_failed(&ids[2], 125, "no", 20).await.unwrap();
        assert!(s.set_starting(&ids[3], None).await.unwrap().is_some());
        let exit = ExitInfo {
            exit_code: 3,
            signal: 0,
            oom_killed: false,
            finished_at_ns: Some(30),
        };
        s.record_exit(&ids[3], &exit).await.unwrap();
        let seen = s.get(&ids[3]).await.unwrap().unwrap();
        assert!(s.reset_for_start(&seen).await.unwrap());
        assert!(s.set_starting(&ids[4], None).await.unwrap().is_some());
        s.requeue_interrupted_start(&ids[4]).await.unwrap();
        s.set_removing(&ids[5]).await.unwrap();
        s.delete(&ids[1]).await.unwrap();
        let q = crate::model::ListQuery {
            view: ListView::Full,
            limit: 100,
            max_bytes: usize::MAX,
            filter: Default::default(),
            after: None,
        };
        let from_index: Vec<String> = s
            .list_page(&q)
            .await
            .unwrap()
            .containers
            .iter()
            .map(|c| format!("{c:?}"))
            .collect();
        let from_table: Vec<String> = s
            .list(&Default::default())
            .await
            .unwrap()
            .iter()
            .map(|c| format!("{c:?}"))
            .collect();
        assert_eq!(from_index.len(), 5);
        assert_eq!(from_index, from_table);
        // A stale index is rebuilt from the table.
        s.spoil_index(&ids[0]).await.unwrap();
        assert_eq!(s.list_page(&q).await.unwrap().containers.len(), 5);
    }

    /// GetContainer's read (from the listing index on SQLite) finds what
    /// the table's `resolve` finds, with the same errors, after renames,
    /// egress changes and removals.
    #[tokio::test]
    async fn get_finds_what_the_table_finds() {
        let (_d, s) = store().await;
        let a = format!("abc1{}", "0".repeat(60));
        let b = format!("abc2{}", "0".repeat(60));
        let c = format!("f00d{}", "0".repeat(60));
        s.insert(&row(&a, "web")).await.unwrap();
        s.insert(&row(&b, "db")).await.unwrap();
        // A name that is also a prefix of another container's id: the name
        // wins, as in the table.
        s.insert(&row(&c, "abc2")).await.unwrap();
        let same = |reference: String| {
            let s = &s;
            async move {
                let listed = s.resolve_listed(&reference).await;
                let table = s.resolve(&reference).await;
                assert_eq!(
                    format!("{listed:?}"),
                    format!("{table:?}"),
                    "reference {reference:?}"
                );
                listed
            }
        };
        assert_eq!(same(a.clone()).await.unwrap().id, a);
        assert_eq!(same("web".into()).await.unwrap().id, a);
        assert_eq!(same("abc1".into()).await.unwrap().id, a);
        assert_eq!(same("abc2".into()).await.unwrap().id, c);
        assert_eq!(same("f00".into()).await.unwrap().id, c);
        assert!(matches!(
            same("abc".into()).await,
            Err(EngineError::InvalidArgument(m)) if m.contains("ambiguous")
        ));
        assert!(matches!(
            same("nope".into()).await,
            Err(EngineError::NotFound(_))
        ));
        assert!(matches!(
            same("ABC1".into()).await,
            Err(EngineError::NotFound(_))
        ));
        assert!(matches!(
            same(String::new()).await,
            Err(EngineError::InvalidArgument(_))
        ));
        // Renamed: the new name finds it, the old one nothing.
        assert!(s.rename(&a, "front").await.unwrap());
        assert_eq!(same("front".into()).await.unwrap().id, a);
        assert!(same("web".into()).await.is_err());
        // Its old name taken by another.
        assert!(s.rename(&b, "web").await.unwrap());
        assert_eq!(same("web".into()).await.unwrap().id, b);
        assert!(same("db".into()).await.is_err());
        // An egress policy is part of the container got.
        let policy = quilt_network::EgressPolicy {
            default_deny: true,
            allow: vec!["10.0.0.0/8".into()],
            deny: Vec::new(),
        };
        assert!(s.egress_set(&b, Some(&policy)).await.unwrap());
        assert_eq!(same(b.clone()).await.unwrap().net.egress, Some(policy));
        // Removed: found no more, by id, name or prefix.
        s.delete(&a).await.unwrap();
        for r in [a.clone(), "front".into(), "abc1".into()] {
            assert!(matches!(same(r).await, Err(EngineError::NotFound(_))));
        }
        assert_eq!(same("abc".into()).await.unwrap().id, b);
    }

    /// A write abandoned after its statement committed (its call was
    /// cancelled before the index took the row): the index does not keep
    /// the row as it was.
    #[tokio::test]
    async fn an_abandoned_write_leaves_no_stale_entry() {
        let (_d, s) = store().await;
        let a = format!("abc1{}", "0".repeat(60));
        s.insert(&row(&a, "web")).await.unwrap();
        assert_eq!(s.resolve_listed("web").await.unwrap().id, a);
        s.rename_abandoned(&a, "front").await.unwrap();
        for name in ["front", "web"] {
            assert_eq!(
                format!("{:?}", s.resolve_listed(name).await),
                format!("{:?}", s.resolve(name).await),
                "{name}"
            );
        }
        assert_eq!(s.resolve_listed("front").await.unwrap().id, a);
        // The next write takes a fresh connection and keeps the index in step.
        assert!(s.rename(&a, "back").await.unwrap());
        assert_eq!(s.resolve_listed("back").await.unwrap().id, a);
    }

    #[tokio::test]
    async fn private_user_namespaces_get_their_own_id_range() {
        let (_d, s) = store().await;
        let ids = UsernsIds {
            base: 1_000_000,
            count: 2,
        };
        let private = |id: &str, name: &str| {
            let mut c = row(id, name);
            c.security.userns = UsernsMode::Private;
            c
        };
        let size = IdRange::SIZE;
        let a = s
            .insert_with_ids(&private("u1", "a"), Some(&ids))
            .await
            .unwrap();
        let b = s
            .insert_with_ids(&private("u2", "b"), Some(&ids))
            .await
            .unwrap();
        assert_eq!(
            a,
            Some(IdRange {
                host_id: 1_000_000,
                size
            })
        );
        assert_eq!(
            b,
            Some(IdRange {
                host_id: 1_000_000 + size,
                size
            })
        );
        // A host container takes none, even with ids to take from.
        assert_eq!(
            s.insert_with_ids(&row("h1", "h"), Some(&ids))
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.get("u2").await.unwrap().unwrap().id_range, b);
        assert_eq!(s.get("h1").await.unwrap().unwrap().id_range, None);
        // Full: refused, and no row is left of the refused container.
        let full = s.insert_with_ids(&private("u3", "c"), Some(&ids)).await;
        assert!(
            matches!(&full, Err(EngineError::FailedPrecondition(m)) if m.contains("all 2 user namespace id ranges are in use")),
            "{full:?}"
        );
        assert!(s.get("u3").await.unwrap().is_none());
        // A private container cannot be stored without ranges to take from.
        assert!(matches!(
            s.insert(&private("u4", "d")).await,
            Err(EngineError::Internal(_))
        ));
        // Removal releases the range; once the top of the window is
        // reached, the lowest free one is given again.
        s.delete("u1").await.unwrap();
        let c = s
            .insert_with_ids(&private("u5", "e"), Some(&ids))
            .await
            .unwrap();
        assert_eq!(c, a);
        // Until then, the one above the highest in use.
        let wide = UsernsIds {
            base: 1_000_000,
            count: 4,
        };
        s.delete("u5").await.unwrap();
        let d = s
            .insert_with_ids(&private("u6", "f"), Some(&wide))
            .await
            .unwrap();
        assert_eq!(
            d,
            Some(IdRange {
                host_id: 1_000_000 + 2 * size,
                size
            })
        );
        // Start-up finds nothing to fix.
        assert_eq!(s.userns_reconcile(&ids).await.unwrap(), (0, 0));
    }
}
