//! The nodes of a cluster (nodes sharing PostgreSQL): registration, leases
//! (timed by the database's clock, so nodes' clocks may disagree), their
//! expiry (the node's containers become `lost`, queued starts and lost
//! containers whose restart policy asks for it are placed on live nodes),
//! placement (the least loaded live node) and the start queue of a node.
//! With SQLite the table exists and stays empty.
use super::{Db, DbRow, dialect};
use crate::error::{EngineError, Result};
use crate::model::state::from;
use crate::model::{Expired, NodeInfo, NodeSpec, State};
use crate::store::{SqlStore, json, states_sql};
use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::store::START_CHANNEL;

/// States whose containers count as a node's load.
const LOAD: &[State] = &[
    State::Created,
    State::Starting,
    State::Running,
    State::Paused,
];

/// A lost container (`c`) whose restart policy asks for a restart, as a
/// failure would.
static RESTARTABLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "c.state = '{}' AND c.manual_stop = FALSE AND c.auto_remove = FALSE \
         AND (c.restart_policy IN ('always', 'unless-stopped') \
              OR (c.restart_policy = 'on-failure' \
                  AND (c.restart_max = 0 OR c.restart_count < c.restart_max)))",
        State::Lost.as_str()
    )
});

/// A live node: up, and its lease not run out by the database's clock.
static LIVE: LazyLock<String> =
    LazyLock::new(|| format!("n.state = 'up' AND n.lease_until > {}", dialect::NOW_NS));

static NODE_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "n.id, n.name, n.address, n.cpus, n.memory_mb, n.labels, n.started_at, n.renewed_at, \
         n.lease_until, CASE WHEN {} THEN 1 ELSE 0 END AS live, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM containers c \
            WHERE c.node = n.name AND c.state IN ({load})) AS active, \
         (SELECT CAST(COALESCE(SUM(c.memory_mb), 0) AS BIGINT) FROM containers c \
            WHERE c.node = n.name AND c.state IN ({load})) AS reserved_memory_mb, \
         (SELECT CAST(COALESCE(SUM(c.cpus), 0) AS DOUBLE PRECISION) FROM containers c \
            WHERE c.node = n.name AND c.state IN ({load})) AS reserved_cpus",
        *LIVE,
        load = states_sql(LOAD)
    )
});

/// Whether a node's labels include every one of `wanted`.
fn has_labels(node: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| node.get(k) == Some(v))
}

/// `k=v, k=v` for messages.
fn label_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn node_from(r: &DbRow) -> Result<NodeInfo> {
    let labels: String = r.try_get("labels")?;
    let live: i32 = r.try_get("live")?;
    Ok(NodeInfo {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        address: r.try_get("address")?,
        cpus: r.try_get("cpus")?,
        memory_mb: r.try_get("memory_mb")?,
        labels: serde_json::from_str(&labels)
            .map_err(|_| EngineError::Internal("corrupt node row: labels".into()))?,
        up: live == 1,
        started_at_ns: r.try_get("started_at")?,
        renewed_at_ns: r.try_get("renewed_at")?,
        lease_until_ns: r.try_get("lease_until")?,
        active: r.try_get("active")?,
        reserved_memory_mb: r.try_get("reserved_memory_mb")?,
        reserved_cpus: r.try_get("reserved_cpus")?,
    })
}

