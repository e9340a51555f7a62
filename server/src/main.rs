//! quiltd: the Quilt daemon. Serves quilt.v1 (plus grpc.health.v1 and server
//! reflection) on a Unix socket, and on TCP only when --listen is given.
#![deny(unsafe_code)]

mod auth;
mod authority;
mod convert;
mod forward;
mod listen;
mod metrics;
mod services;
mod status;

use anyhow::{Context, Result, bail};
use clap::Parser;
use quilt_proto::v1::container_service_server::ContainerServiceServer;
use quilt_proto::v1::image_service_server::ImageServiceServer;
use quilt_proto::v1::network_service_server::NetworkServiceServer;
use quilt_proto::v1::system_service_server::SystemServiceServer;
use quilt_proto::v1::volume_service_server::VolumeServiceServer;
use quilt_sync_engine::{Engine, EngineConfig, InstanceLock};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::HealthServer;

/// How long a start waits for the locks of a daemon that is going away.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long open streams may keep quiltd alive after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, Parser)]
#[command(name = "quiltd", version, about = "Quilt container engine daemon")]
struct Args {
    /// Where the database, container directories and images live.
    #[arg(long, default_value = "/var/lib/quilt", env = "QUILT_DATA_DIR")]
    data_dir: PathBuf,
    /// Where the state is kept: a PostgreSQL URL
    /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DB, or ?host=/socket/dir),
    /// shared by every node of a cluster; or a SQLite file. Default:
    /// DATA_DIR/quilt.db.
    #[arg(long, value_name = "URL", env = "QUILT_DATABASE")]
    database: Option<String>,
    /// Unix socket to serve on (mode 0660).
    #[arg(long, default_value = "/run/quilt/quilt.sock", env = "QUILT_SOCKET")]
    socket: PathBuf,
    /// Serve Prometheus metrics over plain HTTP on this address
    /// (HOST:PORT, e.g. 127.0.0.1:9101), at /metrics.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,

    /// Also serve a subset of the Docker Engine API (v1.41) on this Unix
    /// socket (mode 0660), for docker's clients (DOCKER_HOST=unix://PATH).
    #[arg(long, value_name = "PATH", env = "QUILT_DOCKER_SOCKET")]
    docker_socket: Option<PathBuf>,
    /// Also serve on this TCP address (HOST:PORT), TLS only, with client
    /// certificates (--tls-client-ca) or a bearer token (--auth-token-file).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// PEM certificate chain of the TCP listener.
    #[arg(long, value_name = "PEM", requires = "listen")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the TCP listener.
    #[arg(long, value_name = "PEM", requires = "listen")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificates: TCP clients must present a certificate one of them signed.
    #[arg(long, value_name = "PEM", requires = "listen")]
    tls_client_ca: Option<PathBuf>,
    /// A file (owned by root, mode 0600) holding the bearer token TCP clients
    /// must send as `authorization: Bearer <token>`.
    #[arg(long, value_name = "FILE", requires = "listen")]
    auth_token_file: Option<PathBuf>,
    /// Cgroups are created at <hierarchy>/<cgroup-parent>/<container id>.
    #[arg(long, default_value = "quilt")]
    cgroup_parent: String,
    /// The quilt-shim binary; by default the one next to quiltd.
    #[arg(long, env = "QUILT_SHIM")]
    shim: Option<PathBuf>,
    /// Containers that may be starting at the same time.
    #[arg(long)]
    max_concurrent_starts: Option<usize>,
    /// Start requests that may wait in the queue before RESOURCE_EXHAUSTED.
    #[arg(long)]
    start_queue: Option<usize>,
    /// Rotate a container's log file when it reaches this size (bytes, or
    /// with a k/m/g suffix); 0 = no cap. Default 10m.
    #[arg(long, value_name = "SIZE", value_parser = quilt_proto::units::parse_size)]
    log_max_size: Option<u64>,
    /// Log files kept per container, the live one included (default 3;
    /// 1 = no rotated file is kept: a full log is started afresh).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    log_max_files: Option<u32>,
    /// Process limit of containers that ask for none (their request says 0;
    /// -1 asks for no limit). 0: no default.
    #[arg(long, value_name = "N", default_value_t = quilt_sync_engine::DEFAULT_PIDS_LIMIT)]
    default_pids: i64,
    /// Memory limit of containers that ask for none (e.g. 512m, 2g).
    #[arg(long, value_name = "SIZE", value_parser = quilt_proto::units::parse_size)]
    default_memory: Option<u64>,
    /// Disk budget (writes to its layer) of containers that ask for none.
    #[arg(long, value_name = "SIZE", value_parser = quilt_proto::units::parse_size)]
    default_disk: Option<u64>,
    /// End a file copy (cp) whose client sends or reads nothing for this
    /// many seconds (default 60).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    copy_idle_timeout: Option<u64>,
    /// The user namespace of containers that do not choose one (--userns):
    /// host (container root is host root, restricted as docker does), or
    /// private (container root is an unprivileged host user of a range of
    /// its own). Decided at create: later changes leave existing containers
    /// as they are.
    #[arg(long, value_name = "MODE", default_value = "host", env = "QUILT_USERNS_DEFAULT",
          value_parser = ["host", "private"])]
    userns_default: String,
    /// First host id of the id ranges given to containers with a private
    /// user namespace (each gets 65536 uids and gids of its own).
    #[arg(long, value_name = "ID", default_value_t = quilt_sync_engine::DEFAULT_USERNS_BASE)]
    userns_base: u32,
    /// How many such ranges there are (containers with a private user
    /// namespace at the same time).
    #[arg(long, value_name = "N", default_value_t = quilt_sync_engine::DEFAULT_USERNS_RANGES)]
    userns_ranges: u32,
    /// The default network's bridge in quiltd's network namespace (default:
    /// quilt-<6 hex digits derived from the data dir>).
    #[arg(long, value_name = "NAME")]
    bridge_name: Option<String>,
    /// The default network's subnet when it is first made (default: a free
    /// /16 of 172.20-31.0.0 or 10.200-255.0.0, chosen by the data dir).
    #[arg(long, value_name = "CIDR")]
    default_subnet: Option<String>,
    /// The nftables table of this daemon, in the bridge and inet families
    /// (default: quilt_<6 hex digits derived from the data dir>).
    #[arg(long, value_name = "NAME")]
    nft_table: Option<String>,
    /// Upstream resolvers of the networks' built-in DNS resolvers (and of
    /// the egress proxy, which resolves the names a policy allows), as
    /// IP[:PORT] (port 53 by default), comma-separated or repeated; `none`
    /// forwards nothing. Default: the nameservers of /etc/resolv.conf as
    /// quiltd starts (loopback ones included: quiltd asks them itself, from
    /// its own network namespace).
    #[arg(long, value_name = "IP[:PORT]", value_delimiter = ',')]
    upstream_dns: Vec<String>,
    /// Network namespaces kept ready for `--network none` containers (up
    /// to twice as many when containers give theirs back).
    #[arg(long, value_name = "N", default_value_t = quilt_sync_engine::DEFAULT_NETNS_POOL)]
    netns_pool: usize,
    /// Network namespaces with a veth pair kept ready for bridge networks
    /// (up to twice as many when containers give theirs back).
    #[arg(long, value_name = "N", default_value_t = quilt_sync_engine::DEFAULT_NETNS_POOL)]
    bridge_pool: usize,
    /// Pull from this registry over plain HTTP instead of HTTPS; loopback
    /// addresses only (127.0.0.0/8, [::1], localhost). Repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    insecure_registry: Vec<String>,
    /// Keep N containers of IMAGE prepared, network none, and with `init`
    /// or `read-only` as `quilt run --init/--read-only` would: a `run` of
    /// that shape adopts one (its command, env, workdir, hostname, user and
    /// limits applied then). Repeatable; `quilt pool set` resizes.
    #[arg(long, value_name = "IMAGE=N[,init][,read-only]", value_parser = parse_pool)]
    warm_pool: Vec<quilt_sync_engine::PoolSpec>,
    /// Writable layers (a container's overlay, mounted ahead) kept ready
    /// for first starts, for each of the last four kinds started (an image
    /// of the store, synced or --rm); at most 64; 0: every start mounts
    /// its own.
    #[arg(
        long,
        value_name = "N",
        default_value_t = quilt_sync_engine::DEFAULT_LAYER_POOL as u64,
        value_parser = clap::value_parser!(u64).range(0..=quilt_sync_engine::MAX_LAYER_POOL as u64)
    )]
    layer_pool: u64,
    /// With --database postgres://...: this node's name in the cluster
    /// (default: the host name). Unique: a second live node of that name
    /// is refused.
    #[arg(long, value_name = "NAME", env = "QUILT_NODE_NAME")]
    node_name: Option<String>,
    /// HOST:PORT where the other nodes reach this one (its --listen
    /// listener; default: the --listen address). Calls on this node's
    /// containers made through another node are forwarded here.
    #[arg(long, value_name = "HOST:PORT")]
    node_address: Option<String>,
    /// A label of this node (KEY=VALUE), shown by `quilt node ls`. Repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    node_label: Vec<(String, String)>,
    /// Seconds without a renewal after which a node counts as down and its
    /// containers as lost (default 10).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    node_lease: u64,
}

