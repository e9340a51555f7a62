//! The start path's networking: a namespace for the container (its own
//! from an earlier start, or one from the pool), put on its network, its
//! published ports opened, and its hosts and resolv.conf written. Returns
//! what the shim needs: the namespace to join and the files to mount.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, Network, State};
use quilt_network::{Kind, files};
use quilt_runtime::mounts::{MountConfig, MountKind};
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
    let netns = match c.network {
        Network::Host => None,
        Network::None | Network::Bridge => {
            let kind = if c.network == Network::Bridge { Kind::Veth } else { Kind::Plain };
            let (n, id) = (net.clone(), c.id.clone());
            let slot = tokio::task::spawn_blocking(move || n.take(&id, kind)).await??;
            shared.store().slot_set(&c.id, &slot).await?;
            if c.network == Network::Bridge {
                let info = shared.store().network(&c.net.network).await?.ok_or_else(|| {
                    EngineError::NotFound(format!("no such network: {}", c.net.network))
                })?;
                let ip = c.net.address.ok_or_else(|| {
                    EngineError::Internal(format!("container {} has no address", c.name))
                })?;
                let (n, id, def, ports) = (net.clone(), c.id.clone(), info.def(), c.net.ports.clone());
                tokio::task::spawn_blocking(move || n.attach(&id, &def, ip, &ports)).await??;
                net.proxies().open(&c.id, ip, &c.net.ports).await?;
            }
            net.netns_path(&c.id)
        }
        Network::Container => {
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
            Some(net.netns_path(&peer.id).ok_or_else(|| {
                EngineError::FailedPrecondition(format!(
                    "container {} has no network namespace to share",
                    peer.name
                ))
            })?)
        }
    };
    let mounts = write_files(shared, c).await?;
    Ok(Prepared { netns, mounts })
}

/// The container's address as its own names resolve to (its peer's when
/// it shares one).
async fn own_address(shared: &Arc<Shared>, c: &Container) -> Result<Option<std::net::Ipv4Addr>> {
    Ok(match c.network {
        Network::Bridge => c.net.address,
        Network::Container => shared.store().get(&c.net.peer).await?.and_then(|p| p.net.address),
        _ => None,
    })
}

async fn write_files(shared: &Arc<Shared>, c: &Container) -> Result<Vec<MountConfig>> {
    let addr = own_address(shared, c).await?;
    let dir = shared.cfg().container_dir(&c.id);
    let (name, hostname, net) = (c.name.clone(), c.hostname.clone(), c.net.clone());
    let host_net = c.network == Network::Host;
    // Files a user mounts there themselves win.
    let taken = |t: &str| c.mounts.iter().any(|m| m.target == t);
    let (want_hosts, want_resolv) = (!taken("/etc/hosts"), !taken("/etc/resolv.conf"));
    tokio::task::spawn_blocking(move || -> Result<Vec<MountConfig>> {
        let io = |what: String| move |e: std::io::Error| EngineError::internal(&what, e);
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let dir = std::fs::canonicalize(&dir).map_err(io(format!("canonicalize {}", dir.display())))?;
        let mut mounts = Vec::new();
        let mut put = |file: &str, target: &str, text: String| -> Result<()> {
            let p = dir.join(file);
            std::fs::write(&p, text).map_err(io(format!("write {}", p.display())))?;
            mounts.push(MountConfig {
                target: target.into(),
                read_only: true,
                kind: MountKind::Bind { source: p, create: false },
            });
            Ok(())
        };
        if want_hosts {
            put("hosts", "/etc/hosts", files::hosts(&[&hostname, &name], addr, &net.extra_hosts))?;
        }
        if want_resolv {
            // The hook of the name service to come: a network's own
            // resolver (on the gateway) would be written here instead.
            let (servers, search) = if net.dns.is_empty() {
                let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                files::host_nameservers(&host, host_net)
            } else {
                (net.dns.iter().map(|d| d.to_string()).collect(), Vec::new())
            };
            put("resolv.conf", "/etc/resolv.conf", files::resolv_conf(&servers, &search))?;
        }
        Ok(mounts)
    })
    .await?
}
