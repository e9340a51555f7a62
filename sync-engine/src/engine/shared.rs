//! The state every part of the engine shares: configuration, the store, the
//! image files, the event bus, the start queue and the per-container live
//! handles. Fields are private; each part reaches what it needs through a
//! method.
use super::live::Live;
use super::queue::StartQueue;
use crate::config::EngineConfig;
use crate::exec::Registry as ExecRegistry;
use crate::model::{Container, Event, ExitInfo, State, now_ns};
use crate::security::SeccompCache;
use crate::store::Store;
use quilt_runtime::image::ImageStore;
use quilt_runtime::spec::{CgroupLayout, CgroupSpec, Limits};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, broadcast};

/// Where pulls keep their layouts (partial blobs included) until imported.
pub(crate) const PULLS_DIR: &str = "pulls";

/// Events buffered per subscriber before it lags.
const EVENT_BUFFER: usize = 8192;
/// Events remembered for WatchEvents' `since` (in memory: a restart forgets).
const EVENT_HISTORY: usize = 4096;

#[derive(Debug)]
pub(crate) struct Shared {
    cfg: EngineConfig,
    store: Store,
    images: ImageStore,
    layout: CgroupLayout,
    host_cpus: usize,
    events: broadcast::Sender<Event>,
    queue: StartQueue,
    /// One permit per concurrent start; shutdown takes them all.
    start_slots: Arc<Semaphore>,
    /// Starts of claimed containers under way, which take no start slot
    /// (see `starter::claimed_start`); shutdown waits for them too.
    claimed_starts: Arc<InFlight>,
    closing: AtomicBool,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Running and finished execs (in memory only).
    execs: ExecRegistry,
    /// Compiled seccomp filters.
    seccomp: SeccompCache,
    /// Imports hold it shared from unpacking their layers until the image
    /// is recorded; removals of layers hold it exclusively, so a layer an
    /// import is about to reference is never deleted under it.
    layer_gc: tokio::sync::RwLock<()>,
    /// Bridges, namespaces, the firewall and the port proxies.
    net: Arc<quilt_network::Networking>,
    /// Serialises network creation and removal (the ruleset follows them).
    net_lock: tokio::sync::Mutex<()>,
    /// Wakes the lifetimes service to look at a container again.
    lifetimes: tokio::sync::mpsc::UnboundedSender<String>,
    /// The latest events (at most EVENT_HISTORY), for WatchEvents' `since`.
    history: Mutex<std::collections::VecDeque<Event>>,
    /// Registry pulls (their layouts under DATA/pulls).
    puller: quilt_registry::Puller,
    /// The mount namespace supervisors start from.
    mount_template: Option<std::os::fd::OwnedFd>,
    shared_sysfs: Option<std::path::PathBuf>,
    /// In a cluster: this node's events, for the other nodes (see
    /// `cluster::events`).
    outbox: Option<tokio::sync::mpsc::Sender<Event>>,
    /// Prepared containers waiting for a create of their shape.
    pool: crate::pool::WarmPool,
    /// In a cluster: the starts this node took into its queue lately.
    taken: crate::cluster::Taken,
    /// Removed directories, deleted in the background.
    trash: Arc<crate::support::trash::Trash>,
    /// Writable layers made ahead for cold starts.
    layers: crate::support::layers::LayerPool,
}

impl Shared {
    pub fn new(
        cfg: EngineConfig,
        store: Store,
        images: ImageStore,
        layout: CgroupLayout,
        queue: StartQueue,
        net: Arc<quilt_network::Networking>,
        lifetimes: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Shared {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let trash = Arc::new(crate::support::trash::Trash::start(cfg.trash_dir()));
        let layers = crate::support::layers::LayerPool::start(
            cfg.layers_dir(),
            cfg.layer_pool,
            trash.clone(),
        );
        let puller =
            quilt_registry::Puller::new(cfg.registry.clone(), cfg.data_dir.join(PULLS_DIR));
        Shared {
            mount_template: None,
            shared_sysfs: None,
            pool: crate::pool::WarmPool::new(&cfg.warm_pools),
            puller,
            host_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            layer_gc: tokio::sync::RwLock::new(()),
            start_slots: Arc::new(Semaphore::new(cfg.max_concurrent_starts.max(1))),
            claimed_starts: Arc::default(),
            cfg,
            store,
            images,
            layout,
            events,
            queue,
            closing: AtomicBool::new(false),
            live: Mutex::new(HashMap::new()),
            execs: Default::default(),
            seccomp: Default::default(),
            net,
            net_lock: tokio::sync::Mutex::new(()),
            lifetimes,
            history: Mutex::new(std::collections::VecDeque::with_capacity(EVENT_HISTORY)),
            outbox: None,
            taken: Default::default(),
            trash,
            layers,
        }
    }

    /// Where this node's events go for the other nodes of its cluster.
    pub fn with_outbox(mut self, tx: tokio::sync::mpsc::Sender<Event>) -> Shared {
        self.outbox = Some(tx);
        self
    }

    /// The mount namespace supervisors start from (see `mount_template`).
    pub fn with_mount_template(mut self, t: Option<quilt_runtime::mntns::Template>) -> Shared {
        if let Some(t) = t {
            self.shared_sysfs = t.sysfs.ok();
            self.mount_template = Some(t.ns);
        }
        self
    }

    /// The template's shared sysfs (see `quilt_runtime::mntns::Template`).
    pub fn shared_sysfs(&self) -> Option<std::path::PathBuf> {
        self.shared_sysfs.clone()
    }

    /// Where a supervisor finds the mount namespace to start from (see
    /// `quilt_runtime::mntns`): this process's descriptor of it.
    pub fn mount_template(&self) -> Option<std::path::PathBuf> {
        use std::os::fd::AsRawFd;
        self.mount_template
            .as_ref()
            .map(|fd| format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd()).into())
    }

