//! The egress proxy: TCP to ports 80 and 443 from a container whose
//! policy names domains is redirected here (nftables `redirect`). It reads
//! the name the container asks for (the HTTP `Host` header on port 80, the
//! TLS ClientHello's SNI on port 443), checks it against the container's
//! policy, resolves it itself through the upstream name servers and
//! connects to what it resolved to (each address checked again: never the
//! always-on deny set unless allowed, never an address of quiltd's own
//! namespace), never to the address the container dialled, unless no name
//! was given and that address is allowed by itself. Then bytes are copied
//! both ways. Each connection follows its container's policy: a change
//! that no longer allows it (or the container's removal) closes it at once.
//!
//! Bounded: `MAX_CONNS` connections per container, `HEAD_TIMEOUT` to read
//! the name, `MAX_HEAD` bytes before it.
use crate::egress::{Policed, Policies, normalize_name};
use crate::error::{NetError, Result};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Connections at once per container.
pub const MAX_CONNS: usize = 256;
/// Time to read the Host header or the ClientHello.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read at most before the name is known.
pub const MAX_HEAD: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct EgressProxy {
    policies: Arc<Policies>,
    resolver: TokioResolver,
    /// Bound, not listening, until `start`: connections are refused
    /// until then.
    socket: Mutex<Option<tokio::net::TcpSocket>>,
    port: u16,
    started: AtomicBool,
    per_container: Mutex<HashMap<Ipv4Addr, usize>>,
    open: AtomicUsize,
}

/// One connection counted for its container until dropped.
struct Slot {
    proxy: Arc<EgressProxy>,
    ip: Ipv4Addr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.proxy.counts();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.proxy.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EgressProxy {
    /// Binds the proxy's port (any free one, on every address of quiltd's
    /// namespace: the ruleset drops it from anywhere but the bridges, and
    /// the proxy serves only containers with a policy). Names are resolved
    /// by `upstream`. The port does not listen until `start` (the first
    /// policy that names domains): a daemon without one accepts nothing
    /// there.
    pub fn bind(policies: Arc<Policies>, upstream: &[SocketAddr]) -> Result<EgressProxy> {
        let socket =
            tokio::net::TcpSocket::new_v4().map_err(NetError::io("binding the egress proxy"))?;
        socket
            .bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            .map_err(NetError::io("binding the egress proxy"))?;
        let port = socket
            .local_addr()
            .map_err(NetError::io("binding the egress proxy"))?
            .port();
        let servers = upstream
            .iter()
            .map(|sa| {
                let conns = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = sa.port();
                        c
                    })
                    .collect();
                NameServerConfig::new(sa.ip(), true, conns)
            })
            .collect();
        let mut b = hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        );
        b.options_mut().timeout = Duration::from_secs(2);
        b.options_mut().attempts = 2;
        let resolver = b
            .build()
            .map_err(|e| NetError::Invalid(format!("the upstream name servers: {e}")))?;
        Ok(EgressProxy {
            policies,
            resolver,
            socket: Mutex::new(Some(socket)),
            port,
            started: AtomicBool::new(false),
            per_container: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections open now (all containers).
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Ipv4Addr, usize>> {
        self.per_container.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts serving (once; from the daemon's runtime).
    pub fn start(self: &Arc<Self>) -> Result<()> {
        if self.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let socket = self
            .socket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .expect("taken once, guarded by started");
        let listener = socket
            .listen(1024)
            .map_err(NetError::io("serving the egress proxy"))?;
        let me = self.clone();
        tokio::spawn(async move { me.serve(listener).await });
        Ok(())
    }

    async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (client, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "egress proxy accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let SocketAddr::V4(peer) = peer else { continue };
            let ip = *peer.ip();
            // Only containers with a policy are served.
            let Some(policy) = self.policies.watch(ip) else {
                continue;
            };
            let Some(slot) = self.admit(ip) else {
                tracing::debug!(container = %ip, "egress proxy: too many connections");
                continue;
            };
            tokio::spawn(async move {
                if let Err(why) = handle(slot, client, policy).await {
                    tracing::debug!(container = %ip, %why, "egress proxy refused a connection");
                }
            });
        }
    }

    fn admit(self: &Arc<Self>, ip: Ipv4Addr) -> Option<Slot> {
        let mut m = self.counts();
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_CONNS {
            return None;
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::AcqRel);
        Some(Slot {
            proxy: self.clone(),
            ip,
        })
    }
}

/// What the container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Name(String),
    /// No name: the address it dialled.
    Addr(Ipv4Addr),
}

fn allowed(p: &Policed, want: &Want, to: Ipv4Addr, port: u16) -> bool {
    match want {
        Want::Name(n) => p.rules.allows_name(n, Some(port)) && p.rules.allows_resolved(to, port),
        Want::Addr(a) => p.rules.allows_addr(*a, Some(port)),
    }
}

/// Whether `ip` is an address of quiltd's own namespace (it can be bound).
fn is_local(ip: Ipv4Addr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

fn original_dst(s: &TcpStream) -> Option<SocketAddrV4> {
    let sin = nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::OriginalDst).ok()?;
    Some(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        u16::from_be(sin.sin_port),
    ))
}

