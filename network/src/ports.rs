//! Published ports: what a user may ask for, checked; and finding a free
//! host port for `-p CTRPORT`.
use crate::error::{NetError, Result};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn parse(s: &str) -> Result<Proto> {
        match s {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(NetError::Invalid(format!(
                "invalid port protocol {:?}: tcp or udp",
                crate::shown(s)
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// A published port: host `host_ip:host_port` leads to the container's
/// `container_port`. `host_port` 0 (only in a request): any free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// The host address a binding gets when none is given: loopback only.
pub const DEFAULT_HOST_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// At most this many published ports per container.
pub const MAX_PORTS: usize = 64;

impl PortBinding {
    /// Checks a requested binding (container port 1..65535; the host
    /// address unicast or 0.0.0.0, not multicast or broadcast).
    pub fn check(&self) -> Result<()> {
        if self.container_port == 0 {
            return Err(NetError::Invalid(
                "invalid published port: the container port must be 1 to 65535".into(),
            ));
        }
        let ip = self.host_ip;
        if ip.is_multicast() || ip.is_broadcast() || (ip.octets()[0] == 0 && !ip.is_unspecified()) {
            return Err(NetError::Invalid(format!(
                "invalid published port: cannot listen on {ip}"
            )));
        }
        Ok(())
    }

    /// Whether two bindings would take the same host port (0.0.0.0 takes
    /// it on every address).
    pub fn clashes(&self, other: &PortBinding) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip == other.host_ip
                || self.host_ip.is_unspecified()
                || other.host_ip.is_unspecified())
    }

    pub fn is_loopback(&self) -> bool {
        self.host_ip.is_loopback()
    }
}

impl std::fmt::Display for PortBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port,
            self.proto.as_str(),
            self.host_ip,
            self.host_port
        )
    }
}

/// Checks that `host_ip:port` can be listened on in this namespace now
/// (port 0: the kernel picks one). Returns the port.
pub fn probe(host_ip: Ipv4Addr, port: u16, proto: Proto) -> Result<u16> {
    let addr = SocketAddrV4::new(host_ip, port);
    let r = match proto {
        Proto::Tcp => TcpListener::bind(addr).and_then(|l| l.local_addr()),
        Proto::Udp => UdpSocket::bind(addr).and_then(|s| s.local_addr()),
    };
    match r {
        Ok(a) => Ok(a.port()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(NetError::Conflict(format!(
            "port {host_ip}:{port}/{} is already in use",
            proto.as_str()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Err(NetError::Invalid(
            format!("cannot publish on {host_ip}: not an address of quiltd's network namespace"),
        )),
        Err(e) => Err(NetError::Conflict(format!(
            "cannot listen on {host_ip}:{port}/{}: {e}",
            proto.as_str()
        ))),
    }
}
