//! The nodes of a cluster: quiltd daemons sharing one PostgreSQL database.
use std::collections::BTreeMap;

/// A node as registered (what it says of itself) and as seen now (its
/// lease and its load, counted from the containers table).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Stable across restarts of the node (kept in its data dir).
    pub id: String,
    /// Unique in the cluster; what containers and `--node` name.
    pub name: String,
    /// HOST:PORT of its node-to-node listener (TLS with client certificates).
    pub address: String,
    pub cpus: f64,
    pub memory_mb: i64,
    pub labels: BTreeMap<String, String>,
    /// Its lease is current (renewed within the lease time).
    pub up: bool,
    pub started_at_ns: i64,
    pub renewed_at_ns: i64,
    pub lease_until_ns: i64,
    /// Its containers on their way or running (created and queued,
    /// starting, running, paused).
    pub active: i64,
    /// The memory and CPUs those containers reserve (their limits).
    pub reserved_memory_mb: i64,
    pub reserved_cpus: f64,
}

/// What a node registers.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub id: String,
    pub name: String,
    pub address: String,
    pub cpus: f64,
    pub memory_mb: i64,
    pub labels: BTreeMap<String, String>,
}

/// What the expiry of leases did (in one transaction).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expired {
    /// The nodes marked down.
    pub nodes: Vec<String>,
    /// Containers now `lost`.
    pub lost: Vec<String>,
    /// Containers placed on another node ((id, node)): queued starts, and
    /// lost containers whose restart policy asks for a restart.
    pub replaced: Vec<(String, String)>,
}
