//! The lease: renewed every third of its length. A renewal that finds this
//! node marked down (it was away longer than its lease: its containers
//! were declared lost) adopts again what still runs here and records what
//! ended. Each tick also ends the leases of other nodes that ran out.
use super::lease_ns;
use crate::engine::Shared;
use crate::model::{ListFilter, State};
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn run(shared: Arc<Shared>) {
    let lease = shared
        .cfg()
        .cluster
        .as_ref()
        .map_or(crate::config::DEFAULT_NODE_LEASE, |c| c.lease);
    let period = (lease / 3).max(Duration::from_millis(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.is_closing() {
            return;
        }
        renew(&shared).await;
        expire(&shared).await;
    }
}

async fn renew(shared: &Arc<Shared>) {
    let Some(me) = shared.node() else { return };
    let Ok(Some(spec)) = super::spec(shared).await else {
        return;
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
                return;
            }
        },
        Err(e) => {
            tracing::warn!(node = me, error = %e, "cannot renew this node's lease");
            return;
        }
    };
    if was_down {
        tracing::warn!(
            node = me,
            "this node's lease had run out: adopting its lost containers"
        );
        if let Err(e) = super::end_moved(shared).await {
            tracing::warn!(error = %e, "cannot end the containers placed elsewhere meanwhile");
        }
        adopt_lost(shared).await;
    }
}

/// Adopts this node's lost containers again (their supervisors may still
/// run), as start-up reconciliation does.
async fn adopt_lost(shared: &Arc<Shared>) {
    let filter = ListFilter {
        states: vec![State::Lost],
        node: shared.node().map(str::to_owned),
        ..Default::default()
    };
    match shared.store().list(&filter).await {
        Ok(lost) => {
            for c in lost {
                if let Err(e) = crate::services::reconcile::one(shared, &c).await {
                    tracing::error!(container = %c.id, error = %e, "cannot adopt a lost container");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list this node's lost containers"),
    }
}

async fn expire(shared: &Arc<Shared>) {
    match shared.store().nodes_expire().await {
        Ok(x) if !x.nodes.is_empty() => {
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
