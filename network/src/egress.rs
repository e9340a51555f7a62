//! Egress policies: what a container on a bridge network may reach
//! outside its network. The policy as stored (`EgressPolicy`), its entries
//! parsed and checked (`Rules`), the decisions made from them (an address
//! and port, a name), the always-on deny set, and the daemon's table of
//! policies by container address (`Policies`), which the firewall, the
//! egress proxy and the network's resolver (`Policies::allows`) read.
//!
//! Order of the decisions: a matching deny entry wins; then a matching
//! allow entry; then the always-on deny set (private, shared, loopback,
//! link-local, multicast and reserved ranges); then the default action.
use crate::cidr::Subnet;
use crate::error::{NetError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

/// At most this many entries in each of the allow and deny lists.
pub const MAX_ENTRIES: usize = 256;
/// At most this many characters in one entry.
pub const MAX_ENTRY_LEN: usize = 260;

/// Closed to every container unless an allow entry covers the address:
/// this network (0/8), RFC 1918, shared address space (100.64/10),
/// loopback, link-local (the cloud metadata service 169.254.169.254),
/// IETF protocol assignments (192.0.0/24), multicast, reserved and
/// broadcast.
pub const ALWAYS_DENY: [(Ipv4Addr, u8); 10] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// Whether `ip` is in the always-on deny set.
pub fn always_denied(ip: Ipv4Addr) -> bool {
    ALWAYS_DENY
        .iter()
        .any(|(a, p)| Subnet::new(*a, *p).contains(ip))
}

/// A container's egress policy as the API gives it and the database keeps
/// it (entries in canonical form once checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressPolicy {
    /// `true`: what no entry allows is refused ("deny"); `false`: allowed
    /// unless denied ("allow", the default).
    #[serde(default)]
    pub default_deny: bool,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

impl EgressPolicy {
    /// Parses `default_action` ("allow", "deny", or empty: allow).
    pub fn parse_default(s: &str) -> Result<bool> {
        match s {
            "" | "allow" => Ok(false),
            "deny" => Ok(true),
            other => Err(NetError::Invalid(format!(
                "invalid egress default action {:?}: expected allow or deny",
                crate::shown(other)
            ))),
        }
    }

    pub fn default_action(&self) -> &'static str {
        if self.default_deny { "deny" } else { "allow" }
    }

    /// The policy checked, its entries in canonical form.
    pub fn checked(&self) -> Result<EgressPolicy> {
        let rules = Rules::parse(self)?;
        Ok(EgressPolicy {
            default_deny: self.default_deny,
            allow: rules.allow.iter().map(Entry::to_string).collect(),
            deny: rules.deny.iter().map(Entry::to_string).collect(),
        })
    }
}

/// Where an entry points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// An address or a CIDR.
    Net(Subnet),
    /// A name, exact (`example.com`) or any name below it (`*.example.com`:
    /// not the name itself).
    Name { name: String, wildcard: bool },
}

