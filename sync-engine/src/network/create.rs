//! A container's network request at create: the mode's rules, its peer
//! (`container:ID`) resolved to an id, its DNS, extra hosts and network
//! aliases checked, its published ports checked and the free host ports
//! chosen. Nothing is stored here; the address is allocated by the
//! insert's transaction.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{CreateSpec, Network};
use quilt_network::dns::{MAX_ALIASES, check_name};
use quilt_network::ports::{self, MAX_PORTS};
use std::sync::Arc;

fn invalid(m: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(m.into())
}

/// At most this many `--dns` and `--add-host` entries.
const MAX_DNS: usize = 8;
const MAX_HOSTS: usize = 256;

pub(crate) async fn check_create(shared: &Arc<Shared>, spec: &mut CreateSpec) -> Result<()> {
    if let Some(p) = &spec.net.egress {
        spec.net.egress = Some(super::egress::check(spec.network, p)?);
    }
    let net = &mut spec.net;
    if net.dns.len() > MAX_DNS {
        return Err(invalid(format!("at most {MAX_DNS} --dns servers")));
    }
    if net.extra_hosts.len() > MAX_HOSTS {
        return Err(invalid(format!("at most {MAX_HOSTS} --add-host entries")));
    }
    for h in &net.extra_hosts {
        host_name(&h.name)?;
    }
    if !net.aliases.is_empty() && spec.network != Network::Bridge {
        return Err(invalid(
            "network aliases (--network-alias) need a bridge network: --network bridge or a network's name",
        ));
    }
    if net.aliases.len() > MAX_ALIASES {
        return Err(invalid(format!("at most {MAX_ALIASES} network aliases")));
    }
    let mut aliases: Vec<String> = Vec::new();
    for a in &net.aliases {
        check_name(a).map_err(|why| {
            invalid(format!(
                "invalid network alias {}: {why}",
                crate::validate::echo(a)
            ))
        })?;
        let a = a.strip_suffix('.').unwrap_or(a).to_owned();
        if !aliases.iter().any(|b| b.eq_ignore_ascii_case(&a)) {
            aliases.push(a);
        }
    }
    net.aliases = aliases;
    if net.ports.len() > MAX_PORTS {
        return Err(invalid(format!("at most {MAX_PORTS} published ports")));
    }
    if !net.ports.is_empty() && spec.network != Network::Bridge {
        return Err(invalid(
            "published ports (-p) need a bridge network: --network bridge or a network's name",
        ));
    }
    match spec.network {
        Network::Bridge => {
            let Some(n) = shared.store().network(&net.network).await? else {
                return Err(EngineError::NotFound(format!(
                    "no such network: {}",
                    crate::validate::echo(&net.network)
                )));
            };
            if n.internal && !net.ports.is_empty() {
                return Err(invalid(format!(
                    "network {} is internal: its containers cannot publish ports",
                    n.name
                )));
            }
            crate::api::networks::activate(shared).await?;
        }
        Network::Container => {
            let peer = shared.store().resolve(&net.peer).await?;
            let peer = match peer.network {
                // Joining a joiner joins the namespace's owner.
                Network::Container => shared.store().resolve(&peer.net.peer).await?,
                _ => peer,
            };
            if peer.network == Network::Host {
                return Err(invalid(format!(
                    "container {} uses the host's network: use --network host",
                    peer.name
                )));
            }
            net.peer = peer.id;
        }
        Network::None | Network::Host => {}
    }
    // Published ports: each checked, no two alike, the host's port free
    // now (or one chosen). The table of bindings has the final say.
    let mut seen: Vec<quilt_network::PortBinding> = Vec::new();
    for p in net.ports.iter_mut() {
        p.check()?;
        let (ip, port, proto) = (p.host_ip, p.host_port, p.proto);
        p.host_port = tokio::task::spawn_blocking(move || ports::probe(ip, port, proto)).await??;
        if seen.iter().any(|s| s.clashes(p)) {
            return Err(invalid(format!(
                "host port {}:{}/{} is published twice",
                p.host_ip,
                p.host_port,
                p.proto.as_str()
            )));
        }
        seen.push(*p);
    }
    Ok(())
}

/// A name of `--add-host`: letters, digits, '-', '.', '_', at most 253.
fn host_name(n: &str) -> Result<()> {
    if n.is_empty()
        || n.len() > 253
        || n.starts_with('-')
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(invalid(format!(
            "invalid --add-host name {}: letters, digits, '-', '.' and '_'",
            crate::validate::echo(n)
        )));
    }
    Ok(())
}
