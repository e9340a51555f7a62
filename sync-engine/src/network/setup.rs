//! The start path's networking: a namespace for the container (its own
//! from an earlier start, or one from the pool), put on its network, its
//! egress policy put in force, its published ports opened, and its hosts and resolv.conf written. Returns
//! what the shim needs: the namespace to join and the files to mount.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, Network, State};
use quilt_network::Kind;
use quilt_runtime::mounts::MountConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// What the shim gets.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    pub netns: Option<PathBuf>,
    pub mounts: Vec<MountConfig>,
}

pub(crate) async fn prepare(shared: &Arc<Shared>, c: &Container) -> Result<Prepared> {
    let net = shared.net().clone();
    // A namespace of its own: recorded in its row before the shim starts
    // in it (a daemon that dies mid-start must find it there), in parallel
    // with the rest of the set-up, which needs nothing of the record.
    let (netns, slot) = match c.network {
        Network::Host => (None, None),
        Network::None | Network::Bridge => {
            let kind = if c.network == Network::Bridge {
                Kind::Veth
            } else {
                Kind::Plain
            };
            let (n, id) = (net.clone(), c.id.clone());
            let slot = tokio::task::spawn_blocking(move || n.take(&id, kind)).await??;
            (net.netns_path(&c.id), Some(slot))
        }
        Network::Container => (Some(joined(shared, c).await?), None),
    };
    let record = async {
        match &slot {
            Some(slot) => shared.store().slot_set(&c.id, slot).await,
            None => Ok(()),
        }
    };
    let rest = async {
        if c.network == Network::Bridge {
            attach(shared, c).await?;
        }
        let mounts = super::hosts::write(shared, c).await?;
        if c.network == Network::Bridge {
            super::hosts::refresh(shared, &c.net.network, &c.id).await;
        }
        Ok::<_, EngineError>(mounts)
    };
    // Both run to their end (a write is not cut half-way); the record's
    // error first.
    let (recorded, mounts) = tokio::join!(record, rest);
    recorded?;
    Ok(Prepared {
        netns,
        mounts: mounts?,
    })
}

/// Puts `c`'s namespace on its bridge network: its address, its egress
/// policy, its published ports.
async fn attach(shared: &Arc<Shared>, c: &Container) -> Result<()> {
    let net = shared.net().clone();
    let info = shared
        .store()
        .network(&c.net.network)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no such network: {}", c.net.network)))?;
    let ip = c
        .net
        .address
        .ok_or_else(|| EngineError::Internal(format!("container {} has no address", c.name)))?;
    let (n, id, def, ports) = (net.clone(), c.id.clone(), info.def(), c.net.ports.clone());
    tokio::task::spawn_blocking(move || n.attach(&id, &def, ip, &ports)).await??;
    super::egress::apply(shared, c).await?;
    net.proxies().open(&c.id, ip, &c.net.ports).await?;
    Ok(())
}

/// The namespace of the running container whose network `c` shares
/// (tainted: what `c` does there stays when that container's goes).
async fn joined(shared: &Arc<Shared>, c: &Container) -> Result<PathBuf> {
    let peer = shared.store().get(&c.net.peer).await?.ok_or_else(|| {
        EngineError::FailedPrecondition(format!(
            "container {} shares the network of a container that was removed",
            c.name
        ))
    })?;
    if peer.state != State::Running {
        return Err(EngineError::FailedPrecondition(format!(
            "container {} must be running to share its network: start it first",
            peer.name
        )));
    }
    shared.store().slot_taint(&peer.id).await?;
    shared.net().netns_path(&peer.id).ok_or_else(|| {
        EngineError::FailedPrecondition(format!(
            "container {} has no network namespace to share",
            peer.name
        ))
    })
}
