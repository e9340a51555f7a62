//! Calls forwarded to another node of the cluster. A call that acts on a
//! container's host (stop, kill, exec, logs, copy, stats, ...) is served
//! by the node that runs it: the node that got the call sends the same
//! request to that node's TCP listener, over TLS with this node's own
//! certificate (`--tls-cert`/`--tls-key`, a client certificate to the
//! other node) and trusting the cluster's CA (`--tls-client-ca`), with the
//! bearer token of `--auth-token-file` where there is one, and relays the
//! answer (streams included) as it comes.
use quilt_proto::v1::container_service_client::ContainerServiceClient;
use quilt_sync_engine::Engine;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tonic::Status;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How long a forwarded call waits to connect to the other node.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Keepalive probes on a connection to another node.
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(10);

/// What this node needs to call the others.
#[derive(Debug, Clone, Default)]
pub struct PeerAuth {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
}

pub struct Peers {
    engine: Engine,
    tls: Option<ClientTlsConfig>,
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    /// One channel per node address, made on first use.
    channels: Mutex<HashMap<String, Channel>>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").finish_non_exhaustive()
    }
}

impl Peers {
    /// Loads the client side of node-to-node TLS (none without a CA: such
    /// a node cannot forward, and says so).
    pub fn new(engine: Engine, auth: &PeerAuth) -> anyhow::Result<Peers> {
        use anyhow::Context;
        let tls = match (&auth.ca, &auth.cert, &auth.key) {
            (Some(ca), Some(cert), Some(key)) => {
                let read =
                    |p: &PathBuf| std::fs::read(p).with_context(|| format!("read {}", p.display()));
                Some(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(read(ca)?))
                        .identity(Identity::from_pem(read(cert)?, read(key)?)),
                )
            }
            _ => None,
        };
        let token = match &auth.token_file {
            Some(p) => {
                let t =
                    std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
                Some(
                    format!("Bearer {}", t.trim())
                        .parse()
                        .context("the bearer token is not valid header text")?,
                )
            }
            None => None,
        };
        Ok(Peers {
            engine,
            tls,
            token,
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// The node that runs the container a call names, when that is not
    /// this one (None: serve it here, errors included).
    pub async fn owner(&self, reference: &str) -> Option<String> {
        self.engine.elsewhere(reference).await
    }

    /// The other live nodes of the cluster (none on a daemon of its own).
    pub async fn others(&self) -> Vec<String> {
        match self.engine.nodes().await {
            Ok((nodes, Some(me))) => nodes
                .into_iter()
                .filter(|n| n.up && n.name != me)
                .map(|n| n.name)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A client of `node`'s ContainerService.
    pub async fn client(
        &self,
        node: &str,
    ) -> Result<
        ContainerServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>,
        Status,
    > {
        let channel = self.channel(node).await?;
        Ok(ContainerServiceClient::with_interceptor(
            channel,
            Bearer(self.token.clone()),
        ))
    }

    async fn channel(&self, node: &str) -> Result<Channel, Status> {
        let (nodes, _) = self
            .engine
            .nodes()
            .await
            .map_err(crate::status::to_status)?;
        let n = nodes
            .into_iter()
            .find(|n| n.name == node)
            .ok_or_else(|| Status::unavailable(format!("node {node} is not registered")))?;
        if !n.up {
            return Err(Status::unavailable(format!(
                "the container runs on node {node}, which is down (its lease ran out)"
            )));
        }
        if n.address.is_empty() {
            return Err(Status::failed_precondition(format!(
                "the container runs on node {node}, which has no --node-address to reach it at"
            )));
        }
        if let Some(c) = self
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&n.address)
        {
            return Ok(c.clone());
        }
        let Some(tls) = self.tls.clone() else {
            return Err(Status::failed_precondition(format!(
                "the container runs on node {node}: this node cannot call it (start quiltd with \
                 --listen, --tls-cert, --tls-key and --tls-client-ca, the cluster's CA)"
            )));
        };
        let host = n
            .address
            .rsplit_once(':')
            .map_or(n.address.as_str(), |(h, _)| h)
            .trim_matches(['[', ']']);
        let channel = Endpoint::from_shared(format!("https://{}", n.address))
            .map_err(|e| Status::internal(format!("node {node}'s address: {e}")))?
            .tls_config(tls.domain_name(host))
            .map_err(|e| Status::internal(format!("TLS to node {node}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            // A node that dies mid-call is noticed within seconds, not
            // after TCP's retransmissions.
            .tcp_keepalive(Some(KEEPALIVE))
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE)
            .keep_alive_while_idle(true)
            .connect_lazy();
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n.address, channel.clone());
        Ok(channel)
    }
}

/// Adds this node's bearer token (if any) to forwarded calls.
#[derive(Debug, Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(t) = &self.0 {
            req.metadata_mut().insert("authorization", t.clone());
        }
        req.metadata_mut()
            .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
        Ok(req)
    }
}

/// Marks a call one node forwarded to another: it is not forwarded again
/// (no call goes round the cluster).
const FORWARDED: &str = "x-quilt-forwarded";

/// Whether `req` was forwarded by another node.
pub fn forwarded<T>(req: &tonic::Request<T>) -> bool {
    req.metadata().contains_key(FORWARDED)
}
