//! Quilt's container networking, used by the engine: one concern per file.
//!
//! - `cidr.rs`: IPv4 subnets; `names.rs`: the daemon's names for its
//!   bridges, veth ends and nftables table;
//! - `rtnl.rs`: a synchronous rtnetlink socket; `link.rs`: bridges, veth
//!   pairs, addresses and routes through it;
//! - `ruleset.rs`: the nftables ruleset (rendered whole, applied by `nft`);
//!   `nfnl.rs`: set and map elements over netfilter netlink;
//!   `firewall.rs`: the firewall's state and both paths into the kernel;
//! - `pool.rs`: network namespaces made ahead of time (with or without a
//!   veth pair), cleaned and reused;
//! - `ports.rs`: published ports; `proxy.rs`: their userspace proxy for
//!   loopback;
//! - `files.rs`: a container's /etc/hosts and /etc/resolv.conf;
//! - `egress.rs`: egress policies (entries, decisions, the always-on deny
//!   set, the policies in force by address); `egress_proxy.rs`: the
//!   transparent proxy that enforces their domains on TCP 80 and 443.
//! - `dns/`: each bridge network's resolver (names, forwarding).
//!
//! `Networking` (this file) ties them together for the engine; it keeps no
//! state of its own that the database does not also have (addresses,
//! networks and slot assignments are the engine's, in SQLite).
#![deny(unsafe_code)]

pub mod cidr;
pub mod dns;
pub mod egress;
pub mod egress_proxy;
pub mod error;
pub mod files;
pub mod firewall;
pub mod link;
pub mod names;
pub mod nfnl;
pub mod pool;
pub mod ports;
pub mod proxy;
pub mod rtnl;
pub mod ruleset;

pub use cidr::Subnet;
pub use egress::{EgressPolicy, Policies};
pub use error::{NetError, Result};
pub use files::HostEntry;
pub use firewall::Entry;
pub use names::Names;
pub use pool::Kind;
pub use ports::{PortBinding, Proto};

use quilt_runtime::netns;
use rtnl::Rtnl;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// At most this many characters of a user's input are quoted in errors.
pub fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A network as the engine stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDef {
    pub name: String,
    pub id: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
}

impl NetworkDef {
    fn rules(&self) -> ruleset::NetRules {
        ruleset::NetRules {
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            internal: self.internal,
        }
    }
}

/// A container's MAC: locally administered, derived from its address (so
/// an address reused later keeps one MAC, and neighbours' caches stay
/// right).
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x51, o[0], o[1], o[2], o[3]]
}

