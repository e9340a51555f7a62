//! Engine configuration, set by quiltd's flags.
use std::path::PathBuf;

/// A node of a cluster: quiltd daemons sharing one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Unique in the cluster (`--node-name`, default: the host name).
    pub name: String,
    /// HOST:PORT where the other nodes reach this one's TLS listener
    /// (`--node-address`, default: the `--listen` address).
    pub address: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// A node that has not renewed its lease for this long is down.
    pub lease: std::time::Duration,
}

/// The default lease of a node.
pub const DEFAULT_NODE_LEASE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// DATA_DIR: quilt.db, containers/<id>/, images/.
    pub data_dir: PathBuf,
    /// The `quilt-shim` binary.
    pub shim_path: PathBuf,
    /// `--database`: a postgres:// URL (state shared with other nodes), or
    /// a SQLite file; None: DATA_DIR/quilt.db.
    pub database: Option<String>,
    /// This node of a cluster (with a PostgreSQL `database` only).
    pub cluster: Option<ClusterConfig>,
    /// Cgroups are created at <hierarchy>/<cgroup_parent>/<id>.
    pub cgroup_parent: String,
    /// How many containers may be in the middle of starting at once.
    pub max_concurrent_starts: usize,
    /// Accepted start requests not yet picked up; beyond this CreateContainer
    /// answers RESOURCE_EXHAUSTED.
    pub start_queue_capacity: usize,
    /// The daemon's socket: never bind mounted into a container.
    pub socket_path: Option<PathBuf>,
    /// The Docker API socket (`--docker-socket`): never bind mounted either.
    pub docker_socket_path: Option<PathBuf>,
    /// Size cap of one container log file before it is rotated; 0 = no cap.
    pub log_max_bytes: u64,
    /// Log files kept per container, the live `container.log` included
    /// (1 = no rotated file is kept).
    pub log_max_files: u32,
    /// A file copy whose client sends (CopyIn) or takes (CopyOut) nothing for
    /// this long is ended, so a stalled client never holds a stopped
    /// container's lock (or a helper) for ever.
    pub copy_idle_timeout: std::time::Duration,
    /// Limits a container gets when its request leaves them at 0 (a request
    /// says -1 for "none"): processes, memory (MiB), disk bytes. 0: none.
    pub default_pids_limit: i64,
    pub default_memory_mb: i64,
    pub default_disk_bytes: u64,
    /// The user namespace of containers that do not choose (Host or Private).
    pub userns_default: crate::model::UsernsMode,
    /// The host ids given to containers with a private user namespace.
    pub userns_ids: UsernsIds,
    /// Networks: names in quiltd's network namespace, the default subnet,
    /// the namespace pool.
    pub network: NetworkConfig,
    /// How registries are reached (`--insecure-registry`).
    pub registry: quilt_registry::RegistryOptions,
    /// Warm pools kept from the start (`--warm-pool IMAGE=N`).
    pub warm_pools: Vec<crate::pool::PoolSpec>,
    /// Writable layers made ahead for cold starts, per image of the last
    /// ones started (`--layer-pool N`, see `support::layers`); 0: none.
    pub layer_pool: usize,
}

/// quiltd's networking flags.
#[derive(Debug, Clone, Default)]
pub struct NetworkConfig {
    /// The default network's bridge; derived from the data dir when None.
    pub bridge_name: Option<String>,
    /// The default network's subnet (used when it is first made); a free
    /// one when None.
    pub default_subnet: Option<String>,
    /// The nftables table (bridge and inet families); derived when None.
    pub nft_table: Option<String>,
    /// Namespaces kept ready: loopback only (`none`), and with a veth pair
    /// (bridge networks).
    pub netns_pool: usize,
    pub bridge_pool: usize,
    /// Upstream name servers (`--upstream-dns`): where the networks'
    /// resolvers forward names that are not their containers', and what the
    /// egress proxy resolves the names containers ask for with (none:
    /// nothing is forwarded, and a domain policy reaches nothing).
    pub upstream_dns: Vec<std::net::SocketAddr>,
}

