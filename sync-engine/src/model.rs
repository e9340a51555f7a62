//! The engine's view of a container, independent of the wire format.
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Created,
    Starting,
    Running,
    Exited,
    Failed,
    Removing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Starting => "starting",
            State::Running => "running",
            State::Exited => "exited",
            State::Failed => "failed",
            State::Removing => "removing",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "created" => State::Created,
            "starting" => State::Starting,
            "running" => State::Running,
            "exited" => State::Exited,
            "failed" => State::Failed,
            "removing" => State::Removing,
            _ => return None,
        })
    }

    /// Exited or failed: the container has finished and will not change by itself.
    pub fn is_finished(self) -> bool {
        matches!(self, State::Exited | State::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Private network namespace, loopback only.
    None,
    Host,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
        }
    }

    pub fn parse(s: &str) -> Option<Network> {
        match s {
            "none" => Some(Network::None),
            "host" => Some(Network::Host),
            _ => None,
        }
    }
}

/// What a caller asks for in CreateContainer (validated by `validate`).
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub image: String,
    pub command: Vec<String>,
    pub name: Option<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub memory_mb: i64,
    pub cpus: f64,
    pub pids_limit: i64,
    pub network: Network,
    pub auto_remove: bool,
    pub labels: BTreeMap<String, String>,
    pub start: bool,
    pub init: bool,
    /// Volumes, bind mounts and tmpfs mounts.
    pub mounts: Vec<crate::mounts::MountSpec>,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitInfo {
    pub exit_code: i32,
    pub signal: i32,
    pub oom_killed: bool,
    pub finished_at_ns: Option<i64>,
}

/// One row of the containers table.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub hostname: String,
    pub memory_mb: i64,
    pub cpus: f64,
    pub pids_limit: i64,
    pub network: Network,
    pub auto_remove: bool,
    pub autostart: bool,
    pub init: bool,
    pub labels: BTreeMap<String, String>,
    pub state: State,
    pub pid: Option<i32>,
    pub shim_pid: Option<i32>,
    pub shim_start_time: Option<u64>,
    pub exit: Option<ExitInfo>,
    pub failure_reason: Option<String>,
    pub created_at_ns: i64,
    pub started_at_ns: Option<i64>,
    pub finished_at_ns: Option<i64>,
    pub mounts: Vec<crate::mounts::MountSpec>,
}

/// A recorded state change.
#[derive(Debug, Clone)]
pub struct Event {
    pub container_id: String,
    pub name: String,
    pub state: State,
    /// "created", "starting", "running", "exited", "failed", "removing", "removed".
    pub action: &'static str,
    pub time_ns: i64,
    pub exit: Option<ExitInfo>,
    pub failure_reason: Option<String>,
}

/// Filters of ListContainers.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<State>,
    pub name_contains: Option<String>,
    pub labels: BTreeMap<String, String>,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