/// A node label: KEY=VALUE, KEY non-empty.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && k.len() <= 128 && v.len() <= 256 => {
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// This node of a cluster: only with a PostgreSQL --database.
fn cluster_config(args: &Args) -> Result<Option<quilt_sync_engine::ClusterConfig>> {
    let postgres = args
        .database
        .as_deref()
        .is_some_and(quilt_sync_engine::is_postgres_url);
    if !postgres {
        if args.node_name.is_some() || args.node_address.is_some() || !args.node_label.is_empty() {
            bail!("--node-name, --node-address and --node-label need --database postgres://...");
        }
        return Ok(None);
    }
    let name = match &args.node_name {
        Some(n) => n.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("the host name (give --node-name)")?
            .trim()
            .to_owned(),
    };
    quilt_sync_engine::validate_node_name(&name)
        .map_err(|e| anyhow::anyhow!("--node-name: {e}"))?;
    let address = match (&args.node_address, args.listen) {
        (Some(a), _) => a.clone(),
        (None, Some(l)) if l.ip().is_unspecified() => {
            bail!(
                "--listen {l} is not an address other nodes can reach: give --node-address HOST:PORT"
            )
        }
        (None, Some(l)) => l.to_string(),
        (None, None) => String::new(),
    };
    if let Ok(a) = address.parse::<std::net::SocketAddr>()
        && a.ip().is_unspecified()
    {
        bail!("--node-address {a}: an unspecified address cannot be reached by other nodes");
    }
    Ok(Some(quilt_sync_engine::ClusterConfig {
        name,
        address,
        labels: args.node_label.iter().cloned().collect(),
        lease: std::time::Duration::from_secs(args.node_lease),
    }))
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // netlink-packet-route warns about every link attribute newer
            // than itself (a newer kernel's), on every listing of links;
            // hickory-server logs every DNS query at info.
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "info,netlink_packet_route=error,hickory_server=warn,hickory_net=warn".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("quiltd")
        .build()
        .context("start the async runtime")?
        .block_on(run(args))
}