async fn handle(
    _slot: Slot,
    mut client: TcpStream,
    mut policy: watch::Receiver<Option<Arc<Policed>>>,
) -> std::result::Result<(), String> {
    let dst = original_dst(&client).ok_or("no original destination")?;
    let port = dst.port();
    let mut head = Vec::with_capacity(2048);
    let name = tokio::time::timeout(HEAD_TIMEOUT, read_name(&mut client, &mut head, port))
        .await
        .map_err(|_| "no name within the time allowed")??;
    let want = match name {
        Some(n) => Want::Name(normalize_name(&n)),
        None => Want::Addr(*dst.ip()),
    };
    let current = policy.borrow_and_update().clone().ok_or("no policy")?;
    let proxy = _slot.proxy.clone();
    let candidates: Vec<Ipv4Addr> = match &want {
        Want::Name(n) => {
            if !current.rules.allows_name(n, Some(port)) {
                return Err(format!("{n}:{port} is not allowed"));
            }
            let fqdn = format!("{n}.");
            let found = tokio::time::timeout(RESOLVE_TIMEOUT, proxy.resolver.lookup_ip(fqdn))
                .await
                .map_err(|_| format!("resolving {n} timed out"))?
                .map_err(|e| format!("resolving {n}: {e}"))?;
            found
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .filter(|a| current.rules.allows_resolved(*a, port) && !is_local(*a))
                .collect()
        }
        Want::Addr(a) => {
            if !current.rules.allows_addr(*a, Some(port)) || is_local(*a) {
                return Err(format!("{a}:{port} is not allowed"));
            }
            vec![*a]
        }
    };
    let mut upstream = None;
    for a in candidates {
        if let Ok(Ok(s)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((a, port))).await
        {
            upstream = Some((s, a));
            break;
        }
    }
    let (mut up, to) =
        upstream.ok_or_else(|| format!("no allowed address of {want:?} answered"))?;
    up.write_all(&head).await.map_err(|e| e.to_string())?;
    let splice = tokio::io::copy_bidirectional(&mut client, &mut up);
    tokio::pin!(splice);
    loop {
        tokio::select! {
            _ = &mut splice => return Ok(()),
            changed = policy.changed() => {
                let keep = changed.is_ok()
                    && policy
                        .borrow_and_update()
                        .as_ref()
                        .is_some_and(|p| allowed(p, &want, to, port));
                if !keep {
                    // Both sockets close with this task.
                    return Err(format!("{want:?} no longer allowed: closed"));
                }
            }
        }
    }
}

/// Reads until the name is known (`None`: the protocol has none: TLS
/// without SNI, HTTP without Host). What was read stays in `head`.
async fn read_name(
    client: &mut TcpStream,
    head: &mut Vec<u8>,
    port: u16,
) -> std::result::Result<Option<String>, String> {
    let mut buf = [0u8; 4096];
    loop {
        let n = client.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before a name".into());
        }
        head.extend_from_slice(&buf[..n]);
        let parsed = if port == 443 {
            sni(head)
        } else {
            host_header(head)
        };
        match parsed {
            Parsed::Done(name) => return Ok(name),
            Parsed::More if head.len() < MAX_HEAD => continue,
            Parsed::More => return Err("no name in the first 16 KiB".into()),
            Parsed::Bad(why) => return Err(why),
        }
    }
}