/// Default number of namespaces of each kind kept ready.
pub const DEFAULT_NETNS_POOL: usize = 8;
/// Default number of writable layers kept ready per image.
pub const DEFAULT_LAYER_POOL: usize = 4;
/// The most writable layers kept ready per image (`--layer-pool`).
pub const MAX_LAYER_POOL: usize = 64;

/// Where the id ranges of private user namespaces come from: `count` ranges
/// of `IdRange::SIZE` host ids, the first at host id `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsernsIds {
    pub base: u32,
    pub count: u32,
}

/// Default first host id of the user namespace ranges.
pub const DEFAULT_USERNS_BASE: u32 = 100_000_000;
/// Default number of user namespace ranges (containers with a private one).
pub const DEFAULT_USERNS_RANGES: u32 = 10_000;

impl UsernsIds {
    /// Checks that the ranges lie above the host's 16-bit ids and below
    /// 4294967295 (an invalid id).
    pub fn check(&self) -> Result<(), String> {
        let size = u64::from(crate::model::IdRange::SIZE);
        if u64::from(self.base) < size {
            return Err(format!(
                "the user namespace base {} must be at least {size}, above the host's own users",
                self.base
            ));
        }
        if self.count == 0 {
            return Err("at least one user namespace range is needed".into());
        }
        let end = u64::from(self.base) + u64::from(self.count) * size;
        if end > u64::from(u32::MAX) {
            return Err(format!(
                "{} ranges of {size} ids from {} go past the largest id (4294967294): \
                 lower the base or the number of ranges",
                self.count, self.base
            ));
        }
        Ok(())
    }
}

/// Default process limit of a container: a fork bomb stops here.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

/// Default idle deadline of a file copy: 60 s.
pub const DEFAULT_COPY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Default cap of one container log file: 10 MiB.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of log files per container (`container.log` + 2 rotated).
pub const DEFAULT_LOG_MAX_FILES: u32 = 3;

impl EngineConfig {
    /// The daemon's sockets, which no container may mount.
    pub fn sockets(&self) -> Vec<PathBuf> {
        self.socket_path
            .iter()
            .chain(self.docker_socket_path.iter())
            .cloned()
            .collect()
    }

    pub fn new(data_dir: PathBuf, shim_path: PathBuf) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineConfig {
            data_dir,
            shim_path,
            database: None,
            cluster: None,
            cgroup_parent: "quilt".into(),
            max_concurrent_starts: (cpus * 4).max(8),
            start_queue_capacity: 4096,
            socket_path: None,
            docker_socket_path: None,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            log_max_files: DEFAULT_LOG_MAX_FILES,
            copy_idle_timeout: DEFAULT_COPY_IDLE_TIMEOUT,
            default_pids_limit: DEFAULT_PIDS_LIMIT,
            default_memory_mb: 0,
            default_disk_bytes: 0,
            userns_default: crate::model::UsernsMode::Host,
            userns_ids: UsernsIds {
                base: DEFAULT_USERNS_BASE,
                count: DEFAULT_USERNS_RANGES,
            },
            network: NetworkConfig {
                netns_pool: DEFAULT_NETNS_POOL,
                bridge_pool: DEFAULT_NETNS_POOL,
                ..Default::default()
            },
            registry: Default::default(),
            warm_pools: Vec::new(),
            layer_pool: DEFAULT_LAYER_POOL,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("quilt.db")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.data_dir.join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// Where writable layers made ahead wait (`support::layers`).
    pub fn layers_dir(&self) -> PathBuf {
        self.data_dir.join("layers")
    }

    /// Where removed directories wait to be deleted (`support::trash`).
    pub fn trash_dir(&self) -> PathBuf {
        self.data_dir.join("trash")
    }
}