impl SqlStore<Db> {
    /// Registers this node (or takes its row back after a restart) with a
    /// lease of `lease_ns`. FAILED_PRECONDITION when another node (another
    /// id) holds the name with a live lease. Returns whether its row had
    /// been marked down meanwhile (its containers were declared lost).
    pub async fn node_register(&self, n: &NodeSpec, lease_ns: i64) -> Result<bool> {
        lease_write!(self, |c| {
            let mut tx = c.begin().await?;
            // A data dir is one node: its id under another name is refused
            // (its containers name the old one).
            let named: Option<String> = sqlx::query_scalar("SELECT name FROM nodes WHERE id = $1")
                .bind(&n.id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(old) = named.filter(|old| *old != n.name) {
                return Err(EngineError::FailedPrecondition(format!(
                    "this data dir is node {old:?} of the cluster (its containers name it): start \
                     with --node-name {old}"
                )));
            }
            let sql = format!(
                "SELECT n.id, n.state, CASE WHEN {} THEN 1 ELSE 0 END AS live \
                 FROM nodes n WHERE n.name = $1{}",
                *LIVE,
                dialect::FOR_UPDATE
            );
            let prev = sqlx::query(&sql)
                .bind(&n.name)
                .fetch_optional(&mut *tx)
                .await?;
            let mut was_down = false;
            if let Some(r) = &prev {
                let id: String = r.try_get("id")?;
                let state: String = r.try_get("state")?;
                let live: i32 = r.try_get("live")?;
                if id != n.id && live == 1 {
                    return Err(EngineError::FailedPrecondition(format!(
                        "node name {:?} is held by another live node (id {id}): choose another \
                         --node-name, or wait for its lease to run out",
                        n.name
                    )));
                }
                was_down = state == "down";
            }
            let sql = format!(
                "INSERT INTO nodes (id, name, address, cpus, memory_mb, labels, state, \
                 started_at, renewed_at, lease_until) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'up', {now}, {now}, {now} + $7) \
                 ON CONFLICT (name) DO UPDATE SET id = excluded.id, address = excluded.address, \
                 cpus = excluded.cpus, memory_mb = excluded.memory_mb, labels = excluded.labels, \
                 state = 'up', started_at = excluded.started_at, renewed_at = excluded.renewed_at, \
                 lease_until = excluded.lease_until \
                 WHERE nodes.id = excluded.id OR nodes.lease_until <= {now}",
                now = dialect::NOW_NS
            );
            // Two nodes registering one name at once: the second finds the
            // first's live row and changes nothing.
            let taken = sqlx::query(&sql)
                .bind(&n.id)
                .bind(&n.name)
                .bind(&n.address)
                .bind(n.cpus)
                .bind(n.memory_mb)
                .bind(json(&n.labels))
                .bind(lease_ns)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if taken != 1 {
                return Err(EngineError::FailedPrecondition(format!(
                    "node name {:?} was just taken by another live node: choose another \
                     --node-name, or wait for its lease to run out",
                    n.name
                )));
            }
            tx.commit().await?;
            Ok(was_down)
        })
    }

    /// Renews this node's lease. None when its row is gone or another node
    /// took its name (it must register again); else whether it had been
    /// marked down meanwhile.
    pub async fn node_renew(&self, name: &str, id: &str, lease_ns: i64) -> Result<Option<bool>> {
        static READ: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT state FROM nodes WHERE name = $1 AND id = $2{}",
                dialect::FOR_UPDATE
            )
        });
        static RENEW: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE nodes SET renewed_at = {now}, lease_until = {now} + $3, state = 'up' \
                 WHERE name = $1 AND id = $2",
                now = dialect::NOW_NS
            )
        });
        lease_write!(self, |c| {
            // The row is locked from the read to the commit: an expiry
            // cannot slip in between (it would be missed as "was down").
            let mut tx = c.begin().await?;
            let before: Option<String> = sqlx::query_scalar(&READ)
                .bind(name)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if before.is_some() {
                sqlx::query(&RENEW)
                    .bind(name)
                    .bind(id)
                    .bind(lease_ns)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(before.map(|s| s == "down"))
        })
    }

    /// Every node, by name, with its lease and load.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM nodes n ORDER BY n.name",
            *NODE_COLUMNS
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(node_from).collect()
    }

    /// Where a new container goes: `wanted` if it is live (else
    /// FAILED_PRECONDITION), or the live node with the fewest active
    /// containers (then the least reserved memory, then CPUs, then the
    /// name); either way one whose labels include every one of `labels`.
    /// None when there are no nodes at all (a daemon of its own).
    pub async fn place(
        &self,
        wanted: Option<&str>,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<String>> {
        let all = self.nodes().await?;
        if all.is_empty() {
            return Ok(None);
        }
        let fits = |n: &NodeInfo| has_labels(&n.labels, labels);
        if let Some(w) = wanted {
            return match all.iter().find(|n| n.name == w) {
                Some(n) if !fits(n) => Err(EngineError::FailedPrecondition(format!(
                    "node {w} does not have the labels asked for ({})",
                    label_text(labels)
                ))),
                Some(n) if n.up => Ok(Some(n.name.clone())),
                Some(_) => Err(EngineError::FailedPrecondition(format!(
                    "node {w} is down (its lease ran out): choose another --node"
                ))),
                None => Err(EngineError::NotFound(format!(
                    "no such node: {w} (see `quilt node ls`)"
                ))),
            };
        }
        let candidates: Vec<&NodeInfo> = all.iter().filter(|n| n.up && fits(n)).collect();
        if candidates.is_empty() {
            return Err(if labels.is_empty() {
                EngineError::Unavailable("no node of the cluster is up".into())
            } else {
                EngineError::FailedPrecondition(format!(
                    "no live node has the labels asked for ({})",
                    label_text(labels)
                ))
            });
        }
        Ok(candidates
            .into_iter()
            .min_by(|a, b| {
                a.active
                    .cmp(&b.active)
                    .then(a.reserved_memory_mb.cmp(&b.reserved_memory_mb))
                    .then(a.reserved_cpus.total_cmp(&b.reserved_cpus))
                    .then(a.name.cmp(&b.name))
            })
            .map(|n| n.name.clone()))
    }

    /// The queued starts placed on `node`, oldest first.
    pub async fn queued_on(&self, node: &str) -> Result<Vec<String>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT id FROM containers WHERE node = $1 AND autostart = TRUE \
                 AND state IN ({}) ORDER BY created_at, id",
                states_sql(from::BEGIN_START)
            )
        });
        Ok(sqlx::query_scalar(&SQL)
            .bind(node)
            .fetch_all(&self.reader)
            .await?)
    }

    /// Ends the leases that ran out (by the database's clock), in one
    /// transaction: those nodes are marked down, their running (starting,
    /// paused) containers `lost` with the reason, and their queued starts
    /// placed on the least loaded live node. The lost containers whose
    /// restart policy asks for a restart are placed on a live node too, but
    /// only once their node has been down for `grace_ns` more (a node cut
    /// off for a moment comes back to find them still its own, instead of
    /// running a second copy). The nodes given work are told by a
    /// notification.
    pub async fn nodes_expire(&self, grace_ns: i64) -> Result<Expired> {
        // Checked on a reader first: most checks find nothing, and take
        // nothing from the lease's connection.
        let due = sqlx::query(&format!(
            "SELECT n.name FROM nodes n WHERE (n.state = 'up' AND n.lease_until <= {now}) \
             OR (n.state = 'down' AND n.lease_until <= {now} - $1 AND EXISTS \
                 (SELECT c.id FROM containers c WHERE c.node = n.name AND {restartable})) \
             LIMIT 1",
            now = dialect::NOW_NS,
            restartable = *RESTARTABLE
        ))
        .bind(grace_ns)
        .fetch_optional(&self.reader)
        .await?;
        if due.is_none() {
            return Ok(Expired::default());
        }
        let expired: Expired = lease_write!(self, |c| {
            let mut tx = c.begin().await?;
            let mut out = Expired::default();
            let sql = format!(
                "UPDATE nodes SET state = 'down' WHERE state = 'up' AND lease_until <= {} \
                 RETURNING name",
                dialect::NOW_NS
            );
            out.nodes = sqlx::query_scalar(&sql).fetch_all(&mut *tx).await?;
            let live: Vec<(String, i64, String)> = sqlx::query_as(&format!(
                "SELECT n.name, (SELECT CAST(COUNT(*) AS BIGINT) FROM containers c \
                   WHERE c.node = n.name AND c.state IN ({})) AS active, n.labels \
                 FROM nodes n WHERE {} ORDER BY n.name",
                states_sql(LOAD),
                *LIVE
            ))
            .fetch_all(&mut *tx)
            .await?;
            let mut live: Vec<(String, i64, BTreeMap<String, String>)> = live
                .into_iter()
                .map(|(n, a, l)| (n, a, serde_json::from_str(&l).unwrap_or_default()))
                .collect();
            for node in out.nodes.clone() {
                let reason = format!(
                    "node {node} stopped renewing its lease: what became of the workload is \
                     unknown until the node comes back"
                );
                let lost: Vec<String> = sqlx::query_scalar(&format!(
                    "UPDATE containers SET state = '{}', failure_reason = $2 \
                     WHERE node = $1 AND state IN ({}) RETURNING id",
                    State::Lost.as_str(),
                    states_sql(from::SET_LOST)
                ))
                .bind(&node)
                .bind(&reason)
                .fetch_all(&mut *tx)
                .await?;
                out.lost.extend(lost);
            }
            // Queued starts of down nodes (never begun there: the old node
            // cannot begin them any more, its begin is guarded by the node),
            // and restartable lost containers past the grace.
            let movable: Vec<(String, String, String, Option<String>)> = sqlx::query_as(&format!(
                "SELECT c.id, c.state, c.node, c.node_labels FROM containers c \
                 JOIN nodes n ON n.name = c.node \
                 WHERE n.state = 'down' AND ( \
                   (c.state IN ({queued}) AND c.autostart = TRUE) \
                   OR (n.lease_until <= {now} - $1 AND {restartable})) \
                 ORDER BY c.created_at, c.id",
                queued = states_sql(from::BEGIN_START),
                now = dialect::NOW_NS,
                restartable = *RESTARTABLE
            ))
            .bind(grace_ns)
            .fetch_all(&mut *tx)
            .await?;
            for (id, state, from_node, labels) in movable {
                // A live node that has the labels it asked for, if any.
                let wants: BTreeMap<String, String> = match labels.as_deref() {
                    None => BTreeMap::new(),
                    Some(l) => match serde_json::from_str(l) {
                        Ok(w) => w,
                        Err(e) => {
                            // Unreadable constraints: it is not placed
                            // anywhere it might not belong.
                            tracing::warn!(container = %id, error = %e, "unreadable node labels: not placed again");
                            continue;
                        }
                    },
                };
                let Some(target) = live
                    .iter_mut()
                    .filter(|(_, _, has)| has_labels(has, &wants))
                    .min_by_key(|(_, n, _)| *n)
                else {
                    continue;
                };
                let to = target.0.clone();
                // Guarded again (the rows may have changed since they were
                // read: begun by their node meanwhile, or moved by another
                // node's expiry).
                let sql = if state == State::Lost.as_str() {
                    format!(
                        "UPDATE containers SET node = $2, state = '{}', {}, \
                         restart_count = restart_count + 1 \
                         WHERE id = $1 AND node = $3 AND state = '{}'",
                        State::Created.as_str(),
                        super::containers::RESET,
                        State::Lost.as_str()
                    )
                } else {
                    format!(
                        "UPDATE containers SET node = $2 WHERE id = $1 AND node = $3 \
                         AND state IN ({}) AND autostart = TRUE",
                        states_sql(from::BEGIN_START)
                    )
                };
                let moved = sqlx::query(&sql)
                    .bind(&id)
                    .bind(&to)
                    .bind(&from_node)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if moved == 1 {
                    target.1 += 1;
                    out.replaced.push((id, to));
                }
            }
            let mut told: Vec<&String> = out.replaced.iter().map(|(_, n)| n).collect();
            told.sort();
            told.dedup();
            for node in told {
                if let Some(sql) = dialect::notify(START_CHANNEL, node) {
                    sqlx::query(&sql).bind(node).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(out)
        })?;
        if let Some(index) = &self.index
            && !(expired.nodes.is_empty() && expired.replaced.is_empty())
        {
            index.mark_stale();
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use crate::error::EngineError;
    use crate::model::{Container, CreateSpec, NodeSpec, RestartPolicy, State};
    use std::time::Duration;

    fn node(id: &str, name: &str) -> NodeSpec {
        NodeSpec {
            id: id.into(),
            name: name.into(),
            address: format!("127.0.0.1:{}", 7000 + name.len()),
            cpus: 2.0,
            memory_mb: 1024,
            labels: [("zone".to_string(), name.to_string())].into(),
        }
    }

    fn on(id: &str, node: &str, start: bool) -> Container {
        let mut spec = CreateSpec::new("img");
        spec.command = vec!["true".into()];
        spec.start = start;
        let mut c = Container::new(id.into(), spec, "img".into(), vec![], 1);
        c.node = Some(node.into());
        c
    }

    /// Leases by the database's clock, placement on the least loaded live
    /// node, and what an expiry does: running containers lost with the
    /// reason, queued starts and restartable lost containers placed on a
    /// live node, a returning node told it was down.
    #[tokio::test]
    async fn leases_placement_and_expiry() {
        let (_d, s) = super::super::test_store().await;
        let none = Default::default();
        let zone = |z: &str| -> std::collections::BTreeMap<String, String> {
            [("zone".to_string(), z.to_string())].into()
        };
        let short = Duration::from_millis(300).as_nanos() as i64;
        let long = Duration::from_secs(60).as_nanos() as i64;
        // A daemon of its own has no nodes: nothing is placed.
        assert_eq!(s.place(None, &none).await.unwrap(), None);
        assert!(!s.node_register(&node("aa", "a"), short).await.unwrap());
        assert!(!s.node_register(&node("bb", "b"), long).await.unwrap());
        // The name is held by a live node with another id.
        assert!(matches!(
            s.node_register(&node("cc", "a"), long).await,
            Err(EngineError::FailedPrecondition(_))
        ));
        assert_eq!(s.place(None, &none).await.unwrap().as_deref(), Some("a"));
        assert!(matches!(
            s.place(Some("nope"), &none).await,
            Err(EngineError::NotFound(_))
        ));
        // A container placed on a node that is not registered is refused.
        assert!(matches!(
            s.insert(&on("x0", "ghost", true)).await,
            Err(EngineError::Unavailable(_))
        ));

        s.insert(&on("c1", "a", true)).await.unwrap();
        assert!(s.set_starting("c1", None).await.unwrap().is_some());
        assert!(s.set_running("c1", 10, 9, 1, 5).await.unwrap());
        s.insert(&on("c2", "a", true)).await.unwrap();
        let mut c3 = on("c3", "a", true);
        c3.restart = RestartPolicy::Always;
        s.insert(&c3).await.unwrap();
        assert!(s.set_starting("c3", None).await.unwrap().is_some());
        assert!(s.set_running("c3", 11, 12, 1, 5).await.unwrap());
        // a carries three, b none: b is the least loaded now.
        assert_eq!(s.place(None, &none).await.unwrap().as_deref(), Some("b"));
        // Labels: a has zone=a, b zone=b.
        assert_eq!(
            s.place(None, &zone("a")).await.unwrap().as_deref(),
            Some("a")
        );
        assert!(matches!(
            s.place(Some("b"), &zone("a")).await,
            Err(EngineError::FailedPrecondition(_))
        ));
        assert!(matches!(
            s.place(None, &zone("c")).await,
            Err(EngineError::FailedPrecondition(_))
        ));
        let nodes = s.nodes().await.unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!((nodes[0].name.as_str(), nodes[0].active), ("a", 3));
        assert!(nodes.iter().all(|n| n.up));
        // A queued start that asked for a's label: no other node has it.
        let mut c5 = on("c5", "a", true);
        c5.node_labels = zone("a");
        c5.created_at_ns = 2;
        s.insert(&c5).await.unwrap();
        assert_eq!(s.get("c5").await.unwrap().unwrap().node_labels, zone("a"));
        assert_eq!(s.queued_on("a").await.unwrap(), ["c2", "c5"]);

        // Nothing has run out yet.
        let grace = Duration::from_millis(600).as_nanos() as i64;
        assert_eq!(s.nodes_expire(grace).await.unwrap(), Default::default());
        tokio::time::sleep(Duration::from_millis(400)).await;
        let x = s.nodes_expire(grace).await.unwrap();
        assert_eq!(x.nodes, ["a"]);
        let mut lost = x.lost.clone();
        lost.sort();
        assert_eq!(lost, ["c1", "c3"]);
        // The queued start moves at once; the restartable lost container
        // only after the grace (a node cut off for a moment keeps it).
        assert_eq!(x.replaced, [("c2".to_string(), "b".to_string())]);
        assert_eq!(s.get("c3").await.unwrap().unwrap().state, State::Lost);
        assert_eq!(
            s.get("c5").await.unwrap().unwrap().node.as_deref(),
            Some("a")
        );
        assert_eq!(s.nodes_expire(grace).await.unwrap(), Default::default());
        tokio::time::sleep(Duration::from_millis(700)).await;
        let x = s.nodes_expire(grace).await.unwrap();
        assert!(x.nodes.is_empty() && x.lost.is_empty());
        assert_eq!(x.replaced, [("c3".to_string(), "b".to_string())]);
        // Twice is once.
        assert_eq!(s.nodes_expire(grace).await.unwrap(), Default::default());
        let c1 = s.get("c1").await.unwrap().unwrap();
        assert_eq!((c1.state, c1.node.as_deref()), (State::Lost, Some("a")));
        assert!(c1.failure_reason.unwrap().contains("node a"));
        let c3 = s.get("c3").await.unwrap().unwrap();
        assert_eq!(
            (c3.state, c3.node.as_deref(), c3.restart_count, c3.pid),
            (State::Created, Some("b"), 1, None)
        );
        assert!(c3.is_queued());
        assert_eq!(s.queued_on("b").await.unwrap(), ["c2", "c3"]);
        assert!(matches!(
            s.place(Some("a"), &none).await,
            Err(EngineError::FailedPrecondition(_))
        ));
        assert!(!s.nodes().await.unwrap()[0].up);

        // a comes back: told it was down; c1 was still running there.
        assert_eq!(s.node_renew("a", "aa", long).await.unwrap(), Some(true));
        assert_eq!(s.node_renew("a", "aa", long).await.unwrap(), Some(false));
        assert_eq!(s.node_renew("a", "other", long).await.unwrap(), None);
        assert!(s.set_found("c1", false).await.unwrap());
        assert!(!s.set_found("c1", false).await.unwrap(), "found twice");
        assert_eq!(s.get("c1").await.unwrap().unwrap().state, State::Running);
        // A lost container started again goes where it is placed.
        s.insert(&on("c4", "a", true)).await.unwrap();
        assert!(s.set_starting("c4", None).await.unwrap().is_some());
        assert!(s.set_running("c4", 13, 14, 1, 5).await.unwrap());
        assert!(!s.replace_lost("c4", "b").await.unwrap(), "not lost");
    }
}
