//! A synchronous rtnetlink socket: requests answered by an ACK, batches of
//! them in one send, and dumps. The socket belongs to the network namespace
//! of the thread that opened it, whichever thread uses it later.
use crate::error::{NetError, Result};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::io;

#[derive(Debug)]
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(NetError::netlink("netlink socket"))?;
        sock.bind_auto()
            .map_err(NetError::netlink("netlink bind"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NetError::netlink("netlink connect"))?;
        let _ = sock.set_ext_ack(true);
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends one request (`flags` beside REQUEST and ACK) and waits for its
    /// ACK.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> Result<()> {
        self.batch(vec![(msg, flags)])
            .map_err(|(_, e)| NetError::netlink(what)(e))
    }

    /// Sends the requests in one datagram (the kernel runs them in order)
    /// and waits for each one's ACK. Err: the index of the first request
    /// that failed, and why (those after it were still run).
    pub fn batch(
        &mut self,
        msgs: Vec<(RouteNetlinkMessage, u16)>,
    ) -> std::result::Result<(), (usize, io::Error)> {
        let first = self.seq.wrapping_add(1);
        let mut buf = Vec::with_capacity(512);
        for (inner, flags) in msgs.iter().cloned() {
            self.seq = self.seq.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
            header.sequence_number = self.seq;
            let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
            m.finalize();
            let at = buf.len();
            buf.resize(at + m.buffer_len(), 0);
            m.serialize(&mut buf[at..]);
        }
        self.sock.send(&buf, 0).map_err(|e| (0, e))?;
        let n = msgs.len() as u32;
        let mut acked = 0u32;
        let mut failed: Option<(usize, io::Error)> = None;
        while acked < n {
            let (data, _) = self.sock.recv_from_full().map_err(|e| (0, e))?;
            let mut off = 0;
            while off < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| (0, io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
                let len = msg.header.length as usize;
                let seq = msg.header.sequence_number;
                if let NetlinkPayload::Error(err) = msg.payload {
                    let idx = seq.wrapping_sub(first) as usize;
                    if idx < msgs.len() {
                        acked += 1;
                        if err.code.is_some() && failed.is_none() {
                            failed = Some((idx, err.to_io()));
                        }
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
        match failed {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// A dump request: every message of the answer.
    pub fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(NetError::netlink(what))?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self
                .sock
                .recv_from_full()
                .map_err(NetError::netlink(what))?;
            let mut off = 0;
            while off < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| {
                        NetError::netlink(what)(io::Error::new(
                            io::ErrorKind::InvalidData,
                            e.to_string(),
                        ))
                    })?;
                let len = msg.header.length as usize;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(NetError::netlink(what)(e.to_io()));
                    }
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
                if len == 0 {
                    return Ok(out);
                }
                off += (len + 3) & !3;
            }
        }
    }
}
