//! Networks and a container's place on them, independent of the wire
//! format and of the database.
use quilt_network::{HostEntry, PortBinding};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// The name of the daemon's default network (`--network bridge`).
pub const DEFAULT_NETWORK: &str = "bridge";

/// A container's network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Private network namespace, loopback only.
    None,
    Host,
    /// A bridge network: `NetSettings::network` names it.
    Bridge,
    /// Another container's namespace: `NetSettings::peer` is its id.
    Container,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
            Network::Bridge => "bridge",
            Network::Container => "container",
        }
    }

    /// What the `network` column holds: 'host', or 'none' for any private
    /// namespace (the mode's details are in `net`).
    pub fn column(self) -> &'static str {
        match self {
            Network::Host => "host",
            _ => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Network> {
        match s {
            "none" => Some(Network::None),
            "host" => Some(Network::Host),
            _ => None,
        }
    }
}

/// A container's network settings (stored as JSON in `containers.net`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetSettings {
    /// Bridge mode: the network's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// Container mode: the id of the container whose namespace it joins
    /// (in a request: its name, id or prefix).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub peer: String,
    /// Bridge mode: its address (allocated at create), prefix and gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    pub prefix: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// Published ports (host ports chosen at create).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortBinding>,
    /// `--dns`: the name servers of its resolv.conf (the host's when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Ipv4Addr>,
    /// `--add-host` entries of its /etc/hosts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<HostEntry>,
    /// Its egress policy (bridge networks); kept in its own column.
    #[serde(skip)]
    pub egress: Option<quilt_network::EgressPolicy>,
    /// Bridge mode: `--network-alias` names its network's resolver answers
    /// with its address (besides its name and short id).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A network of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    pub id: String,
    pub bridge: String,
    pub subnet: quilt_network::Subnet,
    pub internal: bool,
    pub created_at_ns: i64,
    /// Ids of the containers on it.
    pub containers: Vec<String>,
}

impl NetworkInfo {
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.gateway()
    }

    pub fn def(&self) -> quilt_network::NetworkDef {
        quilt_network::NetworkDef {
            name: self.name.clone(),
            id: self.id.clone(),
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            internal: self.internal,
        }
    }
}

/// What CreateNetwork asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    pub name: String,
    /// None: a free subnet is chosen.
    pub subnet: Option<String>,
    pub internal: bool,
}