    pub(crate) fn taken(&self) -> &crate::cluster::Taken {
        &self.taken
    }

    pub fn pool(&self) -> &crate::pool::WarmPool {
        &self.pool
    }

    pub fn net(&self) -> &Arc<quilt_network::Networking> {
        &self.net
    }

    pub fn net_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.net_lock
    }

    /// The remembered events at or after `since_ns`, oldest first, and a
    /// receiver of those that follow (none missed, none twice: both taken
    /// under the history lock).
    pub fn events_from_history(&self, since_ns: i64) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        // Events are recorded in time order: skip the older ones.
        let first = history.partition_point(|e| e.time_ns < since_ns);
        (
            history.range(first..).cloned().collect(),
            self.events.subscribe(),
        )
    }

    /// Asks the lifetimes service to look at container `id` again (its
    /// deadlines or activity changed).
    pub(crate) fn lifetimes_wake(&self, id: &str) {
        let _ = self.lifetimes.send(id.to_owned());
    }

    /// This node's name in a cluster; None on a daemon of its own.
    pub fn node(&self) -> Option<&str> {
        self.cfg.cluster.as_ref().map(|c| c.name.as_str())
    }

    /// Resolves a container that a call acts on here, on this host: one
    /// that runs on another node of the cluster is that node's to serve
    /// (`Elsewhere`). A lost container (its node is down) is served here:
    /// it may be removed, or started on a live node.
    pub async fn resolve_here(&self, reference: &str) -> crate::error::Result<Container> {
        let c = self.store.resolve(reference).await?;
        match (&c.node, self.node()) {
            (Some(n), Some(me)) if n != me && c.state != crate::model::State::Lost => {
                Err(crate::error::EngineError::Elsewhere {
                    id: c.id,
                    node: n.clone(),
                })
            }
            _ => Ok(c),
        }
    }

    pub fn cfg(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn layer_gc(&self) -> &tokio::sync::RwLock<()> {
        &self.layer_gc
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// Where removed directories go to be deleted (see `support::trash`).
    pub fn layers(&self) -> &crate::support::layers::LayerPool {
        &self.layers
    }

    pub fn trash(&self) -> &crate::support::trash::Trash {
        &self.trash
    }

    pub fn puller(&self) -> &quilt_registry::Puller {
        &self.puller
    }

    pub fn layout(&self) -> &CgroupLayout {
        &self.layout
    }

    pub fn host_cpus(&self) -> usize {
        self.host_cpus
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.store().metrics()
    }

    pub fn queue(&self) -> &StartQueue {
        &self.queue
    }

    pub fn start_slots(&self) -> &Arc<Semaphore> {
        &self.start_slots
    }

    pub fn claimed_starts(&self) -> &Arc<InFlight> {
        &self.claimed_starts
    }

    pub fn execs(&self) -> &ExecRegistry {
        &self.execs
    }

    pub fn seccomp(&self) -> &SeccompCache {
        &self.seccomp
    }

    /// The live handle of a container (made on first use).
    pub fn live(&self, id: &str) -> Arc<Live> {
        let mut map = self.live.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_owned()).or_default().clone()
    }

    /// Drops the live handle of a removed container.
    pub fn forget(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Stops accepting work (shutdown).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The cgroup of a container, with its limits.
    pub fn cgroup_spec(&self, c: &Container) -> CgroupSpec {
        let pos = |v: i64| (v > 0).then_some(v as u64);
        CgroupSpec {
            layout: self.layout.clone(),
            path: format!("{}/{}", self.cfg.cgroup_parent, c.id),
            limits: Limits {
                memory_bytes: pos(c.memory_mb).map(|mb| mb * 1024 * 1024),
                cpus: (c.cpus > 0.0).then_some(c.cpus),
                pids: pos(c.pids_limit),
            },
            // Set at start, where the container's security is known.
            own_memory: false,
        }
    }

    /// Publishes a state change (the row update has already been made).
    pub fn emit(
        &self,
        c: &Container,
        state: State,
        action: &'static str,
        exit: Option<ExitInfo>,
        reason: Option<String>,
    ) {
        // Numbered and kept under one lock, so history and the live stream
        // agree on the order.
        let ev = Event {
            seq: 0,
            container_id: c.id.as_str().into(),
            name: c.name.as_str().into(),
            state,
            action,
            time_ns: now_ns(),
            exit,
            failure_reason: reason,
        };
        // Bounded: while the database is slow or down, events the other
        // nodes cannot get in time are dropped rather than kept without end
        // (the state itself is in the table).
        if let Some(outbox) = &self.outbox {
            let _ = outbox.try_send(ev.clone());
        }
        self.record(ev);
    }

    /// An event of another node of the cluster: recorded and published
    /// here as this node's own are (not sent on again).
    pub(crate) fn emit_remote(&self, ev: Event) {
        self.record(ev);
    }

    /// Numbers the event and keeps and publishes it (one lock, so history
    /// and the live stream agree on the order).
    fn record(&self, mut ev: Event) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        ev.seq = history.back().map_or(1, |e: &Event| e.seq + 1);
        if history.len() == EVENT_HISTORY {
            history.pop_front();
        }
        history.push_back(ev.clone());
        let _ = self.events.send(ev);
    }
}

/// A count of tasks under way that can be waited on until none is.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    n: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlight {
    /// One more under way until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.n.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// Returns once none is under way.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.n.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// See [`InFlight::enter`].
#[derive(Debug)]
pub(crate) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
