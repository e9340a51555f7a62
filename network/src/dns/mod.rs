//! The resolver of each bridge network, built into quiltd: it listens on
//! UDP and TCP port 53 of the network's gateway (the bridge's address in
//! quiltd's network namespace), answers the names of the containers on
//! that network only, and forwards every other name to the upstream
//! resolvers (not on an `--internal` network: there other names get
//! NXDOMAIN).
//!
//! - `table.rs`: the names of each network (kept by the engine);
//! - `handler.rs`: answering one query;
//! - `forward.rs`: asking the upstream resolvers.
//!
//! `Resolvers` (this file) holds the running servers, the table, the
//! upstreams and the query filter. The names are in memory only: the
//! engine puts a container's in when its row is inserted (so a sibling is
//! resolvable before its start returns), takes them out at its removal and
//! rebuilds them from its database at start-up.
mod forward;
mod handler;
pub mod table;

pub use table::{MAX_ALIASES, Member, check_name};

use crate::error::{NetError, Result};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The standard DNS port, where a network's resolver listens.
pub const DNS_PORT: u16 = 53;

/// A TCP client has this long to send its query.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stop waits for the queries in flight.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// Decides whether a name that is not the network's own may be forwarded
/// upstream for a container (by its address). Refused names are answered
/// REFUSED. The default allows all.
pub trait QueryFilter: Send + Sync {
    /// `name`: lower case, without the trailing dot.
    fn allows(&self, client: Ipv4Addr, name: &str) -> bool;
}

/// The default filter: everything may be forwarded.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl QueryFilter for AllowAll {
    fn allows(&self, _: Ipv4Addr, _: &str) -> bool {
        true
    }
}

pub(crate) struct Inner {
    table: RwLock<table::Table>,
    upstreams: Vec<SocketAddr>,
    filter: RwLock<Arc<dyn QueryFilter>>,
}

impl Inner {
    fn table(&self) -> std::sync::RwLockReadGuard<'_, table::Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn table_mut(&self) -> std::sync::RwLockWriteGuard<'_, table::Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    fn filter(&self) -> Arc<dyn QueryFilter> {
        self.filter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

struct Running {
    addr: SocketAddr,
    internal: bool,
    server: hickory_server::Server<handler::Handler>,
}

/// The resolvers of this daemon's networks.
pub struct Resolvers {
    inner: Arc<Inner>,
    running: Mutex<HashMap<String, Running>>,
}

impl std::fmt::Debug for Resolvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolvers")
            .field("upstreams", &self.inner.upstreams)
            .field("running", &self.running().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Resolvers {
    /// Resolvers forwarding to `upstreams` (none: nothing is forwarded).
    pub fn new(upstreams: Vec<SocketAddr>) -> Resolvers {
        Resolvers {
            inner: Arc::new(Inner {
                table: RwLock::default(),
                upstreams,
                filter: RwLock::new(Arc::new(AllowAll)),
            }),
            running: Mutex::default(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.inner.upstreams
    }

    /// Replaces the filter consulted before a name is forwarded.
    pub fn set_filter(&self, filter: Arc<dyn QueryFilter>) {
        *self.inner.filter.write().unwrap_or_else(|p| p.into_inner()) = filter;
    }

    /// Starts the resolver of `network` on `addr` (UDP and TCP; port 0:
    /// one the kernel chooses, the same for both) unless it runs there
    /// already. Returns where it listens. Needs the address to be the
    /// namespace's (the bridge up with its gateway address) and a Tokio
    /// runtime.
    pub async fn start(
        &self,
        network: &str,
        addr: SocketAddr,
        internal: bool,
    ) -> Result<SocketAddr> {
        if let Some(r) = self.running().get(network)
            && (r.addr == addr || addr.port() == 0 && r.addr.ip() == addr.ip())
            && r.internal == internal
        {
            return Ok(r.addr);
        }
        self.stop(network).await;
        let io = |what: &'static str| {
            move |e: std::io::Error| NetError::Io {
                what: format!("{what} for the resolver of network {network} on {addr}"),
                source: e,
            }
        };
        let udp = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(io("binding UDP"))?;
        let bound = udp.local_addr().map_err(io("reading the UDP address"))?;
        let tcp = tokio::net::TcpListener::bind(bound)
            .await
            .map_err(io("binding TCP"))?;
        let mut server = hickory_server::Server::new(handler::Handler {
            network: network.to_owned(),
            internal,
            inner: self.inner.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, 64);
        tracing::info!(network, addr = %bound, internal, "resolver started");
        self.running().insert(
            network.to_owned(),
            Running {
                addr: bound,
                internal,
                server,
            },
        );
        Ok(bound)
    }

    /// Stops the resolver of `network`: its sockets are closed when this
    /// returns (queries still being forwarded are given up after a
    /// second).
    pub async fn stop(&self, network: &str) {
        let running = self.running().remove(network);
        if let Some(mut r) = running {
            let _ = tokio::time::timeout(STOP_WAIT, r.server.shutdown_gracefully()).await;
            // Dropping the server aborts what is left.
            drop(r);
            tracing::info!(network, "resolver stopped");
        }
    }

    /// Stops every resolver (shutdown).
    pub async fn stop_all(&self) {
        let all: Vec<String> = self.running().keys().cloned().collect();
        for n in all {
            self.stop(&n).await;
        }
    }

    /// Where the resolver of `network` listens, if it runs.
    pub fn address(&self, network: &str) -> Option<SocketAddr> {
        self.running().get(network).map(|r| r.addr)
    }

    /// Puts a container's names in (in place of those it had).
    pub fn insert(&self, m: Member) {
        self.inner.table_mut().insert(m);
    }

    /// Takes a container's names out.
    pub fn remove(&self, owner: &str) {
        self.inner.table_mut().remove(owner);
    }

    /// Replaces every name (start-up).
    pub fn replace(&self, members: Vec<Member>) {
        self.inner.table_mut().replace(members);
    }

    /// A removed network: its resolver stopped, its names gone.
    pub async fn drop_network(&self, network: &str) {
        self.stop(network).await;
        self.inner.table_mut().drop_network(network);
    }

    /// The addresses `name` has on `network`.
    pub fn lookup(&self, network: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        self.inner.table().lookup(network, name)
    }

    /// The member of `owner`.
    pub fn member(&self, owner: &str) -> Option<Member> {
        self.inner.table().member(owner).cloned()
    }
}

impl Drop for Resolvers {
    fn drop(&mut self) {
        for r in self.running().values() {
            r.server.shutdown_token().cancel();
        }
    }
}

/// An upstream resolver as given: `IP`, `IP:PORT` or `[IPv6]:PORT`.
pub fn parse_upstream(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| {
            NetError::Invalid(format!(
                "upstream resolver {:?}: IP or IP:PORT",
                crate::shown(s)
            ))
        })
}

/// The name servers of a resolv.conf, port 53 (loopback ones kept: quiltd
/// asks them from its own namespace).
pub fn upstreams_of(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next())?
        })
        .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .collect()
}

#[cfg(test)]
mod tests;
