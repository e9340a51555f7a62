//! The names this daemon gives to what it makes in its network namespace,
//! so that two daemons there never collide: a tag derived from the data
//! dir, in the default bridge's name, the nftables table's name, each user
//! network's bridge and each pooled veth.
use crate::error::{NetError, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// IFNAMSIZ - 1.
pub const MAX_IFNAME: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    tag: String,
    bridge: String,
    table: String,
}

impl Names {
    /// The identity of the daemon using `data_dir`: 6 hex digits of the
    /// sha256 of its canonical path.
    pub fn tag_of(data_dir: &Path) -> String {
        let canon = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let digest = Sha256::digest(canon.as_os_str().as_encoded_bytes());
        hex::encode(&digest[..3])
    }

    /// Names for the daemon of `tag`; `bridge` (the default network's
    /// bridge) and `table` (the nftables table) when given by flags.
    pub fn new(tag: &str, bridge: Option<&str>, table: Option<&str>) -> Result<Names> {
        if tag.len() != 6 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NetError::Invalid(format!("bad daemon tag {tag:?}")));
        }
        let bridge = bridge.map_or_else(|| format!("quilt-{tag}"), str::to_owned);
        check_ifname(&bridge)?;
        if bridge.starts_with("qn") || bridge.starts_with("qv") {
            return Err(NetError::Invalid(format!(
                "bridge name {bridge:?}: names starting with qn or qv are Quilt's own"
            )));
        }
        let table = table.map_or_else(|| format!("quilt_{tag}"), str::to_owned);
        if table.is_empty()
            || table.len() > 64
            || !table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || !table.as_bytes()[0].is_ascii_alphabetic()
        {
            return Err(NetError::Invalid(format!(
                "nftables table name {:?}: a letter, then letters, digits and _ (at most 64)",
                crate::shown(&table)
            )));
        }
        Ok(Names {
            tag: tag.to_owned(),
            bridge,
            table,
        })
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The default network's bridge.
    pub fn default_bridge(&self) -> &str {
        &self.bridge
    }

    /// The nftables table (one per family: `bridge` and `inet`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The bridge of the user network whose id is `id` (its first 6 hex
    /// digits are used).
    pub fn network_bridge(&self, id: &str) -> String {
        format!("qn{}{}", self.tag, &id[..id.len().min(6)])
    }

    /// The daemon-side end of the veth pair of pool slot `slot`.
    pub fn veth(&self, slot: &str) -> String {
        format!("{}{}", self.veth_prefix(), slot)
    }

    /// What all of this daemon's veth ends start with.
    pub fn veth_prefix(&self) -> String {
        format!("qv{}", self.tag)
    }

    /// What all of this daemon's user network bridges start with.
    pub fn network_bridge_prefix(&self) -> String {
        format!("qn{}", self.tag)
    }
}

/// A Linux interface name: 1 to 15 of [A-Za-z0-9_.-], not "." or "..".
pub fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_IFNAME
        || name == "."
        || name == ".."
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(NetError::Invalid(format!(
            "interface name {:?}: 1 to {MAX_IFNAME} letters, digits, '_', '-' or '.'",
            crate::shown(name)
        )));
    }
    Ok(())
}

/// `n` random lower-case hex digits.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    getrandom::fill(&mut b).expect("the kernel's random source is available");
    let mut s = hex::encode(b);
    s.truncate(n);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_derived_from_the_tag() {
        let n = Names::new("a1b2c3", None, None).unwrap();
        assert_eq!(n.default_bridge(), "quilt-a1b2c3");
        assert_eq!(n.table(), "quilt_a1b2c3");
        assert_eq!(n.network_bridge("0123456789ab"), "qna1b2c3012345");
        assert_eq!(n.veth("00ff11"), "qva1b2c300ff11");
        assert!(n.veth("00ff11").len() <= MAX_IFNAME);
        assert_ne!(
            Names::tag_of(Path::new("/a")),
            Names::tag_of(Path::new("/b"))
        );
        for bad in ["", "a-very-long-bridge-name", "br 0", "qnx", "..", "a/b"] {
            assert!(Names::new("a1b2c3", Some(bad), None).is_err(), "{bad}");
        }
        for bad in ["", "1x", "a-b", "quilt table"] {
            assert!(Names::new("a1b2c3", None, Some(bad)).is_err(), "{bad}");
        }
    }
}
