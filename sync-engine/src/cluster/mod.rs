//! This daemon as a node of a cluster: quiltd daemons sharing one
//! PostgreSQL database (`--database postgres://...`). Each node registers
//! itself and renews a lease (`lease.rs`); any node ends the leases that
//! ran out (their containers become `lost`, queued starts and restartable
//! lost containers go to live nodes). A create is placed on a live node in
//! the API (`api::containers`) and stored with it; the node it went to
//! hears of it through a notification (`listen.rs`) and takes the start
//! into its own queue. Calls that act on a container's host are served by
//! its node (`Shared::resolve_here`; the gRPC server forwards them).
mod events;
mod lease;
mod listen;

use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, NodeSpec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// This node's events waiting to be sent to the other nodes, at most.
pub(crate) const OUTBOX: usize = 4096;

/// Registers this node (before reconciliation: its lease is live while it
/// adopts what still runs here). No-op on a daemon of its own.
pub(crate) async fn join(shared: &Arc<Shared>) -> Result<()> {
    let Some(spec) = spec(shared).await? else {
        return Ok(());
    };
    let lease = lease_ns(shared);
    let was_down = shared.store().node_register(&spec, lease).await?;
    tracing::info!(node = %spec.name, id = %spec.id, address = %spec.address, was_down, "joined the cluster");
    let moved = end_moved(shared, true).await?;
    if moved > 0 {
        tracing::warn!(
            moved,
            "ended copies of containers placed elsewhere while this node was away"
        );
    }
    Ok(())
}

/// Ends the containers this host still has that the cluster placed on
/// another node while this one was away (its lease ran out: a restart
/// policy or a user's start placed them afresh): their workload must not
/// run twice. Their processes are killed with their cgroup, and their
/// directory removed; the row is the other node's and stays. With
/// `orphans` (at start-up, before the warm pools fill), a directory whose
/// row is gone (removed elsewhere meanwhile) is ended too: on a daemon of
/// its own, only those (a create's start that ran ahead of its insert
/// when the daemon died, see `services::starter::direct_start`).
pub(crate) async fn end_moved(shared: &Arc<Shared>, orphans: bool) -> Result<usize> {
    let me = shared.node().map(str::to_owned);
    if me.is_none() && !orphans {
        return Ok(0);
    }
    let dir = shared.cfg().containers_dir();
    let ids = tokio::task::spawn_blocking(move || -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                    .collect()
            })
            .unwrap_or_default()
    })
    .await?;
    let mut ended = 0;
    for id in ids {
        // Rows that name another node, or (at start-up) none: a running
        // node's warm pool has containers without rows; this node's own
        // are reconciled.
        let now_on = match shared.store().get(&id).await? {
            Some(c) if me.is_none() || c.node.is_none() || c.node == me => continue,
            Some(c) => c.node,
            None if orphans => None,
            None => continue,
        };
        end_local_copy(shared, &id).await?;
        match now_on {
            Some(node) => {
                tracing::warn!(container = %id, node = %node, "ended this host's copy of a container placed on another node while it was away")
            }
            None => {
                tracing::warn!(container = %id, "ended a container that has no row (removed while this host was away, or never recorded)")
            }
        }
        ended += 1;
    }
    Ok(ended)
}

/// Ends this host's copy of container `id` (its processes with its
/// cgroup, then its directory) without touching its row: the row is
/// another node's now, or gone.
pub(crate) async fn end_local_copy(shared: &Shared, id: &str) -> Result<()> {
    let spec = quilt_runtime::spec::CgroupSpec {
        layout: shared.layout().clone(),
        path: format!("{}/{}", shared.cfg().cgroup_parent, id),
        limits: Default::default(),
        own_memory: false,
    };
    let dir = shared.cfg().container_dir(id);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = quilt_runtime::cgroup::remove(&spec) {
            tracing::warn!(cgroup = %spec.path, error = %e, "cannot end this host's copy of a container");
        }
        // Its supervisor outlives the workload for a moment and writes the
        // exit record there: a directory not empty yet is tried again for
        // up to a second.
        let mut tries = 0;
        loop {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove this host's copy of a container");
                    break;
                }
                _ => break,
            }
        }
    })
    .await?;
    Ok(())
}

/// Starts the lease renewal, the listener and the publisher of this
/// node's events (after reconciliation).
pub(crate) fn spawn(shared: Arc<Shared>, outbox: tokio::sync::mpsc::Receiver<crate::model::Event>) {
    if shared.node().is_none() {
        return;
    }
    tokio::spawn(lease::run(shared.clone()));
    tokio::spawn(events::publish(shared.clone(), outbox));
    tokio::spawn(listen::run(shared));
}

/// What this node registers: its stable id (kept in DATA_DIR/node-id),
/// name, address, capacity and labels.
async fn spec(shared: &Shared) -> Result<Option<NodeSpec>> {
    let Some(cluster) = shared.cfg().cluster.clone() else {
        return Ok(None);
    };
    let path = shared.cfg().data_dir.join("node-id");
    let id = tokio::task::spawn_blocking(move || node_id(&path)).await??;
    let memory_mb = tokio::task::spawn_blocking(total_memory_mb).await?;
    Ok(Some(NodeSpec {
        id,
        name: cluster.name,
        address: cluster.address,
        cpus: shared.host_cpus() as f64,
        memory_mb,
        labels: cluster.labels,
    }))
}

