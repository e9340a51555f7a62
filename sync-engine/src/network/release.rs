//! The removal path's networking: the container's namespace leaves its
//! network (its veth end off the bridge, its firewall entries and proxies
//! gone) before its address is released with its row; the namespace goes
//! back to the pool in the background once the row is gone.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::Container;
use std::sync::Arc;

/// A namespace taken off its container, held until the container's row is
/// deleted: the row names it (netns_slot is unique), so a start given it
/// back before then could not record it. Given back with `give_back`; if
/// dropped instead (the row could not be deleted), destroyed.
#[must_use]
pub(crate) struct Released {
    shared: Arc<Shared>,
    slot: Option<quilt_network::pool::Slot>,
    tainted: bool,
}

impl Released {
    /// The row is gone: the namespace goes back to the pool.
    pub fn give_back(mut self) {
        if let Some(slot) = self.slot.take() {
            self.shared.net().give_back(slot, self.tainted);
        }
    }
}

impl Drop for Released {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.shared.net().give_back(slot, true);
        }
    }
}

pub(crate) async fn release(shared: &Arc<Shared>, c: &Container) -> Result<Released> {
    let tainted = super::can_change_netns(c) || shared.store().slot_tainted(&c.id).await?;
    // Under the network lock: an egress policy update that raced this
    // removal either ran before (its rules go now) or finds no namespace.
    let _serial = shared.net_lock().lock().await;
    let (net, id, sh) = (shared.net().clone(), c.id.clone(), shared.clone());
    // The guard is made where the slot is taken: a removal cancelled while
    // it waits destroys the slot instead of losing it.
    let released = tokio::task::spawn_blocking(move || {
        net.take_off(&id).map(|slot| Released {
            shared: sh,
            slot,
            tainted,
        })
    })
    .await??;
    Ok(released)
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
