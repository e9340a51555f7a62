//! The TCP listener's security: TLS always, and clients proven either by a
//! certificate from a given CA (mutual TLS) or by a bearer token read from a
//! root-only file. quiltd refuses to listen on TCP without one of them. The
//! Unix socket needs neither: its file mode (0660, root) is its access
//! control.
use anyhow::{Context, Result, bail};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// Shortest bearer token accepted.
const MIN_TOKEN: usize = 32;

/// The TLS side of the TCP listener.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// Server certificate chain and key (PEM); with `client_ca`, clients
    /// must present a certificate it signed.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Tls> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("read {}", cert.display()))?
            .collect::<std::result::Result<_, _>>()
            .with_context(|| format!("parse certificates in {}", cert.display()))?;
        if chain.is_empty() {
            bail!("{} holds no certificate", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("read the private key in {}", key.display()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca)
                    .with_context(|| format!("read {}", ca.display()))?
                {
                    roots
                        .add(c.with_context(|| format!("parse {}", ca.display()))?)
                        .with_context(|| format!("add a CA certificate of {}", ca.display()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .context("client certificate verifier")?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .context("the server certificate and key do not match")?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

/// A bearer token clients of the TCP listener must send
/// (`authorization: Bearer <token>`).
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Reads the token from a file only root can read or write (mode 0600
    /// or stricter, owned by root): anything looser is refused.
    pub fn load(path: &Path) -> Result<Token> {
        let m = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
        if !m.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        if m.mode() & 0o077 != 0 || m.uid() != 0 {
            bail!(
                "{} must be owned by root with mode 0600 (it is mode {:o}, owner {})",
                path.display(),
                m.mode() & 0o7777,
                m.uid()
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let token = text.trim();
        if token.len() < MIN_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            bail!(
                "the token in {} must be at least {MIN_TOKEN} printable characters without spaces",
                path.display()
            );
        }
        Ok(Token(token.into()))
    }

    /// Checks a request's metadata; compares in constant time.
    pub fn check(&self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let given = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if constant_time_eq(given.as_bytes(), self.0.as_bytes()) {
            Ok(req)
        } else {
            Err(tonic::Status::unauthenticated(
                "a valid bearer token is required on this listener",
            ))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What --listen needs, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct TcpSecurity {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
}

impl TcpSecurity {
    /// TLS and client authentication for --listen, or why it cannot listen.
    pub fn load(&self) -> Result<(Tls, Option<Token>)> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            bail!("--listen serves TLS only: give --tls-cert and --tls-key");
        };
        if self.client_ca.is_none() && self.token_file.is_none() {
            bail!(
                "--listen needs client authentication: --tls-client-ca (client certificates) or --auth-token-file (a bearer token)"
            );
        }
        let tls = Tls::load(cert, key, self.client_ca.as_deref())?;
        let token = self.token_file.as_deref().map(Token::load).transpose()?;
        Ok((tls, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn token_files_must_be_private_and_long() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, format!("{}\n", "t".repeat(40))).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Token::load(&p).is_err(), "world-readable");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = Token::load(&p).unwrap();
        let mut req = tonic::Request::new(());
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", "t".repeat(40)).parse().unwrap(),
        );
        assert!(t.check(req).is_ok());
        let mut bad = tonic::Request::new(());
        bad.metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            t.check(bad).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert!(t.check(tonic::Request::new(())).is_err());
        std::fs::write(&p, "short").unwrap();
        assert!(Token::load(&p).is_err(), "too short");
    }

    #[test]
    fn listen_needs_tls_and_client_auth() {
        assert!(TcpSecurity::default().load().is_err());
        let s = TcpSecurity {
            cert: Some("/nonexistent/c.pem".into()),
            key: Some("/nonexistent/k.pem".into()),
            ..Default::default()
        };
        let e = s.load().unwrap_err().to_string();
        assert!(e.contains("client authentication"), "{e}");
    }
}