fn shim_path(args: &Args) -> Result<PathBuf> {
    let path = match &args.shim {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("locate quiltd")?
            .with_file_name("quilt-shim"),
    };
    if !path.is_file() {
        bail!(
            "quilt-shim not found at {} (build the workspace, or pass --shim)",
            path.display()
        );
    }
    Ok(path)
}

/// `--upstream-dns`: those given (`none`: no forwarding), or the
/// nameservers of /etc/resolv.conf.
fn upstream_dns(given: &[String]) -> Result<Vec<std::net::SocketAddr>> {
    if given.is_empty() {
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        return Ok(quilt_network::dns::upstreams_of(&conf));
    }
    if given.len() == 1 && given[0] == "none" {
        return Ok(Vec::new());
    }
    if given.len() > 8 {
        bail!("--upstream-dns: at most 8 resolvers");
    }
    given
        .iter()
        .map(|s| {
            quilt_network::dns::parse_upstream(s)
                .map_err(|e| anyhow::anyhow!("--upstream-dns: {e}"))
        })
        .collect()
}

fn validate_cgroup_parent(p: &str) -> Result<()> {
    // The name of the group below the parent that holds the containers
    // without a memory cgroup of their own (cgroup v2).
    let shared = quilt_runtime::cgroup::SHARED_MEMORY_GROUP;
    let ok = !p.is_empty()
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && c != shared)
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if !ok {
        bail!("invalid --cgroup-parent {p:?}");
    }
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    validate_cgroup_parent(&args.cgroup_parent)?;
    match quilt_runtime::proc::raise_nofile_limit() {
        Ok(n) => tracing::debug!(open_files = n, "raised the open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
    let shim = shim_path(&args)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("create data dir {}", args.data_dir.display()))?;
    if let Some(dir) = args.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    // One quiltd per data dir and per socket.
    // A daemon killed moments ago may still be exiting: wait a little for it.
    let _data_lock = InstanceLock::acquire_within(
        &args.data_dir.join("quiltd.lock"),
        &format!("data dir {}", args.data_dir.display()),
        LOCK_PATIENCE,
    )
    .await?;
    let sock_lock_path = PathBuf::from(format!("{}.lock", args.socket.display()));
    let _sock_lock = InstanceLock::acquire_within(
        &sock_lock_path,
        &format!("socket {}", args.socket.display()),
        LOCK_PATIENCE,
    )
    .await?;
    // Held until quiltd has removed the socket files it bound: another
    // quiltd never binds one of them while this one may still remove it.
    let _docker_lock = match &args.docker_socket {
        Some(p) if p == &args.socket => bail!("--docker-socket must differ from --socket"),
        Some(p) => {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("create {}", dir.display()))?;
            }
            Some(
                InstanceLock::acquire_within(
                    &PathBuf::from(format!("{}.lock", p.display())),
                    &format!("socket {}", p.display()),
                    LOCK_PATIENCE,
                )
                .await?,
            )
        }
        None => None,
    };

    let mut cfg = EngineConfig::new(args.data_dir.clone(), shim);
    cfg.cgroup_parent = args.cgroup_parent.clone();
    cfg.database = args.database.clone();
    cfg.cluster = cluster_config(&args)?;
    cfg.socket_path = Some(args.socket.clone());
    cfg.docker_socket_path = args.docker_socket.clone();
    if let Some(n) = args.max_concurrent_starts {
        cfg.max_concurrent_starts = n.max(1);
    }
    if let Some(n) = args.start_queue {
        cfg.start_queue_capacity = n.max(1);
    }
    if let Some(n) = args.log_max_size {
        cfg.log_max_bytes = n;
    }
    if let Some(n) = args.log_max_files {
        cfg.log_max_files = n;
    }
    if args.default_pids < 0 {
        bail!("--default-pids must be 0 (none) or positive");
    }
    cfg.default_pids_limit = args.default_pids;
    if let Some(m) = args.default_memory {
        cfg.default_memory_mb =
            i64::try_from(m.div_ceil(1024 * 1024)).context("--default-memory")?;
    }
    cfg.default_disk_bytes = args.default_disk.unwrap_or(0);
    if let Some(s) = args.copy_idle_timeout {
        cfg.copy_idle_timeout = std::time::Duration::from_secs(s);
    }
    cfg.userns_default = match args.userns_default.as_str() {
        "private" => quilt_sync_engine::model::UsernsMode::Private,
        _ => quilt_sync_engine::model::UsernsMode::Host,
    };
    cfg.userns_ids = quilt_sync_engine::UsernsIds {
        base: args.userns_base,
        count: args.userns_ranges,
    };
    if let Err(e) = cfg.userns_ids.check() {
        bail!("--userns-base/--userns-ranges: {e}");
    }
    cfg.network = quilt_sync_engine::NetworkConfig {
        bridge_name: args.bridge_name.clone(),
        default_subnet: args.default_subnet.clone(),
        nft_table: args.nft_table.clone(),
        netns_pool: args.netns_pool.min(1024),
        bridge_pool: args.bridge_pool.min(1024),
        upstream_dns: upstream_dns(&args.upstream_dns)?,
    };
    quilt_sync_engine::PoolSpec::check_all(&args.warm_pool)
        .map_err(|e| anyhow::anyhow!("--warm-pool: {e}"))?;
    cfg.warm_pools = args.warm_pool.clone();
    // Bounded by its parser (MAX_LAYER_POOL).
    cfg.layer_pool = usize::try_from(args.layer_pool)?;
    for r in &args.insecure_registry {
        if let Err(e) = cfg.registry.allow_insecure(r) {
            bail!("{e}");
        }
    }
    let engine = Engine::open(cfg).await.context("open the engine")?;
    tracing::info!(layout = ?engine.cgroup_layout(), data_dir = %args.data_dir.display(), "engine ready");
    // Whatever ends serving, a refused flag or a signal, the engine is shut
    // down: its namespaces, resolvers and cgroup parent go with it.
    let served = serve(&engine, &args).await;
    if served.is_err() {
        tracing::info!("not serving; shutting the engine down");
    }
    engine.shutdown().await;
    let _ = std::fs::remove_file(&args.socket);
    if let Some(p) = &args.docker_socket {
        let _ = std::fs::remove_file(p);
    }
    served
}

