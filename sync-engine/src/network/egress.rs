//! Egress policies on the engine's side: checked at create and on update
//! (bridge networks only: host, none and container modes have no egress
//! of their own to police, so a policy there is refused), put in force on
//! the start path from the stored row (so a pooled namespace gets the
//! policy of the container it now serves, never an earlier one's), changed
//! live by `UpdateNetworkPolicy`, and taken again from the database at
//! start-up. Removal takes it away with the container's firewall entries
//! (`Networking::release`). The stored policy and the one in force change
//! under the network lock, so a start and an update never cross.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, Network};
use quilt_network::EgressPolicy;
use std::sync::Arc;

/// The policy checked for a container of mode `mode` (canonical entries).
pub(crate) fn check(mode: Network, policy: &EgressPolicy) -> Result<EgressPolicy> {
    if mode != Network::Bridge {
        let m = match mode {
            Network::Host => "host",
            Network::None => "none",
            _ => "container:ID",
        };
        return Err(EngineError::InvalidArgument(format!(
            "an egress policy needs a bridge network (--network bridge or a network's name): \
             --network {m} has no egress of its own to police"
        )));
    }
    Ok(policy.checked()?)
}

/// Puts the stored policy of `c` in force (or none), once its namespace is
/// on its network. Blocking work off the reactor.
pub(crate) async fn apply(shared: &Arc<Shared>, c: &Container) -> Result<()> {
    let (Network::Bridge, Some(ip)) = (c.network, c.net.address) else {
        return Ok(());
    };
    let _serial = shared.net_lock().lock().await;
    let policy = shared.store().egress_of(&c.id).await?;
    let net = shared.net().clone();
    if policy.is_none() && !net.has_egress(&c.id) {
        return Ok(());
    }
    let info = shared
        .store()
        .network(&c.net.network)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no such network: {}", c.net.network)))?;
    if policy.is_some() {
        net.egress_proxy().start()?;
    }
    let id = c.id.clone();
    tokio::task::spawn_blocking(move || {
        net.set_egress(&id, ip, info.subnet, policy.as_ref(), true)
    })
    .await??;
    Ok(())
}

/// Replaces the policy of `c` (stored, then in force if its namespace is
/// on its network). Returns the policy as stored.
pub(crate) async fn update(
    shared: &Arc<Shared>,
    c: &Container,
    policy: &EgressPolicy,
) -> Result<EgressPolicy> {
    let policy = check(c.network, policy)?;
    let _serial = shared.net_lock().lock().await;
    if !shared.store().egress_set(&c.id, Some(&policy)).await? {
        return Err(EngineError::NotFound(format!(
            "no such container: {}",
            c.name
        )));
    }
    let net = shared.net().clone();
    let Some(ip) = c.net.address else {
        return Ok(policy);
    };
    if net.slot_id(&c.id).is_none() {
        // Not started yet: its start puts the stored policy in force.
        return Ok(policy);
    }
    let info = shared
        .store()
        .network(&c.net.network)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no such network: {}", c.net.network)))?;
    net.egress_proxy().start()?;
    let (id, p) = (c.id.clone(), policy.clone());
    tokio::task::spawn_blocking(move || net.set_egress(&id, ip, info.subnet, Some(&p), true))
        .await??;
    Ok(policy)
}
