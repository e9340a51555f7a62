//! What the daemon is and holds: `quilt info`, `quilt version`, docker's
//! `/info` and `/version`.
use crate::engine::Engine;
use crate::error::Result;
use crate::model::State;
use quilt_runtime::spec::CgroupLayout;
use std::path::PathBuf;

/// The daemon, its host and what it holds.
#[derive(Debug, Clone)]
pub struct SystemInfo {
    /// quiltd's version (its crate's).
    pub version: &'static str,
    pub kernel_version: String,
    pub os: &'static str,
    pub arch: &'static str,
    pub hostname: String,
    pub cpus: usize,
    pub memory_bytes: u64,
    /// 1 or 2.
    pub cgroup_version: u32,
    pub data_dir: PathBuf,
    pub containers: usize,
    pub running: usize,
    /// Exited or failed.
    pub stopped: usize,
    /// Created, starting or being removed.
    pub other: usize,
    pub images: usize,
    pub volumes: usize,
}

impl Engine {
    /// The node that runs the container `reference` names, when that is
    /// another node of the cluster (None: this node serves the call,
    /// whatever its outcome).
    pub async fn elsewhere(&self, reference: &str) -> Option<String> {
        self.shared.node()?;
        match self.shared.resolve_here(reference).await {
            Err(crate::error::EngineError::Elsewhere { node, .. }) => Some(node),
            _ => None,
        }
    }

    /// This node's name in a cluster (None on a daemon of its own).
    pub fn node_name(&self) -> Option<String> {
        self.shared.node().map(str::to_owned)
    }

    /// The nodes of this daemon's cluster (empty on a daemon of its own),
    /// and this node's name.
    pub async fn nodes(&self) -> Result<(Vec<crate::model::NodeInfo>, Option<String>)> {
        let nodes = self.shared.store().nodes().await?;
        Ok((nodes, self.shared.node().map(str::to_owned)))
    }

    pub async fn system_info(&self) -> Result<SystemInfo> {
        let shared = &self.shared;
        let counts = shared.store().count_by_state().await?;
        let n = |s: State| counts.get(&s).copied().unwrap_or(0);
        let containers: usize = counts.values().sum();
        let running = n(State::Running);
        let stopped = n(State::Exited) + n(State::Failed);
        let images = shared.store().image_list().await?.len();
        let volumes = self.list_volumes().await?.len();
        let (kernel_version, hostname, memory_bytes) =
            tokio::task::spawn_blocking(host_facts).await?;
        Ok(SystemInfo {
            version: env!("CARGO_PKG_VERSION"),
            kernel_version,
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            hostname,
            cpus: shared.host_cpus(),
            memory_bytes,
            cgroup_version: match shared.layout() {
                CgroupLayout::V2 { .. } => 2,
                CgroupLayout::V1 { .. } => 1,
            },
            data_dir: shared.cfg().data_dir.clone(),
            containers,
            running,
            stopped,
            other: containers - running - stopped,
            images,
            volumes,
        })
    }
}

/// Kernel release, hostname and total memory, from /proc (blocking).
fn host_facts() -> (String, String, u64) {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    (
        read("/proc/sys/kernel/osrelease"),
        read("/proc/sys/kernel/hostname"),
        memory,
    )
}

impl Engine {
    /// Refreshes the gauges read at scrape time (containers by state, the
    /// start queue, starts in flight).
    async fn refresh_levels(&self) -> Result<()> {
        let shared = &self.shared;
        let counts = shared.store().count_by_state().await?;
        let by_state: Vec<(&str, usize)> = crate::model::state::ALL
            .iter()
            .map(|s| (s.as_str(), counts.get(s).copied().unwrap_or(0)))
            .collect();
        let slots = shared.cfg().max_concurrent_starts.max(1);
        let busy = slots.saturating_sub(shared.start_slots().available_permits());
        shared
            .metrics()
            .set_levels(&by_state, shared.queue().depth(), (busy, slots));
        shared
            .metrics()
            .set_pool_ready(shared.pool().status().iter().map(|p| p.ready).sum());
        shared.metrics().set_layers_ready(shared.layers().ready());
        Ok(())
    }

    /// Every metric as Prometheus text.
    pub async fn metrics_text(&self) -> Result<String> {
        self.refresh_levels().await?;
        Ok(self.shared.metrics().encode())
    }

    /// The figures `quilt system info` shows.
    pub async fn metrics_headline(&self) -> Result<crate::metrics::Headline> {
        self.refresh_levels().await?;
        Ok(self.shared.metrics().headline())
    }

    /// Records one handled RPC (see `Metrics::observe_rpc`).
    pub fn observe_rpc(&self, method: &str, code: &str, d: std::time::Duration) {
        self.shared.metrics().observe_rpc(method, code, d);
    }
}