/// Binds the listeners and serves until the signal.
async fn serve(engine: &Engine, args: &Args) -> Result<()> {
    // TCP only with TLS and client authentication; checked before anything listens.
    let tcp_security = match args.listen {
        Some(_) => Some(
            auth::TcpSecurity {
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
                client_ca: args.tls_client_ca.clone(),
                token_file: args.auth_token_file.clone(),
            }
            .load()
            .context("--listen")?,
        ),
        None => None,
    };
    // Bound before the socket, so a taken port fails the start cleanly.
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };
    let uds = bind_socket(&args.socket)?;
    let docker_uds = match &args.docker_socket {
        Some(p) => Some(bind_socket(p).context("--docker-socket")?),
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (health, health_service) = services::health();
    for name in served_services() {
        health.set(name, ServingStatus::Serving);
    }
    tokio::spawn(async move {
        wait_for_signal().await;
        // Health watchers hear NOT_SERVING before their streams close.
        health.shut_down();
        let _ = stop_tx.send(true);
    });

    let peers = std::sync::Arc::new(
        forward::Peers::new(
            engine.clone(),
            &forward::PeerAuth {
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
                ca: args.tls_client_ca.clone(),
                token_file: args.auth_token_file.clone(),
            },
        )
        .context("node-to-node TLS")?,
    );
    let routes = routes(engine, health_service, peers).await?;
    let metrics_server = metrics_listener
        .map(|listener| tokio::spawn(metrics::serve(listener, engine.clone(), stop_rx.clone())));
    let rpc_metrics = metrics::RpcMetricsLayer {
        engine: engine.clone(),
    };
    let docker = docker_uds.map(|l| {
        let api = quilt_docker_api::DockerApi::new(engine.clone(), args.data_dir.clone());
        tracing::info!(socket = %args.docker_socket.as_deref().unwrap_or(Path::new("")).display(), "serving the Docker API");
        tokio::spawn(quilt_docker_api::serve(l, api, stop_rx.clone()))
    });
    let shutdown = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    // Graceful serving waits for open streams (`logs -f`, `events`, an
    // attached exec) to end; after the signal they get SHUTDOWN_GRACE.
    let grace = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    };
    tracing::info!(socket = %args.socket.display(), "serving");
    let serving = async {
        let unix = server()
            .layer(rpc_metrics.clone())
            .layer(tower::util::MapResponseLayer::new(
                status::fix_decode_status,
            ))
            .add_routes(routes.clone())
            .serve_with_incoming_shutdown(listen::unix(uds), shutdown(stop_rx.clone()));
        match (args.listen, tcp_security) {
            (Some(addr), Some((tls, token))) => {
                let tcp = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listen on {addr}"))?;
                tracing::info!(%addr, mtls = args.tls_client_ca.is_some(), token = token.is_some(), "also serving on TCP (TLS)");
                let check = move |req: tonic::Request<()>| match &token {
                    Some(t) => t.check(req),
                    None => Ok(req),
                };
                let tcp = server()
                    .layer(rpc_metrics)
                    .layer(tower::util::MapResponseLayer::new(
                        status::fix_decode_status,
                    ))
                    .layer(tonic::service::InterceptorLayer::new(check))
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(listen::tcp(tcp, tls), shutdown(stop_rx));
                let (ra, rb) = tokio::join!(unix, tcp);
                ra.context("serve unix socket")?;
                rb.context("serve tcp")?;
            }
            _ => unix.await.context("serve")?,
        }
        anyhow::Ok(())
    };
    let served = tokio::select! {
        r = serving => r,
        _ = grace => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "clients still connected; closing their streams");
            Ok(())
        }
    };
    // A listener that failed leaves the others serving: they stop here,
    // before the engine shuts down and the socket files go.
    if let Some(m) = metrics_server {
        match served {
            Ok(()) => {
                let _ = m.await;
            }
            Err(_) => m.abort(),
        }
    }
    if let Some(d) = docker {
        d.abort();
    }
    if served.is_ok() {
        tracing::info!("shutting down; running containers keep running");
    }
    served
}

