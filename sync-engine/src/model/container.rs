//! The engine's view of a container, independent of the wire format.
use super::event::Event;
use super::lifetime::Lifetime;
use super::mount::{MountSource, MountSpec};
use super::network::{NetSettings, Network};
use super::restart::RestartPolicy;
use super::security::{IdRange, Security};
use super::state::State;
use std::collections::BTreeMap;

/// What a caller asks for in CreateContainer (validated by `validate`).
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub image: String,
    pub command: Vec<String>,
    /// Replaces the image's Entrypoint when set (see `api::images::apply_config`).
    pub entrypoint: Option<Vec<String>>,
    pub name: Option<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub memory_mb: i64,
    pub cpus: f64,
    pub pids_limit: i64,
    pub network: Network,
    /// The network's name (bridge), the peer (container), ports, DNS and
    /// extra hosts asked for.
    pub net: NetSettings,
    pub auto_remove: bool,
    pub labels: BTreeMap<String, String>,
    pub start: bool,
    pub init: bool,
    /// Volumes, bind mounts and tmpfs mounts.
    pub mounts: Vec<MountSpec>,
    /// Bytes the container may write (its layer and logs); 0: the default.
    pub disk_bytes: u64,
    pub security: Security,
    pub restart: RestartPolicy,
    /// TTL and idle timeout (deadlines unset).
    pub lifetime: Lifetime,
    /// Terminal and stdin.
    pub stdio: super::Stdio,
    /// Where to run it in a cluster sharing PostgreSQL (`--node`): a node
    /// name, or None for the least loaded live node.
    pub node: Option<String>,
    /// Labels the node must have (`--node-label`).
    pub node_labels: BTreeMap<String, String>,
}

impl CreateSpec {
    /// A request for `image` with nothing else asked for: no command (the
    /// image's), network none, nothing mounted, the defaults for the rest,
    /// not started.
    pub fn new(image: impl Into<String>) -> CreateSpec {
        CreateSpec {
            image: image.into(),
            command: Vec::new(),
            entrypoint: None,
            name: None,
            env: Vec::new(),
            working_dir: None,
            hostname: None,
            memory_mb: 0,
            cpus: 0.0,
            pids_limit: 0,
            network: Network::None,
            net: Default::default(),
            auto_remove: false,
            labels: Default::default(),
            start: false,
            init: false,
            mounts: Vec::new(),
            disk_bytes: 0,
            security: Default::default(),
            restart: Default::default(),
            lifetime: Default::default(),
            stdio: Default::default(),
            node: None,
            node_labels: BTreeMap::new(),
        }
    }
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
#[derive(Debug, Clone, PartialEq)]
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
    /// Its network, address, published ports, DNS and extra hosts.
    pub net: NetSettings,
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
    pub mounts: Vec<MountSpec>,
    /// Bytes the container may write (its layer and logs); 0: no limit.
    pub disk_bytes: u64,
    pub security: Security,
    /// The host ids of its private user namespace (allocated at create).
    pub id_range: Option<IdRange>,
    pub restart: RestartPolicy,
    /// Restarts made by its policy since the user last started it.
    pub restart_count: u32,
    /// Stopped (or killed) by the user: its policy does not restart it.
    pub manual_stop: bool,
    pub lifetime: Lifetime,
    /// Terminal and stdin.
    pub stdio: super::Stdio,
    /// The name of the node that runs it (a cluster sharing PostgreSQL);
    /// None on a daemon of its own.
    pub node: Option<String>,
    /// The labels its node must have (`--node-label`), kept for when it
    /// is placed again.
    pub node_labels: BTreeMap<String, String>,
}

/// Filters of ListContainers.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<State>,
    pub name_contains: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Only the containers of this node (a cluster: what a node's own
    /// services act on).
    pub node: Option<String>,
}

impl ListFilter {
    /// No filter: every container matches.
    pub fn is_empty(&self) -> bool {
        // Every field named: a new filter must be counted here.
        let ListFilter {
            states,
            name_contains,
            labels,
            node,
        } = self;
        states.is_empty() && name_contains.is_none() && labels.is_empty() && node.is_none()
    }
}

/// How much of each container a listing loads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListView {
    #[default]
    Full,
    /// Without env, mounts and security, nor the supervisor's pid and
    /// start time (left out by whoever sends the page).
    Summary,
}

/// Where a page starts: after this container in the listing's order
/// (newest first by creation time, then id, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at_ns: i64,
    pub id: String,
}

impl ListCursor {
    pub fn of(c: &Container) -> ListCursor {
        ListCursor {
            created_at_ns: c.created_at_ns,
            id: c.id.clone(),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: ListFilter,
    pub view: ListView,
    pub after: Option<ListCursor>,
    /// At most this many containers (at least one is always loaded).
    pub limit: usize,
    /// Stop before the containers loaded would weigh more than this (their
    /// stored text, a rough upper bound of their wire size; the first one
    /// is loaded whatever it weighs).
    pub max_bytes: usize,
}

/// A page of containers, and whether more match after it. The containers
/// are the store's own entries, shared, not copied: in the summary view
/// they still hold env, mounts, security and the supervisor's pid, and the
/// caller leaves those out of what it sends (see `ListView::Summary`).
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub containers: Vec<std::sync::Arc<Container>>,
    pub more: bool,
    /// The listing index's version the page was read at (None: read from
    /// the table): see `Store::list_version`.
    pub version: Option<u64>,
}

impl Container {
    /// Whether it mounts a named volume (whose row a create and a start
    /// make sure of).
    pub fn uses_volumes(&self) -> bool {
        self.mounts
            .iter()
            .any(|m| matches!(m.source, MountSource::Volume(_)))
    }

