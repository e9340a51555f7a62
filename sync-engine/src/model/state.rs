//! The container state machine, defined once: the states, what each verb may
//! do in each state (named predicates), and the sets of states every stored
//! transition starts from. The store renders its `UPDATE ... WHERE state IN
//! (...)` guards from these sets, so the Rust checks and the SQL guards
//! cannot disagree.
//!
//! ```text
//!            create            starter             workload exits
//!   (none) ─────────> created ────────> starting ───> running ───────> exited
//!                    │  ▲  (queued)        │          │  ▲                │
//!                    │  │                  │    pause │  │ unpause        │
//!                    │  │                  │          ▼  │                │
//!                    │  │                  │         paused (frozen)      │
//!                    │  └──────── start ───┼──────────────────────────────┤
//!                    │                     └─> failed <── supervisor lost ┘
//!                    └────────────── rm ────> removing ──> (row deleted)
//! ```
//! `paused`: the workload's cgroup is frozen. Stop, kill and a forced
//! removal thaw it first (unpause, then act, as docker does); exec is
//! refused; copies go through its namespaces as for a running one.
//! A created container whose start was requested and not yet begun is
//! *queued* (`created` with its `autostart` flag set); `stop` cancels that.
//! `removing` is reachable from every state and keeps the exit status that
//! is recorded meanwhile.
//! `lost`: the node that ran the container stopped renewing its lease (a
//! cluster sharing PostgreSQL); what became of the workload is unknown
//! until that node comes back and adopts it (back to `running`) or records
//! its end. A start places it on a live node afresh.

/// Where a container is in its life. Stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Created,
    Starting,
    Running,
    Paused,
    Exited,
    Failed,
    Removing,
    Lost,
}

/// Every state, in declaration order.
pub const ALL: &[State] = &[
    State::Created,
    State::Starting,
    State::Running,
    State::Paused,
    State::Exited,
    State::Failed,
    State::Removing,
    State::Lost,
];

/// States a start may begin from (its guard resets the row for a new start).
pub const STARTABLE: &[State] = &[State::Created, State::Exited, State::Failed, State::Lost];
/// States in which a start is a no-op: the container is already on its way.
pub const ACTIVE: &[State] = &[State::Starting, State::Running];
/// States that have a live workload the engine may signal.
pub const SIGNALLABLE: &[State] = &[State::Running];
/// States with a workload (or its start) under way: a removal must be forced.
pub const LIVE: &[State] = &[State::Starting, State::Running, State::Paused];
/// States whose workload may be frozen.
pub const PAUSABLE: &[State] = &[State::Running];
/// States whose files may be copied through a private mount of the rootfs
/// (nothing runs, so nothing else writes them).
pub const STOPPED: &[State] = &[State::Created, State::Exited, State::Failed];
/// Finished: the container will not change by itself.
pub const FINISHED: &[State] = &[State::Exited, State::Failed, State::Lost];
/// Rows that count as users of a volume or an image (not on their way out).
pub const IN_USE: &[State] = &[
    State::Created,
    State::Starting,
    State::Running,
    State::Paused,
    State::Exited,
    State::Failed,
    State::Lost,
];

/// The stored transitions: the states each one starts from. `Removing` in a
/// source set means the transition records its data but keeps `removing`.
pub mod from {
    use super::State;