/// `mac_of` as text (`02:51:0a:58:00:02`).
pub fn mac_text(ip: Ipv4Addr) -> String {
    mac_of(ip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The firewall entries of a container on a bridge network.
pub fn entries_for(veth: &str, ip: Ipv4Addr, ports: &[PortBinding]) -> Vec<Entry> {
    let mut v = vec![Entry::Bind {
        ifname: veth.to_owned(),
        mac: mac_of(ip),
        ip,
    }];
    // Loopback bindings are the proxy's alone.
    for p in ports.iter().filter(|p| !p.is_loopback()) {
        v.push(Entry::Port {
            addr: (!p.host_ip.is_unspecified()).then_some(p.host_ip),
            proto: p.proto,
            port: p.host_port,
            to: ip,
            to_port: p.container_port,
        });
    }
    v
}

/// Daemon options.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Slot files go to `data_dir/netns`.
    pub data_dir: PathBuf,
    pub names: Names,
    /// Slots kept ready: loopback only, and with a veth pair.
    pub pool: [usize; 2],
    /// Upstream name servers: where each network's resolver forwards the
    /// names it does not know, and what the egress proxy resolves with.
    pub upstream_dns: Vec<std::net::SocketAddr>,
}

#[derive(Debug)]
pub struct Networking {
    names: Names,
    rt: Mutex<Rtnl>,
    firewall: firewall::Firewall,
    pool: pool::Pool,
    proxies: proxy::Proxies,
    policies: std::sync::Arc<Policies>,
    egress_proxy: std::sync::Arc<egress_proxy::EgressProxy>,
    /// The slot of each container that has one, by container id.
    slots: Mutex<HashMap<String, pool::Slot>>,
    /// Veth slots kept ready once active.
    veth_target: usize,
    /// Bridge indexes by name (`to_bridge`).
    bridges: Mutex<HashMap<String, u32>>,
    /// Bridge networking set up (`sync`).
    active: AtomicBool,
    /// The networks' resolvers and their names.
    dns: dns::Resolvers,
}

impl Networking {
    /// Opens the daemon's side. Blocking; call from a thread in the
    /// daemon's network namespace (any but the pool's). Nothing is changed
    /// in that namespace until `sync`: a daemon whose containers never use
    /// a bridge network leaves it alone (only `none` slots are made).
    pub fn open(opts: NetOptions) -> Result<Networking> {
        let daemon_ns = netns::open(Path::new("/proc/thread-self/ns/net"))
            .map_err(NetError::io("open the daemon's network namespace"))?;
        let rt = Rtnl::open()?;
        let pool = pool::Pool::start(
            &opts.data_dir.join("netns"),
            &opts.names,
            daemon_ns,
            [opts.pool[0], 0],
        )?;
        let policies = std::sync::Arc::new(Policies::default());
        let egress_proxy = std::sync::Arc::new(egress_proxy::EgressProxy::bind(
            policies.clone(),
            &opts.upstream_dns,
        )?);
        let dns = dns::Resolvers::new(opts.upstream_dns);
        dns.set_filter(policies.clone());
        let firewall = firewall::Firewall::new(opts.names.table(), &opts.names.veth_prefix());
        firewall.set_proxy_port(egress_proxy.port());
        Ok(Networking {
            firewall,
            policies,
            egress_proxy,
            names: opts.names,
            rt: Mutex::new(rt),
            pool,
            proxies: Default::default(),
            slots: Mutex::new(HashMap::new()),
            veth_target: opts.pool[1],
            bridges: Mutex::new(HashMap::new()),
            active: AtomicBool::new(false),
            dns,
        })
    }

    /// Whether bridge networking is set up in the daemon's namespace.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether this daemon's default bridge exists (it was active before a
    /// restart).
    pub fn default_bridge_exists(&self) -> Result<bool> {
        Ok(link::index_of(&mut self.rt(), self.names.default_bridge())?.is_some())
    }

    /// Makes the daemon's namespace ready for bridge networks `nets`:
    /// forwarding on, every bridge present, the ruleset replaced (the
    /// entries known kept), the pool of veth slots filled. Idempotent; the
    /// caller serialises it with network changes. Blocking.
    pub fn sync(&self, nets: &[NetworkDef]) -> Result<()> {
        self.sync_with(nets, None)
    }

    /// `sync`, the ruleset carrying the entries `owned` (start-up: those of
    /// the containers taken back) instead of those known.
    pub fn sync_with(
        &self,
        nets: &[NetworkDef],
        owned: Option<BTreeMap<String, Vec<Entry>>>,
    ) -> Result<()> {
        self.ensure_bridges(nets)?;
        match owned {
            Some(o) => self.apply(nets, o)?,
            None => self.set_networks(nets)?,
        }
        if !self.active.swap(true, Ordering::AcqRel) {
            self.pool.set_target(Kind::Veth, self.veth_target);
        }
        Ok(())
    }

    /// Forwarding on and every bridge of `nets` present (no ruleset yet).
    pub fn ensure_bridges(&self, nets: &[NetworkDef]) -> Result<()> {
        if netns::read_sysctl("net/ipv4/ip_forward").ok().as_deref() != Some("1") {
            netns::write_sysctl("net/ipv4/ip_forward", "1")
                .map_err(NetError::io("enabling net.ipv4.ip_forward"))?;
        }
        for n in nets {
            self.ensure_bridge(n)?;
        }
        Ok(())
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The networks' resolvers.
    pub fn dns(&self) -> &dns::Resolvers {
        &self.dns
    }

    pub fn proxies(&self) -> &proxy::Proxies {
        &self.proxies
    }

    /// The egress policies in force by container address: the network's
    /// resolver asks `policies().allows(client, name)`.
    pub fn policies(&self) -> &std::sync::Arc<Policies> {
        &self.policies
    }

    pub fn egress_proxy(&self) -> &std::sync::Arc<egress_proxy::EgressProxy> {
        &self.egress_proxy
    }

    /// Puts `owner`'s egress policy in force (None: removes it): the
    /// ruleset replaced atomically, then the proxy's connections of the
    /// container checked again (those no longer allowed are closed).
    /// `apply` false (start-up): recorded for the next replacement of the
    /// ruleset. Blocking.
    pub fn set_egress(
        &self,
        owner: &str,
        ip: Ipv4Addr,
        subnet: Subnet,
        policy: Option<&EgressPolicy>,
        apply: bool,
    ) -> Result<()> {
        let Some(p) = policy else {
            self.firewall.set_policy(owner, None, apply)?;
            self.policies.set(ip, None);
            return Ok(());
        };
        let rules = egress::Rules::parse(p)?;
        self.firewall.set_policy(
            owner,
            Some(ruleset::PolicedRules {
                ip,
                subnet,
                rules: rules.clone(),
            }),
            apply,
        )?;
        self.policies.set(
            ip,
            Some(egress::Policed {
                owner: owner.to_owned(),
                rules,
            }),
        );
        Ok(())
    }

    /// Whether `owner` has an egress policy in force.
    pub fn has_egress(&self, owner: &str) -> bool {
        self.firewall.has_policy(owner)
    }

    fn rt(&self) -> std::sync::MutexGuard<'_, Rtnl> {
        self.rt.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, pool::Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subnets routed in the daemon's namespace through links that are not
    /// this daemon's bridges.
    fn foreign_routes(&self, ours: &[String]) -> Result<Vec<Subnet>> {
        let mut rt = self.rt();
        let links = link::links(&mut rt)?;
        let ours: Vec<u32> = links
            .iter()
            .filter(|l| ours.contains(&l.name))
            .map(|l| l.index)
            .collect();
        Ok(link::routed_subnets(&mut rt)?
            .into_iter()
            .filter(|(_, oif)| !oif.is_some_and(|i| ours.contains(&i)))
            .map(|(s, _)| s)
            .collect())
    }

    /// Refuses `subnet` when it overlaps a network of `taken` or a route
    /// of the daemon's namespace (other than this daemon's bridges).
    pub fn check_subnet(&self, subnet: &Subnet, taken: &[NetworkDef]) -> Result<()> {
        if let Some(n) = taken.iter().find(|n| n.subnet.overlaps(subnet)) {
            return Err(NetError::Conflict(format!(
                "subnet {subnet} overlaps {} of network {}",
                n.subnet, n.name
            )));
        }
        let ours: Vec<String> = taken.iter().map(|n| n.bridge.clone()).collect();
        if let Some(r) = self
            .foreign_routes(&ours)?
            .iter()
            .find(|r| r.overlaps(subnet))
        {
            return Err(NetError::Conflict(format!(
                "subnet {subnet} overlaps {r}, routed in quiltd's network namespace"
            )));
        }
        Ok(())
    }

    /// A subnet nobody uses: the first of the candidates from `start` that
    /// overlaps neither `taken` nor a route.
    pub fn free_subnet(&self, taken: &[NetworkDef], start: usize) -> Result<Subnet> {
        let ours: Vec<String> = taken.iter().map(|n| n.bridge.clone()).collect();
        let routes = self.foreign_routes(&ours)?;
        cidr::candidates(start)
            .find(|c| {
                !taken.iter().any(|n| n.subnet.overlaps(c)) && !routes.iter().any(|r| r.overlaps(c))
            })
            .ok_or_else(|| {
                NetError::Conflict("no free subnet is left: give one with --subnet".into())
            })
    }

    /// Makes the network's bridge if it is missing (with the gateway's
    /// address, up).
    pub fn ensure_bridge(&self, def: &NetworkDef) -> Result<()> {
        let mut rt = self.rt();
        let links = link::links(&mut rt)?;
        if let Some(l) = links.iter().find(|l| l.name == def.bridge) {
            if l.kind != "bridge" {
                return Err(NetError::Conflict(format!(
                    "{} exists in quiltd's network namespace and is not a bridge: choose another --bridge-name",
                    def.bridge
                )));
            }
            link::add_address(
                &mut rt,
                l.index,
                def.subnet.gateway(),
                def.subnet.prefix(),
                "gateway address",
            )?;
            link::set_mac(
                &mut rt,
                l.index,
                mac_of(def.subnet.gateway()),
                "setting the bridge's MAC",
            )?;
            return link::set_link(&mut rt, &def.bridge, Some(true), None);
        }
        link::create_bridge(&mut rt, &def.bridge, &def.subnet).map(drop)
    }

    pub fn delete_bridge(&self, bridge: &str) -> Result<()> {
        self.bridge_index().remove(bridge);
        link::delete_link(&mut self.rt(), bridge)
    }

    fn bridge_index(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.bridges.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts veth end `veth` up on the bridge of `def`. The bridge's index
    /// is remembered (a listing of every link is not on each start's path)
    /// and looked up again once when the kernel refuses it.
    fn to_bridge(&self, veth: &str, def: &NetworkDef) -> Result<()> {
        let cached = self.bridge_index().get(&def.bridge).copied();
        let mut rt = self.rt();
        if let Some(index) = cached
            && link::set_link(&mut rt, veth, Some(true), Some(index)).is_ok()
        {
            return Ok(());
        }
        let index = link::index_of(&mut rt, &def.bridge)?.ok_or_else(|| {
            NetError::Conflict(format!(
                "the bridge {} of network {} is missing",
                def.bridge, def.name
            ))
        })?;
        self.bridge_index().insert(def.bridge.clone(), index);
        link::set_link(&mut rt, veth, Some(true), Some(index)).map_err(|e| match e {
            // The kernel's limit on a bridge's ports (BR_MAX_PORTS).
            NetError::Netlink { source, .. }
                if source.raw_os_error() == Some(nix::errno::Errno::EXFULL as i32) =>
            {
                NetError::Conflict(format!(
                    "network {} is full: its bridge has as many ports as a Linux bridge takes (1023 containers)",
                    def.name
                ))
            }
            e => e,
        })
    }

    /// This daemon's user network bridges and veth ends that are not in
    /// `bridges` or `slots`: deleted (start-up).
    pub fn remove_strays(&self, bridges: &[String], slot_ids: &[String]) -> Result<()> {
        let mut rt = self.rt();
        let (bp, vp) = (self.names.network_bridge_prefix(), self.names.veth_prefix());
        let vethes: Vec<String> = slot_ids
            .iter()
            .map(|id| self.names.veth(&id[1..]))
            .collect();
        for l in link::links(&mut rt)? {
            let stray = (l.name.starts_with(&bp) && !bridges.contains(&l.name))
                || (l.name.starts_with(&vp) && !vethes.contains(&l.name));
            if stray {
                tracing::info!(link = %l.name, "removing a leftover link");
                link::delete_link(&mut rt, &l.name)?;
            }
        }
        Ok(())
    }

    /// Replaces the whole ruleset: these networks, these entries by owner.
    pub fn apply(&self, nets: &[NetworkDef], owned: BTreeMap<String, Vec<Entry>>) -> Result<()> {
        self.firewall
            .replace(nets.iter().map(NetworkDef::rules).collect(), owned)
    }

    /// The ruleset again for another set of networks.
    pub fn set_networks(&self, nets: &[NetworkDef]) -> Result<()> {
        self.firewall
            .set_networks(nets.iter().map(NetworkDef::rules).collect())
    }

    /// Deletes the daemon's tables.
    pub fn delete_tables(&self) -> Result<()> {
        self.firewall.delete_tables()
    }

    /// The entries of a container in the firewall.
    pub fn entries(&self, owner: &str) -> Vec<Entry> {
        self.firewall.entries(owner)
    }

    /// The namespace file of `owner`'s slot.
    pub fn netns_path(&self, owner: &str) -> Option<PathBuf> {
        self.slots().get(owner).map(|s| s.path.clone())
    }

    /// The id of `owner`'s slot.
    pub fn slot_id(&self, owner: &str) -> Option<String> {
        self.slots().get(owner).map(|s| s.id.clone())
    }

    /// The id and kind of `owner`'s slot. Never blocks.
    pub fn slot_of(&self, owner: &str) -> Option<(String, Kind)> {
        self.slots().get(owner).map(|s| (s.id.clone(), s.kind))
    }

    /// Gives `owner` a slot of `kind` (its own when it has one already).
    /// Returns the slot's id. Blocking.
    pub fn take(&self, owner: &str, kind: Kind) -> Result<String> {
        if let Some(id) = self.try_take(owner, kind) {
            return Ok(id);
        }
        let slot = self.pool.take(kind)?;
        Ok(self.give(owner, slot))
    }

    /// As `take` when that needs no wait: `owner`'s own slot of `kind`, or
    /// one the pool has ready. None: `take` would have to make one. Never
    /// blocks.
    pub fn try_take(&self, owner: &str, kind: Kind) -> Option<String> {
        if let Some(s) = self.slots().get(owner)
            && s.kind == kind
        {
            return Some(s.id.clone());
        }
        let slot = self.pool.try_take(kind)?;
        Some(self.give(owner, slot))
    }

    /// `slot` becomes `owner`'s (one it had goes back, tainted); its id.
    fn give(&self, owner: &str, slot: pool::Slot) -> String {
        let id = slot.id.clone();
        if let Some(old) = self.slots().insert(owner.to_owned(), slot) {
            self.pool.give_back(old, true);
        }
        id
    }

    /// Puts `owner`'s slot on network `def` with address `ip` and
    /// publishes `ports`: its veth end on the bridge, bound to its address
    /// and MAC in the firewall first; `eth0` up with the address and the
    /// default route. Idempotent. Blocking.
    pub fn attach(
        &self,
        owner: &str,
        def: &NetworkDef,
        ip: Ipv4Addr,
        ports: &[PortBinding],
    ) -> Result<()> {
        let mut slots = self.slots();
        let slot = slots.get_mut(owner).ok_or_else(|| {
            NetError::Invalid(format!("container {owner} has no network namespace"))
        })?;
        let veth = slot.veth.clone().ok_or_else(|| {
            NetError::Invalid(format!("the namespace of {owner} has no veth pair"))
        })?;
        self.firewall.add(owner, &entries_for(&veth, ip, ports))?;
        self.to_bridge(&veth, def)?;
        let prefix = def.subnet.prefix();
        slot.rt
            .as_mut()
            .ok_or_else(|| {
                NetError::Invalid(format!("the namespace of {owner} has no netlink socket"))
            })?
            .batch(vec![
                (link::mac_up_msg(slot.eth0, mac_of(ip)), 0),
                link::add_address_msg(slot.eth0, ip, prefix),
                link::default_route_msg(slot.eth0, def.subnet.gateway()),
            ])
            .map_err(|(_, e)| NetError::netlink("configuring eth0")(e))?;
        slot.addr = Some((ip, prefix));
        Ok(())
    }

    /// After a restart: takes back the slot `slot_id` of `owner` (and, on a
    /// bridge network, puts it there again). The firewall entries come with
    /// the next `apply`. Blocking.
    pub fn adopt(
        &self,
        owner: &str,
        slot_id: &str,
        on: Option<(&NetworkDef, Ipv4Addr)>,
    ) -> Result<()> {
        let mut slot = self.pool.reopen(slot_id)?;
        if let (Some((def, ip)), Some(veth)) = (on, slot.veth.clone()) {
            let mut rt = self.rt();
            if let Some(index) = link::index_of(&mut rt, &def.bridge)? {
                link::set_link(&mut rt, &veth, Some(true), Some(index))?;
            }
            slot.addr = Some((ip, def.subnet.prefix()));
        }
        self.slots().insert(owner.to_owned(), slot);
        Ok(())
    }

    /// Start-up, after `adopt`: slot files no container has are cleaned
    /// for the pool or removed.
    pub fn adopt_unused(&self) -> Vec<String> {
        let used: Vec<String> = self.slots().values().map(|s| s.id.clone()).collect();
        let unused: Vec<String> = self
            .pool
            .on_disk()
            .into_iter()
            .filter(|id| !used.contains(id))
            .collect();
        self.pool.adopt_unused(unused.clone());
        unused
    }

    /// The ids of every slot file (in use, pooled).
    pub fn slot_files(&self) -> Vec<String> {
        self.pool.on_disk()
    }

    /// Takes `owner` off its network: its veth end off the bridge and
    /// down, its firewall entries and published ports gone (all before its
    /// address can be given to anyone else), then the slot goes back to
    /// the pool in the background (`tainted`: destroyed instead).
    /// Blocking.
    pub fn release(&self, owner: &str, tainted: bool) -> Result<()> {
        if let Some(slot) = self.take_off(owner)? {
            self.pool.give_back(slot, tainted);
        }
        Ok(())
    }

    /// As `release`, but the slot (if any) is handed to the caller, to go
    /// back with `give_back` once nothing names it any more. Blocking.
    pub fn take_off(&self, owner: &str) -> Result<Option<pool::Slot>> {
        self.proxies.close(owner);
        if let Some(ip) = self.firewall.policy_ip(owner) {
            self.firewall.set_policy(owner, None, true)?;
            self.policies.set(ip, None);
        }
        let slot = self.slots().remove(owner);
        if let Some(slot) = slot {
            if let Some(v) = &slot.veth
                && let Err(e) = link::set_link(&mut self.rt(), v, Some(false), Some(0))
            {
                // Back in the map so that a retried removal finds it.
                self.slots().insert(owner.to_owned(), slot);
                return Err(e);
            }
            self.firewall.remove(owner)?;
            Ok(Some(slot))
        } else {
            self.firewall.remove(owner)?;
            Ok(None)
        }
    }

    /// A slot `take_off` handed out goes back to the pool (see `release`).
    pub fn give_back(&self, slot: pool::Slot, tainted: bool) {
        self.pool.give_back(slot, tainted);
    }

    /// How many slots of `kind` are ready.
    pub fn ready(&self, kind: Kind) -> usize {
        self.pool.ready(kind)
    }

    /// Shutdown: the ready slots are destroyed (those of containers stay).
    pub fn shutdown(&self) {
        self.pool.drain();
    }
}
