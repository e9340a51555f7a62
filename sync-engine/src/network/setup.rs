//! The start path's networking: a namespace for the container (its own
//! from an earlier start, or one from the pool), put on its network, its
//! egress policy put in force, its published ports opened, and its hosts
//! and resolv.conf rendered. Returns what the shim needs: the namespace to
//! join and the files to mount (written by the launch, see
//! `hosts::for_launch`).
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
    /// The hosts and resolv.conf to write (their mounts then follow
    /// `mounts`), on the launch's blocking thread; None: written already
    /// (their mounts are in `mounts`).
    pub files: Option<super::hosts::Files>,
}

/// `recorded`: the slot the change to `starting` recorded (see
/// [`early_slot`]), which needs no record of its own.
pub(crate) async fn prepare(
    shared: &Arc<Shared>,
    c: &Container,
    recorded: Option<&str>,
) -> Result<Prepared> {
    let net = shared.net().clone();
    // A namespace of its own: recorded in its row before the shim starts
    // in it (a daemon that dies mid-start must find it there), in parallel
    // with the rest of the set-up, which needs nothing of the record.
    let (netns, slot) = match kind_of(c.network) {
        Some(kind) => {
            let slot = match net.slot_of(&c.id) {
                Some((own, k)) if k == kind && recorded == Some(own.as_str()) => own,
                _ => take(&net, &c.id, kind).await?,
            };
            (net.netns_path(&c.id), Some(slot))
        }
        None if c.network == Network::Container => (Some(joined(shared, c).await?), None),
        None => (None, None),
    };
    let record = async {
        match &slot {
            Some(slot) if recorded != Some(slot.as_str()) => {
                shared.store().slot_set(&c.id, slot).await
            }
            _ => Ok(()),
        }
    };
    let rest = async {
        if c.network == Network::Bridge {
            attach(shared, c).await?;
        }
        let files = super::hosts::for_launch(shared, c).await?;
        if c.network == Network::Bridge {
            super::hosts::refresh(shared, &c.net.network, &c.id).await;
        }
        Ok::<_, EngineError>(files)
    };
    // Both run to their end (a write is not cut half-way); the record's
    // error first.
    let (recorded, files) = tokio::join!(record, rest);
    recorded?;
    let (files, mounts) = match files? {
        Ok(files) => (Some(files), Vec::new()),
        Err(mounts) => (None, mounts),
    };
    Ok(Prepared {
        netns,
        mounts,
        files,
    })
}

/// The kind of namespace of its own a container of `network` gets (none:
/// the host's, or another container's).
fn kind_of(network: Network) -> Option<Kind> {
    match network {
        Network::None => Some(Kind::Plain),
        Network::Bridge => Some(Kind::Veth),
        Network::Host | Network::Container => None,
    }
}

/// A cold start's network namespace, taken before its row changes to
/// `starting` so that the same statement records it (one write less on
/// the start's path than [`prepare`]'s record).
#[derive(Debug)]
pub(crate) struct EarlySlot {
    pub slot: String,
    /// Taken now (the container had none): given back should the start
    /// not begin.
    fresh: bool,
}

/// The namespace container `id` will start in, taken ahead of the change
/// to `starting`. None when its network mode is not known without a read
/// (PostgreSQL, or a stale listing index), when it gets no namespace of its
/// own, when it has one of another kind (its start replaces it, and records
/// that itself), or when none could be taken (its start says why).
pub(crate) async fn early_slot(shared: &Arc<Shared>, id: &str) -> Option<EarlySlot> {
    let kind = kind_of(shared.store().indexed_network(id)?)?;
    let net = shared.net().clone();
    match net.slot_of(id) {
        None => {}
        // Its own, from an earlier start.
        Some((slot, k)) if k == kind => return Some(EarlySlot { slot, fresh: false }),
        Some(_) => return None,
    }
    let slot = take(&net, id, kind).await.ok()?;
    Some(EarlySlot { slot, fresh: true })
}

/// A namespace of `kind` for `owner` (its own when it has one): one the
/// pool has ready, without a trip to the blocking pool, else one made
/// there.
async fn take(net: &Arc<quilt_network::Networking>, owner: &str, kind: Kind) -> Result<String> {
    if let Some(slot) = net.try_take(owner, kind) {
        return Ok(slot);
    }
    let (net, owner) = (net.clone(), owner.to_owned());
    Ok(tokio::task::spawn_blocking(move || net.take(&owner, kind)).await??)
}

/// The namespace a create's start begins in (`c`, not stored yet, has
/// none): one the pool has ready, or None (its start takes one then).
/// Never blocks.
pub(crate) fn ready_slot(shared: &Arc<Shared>, c: &Container) -> Option<EarlySlot> {
    let kind = kind_of(c.network)?;
    let slot = shared.net().try_take(&c.id, kind)?;
    Some(EarlySlot { slot, fresh: true })
}

/// A start that did not begin gives back the namespace taken for it.
pub(crate) async fn give_back_early(shared: &Arc<Shared>, id: &str, early: EarlySlot) {
    if !early.fresh {
        return;
    }
    let (net, id) = (shared.net().clone(), id.to_owned());
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = net.release(&id, false) {
            tracing::warn!(container = %id, error = %e, "cannot give back a namespace taken for a start");
        }
    })
    .await;
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
