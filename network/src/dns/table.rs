//! The names each network's resolver answers: per network, a lower-case
//! name (no trailing dot) to the addresses of the containers that carry
//! it (a container's name, its short id, its aliases; two containers may
//! share an alias). Kept in memory, changed synchronously by the engine
//! (create, rename, removal) and rebuilt from its database at start-up.
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// At most this many aliases per container.
pub const MAX_ALIASES: usize = 32;

/// The records of one container on its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub network: String,
    pub owner: String,
    pub names: Vec<String>,
    pub ip: Ipv4Addr,
}

#[derive(Debug, Default)]
pub struct Table {
    /// network -> name -> [(owner, address)].
    nets: HashMap<String, HashMap<String, Vec<(String, Ipv4Addr)>>>,
    /// owner -> the member it was put in as.
    owners: HashMap<String, Member>,
}

/// The key a name is kept and looked up under: lower case, no trailing dot.
pub fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Table {
    /// Puts `m` in (in place of what its owner had).
    pub fn insert(&mut self, m: Member) {
        self.remove(&m.owner);
        let names = self.nets.entry(m.network.clone()).or_default();
        for n in &m.names {
            let k = key(n);
            if k.is_empty() {
                continue;
            }
            let v = names.entry(k).or_default();
            if !v.iter().any(|(o, _)| *o == m.owner) {
                v.push((m.owner.clone(), m.ip));
            }
        }
        self.owners.insert(m.owner.clone(), m);
    }

    /// Takes `owner`'s names out; returns its member.
    pub fn remove(&mut self, owner: &str) -> Option<Member> {
        let m = self.owners.remove(owner)?;
        if let Some(names) = self.nets.get_mut(&m.network) {
            names.retain(|_, v| {
                v.retain(|(o, _)| o != owner);
                !v.is_empty()
            });
        }
        Some(m)
    }

    /// Replaces everything with `members`.
    pub fn replace(&mut self, members: Vec<Member>) {
        self.nets.clear();
        self.owners.clear();
        for m in members {
            self.insert(m);
        }
    }

    /// Drops a network's names (it was removed).
    pub fn drop_network(&mut self, network: &str) {
        self.nets.remove(network);
        self.owners.retain(|_, m| m.network != network);
    }

    /// The addresses of `name` on `network`; None when it names nothing.
    pub fn lookup(&self, network: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let v = self.nets.get(network)?.get(&key(name))?;
        let mut ips: Vec<Ipv4Addr> = v.iter().map(|(_, ip)| *ip).collect();
        ips.sort();
        ips.dedup();
        Some(ips)
    }

    /// The member of `owner`.
    pub fn member(&self, owner: &str) -> Option<&Member> {
        self.owners.get(owner)
    }
}

/// A name a resolver can answer (an alias): dot-separated labels of
/// letters, digits and '-' (not first or last), 1 to 63 each, at most 253
/// in all.
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() || n.len() > 253 {
        return Err("1 to 253 characters".into());
    }
    for label in n.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(
                "labels of 1 to 63 letters, digits and '-' (not first or last), separated by dots"
                    .into(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(net: &str, owner: &str, names: &[&str], ip: [u8; 4]) -> Member {
        Member {
            network: net.into(),
            owner: owner.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ip: ip.into(),
        }
    }

    #[test]
    fn names_per_network_case_insensitive_shared_aliases() {
        let mut t = Table::default();
        t.insert(m("a", "1", &["Web", "db", "0123456789ab"], [10, 0, 0, 2]));
        t.insert(m("a", "2", &["db"], [10, 0, 0, 3]));
        t.insert(m("b", "3", &["other"], [10, 1, 0, 2]));
        assert_eq!(t.lookup("a", "WEB."), Some(vec![[10, 0, 0, 2].into()]));
        assert_eq!(
            t.lookup("a", "0123456789AB"),
            Some(vec![[10, 0, 0, 2].into()])
        );
        assert_eq!(
            t.lookup("a", "db"),
            Some(vec![[10, 0, 0, 2].into(), [10, 0, 0, 3].into()])
        );
        assert_eq!(t.lookup("a", "other"), None);
        assert_eq!(t.lookup("b", "web"), None);
        // A rename: the owner's names replaced.
        t.insert(m("a", "1", &["web2"], [10, 0, 0, 2]));
        assert_eq!(t.lookup("a", "web"), None);
        assert_eq!(t.lookup("a", "db"), Some(vec![[10, 0, 0, 3].into()]));
        t.remove("2");
        assert_eq!(t.lookup("a", "db"), None);
        t.drop_network("b");
        assert_eq!(t.lookup("b", "other"), None);
        assert!(t.member("3").is_none());
        t.replace(vec![m("b", "4", &["x"], [1, 2, 3, 4])]);
        assert_eq!(t.lookup("a", "web2"), None);
        assert_eq!(t.lookup("b", "X"), Some(vec![[1, 2, 3, 4].into()]));
    }

    #[test]
    fn alias_rules() {
        for ok in ["db", "db.internal", "a-b.c1", "x.", &"a".repeat(63)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        let long = ["a".repeat(63).as_str(); 4].join(".") + ".b";
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "a b",
            ".",
            &"a".repeat(64),
            long.as_str(),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
