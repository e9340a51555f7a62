//! Recorded state changes, as WatchEvents and the engine's waiters see them.
use super::container::ExitInfo;
use super::state::State;

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

/// Unix time in nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