/// Largest request message: a CreateContainer at its size budget (1 MiB of
/// argv and env, labels, mounts) fits; the client's default limit as well.
const MAX_REQUEST: usize = 4 * 1024 * 1024;
/// How often an idle connection is pinged, and how long a ping may go
/// unanswered before the connection is closed (clients that vanished).
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The transport settings both listeners share.
/// The frame and header list sizes are the ones the socket's header
/// normaliser assumes (`authority::frame`).
fn server() -> Server {
    Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_frame_size(Some(authority::frame::MAX_FRAME_SIZE))
        .http2_max_header_list_size(Some(authority::frame::MAX_HEADER_LIST_SIZE))
}

/// Every service quiltd serves: quilt.v1, health and reflection (v1 and
/// v1alpha, each listing both).
async fn routes(
    engine: &Engine,
    health: services::HealthService,
    peers: std::sync::Arc<forward::Peers>,
) -> Result<Routes> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(quilt_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection service")?;
    let reflection_v1alpha = reflection()
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("reflection service (v1alpha)")?;
    let listing = std::sync::Arc::new(services::Listing::new(engine.clone()));
    let api = services::WithListing::new(
        ContainerServiceServer::new(services::Containers::new(
            engine.clone(),
            peers,
            listing.clone(),
        ))
        .max_decoding_message_size(MAX_REQUEST),
        listing,
        MAX_REQUEST,
    );
    Ok(Routes::new(HealthServer::new(health))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(api)
        .add_service(
            ImageServiceServer::new(services::Images::new(engine.clone()))
                .max_decoding_message_size(MAX_REQUEST),
        )
        .add_service(
            VolumeServiceServer::new(services::Volumes::new(engine.clone()))
                .max_decoding_message_size(MAX_REQUEST),
        )
        .add_service(SystemServiceServer::new(services::System::new(
            engine.clone(),
        )))
        .add_service(
            NetworkServiceServer::new(services::Networks::new(engine.clone()))
                .max_decoding_message_size(MAX_REQUEST),
        ))
}