/// One entry: a destination and, optionally, one port (TCP or UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dest: Dest,
    pub port: Option<u16>,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.dest {
            Dest::Net(s) if s.prefix() == 32 => write!(f, "{}", s.network())?,
            Dest::Net(s) => write!(f, "{s}")?,
            Dest::Name { name, wildcard } => {
                write!(f, "{}{name}", if *wildcard { "*." } else { "" })?
            }
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A name as compared: lower case, without a final dot.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Entry {
    /// Parses `CIDR`, `IP`, `NAME`, `*.NAME`, each optionally `:PORT`.
    pub fn parse(s: &str) -> Result<Entry> {
        let bad = |why: &str| {
            NetError::Invalid(format!("invalid egress entry {:?}: {why}", crate::shown(s)))
        };
        if s.len() > MAX_ENTRY_LEN {
            return Err(bad("too long"));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the port must be a number from 1 to 65535"));
                }
                let port: u32 = p.parse().map_err(|_| bad("bad port"))?;
                if port == 0 || port > 65535 {
                    return Err(bad("the port must be a number from 1 to 65535"));
                }
                (h, Some(port as u16))
            }
            None => (s, None),
        };
        if host.is_empty() {
            return Err(bad("expected a CIDR, an address or a domain"));
        }
        if let Some((addr, len)) = host.split_once('/') {
            let addr: Ipv4Addr = addr
                .parse()
                .map_err(|_| bad("expected an IPv4 CIDR such as 10.0.0.0/8"))?;
            if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the prefix length must be a number from 0 to 32"));
            }
            let len: u8 = len.parse().map_err(|_| bad("bad prefix length"))?;
            if len > 32 {
                return Err(bad("the prefix length must be a number from 0 to 32"));
            }
            let net = Subnet::new(addr, len);
            if net.network() != addr {
                return Err(bad(&format!("host bits are set (the network is {net})")));
            }
            return Ok(Entry {
                dest: Dest::Net(net),
                port,
            });
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let addr: Ipv4Addr = host.parse().map_err(|_| bad("not an IPv4 address"))?;
            return Ok(Entry {
                dest: Dest::Net(Subnet::new(addr, 32)),
                port,
            });
        }
        let (wildcard, rest) = match host.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, host),
        };
        let name = normalize_name(rest);
        if !valid_name(&name) {
            return Err(bad(
                "expected a CIDR (10.0.0.0/8), an address, a domain (example.com) or *.domain, optionally with :PORT",
            ));
        }
        Ok(Entry {
            dest: Dest::Name { name, wildcard },
            port,
        })
    }

    fn covers_addr(&self, ip: Ipv4Addr, port: Option<u16>) -> bool {
        match &self.dest {
            Dest::Net(s) => s.contains(ip) && self.port_ok(port),
            Dest::Name { .. } => false,
        }
    }

    fn port_ok(&self, port: Option<u16>) -> bool {
        match (self.port, port) {
            (None, _) => true,
            (Some(want), Some(p)) => want == p,
            (Some(_), None) => false,
        }
    }

    /// Whether this entry names `name` (normalized); `port` None: any port
    /// of the entry.
    fn covers_name(&self, name: &str, port: Option<u16>) -> bool {
        let Dest::Name { name: n, wildcard } = &self.dest else {
            return false;
        };
        let hit = if *wildcard {
            name.len() > n.len() + 1
                && name.ends_with(n.as_str())
                && name.as_bytes()[name.len() - n.len() - 1] == b'.'
        } else {
            name == n
        };
        hit && (port.is_none() || self.port_ok(port))
    }
}

/// A policy's entries parsed: what the decisions are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub default_deny: bool,
    pub allow: Vec<Entry>,
    pub deny: Vec<Entry>,
}

impl Rules {
    pub fn parse(p: &EgressPolicy) -> Result<Rules> {
        for (what, list) in [("allow", &p.allow), ("deny", &p.deny)] {
            if list.len() > MAX_ENTRIES {
                return Err(NetError::Invalid(format!(
                    "the egress {what} list has {} entries: at most {MAX_ENTRIES} are allowed",
                    list.len()
                )));
            }
        }
        let parse = |l: &[String]| -> Result<Vec<Entry>> {
            let mut out: Vec<Entry> = Vec::new();
            for s in l {
                let e = Entry::parse(s.trim())?;
                if !out.contains(&e) {
                    out.push(e);
                }
            }
            Ok(out)
        };
        Ok(Rules {
            default_deny: p.default_deny,
            allow: parse(&p.allow)?,
            deny: parse(&p.deny)?,
        })
    }

    /// Whether any entry is a domain: then TCP 80 and 443 go through the
    /// egress proxy and QUIC is refused.
    pub fn has_names(&self) -> bool {
        self.allow
            .iter()
            .chain(&self.deny)
            .any(|e| matches!(e.dest, Dest::Name { .. }))
    }

    /// The verdict for a connection to `ip`:`port` by address alone.
    pub fn allows_addr(&self, ip: Ipv4Addr, port: Option<u16>) -> bool {
        if self.deny.iter().any(|e| e.covers_addr(ip, port)) {
            return false;
        }
        if self.allow.iter().any(|e| e.covers_addr(ip, port)) {
            return true;
        }
        if always_denied(ip) {
            return false;
        }
        !self.default_deny
    }

