//! The removal path's networking: the container's namespace leaves its
//! network (its veth end off the bridge, its firewall entries and proxies
//! gone) before its address is released with its row; the namespace goes
//! back to the pool in the background.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::Container;
use std::sync::Arc;

pub(crate) async fn release(shared: &Arc<Shared>, c: &Container) -> Result<()> {
    let tainted = super::can_change_netns(c) || shared.store().slot_tainted(&c.id).await?;
    // Under the network lock: an egress policy update that raced this
    // removal either ran before (its rules go now) or finds no namespace.
    let _serial = shared.net_lock().lock().await;
    let (net, id) = (shared.net().clone(), c.id.clone());
    tokio::task::spawn_blocking(move || net.release(&id, tainted)).await??;
    Ok(())
}

/// A container whose namespace others share is not removed before them
/// (unless forced: then they lose all but loopback).
pub(crate) async fn refuse_joined(shared: &Arc<Shared>, c: &Container) -> Result<()> {
    let joiners: Vec<String> = shared.store().joiners(&c.id).await?.into_iter().collect();
    if !joiners.is_empty() {
        return Err(EngineError::FailedPrecondition(format!(
            "container {} shares its network with {}: remove them first or force the removal (rm -f)",
            c.name,
            joiners.join(", ")
        )));
    }
    Ok(())
}
