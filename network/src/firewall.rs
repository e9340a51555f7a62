//! The firewall's state and how it reaches the kernel: the whole ruleset
//! through `nft` (at start-up and when networks change), each container's
//! elements (its port binding, its published ports) through netlink
//! batches on the start and removal paths. Every change goes through one
//! lock, so a replacement of the ruleset (which carries the elements known
//! at that time) never loses an element added meanwhile.
use crate::error::{NetError, Result};
use crate::nfnl::{self, Elem, Family, Op, SetSocket};
use crate::ports::Proto;
use crate::ruleset::{self, EgressRules, JsonElem, NetRules, PolicedRules};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// What one container puts into the sets and maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Its bridge port may only send with this MAC and address.
    Bind {
        ifname: String,
        mac: [u8; 6],
        ip: Ipv4Addr,
    },
    /// A published port: `addr` (None: every address) `proto`/`port` of the
    /// daemon's namespace leads to `to`:`to_port`.
    Port {
        addr: Option<Ipv4Addr>,
        proto: Proto,
        port: u16,
        to: Ipv4Addr,
        to_port: u16,
    },
}

impl Entry {
    fn netlink(&self) -> Vec<Elem> {
        match self {
            Entry::Bind { ifname, mac, ip } => vec![Elem {
                family: Family::Bridge,
                set: ruleset::BIND4,
                key: nfnl::bind_key(ifname, *mac, *ip),
                data: None,
            }],
            Entry::Port {
                addr,
                proto,
                port,
                to,
                to_port,
            } => {
                let key = nfnl::port_key(*addr, proto.number(), *port);
                let (ip_map, port_map) = maps(addr.is_some());
                vec![
                    Elem {
                        family: Family::Inet,
                        set: ip_map,
                        key: key.clone(),
                        data: Some(nfnl::addr_data(*to)),
                    },
                    Elem {
                        family: Family::Inet,
                        set: port_map,
                        key,
                        data: Some(nfnl::port_data(*to_port)),
                    },
                ]
            }
        }
    }

    fn json(&self) -> Vec<JsonElem> {
        match self {
            Entry::Bind { ifname, mac, ip } => vec![JsonElem {
                family: Family::Bridge,
                set: ruleset::BIND4,
                elem: ruleset::bind_elem(ifname, *mac, *ip),
            }],
            Entry::Port {
                addr,
                proto,
                port,
                to,
                to_port,
            } => {
                let key = match addr {
                    Some(a) => json!({"concat": [a.to_string(), proto.as_str(), port]}),
                    None => json!({"concat": [proto.as_str(), port]}),
                };
                let (ip_map, port_map) = maps(addr.is_some());
                vec![
                    JsonElem {
                        family: Family::Inet,
                        set: ip_map,
                        elem: json!([key.clone(), to.to_string()]),
                    },
                    JsonElem {
                        family: Family::Inet,
                        set: port_map,
                        elem: json!([key, to_port]),
                    },
                ]
            }
        }
    }
}

fn maps(with_addr: bool) -> (&'static str, &'static str) {
    if with_addr {
        (ruleset::PUB_ADDR_IP, ruleset::PUB_ADDR_PORT)
    } else {
        (ruleset::PUB_ANY_IP, ruleset::PUB_ANY_PORT)
    }
}

#[derive(Debug, Default)]
struct State {
    networks: Vec<NetRules>,
    /// Entries by owner (a container id).
    owned: BTreeMap<String, Vec<Entry>>,
    /// Egress policies by owner (a container id), and the proxy's port.
    policed: BTreeMap<String, PolicedRules>,
    proxy_port: Option<u16>,
    sock: Option<SetSocket>,
}

impl State {
    fn egress(&self) -> EgressRules {
        EgressRules {
            proxy_port: self.proxy_port,
            policed: self.policed.values().cloned().collect(),
        }
    }
}

#[derive(Debug)]
pub struct Firewall {
    table: String,
    veth_prefix: String,
    state: Mutex<State>,
}