    /// The verdict for `name` on `port` (None: on any port, as the
    /// resolver asks).
    pub fn allows_name(&self, name: &str, port: Option<u16>) -> bool {
        let name = normalize_name(name);
        if port.is_some() && self.deny.iter().any(|e| e.covers_name(&name, port)) {
            return false;
        }
        if port.is_none()
            && self
                .deny
                .iter()
                .any(|e| e.port.is_none() && e.covers_name(&name, None))
        {
            return false;
        }
        if self.allow.iter().any(|e| e.covers_name(&name, port)) {
            return true;
        }
        !self.default_deny
    }

    /// Whether the proxy may connect to `ip`:`port`, which `name` (allowed)
    /// resolved to: not when a deny entry covers it, nor when it is in the
    /// always-on deny set and no allow entry covers it.
    pub fn allows_resolved(&self, ip: Ipv4Addr, port: u16) -> bool {
        if self.deny.iter().any(|e| e.covers_addr(ip, Some(port))) {
            return false;
        }
        self.allow.iter().any(|e| e.covers_addr(ip, Some(port))) || !always_denied(ip)
    }
}

/// One container's policy as the daemon enforces it.
#[derive(Debug)]
pub struct Policed {
    pub owner: String,
    pub rules: Rules,
}

/// The policies in force, by container address; each change is published
/// to the proxy's connections of that container (`watch`).
#[derive(Debug, Default)]
pub struct Policies {
    by_ip: RwLock<HashMap<Ipv4Addr, tokio::sync::watch::Sender<Option<Arc<Policed>>>>>,
}

