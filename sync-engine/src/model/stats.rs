//! One sample of a container's resource usage, as `stats` reports it.
use super::state::State;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    pub state: Option<State>,
    pub time_ns: i64,
    /// CPU time over the sample, in percent of one CPU.
    pub cpu_percent: f64,
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    /// The container's memory limit, or the host's memory without one.
    pub memory_limit: u64,
    pub memory_percent: f64,
    pub pids: u64,
    /// 0: no limit.
    pub pids_limit: u64,
    pub block_read: u64,
    pub block_write: u64,
    /// Received and sent bytes on non-loopback interfaces; None without a
    /// network namespace of its own or without a workload.
    pub net: Option<(u64, u64)>,
}
