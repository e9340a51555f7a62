//! The engine's side of the networks' resolvers (`quilt_network::dns`):
//! each bridge network's resolver started with its bridge and stopped with
//! the network; a container's names (its name, short id and aliases) put
//! in when its row (and address) is inserted, before create returns,
//! changed by a rename, taken out at its removal before its address is
//! released, and all of them rebuilt from the database at start-up. None
//! of it is on the start path.
use crate::engine::Shared;
use crate::error::Result;
use crate::model::{Container, Network};
use crate::support::ids;
use quilt_network::NetworkDef;
use quilt_network::dns::{DNS_PORT, Member};
use std::net::SocketAddr;
use std::sync::Arc;

/// Starts the resolver of each of `defs` that does not run yet (on port
/// 53 of its gateway; the bridges must be up).
pub(crate) async fn start(shared: &Shared, defs: &[NetworkDef]) -> Result<()> {
    for d in defs {
        let at = SocketAddr::new(d.subnet.gateway().into(), DNS_PORT);
        shared.net().dns().start(&d.name, at, d.internal).await?;
    }
    Ok(())
}

/// Stops a removed network's resolver and forgets its names.
pub(crate) async fn drop_network(shared: &Shared, name: &str) {
    shared.net().dns().drop_network(name).await;
}

fn member(
    network: &str,
    id: &str,
    name: &str,
    aliases: &[String],
    ip: std::net::Ipv4Addr,
) -> Member {
    let mut names = vec![name.to_owned(), ids::short(id).to_owned()];
    names.extend(aliases.iter().cloned());
    Member {
        network: network.to_owned(),
        owner: id.to_owned(),
        names,
        ip,
    }
}

/// Puts `c`'s names in (create, rename). Nothing for a container without
/// an address of its own.
pub(crate) fn insert(shared: &Shared, c: &Container) {
    if let (Network::Bridge, Some(ip)) = (c.network, c.net.address) {
        shared
            .net()
            .dns()
            .insert(member(&c.net.network, &c.id, &c.name, &c.net.aliases, ip));
    }
}

/// Takes `id`'s names out (removal).
pub(crate) fn remove(shared: &Shared, id: &str) {
    shared.net().dns().remove(id);
}

/// Start-up: every name from the database.
pub(crate) async fn rebuild(shared: &Arc<Shared>) -> Result<()> {
    let members = shared
        .store()
        .network_records(shared.node())
        .await?
        .into_iter()
        .map(|(net, id, name, aliases, ip)| member(&net, &id, &name, &aliases, ip))
        .collect();
    shared.net().dns().replace(members);
    Ok(())
}