    /// created (queued) -> starting, taken by the starter.
    pub const BEGIN_START: &[State] = &[State::Created];
    /// created (queued) -> created (not queued): stop of a queued start.
    pub const CANCEL_START: &[State] = &[State::Created];
    /// starting -> running, once the workload runs, or for a warm pool's
    /// container once it is handed over (see `pool::adopt`) (lost
    /// meanwhile: its node's lease ran out during the start, and it is
    /// still this node's).
    pub const SET_RUNNING: &[State] = &[State::Starting, State::Lost];
    /// -> failed: could not start, or the supervisor was lost.
    pub const SET_FAILED: &[State] = &[
        State::Created,
        State::Starting,
        State::Running,
        State::Paused,
        State::Removing,
        State::Lost,
    ];
    /// -> exited: the workload's exit status.
    pub const RECORD_EXIT: &[State] = &[
        State::Starting,
        State::Running,
        State::Paused,
        State::Removing,
        State::Lost,
    ];
    /// running -> paused, once the cgroup is frozen.
    pub const SET_PAUSED: &[State] = super::PAUSABLE;
    /// paused -> running, once the cgroup is thawed.
    pub const SET_UNPAUSED: &[State] = &[State::Paused];
    /// -> created (queued): a new start of a stored container.
    pub const RESET_FOR_START: &[State] = super::STARTABLE;
    /// exited -> created (queued): a restart by the container's policy
    /// (only after its workload ran and exited).
    pub const RESTART: &[State] = &[State::Exited];
    /// starting -> created (queued): a start the previous daemon did not finish.
    pub const REQUEUE_INTERRUPTED: &[State] = &[State::Starting];
    /// -> lost: its node's lease ran out while it was on its way or
    /// running (a queued one is placed on another node instead).
    pub const SET_LOST: &[State] = &[State::Starting, State::Running, State::Paused];
    /// lost -> running: its node came back and found it still running.
    pub const FOUND: &[State] = &[State::Lost];
    /// -> removing: from anywhere.
    pub const SET_REMOVING: &[State] = super::ALL;
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Starting => "starting",
            State::Running => "running",
            State::Paused => "paused",
            State::Exited => "exited",
            State::Failed => "failed",
            State::Removing => "removing",
            State::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        ALL.iter().copied().find(|st| st.as_str() == s)
    }

    /// Exited or failed: the container has finished and will not change by itself.
    pub fn is_finished(self) -> bool {
        FINISHED.contains(&self)
    }

    /// A start may begin (the row is reset and queued).
    pub fn can_start(self) -> bool {
        STARTABLE.contains(&self)
    }

    /// A start is a no-op: the container is starting or running already.
    pub fn is_active(self) -> bool {
        ACTIVE.contains(&self)
    }

    /// `stop` signals the workload (other states: nothing to stop, or, for
    /// a queued or starting container, the start is cancelled or awaited).
    pub fn can_stop(self) -> bool {
        SIGNALLABLE.contains(&self)
    }

    /// `kill` may signal the container's PID 1.
    pub fn can_kill(self) -> bool {
        SIGNALLABLE.contains(&self)
    }

    /// A command may be exec'd into the container.
    pub fn can_exec(self) -> bool {
        self == State::Running
    }

    /// Files may be copied in or out: through the running (or paused)
    /// container's namespaces, or through a private mount of a stopped
    /// one's rootfs.
    pub fn can_copy(self) -> bool {
        self == State::Running || self == State::Paused || STOPPED.contains(&self)
    }

    /// The workload may be frozen.
    pub fn can_pause(self) -> bool {
        PAUSABLE.contains(&self)
    }

    /// The workload is frozen: unpause thaws it; stop, kill and a forced
    /// removal thaw it before they act.
    pub fn is_paused(self) -> bool {
        self == State::Paused
    }

    /// Files are copied through a private mount (nothing runs).
    pub fn is_stopped(self) -> bool {
        STOPPED.contains(&self)
    }

    /// The container may be removed; without `force` only when nothing runs.
    pub fn can_remove(self, force: bool) -> bool {
        force || !LIVE.contains(&self)
    }

    /// The row is on its way out: every verb but a forced removal refuses it.
    pub fn is_removing(self) -> bool {
        self == State::Removing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each verb does in each state.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Verb {
        Start,
        Stop,
        Kill,
        Exec,
        Copy,
        Remove,
        ForceRemove,
        Pause,
        Unpause,
    }

    const VERBS: [Verb; 9] = [
        Verb::Start,
        Verb::Stop,
        Verb::Kill,
        Verb::Exec,
        Verb::Copy,
        Verb::Remove,
        Verb::ForceRemove,
        Verb::Pause,
        Verb::Unpause,
    ];

    fn allowed(s: State, v: Verb) -> bool {
        match v {
            Verb::Start => s.can_start(),
            Verb::Stop => s.can_stop(),
            Verb::Kill => s.can_kill(),
            Verb::Exec => s.can_exec(),
            Verb::Copy => s.can_copy(),
            Verb::Remove => s.can_remove(false),
            Verb::ForceRemove => s.can_remove(true),
            Verb::Pause => s.can_pause(),
            Verb::Unpause => s.is_paused(),
        }
    }

    /// The whole (state, verb) table, written out: a change to the state
    /// machine must change this table too.
    #[test]
    fn every_state_and_verb() {
        use State::*;
        // A paused container's stop and kill thaw it first (then it is
        // running): the predicates answer for the state they act in.
        //          start  stop   kill   exec   copy   rm     rm -f  pause  unpause
        let table: [(State, [bool; 9]); 8] = [
            (
                Created,
                [true, false, false, false, true, true, true, false, false],
            ),
            (
                Starting,
                [false, false, false, false, false, false, true, false, false],
            ),
            (
                Running,
                [false, true, true, true, true, false, true, true, false],
            ),
            (
                Paused,
                [false, false, false, false, true, false, true, false, true],
            ),
            (
                Exited,
                [true, false, false, false, true, true, true, false, false],
            ),
            (
                Failed,
                [true, false, false, false, true, true, true, false, false],
            ),
            (
                Removing,
                [false, false, false, false, false, true, true, false, false],
            ),
            // Its files are on a node that is gone: no copy.
            (
                Lost,
                [true, false, false, false, false, true, true, false, false],
            ),
        ];
        assert_eq!(table.len(), ALL.len());
        for (state, row) in table {
            for (verb, want) in VERBS.iter().zip(row) {
                assert_eq!(allowed(state, *verb), want, "{state:?} {verb:?}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(State::parse(s.as_str()), Some(*s));
        }
        assert_eq!(State::parse("frozen"), None);
    }

    #[test]
    fn transitions_start_from_known_states() {
        // Only a start and stop of a queued container start from `created`
        // alone; a removal keeps `removing` while recording an exit.
        assert!(from::RECORD_EXIT.contains(&State::Removing));
        assert!(from::SET_FAILED.contains(&State::Removing));
        assert!(!from::RESET_FOR_START.contains(&State::Running));
        assert_eq!(from::SET_REMOVING.len(), ALL.len());
        for s in ALL {
            assert_eq!(s.is_finished(), FINISHED.contains(s));
            assert_eq!(IN_USE.contains(s), !s.is_removing());
        }
    }
}