    /// Whether one of its mounts has `target` (a file of its own over the
    /// one the engine would write there).
    pub fn mounts_at(&self, target: &str) -> bool {
        self.mounts.iter().any(|m| m.target == target)
    }

    /// What the container weighs on the wire in a view, roughly: its text
    /// and a fixed allowance for tags, numbers and timestamps (about 90
    /// bytes in a row without env, mounts or security). A row with many
    /// labels, ports or capabilities weighs more than this says. It only
    /// bounds how many rows a page loads: the server cuts the page by the
    /// rows' real encoded size.
    pub fn weight(&self, view: ListView) -> usize {
        let strings = |v: &[String]| v.iter().map(|s| s.len() + 2).sum::<usize>();
        let mut w = 112
            + self.id.len()
            + self.name.len()
            + self.image.len()
            + self.working_dir.len()
            + self.hostname.len()
            + strings(&self.command)
            + self.failure_reason.as_ref().map_or(0, String::len)
            + self
                .labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>();
        if view == ListView::Full {
            w += strings(&self.env) + 128 * self.mounts.len() + 128;
        }
        w
    }

    /// A new row for a validated request: `image` and `mounts` as resolved
    /// and checked at create.
    pub fn new(
        id: String,
        spec: CreateSpec,
        image: String,
        mounts: Vec<MountSpec>,
        created_at_ns: i64,
    ) -> Container {
        let name = spec
            .name
            .unwrap_or_else(|| crate::support::ids::short(&id).to_owned());
        Container {
            hostname: spec.hostname.unwrap_or_else(|| name.clone()),
            name,
            image,
            command: spec.command,
            env: spec.env,
            working_dir: spec.working_dir.unwrap_or_else(|| "/".into()),
            memory_mb: spec.memory_mb,
            cpus: spec.cpus,
            pids_limit: spec.pids_limit,
            network: spec.network,
            net: spec.net,
            auto_remove: spec.auto_remove,
            autostart: spec.start,
            init: spec.init,
            labels: spec.labels,
            state: State::Created,
            pid: None,
            shim_pid: None,
            shim_start_time: None,
            exit: None,
            failure_reason: None,
            created_at_ns,
            started_at_ns: None,
            finished_at_ns: None,
            mounts,
            disk_bytes: spec.disk_bytes,
            security: spec.security,
            id_range: None,
            restart: spec.restart,
            restart_count: 0,
            manual_stop: false,
            lifetime: spec.lifetime,
            stdio: spec.stdio,
            node: None,
            node_labels: spec.node_labels,
            id,
        }
    }

    /// Created with its start requested and not yet begun (the starter has
    /// it in its queue).
    pub fn is_queued(&self) -> bool {
        self.state == State::Created && self.autostart
    }

    /// Queued or starting: it is on its way to `running` (or `failed`).
    pub fn is_pending_start(&self) -> bool {
        self.is_queued() || self.state == State::Starting
    }

    /// The container has ended: finished, or being removed with its exit
    /// recorded.
    pub fn has_ended(&self) -> bool {
        self.state.is_finished() || (self.state.is_removing() && self.exit.is_some())
    }

    /// Its restart policy calls for a new start: it exited (not failed to
    /// start), the user did not stop it, it is not removed on exit, and the
    /// policy wants this exit restarted.
    pub fn restart_due(&self) -> bool {
        self.state == State::Exited
            && !self.manual_stop
            && !self.auto_remove
            && self
                .exit
                .as_ref()
                .is_some_and(|e| self.restart.wants_restart(e, self.restart_count))
    }

    /// Its workload's end is recorded (or it never ran and has finished).
    pub fn has_exit(&self) -> bool {
        self.state.is_finished() || self.exit.is_some()
    }
}

/// How WaitContainer (and the follow mode of GetLogs) saw the container end.
#[derive(Debug, Clone)]
pub struct WaitResult {
    pub id: String,
    pub state: State,
    pub exit: Option<ExitInfo>,
    pub failure_reason: Option<String>,
}

impl WaitResult {
    /// How a finished container ended; one being removed (--rm) reports
    /// its exit, not the removal.
    pub fn of(c: &Container) -> WaitResult {
        WaitResult {
            id: c.id.clone(),
            state: ended_state(c.state, c.failure_reason.is_some()),
            exit: c.exit.clone(),
            failure_reason: c.failure_reason.clone(),
        }
    }

    /// The same, from the event that recorded the end (the row may be gone).
    pub fn of_event(ev: &Event) -> WaitResult {
        WaitResult {
            id: ev.container_id.to_string(),
            state: ended_state(ev.state, ev.failure_reason.is_some()),
            exit: ev.exit.clone(),
            failure_reason: ev.failure_reason.clone(),
        }
    }

    /// A container whose row is gone and whose end was not seen.
    pub fn removed(id: &str) -> WaitResult {
        WaitResult {
            id: id.to_owned(),
            state: State::Exited,
            exit: None,
            failure_reason: None,
        }
    }
}

/// The state a finished container ended in, also while it is being removed.
fn ended_state(s: State, failed: bool) -> State {
    match s {
        State::Removing if failed => State::Failed,
        State::Removing => State::Exited,
        s => s,
    }
}