impl Policies {
    fn map(
        &self,
    ) -> std::sync::RwLockReadGuard<
        '_,
        HashMap<Ipv4Addr, tokio::sync::watch::Sender<Option<Arc<Policed>>>>,
    > {
        self.by_ip.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets (Some) or clears (None) the policy of the container at `ip`.
    pub fn set(&self, ip: Ipv4Addr, policy: Option<Policed>) {
        let mut m = self.by_ip.write().unwrap_or_else(|p| p.into_inner());
        match policy {
            Some(p) => {
                let p = Some(Arc::new(p));
                match m.get(&ip) {
                    Some(tx) => {
                        tx.send_replace(p);
                    }
                    None => {
                        m.insert(ip, tokio::sync::watch::channel(p).0);
                    }
                }
            }
            None => {
                if let Some(tx) = m.remove(&ip) {
                    // Connections watching it see None and close.
                    tx.send_replace(None);
                }
            }
        }
    }

    /// The policy of the container at `ip`, if it has one.
    pub fn get(&self, ip: Ipv4Addr) -> Option<Arc<Policed>> {
        self.map().get(&ip).and_then(|tx| tx.borrow().clone())
    }

    /// Follows the policy of the container at `ip` (None when it has none).
    pub fn watch(
        &self,
        ip: Ipv4Addr,
    ) -> Option<tokio::sync::watch::Receiver<Option<Arc<Policed>>>> {
        self.map().get(&ip).map(|tx| tx.subscribe())
    }

    /// For the network's DNS resolver: whether the container at `client`
    /// may resolve `name`. A container without a policy may resolve
    /// anything; one with a policy, the names its policy allows (on any
    /// port).
    pub fn allows(&self, client: Ipv4Addr, name: &str) -> bool {
        match self.get(client) {
            Some(p) => p.rules.allows_name(name, None),
            None => true,
        }
    }

    /// How many containers have a policy.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The networks' resolvers ask the policies before forwarding a name: a
/// container with a policy that names domains resolves only names it allows
/// (so the DNS answers and the proxy's decisions agree).
impl crate::dns::QueryFilter for Policies {
    fn allows(&self, client: Ipv4Addr, name: &str) -> bool {
        Policies::allows(self, client, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(default_deny: bool, allow: &[&str], deny: &[&str]) -> Rules {
        Rules::parse(&EgressPolicy {
            default_deny,
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        })
        .expect("valid")
    }

    #[test]
    fn entries_parse_and_print_canonically() {
        for (i, o) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.2.3.4/32", "1.2.3.4"),
            ("1.2.3.4:443", "1.2.3.4:443"),
            ("10.0.0.0/8:22", "10.0.0.0/8:22"),
            ("Example.COM.", "example.com"),
            ("*.example.com", "*.example.com"),
            ("api.example.com:8443", "api.example.com:8443"),
        ] {
            assert_eq!(Entry::parse(i).expect(i).to_string(), o);
        }
        for bad in [
            "",
            "10.0.0.1/8",
            "1.2.3.4:0",
            "1.2.3.4:70000",
            "a..b",
            "*.",
            "-a.com",
            "1.2.3",
            "1.2.3.4/33",
            "x:y",
            "*.*.a.com",
            "a b",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_are_bounded() {
        let p = EgressPolicy {
            default_deny: false,
            allow: vec!["1.2.3.4".into(); MAX_ENTRIES + 1],
            deny: vec![],
        };
        let e = Rules::parse(&p).unwrap_err().to_string();
        assert!(e.contains("at most 256"), "{e}");
    }

    #[test]
    fn always_deny_unless_allowed() {
        let p = pol(false, &[], &[]);
        for a in [
            "169.254.169.254",
            "10.1.2.3",
            "192.168.1.1",
            "172.20.0.1",
            "127.0.0.1",
            "100.64.0.1",
            "224.0.0.1",
            "0.1.2.3",
        ] {
            assert!(!p.allows_addr(a.parse().unwrap(), Some(80)), "{a}");
        }
        assert!(p.allows_addr("203.0.113.5".parse().unwrap(), Some(80)));
        let p = pol(false, &["10.1.0.0/16"], &[]);
        assert!(p.allows_addr("10.1.2.3".parse().unwrap(), Some(5432)));
        assert!(!p.allows_addr("10.2.2.3".parse().unwrap(), Some(5432)));
    }

    #[test]
    fn deny_wins_then_allow_then_default() {
        let p = pol(
            true,
            &["203.0.113.0/24", "198.51.100.7:443"],
            &["203.0.113.9"],
        );
        assert!(p.allows_addr("203.0.113.5".parse().unwrap(), Some(22)));
        assert!(!p.allows_addr("203.0.113.9".parse().unwrap(), Some(22)));
        assert!(p.allows_addr("198.51.100.7".parse().unwrap(), Some(443)));
        assert!(!p.allows_addr("198.51.100.7".parse().unwrap(), Some(80)));
        assert!(!p.allows_addr("8.8.8.8".parse().unwrap(), Some(53)));
    }

    #[test]
    fn names() {
        let p = pol(
            true,
            &["example.com", "*.pkg.dev", "api.x.io:443"],
            &["bad.pkg.dev"],
        );
        assert!(p.allows_name("EXAMPLE.com.", Some(443)));
        assert!(!p.allows_name("www.example.com", Some(443)));
        assert!(p.allows_name("a.b.pkg.dev", Some(80)));
        assert!(!p.allows_name("pkg.dev", Some(80)));
        assert!(!p.allows_name("xpkg.dev", Some(80)));
        assert!(!p.allows_name("bad.pkg.dev", Some(443)));
        assert!(p.allows_name("api.x.io", Some(443)));
        assert!(!p.allows_name("api.x.io", Some(80)));
        assert!(p.allows_name("api.x.io", None));
        assert!(!p.allows_name("bad.pkg.dev", None));
        assert!(p.has_names());
        let p = pol(false, &[], &["*.evil.com"]);
        assert!(p.allows_name("good.com", Some(443)));
        assert!(!p.allows_name("a.evil.com", Some(443)));
    }

    #[test]
    fn resolved_addresses_are_checked_again() {
        let p = pol(true, &["allowed.test"], &[]);
        assert!(p.allows_resolved("203.0.113.10".parse().unwrap(), 443));
        assert!(!p.allows_resolved("169.254.169.254".parse().unwrap(), 80));
        assert!(!p.allows_resolved("10.0.0.1".parse().unwrap(), 80));
    }

    #[test]
    fn resolver_hook() {
        let ps = Policies::default();
        let ip: Ipv4Addr = "10.89.0.5".parse().unwrap();
        assert!(ps.allows(ip, "anything.com"));
        ps.set(
            ip,
            Some(Policed {
                owner: "c".into(),
                rules: pol(true, &["allowed.test"], &[]),
            }),
        );
        assert!(ps.allows(ip, "allowed.test"));
        assert!(!ps.allows(ip, "other.test"));
        ps.set(ip, None);
        assert!(ps.allows(ip, "other.test"));
    }
}