fn lease_ns(shared: &Shared) -> i64 {
    let lease = shared
        .cfg()
        .cluster
        .as_ref()
        .map_or(crate::config::DEFAULT_NODE_LEASE, |c| c.lease);
    i64::try_from(lease.as_nanos()).unwrap_or(i64::MAX)
}

/// This data dir's node id: made once (random), then kept.
fn node_id(path: &std::path::Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if is_id(s.trim()) => return Ok(s.trim().to_owned()),
        Ok(_) => {
            return Err(EngineError::Internal(format!(
                "{} is not a node id: remove it to make a new one",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(EngineError::internal(
                &format!("read {}", path.display()),
                e,
            ));
        }
    }
    let id = crate::support::ids::new_id()[..32].to_owned();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| EngineError::internal(&format!("write {}", path.display()), e))?;
    Ok(id)
}

fn is_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// MemTotal of the host, in MiB (0 when unknown).
fn total_memory_mb() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// How long a start taken into this node's queue is not taken again (it
/// is still queued in the table until the starter begins it).
const TAKEN_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// The starts taken into this node's queue lately (one per engine, in
/// `Shared`).
#[derive(Debug, Default)]
pub(crate) struct Taken(Mutex<HashMap<String, Instant>>);

impl Taken {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Those of `ids` not taken within TAKEN_FOR, now recorded as taken.
    fn fresh(&self, ids: Vec<String>) -> Vec<String> {
        let mut taken = self.lock();
        taken.retain(|_, at| at.elapsed() < TAKEN_FOR);
        ids.into_iter()
            .filter(|id| taken.insert(id.clone(), Instant::now()).is_none())
            .collect()
    }
}

/// Records a start this node pushed into its queue itself (a create placed
/// here, a restart), so that taking the queued starts does not push it
/// again.
pub(crate) fn note_taken(shared: &Shared, id: &str) {
    if shared.node().is_some() {
        shared.taken().lock().insert(id.to_owned(), Instant::now());
    }
}

/// Pushes the queued starts placed on this node into its start queue,
/// each once (a start pushed twice would only be skipped by the starter's
/// guarded begin, but would take room in the queue).
pub(crate) async fn take_queued(shared: &Arc<Shared>) -> Result<usize> {
    let Some(me) = shared.node() else {
        return Ok(0);
    };
    let ids = shared.store().queued_on(me).await?;
    let fresh = shared.taken().fresh(ids);
    let n = fresh.len();
    for id in fresh {
        shared.queue().push(id).await?;
    }
    Ok(n)
}

/// A lost container of this node whose supervisor still runs (same pid,
/// same start time) is taken back: running, or paused when its cgroup is
/// frozen. False when its supervisor is gone (its monitor records the end)
/// or it never had one or is being adopted from a warm pool (a start in
/// flight records it; an adoption is taken back once it has ended).
pub(crate) async fn take_back(shared: &Arc<Shared>, c: &Container) -> Result<bool> {
    let (Some(pid), Some(start)) = (c.shim_pid, c.shim_start_time) else {
        return Ok(false);
    };
    if shared.live(&c.id).is_adopting() {
        return Ok(false);
    }
    let spec = shared.cgroup_spec(c);
    let (alive, frozen) = tokio::task::spawn_blocking(move || {
        let alive = quilt_runtime::proc::start_time(pid) == Some(start);
        (
            alive,
            alive && quilt_runtime::cgroup::is_frozen(&spec).unwrap_or(false),
        )
    })
    .await?;
    if !alive {
        return Ok(false);
    }
    let found = shared.store().set_found(&c.id, frozen).await?;
    if found && let Some(now) = shared.store().get(&c.id).await? {
        let action = if frozen { "paused" } else { "running" };
        shared.emit(&now, now.state, action, None, None);
    }
    Ok(found)
}

/// A start of a lost container (its node is down): it is placed on a live
/// node afresh and queued there. Returns the row as stored.
pub(crate) async fn start_lost(shared: &Arc<Shared>, c: Container) -> Result<Container> {
    let Some(me) = shared.node() else {
        return Err(EngineError::FailedPrecondition(format!(
            "container {} is lost and this quiltd is not a node of a cluster",
            c.name
        )));
    };
    let node = shared
        .store()
        .place(None, &c.node_labels)
        .await?
        .ok_or_else(|| EngineError::Unavailable("no node of the cluster is up".into()))?;
    if !shared.store().replace_lost(&c.id, &node).await? {
        return Err(EngineError::FailedPrecondition(format!(
            "container {} changed state; try again",
            c.name
        )));
    }
    // Another node was told by the same transaction.
    if node == me {
        note_taken(shared, &c.id);
        shared.queue().push(c.id.clone()).await?;
    }
    shared
        .store()
        .get(&c.id)
        .await?
        .ok_or_else(|| EngineError::no_such_container(&c.id))
}
