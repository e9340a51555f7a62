//! A container's `/etc/hosts` and `/etc/resolv.conf`, written by the daemon
//! into the container's directory and bind mounted read-only by the shim.
use std::net::Ipv4Addr;

/// An `--add-host NAME:IP` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostEntry {
    pub name: String,
    pub ip: Ipv4Addr,
}

/// `/etc/hosts`: localhost, the container's own names on its address
/// (127.0.1.1 without one), then the extra entries.
pub fn hosts(names: &[&str], addr: Option<Ipv4Addr>, extra: &[HostEntry]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let own = addr.unwrap_or(Ipv4Addr::new(127, 0, 1, 1));
    let mut uniq: Vec<&str> = Vec::new();
    for n in names {
        if !n.is_empty() && !uniq.contains(n) {
            uniq.push(n);
        }
    }
    if !uniq.is_empty() {
        s.push_str(&format!("{own}\t{}\n", uniq.join(" ")));
    }
    for e in extra {
        s.push_str(&format!("{}\t{}\n", e.ip, e.name));
    }
    s
}

/// The name servers of the daemon's own `/etc/resolv.conf` a container can
/// reach: 127.0.0.0/8 (and IPv6) ones are left out (the container's
/// loopback is its own). With `keep_loopback` (host network) they stay.
pub fn host_nameservers(resolv_conf: &str, keep_loopback: bool) -> (Vec<String>, Vec<String>) {
    let mut servers = Vec::new();
    let mut search = Vec::new();
    for line in resolv_conf.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if let Some(Ok(ip)) = w.next().map(str::parse::<Ipv4Addr>)
                    && (keep_loopback || !ip.is_loopback())
                {
                    servers.push(ip.to_string());
                }
            }
            Some("search") => search = w.map(str::to_owned).collect(),
            _ => {}
        }
    }
    (servers, search)
}

/// `/etc/resolv.conf` for these servers and search domains.
pub fn resolv_conf(servers: &[String], search: &[String]) -> String {
    let mut s = String::from("# written by quilt\n");
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    for n in servers {
        s.push_str(&format!("nameserver {n}\n"));
    }
    s
}

/// `/etc/resolv.conf` of a container on a bridge network: its network's
/// resolver (on the gateway) only, every name tried as given first.
pub fn network_resolv_conf(resolver: Ipv4Addr) -> String {
    format!("# written by quilt: the network's resolver\nnameserver {resolver}\noptions ndots:0\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file() {
        let h = hosts(
            &["web", "web"],
            Some(Ipv4Addr::new(10, 0, 0, 2)),
            &[HostEntry {
                name: "db".into(),
                ip: Ipv4Addr::new(10, 0, 0, 3),
            }],
        );
        assert!(h.contains("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.0.0.2\tweb\n"));
        assert!(h.ends_with("10.0.0.3\tdb\n"));
    }

    #[test]
    fn resolvers_skip_loopback() {
        let conf = "nameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\nsearch a.example b\noptions edns0\n";
        let (s, d) = host_nameservers(conf, false);
        assert_eq!(s, vec!["10.0.0.1"]);
        assert_eq!(d, vec!["a.example", "b"]);
        assert_eq!(
            host_nameservers(conf, true).0,
            vec!["127.0.0.53", "10.0.0.1"]
        );
        assert_eq!(
            resolv_conf(&s, &[]),
            "# written by quilt\nnameserver 10.0.0.1\n"
        );
        assert!(
            network_resolv_conf(Ipv4Addr::new(10, 0, 0, 1))
                .ends_with("\nnameserver 10.0.0.1\noptions ndots:0\n")
        );
    }
}
