//! When quiltd starts: the default network stored (its subnet chosen once),
//! every network's bridge present, the namespaces containers hold taken
//! back (put on their networks again), the ruleset replaced with their
//! entries and egress policies (from the database), leftovers of a crashed daemon removed (unused namespaces
//! cleaned for the pool or deleted, stray bridges and veth ends deleted),
//! the networks' resolvers started with their names rebuilt, and the
//! published ports' proxies opened again.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{DEFAULT_NETWORK, Network, NetworkInfo, now_ns};
use quilt_network::{Networking, Subnet, entries_for, names::random_hex};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) async fn startup(shared: &Arc<Shared>) -> Result<()> {
    let net = shared.net().clone();
    ensure_default(shared, &net).await?;
    let nets = shared.store().networks().await?;
    let defs: Vec<_> = nets.iter().map(NetworkInfo::def).collect();
    // Bridge networking is set up again only where it was in use: a daemon
    // whose containers never used a bridge leaves its namespace alone.
    let in_use = nets
        .iter()
        .any(|n| n.name != DEFAULT_NETWORK || !n.containers.is_empty())
        || {
            let n = net.clone();
            tokio::task::spawn_blocking(move || n.default_bridge_exists()).await??
        };
    if in_use {
        let (n, defs) = (net.clone(), defs.clone());
        // The bridges first (slots are put back on them); the ruleset
        // once it can carry the running containers' entries.
        tokio::task::spawn_blocking(move || n.ensure_bridges(&defs)).await??;
    }

    let mut owned = BTreeMap::new();
    let mut with_ports = Vec::new();
    let mut with_policy = false;
    for (cid, slot, _) in shared.store().slots(shared.node()).await? {
        let Some(c) = shared.store().get(&cid).await? else {
            continue;
        };
        let on = match (c.network, c.net.address) {
            (Network::Bridge, Some(ip)) => nets
                .iter()
                .find(|n| n.name == c.net.network)
                .map(|n| (n.def(), ip)),
            _ => None,
        };
        let (n, id, s, on2) = (net.clone(), cid.clone(), slot.clone(), on.clone());
        let adopted = tokio::task::spawn_blocking(move || {
            n.adopt(&id, &s, on2.as_ref().map(|(d, ip)| (d, *ip)))
        })
        .await?;
        match adopted {
            Ok(()) => {
                if let Some((def, ip)) = &on
                    && let Some(p) = &c.net.egress
                {
                    // Carried by the ruleset replaced below.
                    let (n, id, ip, subnet, p) =
                        (net.clone(), cid.clone(), *ip, def.subnet, p.clone());
                    let recorded = tokio::task::spawn_blocking(move || {
                        n.set_egress(&id, ip, subnet, Some(&p), false)
                    })
                    .await?;
                    match recorded {
                        Ok(()) => with_policy = true,
                        Err(e) => {
                            tracing::warn!(container = %cid, error = %e, "its egress policy cannot be put in force")
                        }
                    }
                }
                if let Some((_, ip)) = on {
                    owned.insert(
                        cid.clone(),
                        entries_for(&net.names().veth(&slot[1..]), ip, &c.net.ports),
                    );
                    if !c.net.ports.is_empty() {
                        with_ports.push((cid.clone(), ip, c.net.ports.clone()));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(container = %cid, slot = %slot, error = %e, "its network namespace is gone; it gets a new one at its next start");
                shared.store().slot_clear(&cid).await?;
            }
        }
    }
    {
        let (n, defs) = (net.clone(), defs.clone());
        let bridges: Vec<String> = defs.iter().map(|d| d.bridge.clone()).collect();
        tokio::task::spawn_blocking(move || -> Result<()> {
            if in_use {
                n.sync_with(&defs, Some(owned))?;
            }
            n.adopt_unused();
            n.remove_strays(&bridges, &n.slot_files())?;
            Ok(())
        })
        .await??;
    }
    if with_policy {
        net.egress_proxy().start()?;
    }
    // The names first, then the resolvers that answer them.
    super::dns::rebuild(shared).await?;
    if in_use && let Err(e) = super::dns::start(shared, &defs).await {
        tracing::warn!(error = %e, "cannot start the networks' resolvers");
    }
    for (cid, ip, ports) in with_ports {
        if let Err(e) = net.proxies().open(&cid, ip, &ports).await {
            tracing::warn!(container = %cid, error = %e, "cannot open its published ports again");
        }
    }
    Ok(())
}

/// Stores the default network on first use: `--default-subnet`, or a free
/// one (the daemon's tag chooses where the search starts).
async fn ensure_default(shared: &Arc<Shared>, net: &Arc<Networking>) -> Result<()> {
    let want = shared.cfg().network.default_subnet.clone();
    if let Some(n) = shared.store().network(DEFAULT_NETWORK).await? {
        if let Some(w) = want
            && w != n.subnet.to_string()
        {
            tracing::warn!(stored = %n.subnet, asked = %w, "the default network keeps the subnet it was made with");
        }
        return Ok(());
    }
    let taken: Vec<_> = shared
        .store()
        .networks()
        .await?
        .iter()
        .map(NetworkInfo::def)
        .collect();
    let start = usize::from_str_radix(net.names().tag(), 16).unwrap_or(0);
    let subnet = match want {
        Some(s) => {
            let s = Subnet::parse(&s)?;
            let (n, t) = (net.clone(), taken.clone());
            tokio::task::spawn_blocking(move || n.check_subnet(&s, &t)).await??;
            s
        }
        None => {
            let (n, t) = (net.clone(), taken);
            tokio::task::spawn_blocking(move || n.free_subnet(&t, start)).await??
        }
    };
    let info = NetworkInfo {
        name: DEFAULT_NETWORK.into(),
        id: random_hex(12),
        bridge: net.names().default_bridge().to_owned(),
        subnet,
        internal: false,
        created_at_ns: now_ns(),
        containers: Vec::new(),
    };
    shared
        .store()
        .network_insert(&info)
        .await
        .map_err(|e| match e {
            EngineError::FailedPrecondition(m) => EngineError::Internal(m),
            e => e,
        })
}
