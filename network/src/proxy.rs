//! The userspace proxy of published ports: a listener per published port
//! on its host address, relaying to the container. It serves what DNAT
//! cannot: connections to 127.0.0.1 from the daemon's own namespace (the
//! kernel does not route loopback-sourced packets out of `lo` without the
//! `route_localnet` sysctl, which this daemon never sets). It also holds
//! the host port, so nothing else can take it. Bounded: at most
//! `MAX_CONNS` connections (TCP) or flows (UDP) per port.
use crate::error::{NetError, Result};
use crate::ports::{PortBinding, Proto};
use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{AbortHandle, JoinSet};

pub const MAX_CONNS: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const UDP_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Proxies {
    by_owner: Mutex<HashMap<String, Vec<AbortHandle>>>,
}

impl Proxies {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<AbortHandle>>> {
        self.by_owner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a listener for each binding (to `target`'s container port);
    /// all or none. Already open for `owner`: nothing is done.
    pub async fn open(
        &self,
        owner: &str,
        target: std::net::Ipv4Addr,
        bindings: &[PortBinding],
    ) -> Result<()> {
        if bindings.is_empty() || self.map().contains_key(owner) {
            return Ok(());
        }
        let mut handles = Vec::new();
        for b in bindings {
            let to = SocketAddrV4::new(target, b.container_port);
            let at = SocketAddrV4::new(b.host_ip, b.host_port);
            let opened = match b.proto {
                Proto::Tcp => TcpListener::bind(at)
                    .await
                    .map(|l| tokio::spawn(tcp(l, to)).abort_handle()),
                Proto::Udp => UdpSocket::bind(at)
                    .await
                    .map(|s| tokio::spawn(udp(s, to)).abort_handle()),
            };
            match opened {
                Ok(h) => handles.push(h),
                Err(e) => {
                    for h in handles {
                        h.abort();
                    }
                    return Err(NetError::Conflict(format!(
                        "cannot listen on {at}/{} for a published port: {e}",
                        b.proto.as_str()
                    )));
                }
            }
        }
        self.map().insert(owner.to_owned(), handles);
        Ok(())
    }

    /// Closes `owner`'s listeners and every connection through them.
    pub fn close(&self, owner: &str) {
        if let Some(hs) = self.map().remove(owner) {
            for h in hs {
                h.abort();
            }
        }
    }

    /// How many owners have listeners open.
    pub fn open_count(&self) -> usize {
        self.map().len()
    }
}

async fn tcp(listener: TcpListener, to: SocketAddrV4) {
    let mut conns = JoinSet::new();
    loop {
        let (mut client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "proxy accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        if conns.len() >= MAX_CONNS {
            continue; // dropped: closes the client's connection
        }
        conns.spawn(async move {
            let Ok(Ok(mut upstream)) =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await
            else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}

async fn udp(sock: UdpSocket, to: SocketAddrV4) {
    let sock = Arc::new(sock);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Default::default();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = sock.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        while tasks.try_join_next().is_some() {}
        let known = flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let up = match known {
            Some(u) => u,
            None => {
                if tasks.len() >= MAX_CONNS {
                    continue;
                }
                let Ok(u) = UdpSocket::bind("0.0.0.0:0").await else {
                    continue;
                };
                if u.connect(to).await.is_err() {
                    continue;
                }
                let u = Arc::new(u);
                flows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(client, u.clone());
                let (u2, back, fl) = (u.clone(), sock.clone(), flows.clone());
                tasks.spawn(async move {
                    let mut b = vec![0u8; 65536];
                    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, u2.recv(&mut b)).await {
                        let _ = back.send_to(&b[..n], client).await;
                    }
                    fl.lock().unwrap_or_else(|p| p.into_inner()).remove(&client);
                });
                u
            }
        };
        let _ = up.send(&buf[..n]).await;
    }
}
