//! Connection to quiltd over its Unix socket.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use quilt_proto::v1::container_service_client::ContainerServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

use crate::error::CliError;

/// The gRPC client used by every command.
pub type Client = ContainerServiceClient<Channel>;

/// Connects to quiltd at `path`.
///
/// The socket is connected once up front so that an unreachable daemon is
/// reported with the plain OS reason; the channel reuses that stream and
/// only dials again if it ever has to reconnect.
pub async fn connect(path: &Path) -> Result<Client, CliError> {
    Ok(ContainerServiceClient::new(connect_channel(path).await?))
}

/// A channel to quiltd, for any of its services.
pub async fn connect_channel(path: &Path) -> Result<Channel, CliError> {
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