impl Firewall {
    /// Nothing is applied until `replace`.
    pub fn new(table: &str, veth_prefix: &str) -> Firewall {
        Firewall {
            table: table.to_owned(),
            veth_prefix: veth_prefix.to_owned(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the whole ruleset (both tables) for `networks` and the
    /// entries `owned`, atomically. Blocking (runs `nft`).
    pub fn replace(
        &self,
        networks: Vec<NetRules>,
        owned: BTreeMap<String, Vec<Entry>>,
    ) -> Result<()> {
        let mut st = self.lock();
        let elems: Vec<JsonElem> = owned.values().flatten().flat_map(Entry::json).collect();
        apply_json(&ruleset::render(
            &self.table,
            &self.veth_prefix,
            &networks,
            &elems,
            &st.egress(),
        ))?;
        st.networks = networks;
        st.owned = owned;
        Ok(())
    }

    /// The ruleset again with other networks (the entries kept).
    pub fn set_networks(&self, networks: Vec<NetRules>) -> Result<()> {
        let mut st = self.lock();
        let elems: Vec<JsonElem> = st.owned.values().flatten().flat_map(Entry::json).collect();
        apply_json(&ruleset::render(
            &self.table,
            &self.veth_prefix,
            &networks,
            &elems,
            &st.egress(),
        ))?;
        st.networks = networks;
        Ok(())
    }

    /// The egress proxy's port (rules render it from the next change on).
    pub fn set_proxy_port(&self, port: u16) {
        self.lock().proxy_port = Some(port);
    }

    /// Sets (Some) or clears (None) `owner`'s egress policy: the whole
    /// ruleset replaced in one `nft` transaction (atomic; the entries and
    /// networks kept). With `apply` false the policy is only recorded (the
    /// next replacement carries it: start-up). Blocking.
    pub fn set_policy(&self, owner: &str, policy: Option<PolicedRules>, apply: bool) -> Result<()> {
        let mut st = self.lock();
        let old = match &policy {
            Some(p) => st.policed.insert(owner.to_owned(), p.clone()),
            None => st.policed.remove(owner),
        };
        if !apply || (old.is_none() && policy.is_none()) {
            return Ok(());
        }
        let elems: Vec<JsonElem> = st.owned.values().flatten().flat_map(Entry::json).collect();
        let res = apply_json(&ruleset::render(
            &self.table,
            &self.veth_prefix,
            &st.networks,
            &elems,
            &st.egress(),
        ));
        if res.is_err() {
            // The kernel keeps the old ruleset: so does this record.
            match old {
                Some(o) => st.policed.insert(owner.to_owned(), o),
                None => st.policed.remove(owner),
            };
        }
        res
    }

    /// The address of `owner`'s egress policy, if it has one.
    pub fn policy_ip(&self, owner: &str) -> Option<Ipv4Addr> {
        self.lock().policed.get(owner).map(|p| p.ip)
    }

    /// Whether `owner` has an egress policy in the ruleset.
    pub fn has_policy(&self, owner: &str) -> bool {
        self.lock().policed.contains_key(owner)
    }

    /// Adds `owner`'s entries (on top of those it has) in one transaction.
    pub fn add(&self, owner: &str, entries: &[Entry]) -> Result<()> {
        let mut st = self.lock();
        let have = st.owned.get(owner).cloned().unwrap_or_default();
        let new: Vec<Entry> = entries
            .iter()
            .filter(|e| !have.contains(e))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let ops: Vec<(Op, Elem)> = new
            .iter()
            .flat_map(Entry::netlink)
            .map(|e| (Op::Add, e))
            .collect();
        let table = self.table.clone();
        with_sock(&mut st, |s| s.apply(&table, &ops))
            .map_err(NetError::netlink("adding nftables elements"))?;
        st.owned.entry(owner.to_owned()).or_default().extend(new);
        Ok(())
    }

    /// Removes every entry of `owner`. Elements already gone are fine.
    pub fn remove(&self, owner: &str) -> Result<()> {
        let mut st = self.lock();
        let Some(entries) = st.owned.get(owner).cloned() else {
            return Ok(());
        };
        let table = self.table.clone();
        for e in entries.iter().flat_map(Entry::netlink) {
            match with_sock(&mut st, |s| s.apply(&table, &[(Op::Del, e.clone())])) {
                Ok(()) => {}
                Err(err) if err.raw_os_error() == Some(2) => {}
                Err(err) => return Err(NetError::netlink("removing nftables elements")(err)),
            }
        }
        st.owned.remove(owner);
        Ok(())
    }

    /// The entries of `owner` (for tests and inspection).
    pub fn entries(&self, owner: &str) -> Vec<Entry> {
        self.lock().owned.get(owner).cloned().unwrap_or_default()
    }

    /// Deletes both tables.
    pub fn delete_tables(&self) -> Result<()> {
        let _st = self.lock();
        apply_json(&ruleset::render_delete(&self.table))
    }
}

fn with_sock<T>(
    st: &mut State,
    f: impl FnOnce(&mut SetSocket) -> std::io::Result<T>,
) -> std::io::Result<T> {
    if st.sock.is_none() {
        st.sock = Some(SetSocket::open().map_err(|e| std::io::Error::other(e.to_string()))?);
    }
    let r = f(st.sock.as_mut().expect("opened above"));
    if r.is_err() {
        // A socket whose answers may be out of step is not used again.
        st.sock = None;
    }
    r
}

/// Runs `nft -j -f -` with the document on its stdin.
pub fn apply_json(doc: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_vec(doc).map_err(|e| NetError::Nft(e.to_string()))?;
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            NetError::Nft(format!(
                "cannot run nft ({e}): install the nftables package (scripts/deps.sh)"
            ))
        })?;
    let wrote = child.stdin.take().expect("stdin piped").write_all(&text);
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Nft(format!("waiting for nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(NetError::Nft(format!(
            "nft failed ({}): {}",
            out.status,
            err.trim()
        )));
    }
    wrote.map_err(|e| NetError::Nft(format!("writing to nft: {e}")))
}