/// The services health reports SERVING for, "" (quiltd itself) first.
fn served_services() -> [&'static str; 9] {
    use tonic::server::NamedService;
    [
        "",
        <ContainerServiceServer<services::Containers> as NamedService>::NAME,
        <ImageServiceServer<services::Images> as NamedService>::NAME,
        <VolumeServiceServer<services::Volumes> as NamedService>::NAME,
        <SystemServiceServer<services::System> as NamedService>::NAME,
        <NetworkServiceServer<services::Networks> as NamedService>::NAME,
        <HealthServer<services::HealthService> as NamedService>::NAME,
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
}

/// Binds the socket (a stale file from a dead daemon is replaced: we hold the
/// socket lock, so no live daemon owns it) with mode 0660.
fn bind_socket(path: &Path) -> Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove stale socket {}", path.display())),
    }
    let l = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(l)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn parse_pool(s: &str) -> std::result::Result<quilt_sync_engine::PoolSpec, String> {
    quilt_sync_engine::PoolSpec::parse(s)
}

#[cfg(test)]
mod tests {
    use super::validate_cgroup_parent;

    #[test]
    fn cgroup_parents() {
        for ok in ["quilt", "a/b", "quilt-bench.1_x"] {
            assert!(validate_cgroup_parent(ok).is_ok(), "{ok}");
        }
        // The shared memory group's name is refused as any component: the
        // cgroup code tells the group from a parent by its place.
        for bad in [
            "",
            "/",
            "a//b",
            "..",
            "a/../b",
            "a b",
            "shared-memory",
            "x/shared-memory",
        ] {
            assert!(validate_cgroup_parent(bad).is_err(), "{bad}");
        }
    }
}
