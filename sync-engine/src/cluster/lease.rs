//! The lease: renewed every third of its length. A renewal that finds this
//! node marked down (it was away longer than its lease: its containers
//! were declared lost) takes back what still runs here. Every half second,
//! in a task of its own (an expiry waiting on a lock never delays a
//! renewal), this node also ends the leases of other nodes that ran out,
//! so a dead node's containers are declared lost within half a second of
//! its lease's end.
use super::lease_ns;
use crate::engine::Shared;
use crate::model::{ListFilter, State};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the leases of others are checked.
const EXPIRY_CHECK: Duration = Duration::from_millis(500);

fn lease_of(shared: &Shared) -> Duration {
    shared
        .cfg()
        .cluster
        .as_ref()
        .map_or(crate::config::DEFAULT_NODE_LEASE, |c| c.lease)
}

pub(super) async fn run(shared: Arc<Shared>) {
    let lease = lease_of(&shared);
    let period = (lease / 3).max(Duration::from_millis(100));
    // Since when this node has renewed without a miss: it ends other
    // nodes' leases only after a whole lease of its own renewals, so that
    // after the database was down (nobody could renew) every node has had
    // its chance to renew before anyone is declared down.
    let (since_tx, since_rx) = watch::channel(None::<Instant>);
    tokio::spawn(expiry(shared.clone(), since_rx));
    let mut tick = tokio::time::interval(EXPIRY_CHECK.min(period));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed_at: Option<Instant> = None;
    loop {
        tick.tick().await;
        if shared.is_closing() {
            return;
        }
        if renewed_at.is_none_or(|t| t.elapsed() >= period) {
            if renew(&shared).await {
                renewed_at = Some(Instant::now());
                since_tx.send_if_modified(|s| {
                    let first = s.is_none();
                    s.get_or_insert_with(Instant::now);
                    first
                });
                // A start whose notification went astray is taken here.
                if let Err(e) = super::take_queued(&shared).await {
                    tracing::debug!(error = %e, "cannot take the starts placed on this node");
                }
            } else {
                // Try again at the next tick.
                renewed_at = None;
                since_tx.send_replace(None);
            }
        }
    }
}

/// Ends the leases of other nodes that ran out, every half second, while
/// this node has renewed its own for at least a whole lease.
async fn expiry(shared: Arc<Shared>, since: watch::Receiver<Option<Instant>>) {
    let lease = lease_of(&shared);
    let mut tick = tokio::time::interval(EXPIRY_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.is_closing() {
            return;
        }
        let due = since.borrow().is_some_and(|s| s.elapsed() >= lease);
        if due {
            expire(&shared).await;
        }
    }
}

/// Renews this node's lease; false when it could not.
async fn renew(shared: &Arc<Shared>) -> bool {
    let Some(me) = shared.node() else {
        return false;
    };
    let Ok(Some(spec)) = super::spec(shared).await else {
        return false;
    };
    let lease = lease_ns(shared);
    let was_down = match shared.store().node_renew(me, &spec.id, lease).await {
        Ok(Some(d)) => d,
        // Our row is gone, or another node took the name while we were
        // away: register again (refused while that node is live).
        Ok(None) => match shared.store().node_register(&spec, lease).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(node = me, error = %e, "cannot register this node again");
                return false;
            }
        },
        Err(e) => {
            tracing::warn!(node = me, error = %e, "cannot renew this node's lease");
            return false;
        }
    };
    if was_down {
        tracing::warn!(
            node = me,
            "this node's lease had run out: adopting its lost containers"
        );
        if let Err(e) = super::end_moved(shared, false).await {
            tracing::warn!(error = %e, "cannot end the containers placed elsewhere meanwhile");
        }
        adopt_lost(shared).await;
    }
    true
}

/// This node, still running, was declared down meanwhile: its lost
/// containers are running again (their monitors never stopped: an exit
/// meanwhile was recorded, lost or not), and the removals asked meanwhile
/// are carried out.
async fn adopt_lost(shared: &Arc<Shared>) {
    let filter = ListFilter {
        states: vec![State::Lost, State::Removing],
        node: shared.node().map(str::to_owned),
        ..Default::default()
    };
    match shared.store().list(&filter).await {
        Ok(rows) => {
            for c in rows {
                let done = match c.state {
                    State::Lost => super::take_back(shared, &c).await.map(drop),
                    _ => {
                        crate::services::cleanup::spawn_remove(shared.clone(), c.id.clone());
                        Ok(())
                    }
                };
                if let Err(e) = done {
                    tracing::error!(container = %c.id, error = %e, "cannot take a container back");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list this node's lost containers"),
    }
}

async fn expire(shared: &Arc<Shared>) {
    match shared.store().nodes_expire(lease_ns(shared)).await {
        Ok(x) if !(x.nodes.is_empty() && x.replaced.is_empty()) => {
            tracing::warn!(
                nodes = ?x.nodes,
                lost = x.lost.len(),
                placed_elsewhere = x.replaced.len(),
                "leases ran out"
            );
            for id in &x.lost {
                if let Ok(Some(c)) = shared.store().get(id).await {
                    shared.emit(&c, State::Lost, "lost", None, c.failure_reason.clone());
                }
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot end the leases that ran out"),
    }
}
