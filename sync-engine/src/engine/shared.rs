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
    closing: AtomicBool,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Running and finished execs (in memory only).
    execs: ExecRegistry,
    /// Compiled seccomp filters.
    seccomp: SeccompCache,
    /// Registry pulls (their layouts under DATA/pulls).
    puller: quilt_registry::Puller,
}

impl Shared {
    pub fn new(
        cfg: EngineConfig,
        store: Store,
        images: ImageStore,
        layout: CgroupLayout,
        queue: StartQueue,
    ) -> Shared {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let puller =
            quilt_registry::Puller::new(cfg.registry.clone(), cfg.data_dir.join(PULLS_DIR));
        Shared {
            puller,
            host_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            start_slots: Arc::new(Semaphore::new(cfg.max_concurrent_starts.max(1))),
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
        }
    }

    pub fn cfg(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
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

    pub fn queue(&self) -> &StartQueue {
        &self.queue
    }

    pub fn start_slots(&self) -> &Arc<Semaphore> {
        &self.start_slots
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
        let _ = self.events.send(Event {
            container_id: c.id.clone(),
            name: c.name.clone(),
            state,
            action,
            time_ns: now_ns(),
            exit,
            failure_reason: reason,
        });
    }
}
