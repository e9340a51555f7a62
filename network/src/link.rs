//! Links, addresses and routes through rtnetlink: bridges, veth pairs, an
//! interface's address and default route, and the listings the start-up
//! reconciliation and the subnet checks need.
use crate::cidr::Subnet;
use crate::error::{NetError, Result};
use crate::rtnl::Rtnl;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A link of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// "bridge", "veth", ... (empty for loopback and the like).
    pub kind: String,
    /// The bridge it is a port of.
    pub master: Option<u32>,
    pub up: bool,
}

fn by_name(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_owned()));
    m
}

/// Every link of the socket's namespace.
pub fn links(rt: &mut Rtnl) -> Result<Vec<Link>> {
    let msgs = rt.dump(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        "listing links",
    )?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(l),
            _ => None,
        })
        .map(|l| {
            let mut link = Link {
                index: l.header.index,
                name: String::new(),
                kind: String::new(),
                master: None,
                up: l.header.flags.contains(LinkFlags::Up),
            };
            for a in l.attributes {
                match a {
                    LinkAttribute::IfName(n) => link.name = n,
                    LinkAttribute::Controller(m) if m != 0 => link.master = Some(m),
                    LinkAttribute::LinkInfo(infos) => {
                        for i in infos {
                            if let LinkInfo::Kind(k) = i {
                                link.kind = k.to_string();
                            }
                        }
                    }
                    _ => {}
                }
            }
            link
        })
        .collect())
}

/// The index of link `name`, if there is one.
pub fn index_of(rt: &mut Rtnl, name: &str) -> Result<Option<u32>> {
    Ok(links(rt)?
        .into_iter()
        .find(|l| l.name == name)
        .map(|l| l.index))
}

/// Makes bridge `name` (it must not exist), up, with `gateway` of `subnet`.
/// Returns its index.
pub fn create_bridge(rt: &mut Rtnl, name: &str, subnet: &Subnet) -> Result<u32> {
    let mut m = by_name(name);
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    // A MAC of its own, given (not the kernel's): a bridge whose MAC was
    // not set takes the lowest of its ports', so the gateway's MAC would
    // change as containers come and go, and the neighbours' caches of the
    // others would point at a port gone (their resolver and egress lost
    // until the entry expires).
    m.attributes.push(LinkAttribute::Address(
        crate::mac_of(subnet.gateway()).to_vec(),
    ));
    rt.request(
        RouteNetlinkMessage::NewLink(m),
        NLM_F_CREATE | NLM_F_EXCL,
        &format!("creating bridge {name}"),
    )?;
    let index = index_of(rt, name)?.ok_or_else(|| {
        NetError::Conflict(format!("bridge {name} vanished right after it was made"))
    })?;
    add_address(
        rt,
        index,
        subnet.gateway(),
        subnet.prefix(),
        &format!("address of bridge {name}"),
    )?;
    set_link(rt, name, Some(true), None)?;
    Ok(index)
}

/// Gives link `index` the MAC `mac` (which the kernel then keeps: a
/// bridge's no longer follows its ports').
pub fn set_mac(rt: &mut Rtnl, index: u32, mac: [u8; 6], what: &str) -> Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    rt.request(RouteNetlinkMessage::SetLink(m), 0, what)
}

/// Deletes link `name` (a veth pair goes with either end); a missing link
/// is fine.
pub fn delete_link(rt: &mut Rtnl, name: &str) -> Result<()> {
    match rt.request(
        RouteNetlinkMessage::DelLink(by_name(name)),
        0,
        &format!("deleting link {name}"),
    ) {
        Err(e) if e.errno() == Some(libc_enodev()) => Ok(()),
        r => r,
    }
}

fn libc_enodev() -> i32 {
    19
}

/// The message that sets link `name` up or down and its bridge (`Some(0)`:
/// none).
pub fn set_link_msg(name: &str, up: Option<bool>, master: Option<u32>) -> RouteNetlinkMessage {
    let mut m = by_name(name);
    if let Some(up) = up {
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
    }
    if let Some(master) = master {
        m.attributes.push(LinkAttribute::Controller(master));
    }
    RouteNetlinkMessage::SetLink(m)
}

