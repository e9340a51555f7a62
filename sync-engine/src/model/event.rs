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
    /// Increases by one with each event this quiltd records (history and
    /// live stream are joined on it).
    pub seq: u64,
}

/// What WatchEvents keeps: events of these containers (id, unique id
/// prefix or name; any when empty) with these actions (any when empty).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub containers: Vec<String>,
    pub actions: Vec<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &Event) -> bool {
        let container = self.containers.is_empty()
            || self
                .containers
                .iter()
                .any(|c| e.name == *c || e.container_id.starts_with(c.as_str()));
        let action = self.actions.is_empty() || self.actions.iter().any(|a| a == e.action);
        container && action
    }
}

/// Unix time in nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