enum Parsed {
    Done(Option<String>),
    More,
    Bad(String),
}

/// The SNI of a TLS ClientHello (`tls-parser` reads it; lenient: clients
/// that send few extensions, such as busybox's, are served too).
fn sni(head: &[u8]) -> Parsed {
    use tls_parser::{
        TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_extensions, parse_tls_plaintext,
    };
    // A handshake record (22) comes first.
    if head.first().is_some_and(|b| *b != 22) {
        return Parsed::Bad("not TLS".into());
    }
    let rec = match parse_tls_plaintext(head) {
        Ok((_, rec)) => rec,
        Err(tls_parser::nom::Err::Incomplete(_)) => return Parsed::More,
        Err(e) => return Parsed::Bad(format!("not TLS: {e:?}")),
    };
    let Some(TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello))) = rec.msg.first()
    else {
        return Parsed::Bad("not a TLS ClientHello".into());
    };
    let Some(ext) = hello.ext else {
        return Parsed::Done(None);
    };
    let Ok((_, exts)) = parse_tls_extensions(ext) else {
        return Parsed::Bad("bad TLS extensions".into());
    };
    for e in exts {
        if let TlsExtension::SNI(names) = e {
            // Type 0: a host name.
            if let Some((_, name)) = names.iter().find(|(t, _)| t.0 == 0) {
                return match std::str::from_utf8(name) {
                    Ok(n) => Parsed::Done(Some(n.to_owned())),
                    Err(_) => Parsed::Bad("a server name that is not text".into()),
                };
            }
        }
    }
    Parsed::Done(None)
}

/// The Host header of an HTTP/1 request (without its port).
fn host_header(head: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Partial) => Parsed::More,
        Ok(httparse::Status::Complete(_)) => {
            let host = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(|v| {
                    let v = v.trim();
                    match v.rsplit_once(':') {
                        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
                        _ => v.to_owned(),
                    }
                });
            match host {
                // An address as the Host is no name: the address dialled decides.
                Some(h) if h.parse::<Ipv4Addr>().is_ok() || h.starts_with('[') => {
                    Parsed::Done(None)
                }
                Some(h) if !h.is_empty() => Parsed::Done(Some(h)),
                _ => Parsed::Done(None),
            }
        }
        Err(e) => Parsed::Bad(format!("not an HTTP request: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers() {
        let p = |s: &str| match host_header(s.as_bytes()) {
            Parsed::Done(n) => Some(n),
            Parsed::More => None,
            Parsed::Bad(_) => Some(Some("BAD".into())),
        };
        assert_eq!(
            p("GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n"),
            Some(Some("a.test".into()))
        );
        assert_eq!(
            p("GET / HTTP/1.1\r\nhost: A.test\r\n\r\n"),
            Some(Some("A.test".into()))
        );
        assert_eq!(p("GET / HTTP/1.1\r\nHost: a.te"), None);
        assert_eq!(p("GET / HTTP/1.0\r\n\r\n"), Some(None));
        assert_eq!(p("GET / HTTP/1.1\r\nHost: 1.2.3.4\r\n\r\n"), Some(None));
        assert_eq!(p("\x16\x03\x01garbage\r\n\r\n"), Some(Some("BAD".into())));
    }

    #[test]
    fn client_hello_sni() {
        // A ClientHello made by rustls itself, for "allowed.test".
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify))
        .with_no_client_auth();
        let mut c = rustls::ClientConnection::new(
            Arc::new(cfg),
            rustls::pki_types::ServerName::try_from("allowed.test").expect("name"),
        )
        .expect("client");
        let mut out = Vec::new();
        c.write_tls(&mut out).expect("hello");
        assert!(matches!(sni(&out[..10]), Parsed::More));
        match sni(&out) {
            Parsed::Done(n) => assert_eq!(n.as_deref(), Some("allowed.test")),
            _ => panic!("no SNI"),
        }
        assert!(matches!(sni(b"GET / HTTP/1.1\r\n\r\n"), Parsed::Bad(_)));
    }

    #[derive(Debug)]
    struct NoVerify;
    impl rustls::client::danger::ServerCertVerifier for NoVerify {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error>
        {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error>
        {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error>
        {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            vec![rustls::SignatureScheme::ECDSA_NISTP256_SHA256]
        }
    }
}
