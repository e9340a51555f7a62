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
