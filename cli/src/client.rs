//! Connection to quiltd: its Unix socket, or its TCP listener (TLS, with a
//! client certificate or a bearer token).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use quilt_proto::v1::container_service_client::ContainerServiceClient;
use tokio::net::UnixStream;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::args::Cli;
use crate::error::CliError;

/// The transport every service client uses: a channel, with the bearer
/// token added to each call when one is configured.
pub type Transport = InterceptedService<Channel, Auth>;

/// The gRPC client used by every command.
pub type Client = ContainerServiceClient<Transport>;

/// Where quiltd is, and how to prove who we are.
#[derive(Debug, Clone)]
pub enum Target {
    Socket(PathBuf),
    Tcp {
        /// HOST:PORT.
        addr: String,
        server_name: Option<String>,
        ca: Option<PathBuf>,
        identity: Option<(PathBuf, PathBuf)>,
        token_file: Option<PathBuf>,
    },
}

impl Target {
    pub fn of(cli: &Cli) -> Result<Target, CliError> {
        let Some(host) = &cli.host else {
            return Ok(Target::Socket(cli.socket.clone()));
        };
        let addr = host.strip_prefix("tcp://").ok_or_else(|| {
            CliError::engine(format!("invalid --host {host:?}: expected tcp://HOST:PORT"))
        })?;
        Ok(Target::Tcp {
            addr: addr.to_owned(),
            server_name: cli.tls_server_name.clone(),
            ca: cli.tls_ca.clone(),
            identity: cli.tls_cert.clone().zip(cli.tls_key.clone()),
            token_file: cli.token_file.clone(),
        })
    }
}

/// Adds `authorization: Bearer <token>` to every call (nothing without a token).
#[derive(Debug, Clone, Default)]
pub struct Auth(Option<AsciiMetadataValue>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// Connects to quiltd.
pub async fn connect(target: &Target) -> Result<Client, CliError> {
    Ok(ContainerServiceClient::new(connect_channel(target).await?))
}

/// A transport to quiltd, for any of its services.
pub async fn connect_channel(target: &Target) -> Result<Transport, CliError> {
    match target {
        Target::Socket(path) => Ok(InterceptedService::new(
            connect_socket(path).await?,
            Auth::default(),
        )),
        Target::Tcp {
            addr,
            server_name,
            ca,
            identity,
            token_file,
        } => {
            let auth = match token_file {
                Some(f) => Auth(Some(read_token(f)?)),
                None => Auth::default(),
            };
            let channel = connect_tcp(
                addr,
                server_name.as_deref(),
                ca.as_deref(),
                identity.as_ref(),
            )
            .await?;
            Ok(InterceptedService::new(channel, auth))
        }
    }
}

fn read_token(path: &Path) -> Result<AsciiMetadataValue, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::engine(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    format!("Bearer {}", text.trim()).parse().map_err(|_| {
        CliError::engine(format!(
            "the token in {} is not printable ASCII",
            path.display()
        ))
    })
}

/// A TLS channel to HOST:PORT.
async fn connect_tcp(
    addr: &str,
    server_name: Option<&str>,
    ca: Option<&Path>,
    identity: Option<&(PathBuf, PathBuf)>,
) -> Result<Channel, CliError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| CliError::engine(format!("cannot read {}: {e}", p.display())))
    };
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let mut tls =
        ClientTlsConfig::new().domain_name(server_name.unwrap_or(host).trim_matches(['[', ']']));
    if let Some(ca) = ca {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    let unreachable = |reason: &dyn std::fmt::Display| {
        CliError::engine(format!(
            "cannot connect to quiltd at tcp://{addr}: {reason}"
        ))
    };
    Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|e| unreachable(&e))?
        .tls_config(tls)
        .map_err(|e| unreachable(&error_chain(&e)))?
        .connect()
        .await
        .map_err(|e| unreachable(&error_chain(&e)))
}

/// A channel over the Unix socket at `path`.
///
/// The socket is connected once up front so that an unreachable daemon is
/// reported with the plain OS reason; the channel reuses that stream and
/// only dials again if it ever has to reconnect.
async fn connect_socket(path: &Path) -> Result<Channel, CliError> {
    let unreachable = |reason: &dyn std::fmt::Display| {
        CliError::engine(format!(
            "cannot connect to quiltd at {}: {reason} (is quiltd running?)",
            path.display()
        ))
    };
    let first = UnixStream::connect(path)
        .await
        .map_err(|e| unreachable(&e))?;
    let first = Arc::new(Mutex::new(Some(first)));
    let path: PathBuf = path.to_owned();
    let connector = tower::service_fn(move |_| {
        let path = path.clone();
        let ready = first.lock().ok().and_then(|mut slot| slot.take());
        async move {
            let stream = match ready {
                Some(stream) => stream,
                None => UnixStream::connect(path).await?,
            };
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    // The authority is ignored: the connector always dials the socket.
    let channel = Endpoint::from_static("http://[::]:50051")
        .connect_with_connector(connector)
        .await
        .map_err(|e| unreachable(&error_chain(&e)))?;
    Ok(channel)
}

/// `err` and its sources, joined with ": ".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