pub fn set_link(rt: &mut Rtnl, name: &str, up: Option<bool>, master: Option<u32>) -> Result<()> {
    rt.request(
        set_link_msg(name, up, master),
        0,
        &format!("setting link {name}"),
    )
}

/// The message that gives link `index` a MAC address and brings it up.
pub fn mac_up_msg(index: u32, mac: [u8; 6]) -> RouteNetlinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.change_mask = LinkFlags::Up;
    m.header.flags = LinkFlags::Up;
    m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    RouteNetlinkMessage::SetLink(m)
}

/// The message that takes link `index` down.
pub fn down_msg(index: u32) -> RouteNetlinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.change_mask = LinkFlags::Up;
    RouteNetlinkMessage::SetLink(m)
}

/// Makes a veth pair from a socket inside a container's namespace: `inner`
/// there, `outer` in the namespace of `outer_ns` (the daemon's).
pub fn create_veth(
    rt: &mut Rtnl,
    inner: &str,
    outer: &str,
    outer_ns: BorrowedFd<'_>,
) -> Result<()> {
    let mut peer = by_name(outer);
    peer.attributes
        .push(LinkAttribute::NetNsFd(outer_ns.as_raw_fd()));
    let mut m = by_name(inner);
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    rt.request(
        RouteNetlinkMessage::NewLink(m),
        NLM_F_CREATE | NLM_F_EXCL,
        &format!("creating veth pair {inner}/{outer}"),
    )
}

fn address_msg(index: u32, addr: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(IpAddr::V4(addr)));
    m.attributes
        .push(AddressAttribute::Address(IpAddr::V4(addr)));
    let bcast = Subnet::new(addr, prefix);
    let last = u32::from(bcast.network()) | (u32::MAX >> prefix);
    m.attributes
        .push(AddressAttribute::Broadcast(Ipv4Addr::from(last)));
    m
}

/// The message that gives link `index` the address `addr/prefix`.
pub fn add_address_msg(index: u32, addr: Ipv4Addr, prefix: u8) -> (RouteNetlinkMessage, u16) {
    (
        RouteNetlinkMessage::NewAddress(address_msg(index, addr, prefix)),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
}

/// The message that removes `addr/prefix` from link `index`.
pub fn del_address_msg(index: u32, addr: Ipv4Addr, prefix: u8) -> (RouteNetlinkMessage, u16) {
    (
        RouteNetlinkMessage::DelAddress(address_msg(index, addr, prefix)),
        0,
    )
}

pub fn add_address(
    rt: &mut Rtnl,
    index: u32,
    addr: Ipv4Addr,
    prefix: u8,
    what: &str,
) -> Result<()> {
    let (m, f) = add_address_msg(index, addr, prefix);
    rt.request(m, f, what)
}

/// The message that makes `gateway` (on link `index`) the default route.
pub fn default_route_msg(index: u32, gateway: Ipv4Addr) -> (RouteNetlinkMessage, u16) {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Static;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    m.attributes.push(RouteAttribute::Oif(index));
    (
        RouteNetlinkMessage::NewRoute(m),
        NLM_F_CREATE | NLM_F_REPLACE,
    )
}

/// The IPv4 destinations routed in the socket's namespace (default routes
/// left out), with the index of their link: what a new subnet must not
/// overlap.
pub fn routed_subnets(rt: &mut Rtnl) -> Result<Vec<(Subnet, Option<u32>)>> {
    let mut q = RouteMessage::default();
    q.header.address_family = AddressFamily::Inet;
    let msgs = rt.dump(RouteNetlinkMessage::GetRoute(q), "listing routes")?;
    let mut out = Vec::new();
    for m in msgs {
        let RouteNetlinkMessage::NewRoute(r) = m else {
            continue;
        };
        if r.header.destination_prefix_length == 0
            || r.header.kind != RouteType::Unicast
            || r.header.table != RouteHeader::RT_TABLE_MAIN
        {
            continue;
        }
        let mut dst = None;
        let mut oif = None;
        for a in &r.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(*d),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        if let Some(d) = dst {
            out.push((Subnet::new(d, r.header.destination_prefix_length), oif));
        }
    }
    Ok(out)
}
