//! Elements of nftables sets and maps, added and removed over netfilter
//! netlink in one transaction per call (a batch), without running `nft`.
//! This is the start path's part of the firewall: `nft` takes milliseconds
//! per call (a process, then a cache of the whole ruleset), a batch here
//! tens of microseconds. The ruleset itself (tables, chains, rules, set
//! declarations) is applied by `ruleset.rs` through `nft`.
use crate::error::{NetError, Result};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use std::io;
use std::net::Ipv4Addr;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

/// The table families this daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet,
    Bridge,
}

impl Family {
    fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Bridge => 7,
        }
    }
}

/// One element of a set (`data: None`) or a map, encoded as the kernel
/// keeps it: each field of a concatenation padded to 4 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elem {
    pub family: Family,
    pub set: &'static str,
    pub key: Vec<u8>,
    pub data: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// `ifname . ether_addr . ipv4_addr`: a bridge port bound to its
/// container's MAC and address.
pub fn bind_key(ifname: &str, mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut k = vec![0u8; 16];
    let n = ifname.len().min(15);
    k[..n].copy_from_slice(&ifname.as_bytes()[..n]);
    k.extend_from_slice(&mac);
    pad4(&mut k);
    k.extend_from_slice(&ip.octets());
    k
}

/// `ipv4_addr . inet_proto . inet_service`.
pub fn port_key(addr: Option<Ipv4Addr>, proto: u8, port: u16) -> Vec<u8> {
    let mut k = Vec::with_capacity(12);
    if let Some(a) = addr {
        k.extend_from_slice(&a.octets());
    }
    k.push(proto);
    pad4(&mut k);
    k.extend_from_slice(&port.to_be_bytes());
    pad4(&mut k);
    k
}

/// `ipv4_addr`: the address a published port leads to.
pub fn addr_data(addr: Ipv4Addr) -> Vec<u8> {
    addr.octets().to_vec()
}

/// `inet_service`: the port a published port leads to.
pub fn port_data(port: u16) -> Vec<u8> {
    port.to_be_bytes().to_vec()
}

#[derive(Debug)]
pub struct SetSocket {
    sock: Socket,
    seq: u32,
}

fn put_u16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_ne_bytes());
}

fn put_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_ne_bytes());
}

fn attr(v: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    put_u16(v, (4 + payload.len()) as u16);
    put_u16(v, kind);
    v.extend_from_slice(payload);
    pad4(v);
}

fn nest(v: &mut Vec<u8>, kind: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let at = v.len();
    put_u16(v, 0);
    put_u16(v, kind | NLA_F_NESTED);
    body(v);
    let len = (v.len() - at) as u16;
    v[at..at + 2].copy_from_slice(&len.to_ne_bytes());
}

fn message(
    v: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let at = v.len();
    put_u32(v, 0);
    put_u16(v, kind);
    put_u16(v, flags);
    put_u32(v, seq);
    put_u32(v, 0);
    v.push(family);
    v.push(0);
    v.extend_from_slice(&res_id.to_be_bytes());
    body(v);
    pad4(v);
    let len = (v.len() - at) as u32;
    v[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}

impl SetSocket {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<SetSocket> {
        let mut sock =
            Socket::new(NETLINK_NETFILTER).map_err(NetError::netlink("netfilter socket"))?;
        sock.bind_auto()
            .map_err(NetError::netlink("netfilter bind"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NetError::netlink("netfilter connect"))?;
        Ok(SetSocket { sock, seq: 0 })
    }

    /// Adds or removes the elements in one transaction of table `table`:
    /// all or nothing.
    pub fn apply(&mut self, table: &str, ops: &[(Op, Elem)]) -> io::Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(256 * ops.len());
        self.seq = self.seq.wrapping_add(1);
        message(
            &mut buf,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            self.seq,
            0,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        let first = self.seq.wrapping_add(1);
        for (op, e) in ops {
            self.seq = self.seq.wrapping_add(1);
            let (kind, flags) = match op {
                Op::Add => (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE),
                Op::Del => (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK),
            };
            message(
                &mut buf,
                (NFNL_SUBSYS_NFTABLES << 8) | kind,
                flags,
                self.seq,
                e.family.nfproto(),
                0,
                |v| {
                    let mut t = table.as_bytes().to_vec();
                    t.push(0);
                    attr(v, NFTA_SET_ELEM_LIST_TABLE, &t);
                    let mut s = e.set.as_bytes().to_vec();
                    s.push(0);
                    attr(v, NFTA_SET_ELEM_LIST_SET, &s);
                    nest(v, NFTA_SET_ELEM_LIST_ELEMENTS, |v| {
                        nest(v, NFTA_LIST_ELEM, |v| {
                            nest(v, NFTA_SET_ELEM_KEY, |v| attr(v, NFTA_DATA_VALUE, &e.key));
                            if let (Op::Add, Some(d)) = (op, &e.data) {
                                nest(v, NFTA_SET_ELEM_DATA, |v| attr(v, NFTA_DATA_VALUE, d));
                            }
                        });
                    });
                },
            );
        }
        self.seq = self.seq.wrapping_add(1);
        message(
            &mut buf,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            self.seq,
            0,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        self.sock.send(&buf, 0)?;

        let mut answered = 0usize;
        let mut failed: Option<io::Error> = None;
        while answered < ops.len() {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off + 16 <= data.len() {
                let len =
                    u32::from_ne_bytes(data[off..off + 4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(data[off + 4..off + 6].try_into().expect("2 bytes"));
                let seq = u32::from_ne_bytes(data[off + 8..off + 12].try_into().expect("4 bytes"));
                if len < 16 || off + len > data.len() {
                    break;
                }
                if kind == NLMSG_ERROR && len >= 20 {
                    let code =
                        i32::from_ne_bytes(data[off + 16..off + 20].try_into().expect("4 bytes"));
                    let idx = seq.wrapping_sub(first) as usize;
                    if idx < ops.len() {
                        answered += 1;
                        if code != 0 && failed.is_none() {
                            failed = Some(io::Error::from_raw_os_error(-code));
                        }
                    } else if code != 0 && failed.is_none() {
                        // The batch itself was refused (begin/end).
                        failed = Some(io::Error::from_raw_os_error(-code));
                        answered = ops.len();
                    }
                }
                off += (len + 3) & !3;
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_padded_as_nft_keeps_them() {
        // As `nft --debug=netlink` shows them.
        let k = bind_key("qvt1", [2, 0x51, 10, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(k.len(), 28);
        assert_eq!(&k[..4], b"qvt1");
        assert_eq!(&k[16..24], &[2, 0x51, 10, 0, 0, 2, 0, 0]);
        assert_eq!(&k[24..], &[10, 0, 0, 2]);
        assert_eq!(port_key(None, 17, 53), vec![17, 0, 0, 0, 0, 53, 0, 0]);
        assert_eq!(
            port_key(Some(Ipv4Addr::new(10, 1, 1, 1)), 6, 8080).len(),
            12
        );
        assert_eq!(port_data(5353), vec![0x14, 0xe9]);
        assert_eq!(addr_data(Ipv4Addr::new(10, 0, 0, 3)), vec![10, 0, 0, 3]);
    }
}
