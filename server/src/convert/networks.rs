//! quilt.v1.NetworkService messages, and a container's network request and
//! settings.
use super::ts;
use quilt_proto::v1 as pb;
use quilt_sync_engine::{
    Container, HostEntry, NetSettings, Network, NetworkInfo, PortBinding, PortProto,
};
use std::net::Ipv4Addr;
use tonic::Status;

pub fn network(n: &NetworkInfo) -> pb::NetworkInfo {
    pb::NetworkInfo {
        name: n.name.clone(),
        id: n.id.clone(),
        subnet: n.subnet.to_string(),
        gateway: n.gateway().to_string(),
        bridge: n.bridge.clone(),
        internal: n.internal,
        created_at: Some(ts(n.created_at_ns)),
        containers: n.containers.clone(),
    }
}

pub fn mode(n: Network) -> pb::NetworkMode {
    match n {
        Network::None => pb::NetworkMode::None,
        Network::Host => pb::NetworkMode::Host,
        Network::Bridge => pb::NetworkMode::Bridge,
        Network::Container => pb::NetworkMode::Container,
    }
}

fn port(p: &PortBinding) -> pb::PortMapping {
    pb::PortMapping {
        host_ip: p.host_ip.to_string(),
        host_port: p.host_port.into(),
        container_port: p.container_port.into(),
        protocol: p.proto.as_str().into(),
    }
}

/// A container's network settings (None for none and host).
pub fn settings(c: &Container) -> Option<pb::NetworkSettings> {
    let n = &c.net;
    let network = match c.network {
        Network::Bridge => n.network.clone(),
        Network::Container => n.peer.clone(),
        _ if n.dns.is_empty() && n.extra_hosts.is_empty() && n.aliases.is_empty() => return None,
        _ => String::new(),
    };
    Some(pb::NetworkSettings {
        network,
        ip_address: n.address.map(|a| a.to_string()).unwrap_or_default(),
        prefix_length: n.prefix.into(),
        gateway: n.gateway.map(|a| a.to_string()).unwrap_or_default(),
        mac_address: n.address.map(quilt_network::mac_text).unwrap_or_default(),
        ports: n.ports.iter().map(port).collect(),
        dns: n.dns.iter().map(|d| d.to_string()).collect(),
        extra_hosts: n
            .extra_hosts
            .iter()
            .map(|h| pb::HostEntry {
                name: h.name.clone(),
                ip: h.ip.to_string(),
            })
            .collect(),
        aliases: n.aliases.clone(),
    })
}

fn ipv4(s: &str, what: &str) -> Result<Ipv4Addr, Status> {
    s.parse().map_err(|_| {
        Status::invalid_argument(format!(
            "invalid {what} {:?}: expected an IPv4 address",
            quilt_network::shown(s)
        ))
    })
}

fn port_number(n: u32, what: &str, zero_ok: bool) -> Result<u16, Status> {
    match u16::try_from(n) {
        Ok(p) if p > 0 || zero_ok => Ok(p),
        _ => Err(Status::invalid_argument(format!(
            "invalid {what} {n}: must be 1 to 65535"
        ))),
    }
}

/// An egress policy from the wire (checked further by the engine).
pub fn egress_from(p: &pb::EgressPolicy) -> Result<quilt_network::EgressPolicy, Status> {
    Ok(quilt_network::EgressPolicy {
        default_deny: quilt_network::EgressPolicy::parse_default(&p.default_action)
            .map_err(|e| Status::invalid_argument(e.to_string()))?,
        allow: p.allow.clone(),
        deny: p.deny.clone(),
    })
}

/// An egress policy on the wire.
pub fn egress(p: &quilt_network::EgressPolicy) -> pb::EgressPolicy {
    pb::EgressPolicy {
        default_action: p.default_action().into(),
        allow: p.allow.clone(),
        deny: p.deny.clone(),
    }
}

/// The network part of a CreateContainerRequest.
pub fn request(r: &pb::CreateContainerRequest) -> Result<(Network, NetSettings), Status> {
    let mut net = NetSettings::default();
    let mode = match pb::NetworkMode::try_from(r.network) {
        Ok(pb::NetworkMode::Host) => Network::Host,
        Ok(pb::NetworkMode::None) | Ok(pb::NetworkMode::Unspecified) => Network::None,
        Ok(pb::NetworkMode::Bridge) => {
            net.network = if r.network_name.is_empty() {
                quilt_sync_engine::model::DEFAULT_NETWORK.into()
            } else {
                r.network_name.clone()
            };
            Network::Bridge
        }
        Ok(pb::NetworkMode::Container) => {
            if r.network_name.is_empty() {
                return Err(Status::invalid_argument(
                    "container network mode: name the container (network_name)",
                ));
            }
            net.peer = r.network_name.clone();
            Network::Container
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown network mode {}",
                r.network
            )));
        }
    };
    if !matches!(mode, Network::Bridge | Network::Container) && !r.network_name.is_empty() {
        return Err(Status::invalid_argument(
            "network_name is only for the bridge and container network modes",
        ));
    }
    for p in &r.ports {
        net.ports.push(PortBinding {
            host_ip: if p.host_ip.is_empty() {
                quilt_network::ports::DEFAULT_HOST_IP
            } else {
                ipv4(&p.host_ip, "host address of a published port")?
            },
            host_port: port_number(p.host_port, "host port", true)?,
            container_port: port_number(p.container_port, "container port", false)?,
            proto: PortProto::parse(&p.protocol)
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
        });
    }
    if let Some(p) = &r.egress {
        net.egress = Some(egress_from(p)?);
    }
    for d in &r.dns {
        net.dns.push(ipv4(d, "--dns server")?);
    }
    for h in &r.extra_hosts {
        net.extra_hosts.push(HostEntry {
            name: h.name.clone(),
            ip: ipv4(&h.ip, "--add-host address")?,
        });
    }
    if r.network_aliases.len() > quilt_network::dns::MAX_ALIASES {
        return Err(Status::invalid_argument(format!(
            "at most {} network aliases",
            quilt_network::dns::MAX_ALIASES
        )));
    }
    net.aliases = r.network_aliases.clone();
    Ok((mode, net))
}
