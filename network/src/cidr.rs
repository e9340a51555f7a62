//! IPv4 subnets: parsing a CIDR strictly, overlap, and the addresses a
//! network hands out (the first host address is the gateway's).
use crate::error::{NetError, Result};
use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 subnet in canonical form (no host bits set), /8 to /29.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    base: u32,
    prefix: u8,
}

/// The smallest and largest networks a user may create: a /29 has five
/// addresses for containers; a /8 is 16 million.
pub const MIN_PREFIX: u8 = 8;
pub const MAX_PREFIX: u8 = 29;

impl Subnet {
    /// Parses `A.B.C.D/N`. Host bits set, a prefix out of /8../29, loopback,
    /// link-local, multicast and reserved ranges are refused.
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad =
            |why: &str| NetError::Invalid(format!("invalid subnet {:?}: {why}", crate::shown(s)));
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| bad("expected an IPv4 CIDR such as 10.89.0.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("expected an IPv4 CIDR such as 10.89.0.0/24"))?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the prefix length must be a number"));
        }
        let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&prefix) {
            return Err(bad(&format!(
                "the prefix length must be between /{MIN_PREFIX} and /{MAX_PREFIX}"
            )));
        }
        let net = Subnet::new(addr, prefix);
        if net.base != u32::from(addr) {
            return Err(bad(&format!("host bits are set (the network is {net})")));
        }
        let first = net.network();
        if first.is_loopback()
            || first.is_link_local()
            || first.is_multicast()
            || first.octets()[0] == 0
            || first.octets()[0] >= 240
        {
            return Err(bad(
                "loopback, link-local, multicast and reserved ranges cannot be used",
            ));
        }
        Ok(net)
    }

    /// The subnet of `addr`/`prefix` (host bits cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let prefix = prefix.min(32);
        Subnet {
            base: u32::from(addr) & Self::mask_of(prefix),
            prefix,
        }
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    fn last(&self) -> u32 {
        self.base | !Self::mask_of(self.prefix)
    }

    /// The gateway: the first host address (on the bridge).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// The range containers get addresses from: after the gateway, before
    /// the broadcast address.
    pub fn host_range(&self) -> (u32, u32) {
        (self.base + 2, self.last() - 1)
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & Self::mask_of(self.prefix) == self.base
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

/// Candidates for subnets nobody asked for: 172.20.0.0/16 .. 172.31.0.0/16,
/// then 10.200.0.0/16 .. 10.255.0.0/16, starting at `start` (a daemon's
/// identity spreads daemons over them).
pub fn candidates(start: usize) -> impl Iterator<Item = Subnet> {
    let all: Vec<Subnet> = (20..=31u8)
        .map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16))
        .chain((200..=255u8).map(|b| Subnet::new(Ipv4Addr::new(10, b, 0, 0), 16)))
        .collect();
    let n = all.len();
    (0..n).map(move |i| all[(start + i) % n])
}

/// Parses an IPv4 address given by a user (`--dns`, `--add-host`, `-p`).
pub fn parse_ipv4(s: &str, what: &str) -> Result<Ipv4Addr> {
    s.parse::<Ipv4Addr>().map_err(|_| {
        NetError::Invalid(format!(
            "invalid {what} {:?}: expected an IPv4 address",
            crate::shown(s)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strictly() {
        let n = Subnet::parse("10.89.0.0/24").unwrap();
        assert_eq!(n.to_string(), "10.89.0.0/24");
        assert_eq!(n.gateway(), Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(
            n.host_range(),
            (
                u32::from(Ipv4Addr::new(10, 89, 0, 2)),
                u32::from(Ipv4Addr::new(10, 89, 0, 254))
            )
        );
        for bad in [
            "10.89.0.1/24",
            "10.89.0.0",
            "10.89.0.0/7",
            "10.89.0.0/30",
            "10.89.0.0/+4",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "224.0.0.0/8",
            "0.0.0.0/8",
            "240.0.0.0/8",
            "10.89.0.0/024",
            "x/24",
            "",
            "10.89.0.0/24 ",
            "::1/64",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap() {
        let a = Subnet::parse("10.0.0.0/16").unwrap();
        let b = Subnet::parse("10.0.5.0/24").unwrap();
        let c = Subnet::parse("10.1.0.0/16").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
        assert!(a.contains(Ipv4Addr::new(10, 0, 200, 1)));
        assert!(!a.contains(Ipv4Addr::new(10, 1, 0, 1)));
    }

    #[test]
    fn candidates_cover_every_subnet_once() {
        let v: Vec<_> = candidates(5).collect();
        assert_eq!(v.len(), 68);
        assert_eq!(v[0].to_string(), "172.25.0.0/16");
        let set: std::collections::HashSet<_> = v.iter().collect();
        assert_eq!(set.len(), 68);
    }
}
