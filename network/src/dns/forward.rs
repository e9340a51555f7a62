//! Forwarding a query to the upstream resolvers, from quiltd's own network
//! namespace (so a loopback upstream works): the client's message as it
//! came, under a fresh random id, over UDP from a new socket (a random
//! source port, connected, so only the upstream's answers are read) or
//! over TCP when the client asked over TCP. Each upstream is tried in turn
//! until one answers. A truncated UDP answer is passed on as it is: the
//! client asks again over TCP.
use hickory_server::proto::op::Message;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream has to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest answer read over UDP (EDNS payloads above this are rare).
const MAX_UDP: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The first upstream's answer to `query` (raw, as the client sent it),
/// its id set back to the client's. None when none answered.
pub async fn forward(
    upstreams: &[SocketAddr],
    query: &[u8],
    transport: Transport,
) -> Option<Message> {
    if query.len() < 12 {
        return None;
    }
    let client_id = u16::from_be_bytes([query[0], query[1]]);
    for up in upstreams {
        let mut id = [0u8; 2];
        if getrandom::fill(&mut id).is_err() {
            return None;
        }
        let mut q = query.to_vec();
        q[..2].copy_from_slice(&id);
        let asked = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
            match transport {
                Transport::Udp => udp(*up, &q).await,
                Transport::Tcp => tcp(*up, &q).await,
            }
        })
        .await;
        let raw = match asked {
            Ok(Ok(raw)) => raw,
            Ok(Err(e)) => {
                tracing::debug!(upstream = %up, error = %e, "upstream resolver failed");
                continue;
            }
            Err(_) => {
                tracing::debug!(upstream = %up, "upstream resolver timed out");
                continue;
            }
        };
        match Message::from_vec(&raw) {
            Ok(mut m) if m.metadata.id == u16::from_be_bytes(id) => {
                m.metadata.id = client_id;
                return Some(m);
            }
            Ok(_) => tracing::debug!(upstream = %up, "upstream answered another id"),
            Err(e) => tracing::debug!(upstream = %up, error = %e, "upstream's answer unreadable"),
        }
    }
    None
}

async fn udp(up: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if up.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(local).await?;
    s.connect(up).await?;
    s.send(q).await?;
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let n = s.recv(&mut buf).await?;
        // Another id (a late answer to nothing of ours): keep waiting.
        if n >= 2 && buf[..2] == q[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp(up: SocketAddr, q: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(q.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut s = TcpStream::connect(up).await?;
    let mut out = Vec::with_capacity(q.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(q);
    s.write_all(&out).await?;
    let n = s.read_u16().await? as usize;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}
