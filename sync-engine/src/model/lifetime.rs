//! Lifetimes of a container: a TTL (stopped when it expires; removed too
//! with `--rm`) and an idle timeout (no exec, attach, logs follow or copy
//! for that long: paused or stopped, as asked). The deadlines are stored;
//! `services::lifetimes` acts on them.

/// What an idle timeout does to the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleAction {
    #[default]
    Stop,
    Pause,
}

impl IdleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            IdleAction::Stop => "stop",
            IdleAction::Pause => "pause",
        }
    }

    pub fn parse(s: &str) -> Option<IdleAction> {
        match s {
            "" | "stop" => Some(IdleAction::Stop),
            "pause" => Some(IdleAction::Pause),
            _ => None,
        }
    }
}

/// The lifetime settings and deadlines of a container (nanoseconds; 0 or
/// None: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetime {
    /// How long it may run from its start (by the user; a policy's restart
    /// keeps the deadline).
    pub ttl_ns: i64,
    /// When the TTL expires: set when it starts running, moved by
    /// `UpdateLifetime`.
    pub expires_at_ns: Option<i64>,
    pub idle_timeout_ns: i64,
    pub idle_action: IdleAction,
    /// The end of the last exec, attach, logs follow or copy (or the start).
    pub last_activity_ns: Option<i64>,
}

/// The longest TTL or idle timeout (a year): deadlines stay far from
/// overflowing.
pub const MAX_LIFETIME_NS: i64 = 365 * 24 * 3600 * 1_000_000_000;

impl Lifetime {
    /// When the idle timeout expires, counted from `last` activity (None
    /// without an idle timeout).
    pub fn idle_deadline(&self, last_ns: i64) -> Option<i64> {
        (self.idle_timeout_ns > 0).then(|| last_ns.saturating_add(self.idle_timeout_ns))
    }
}
