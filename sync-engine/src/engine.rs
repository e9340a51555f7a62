//! The engine handle shared by the gRPC service and the background services.
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::model::{Container, Event, ExitInfo, State, now_ns};
use crate::store::Store;
use crate::{images, reconcile, starter};
use quilt_runtime::cgroup;
use quilt_runtime::image::ImageStore;
use quilt_runtime::spec::{CgroupLayout, CgroupSpec, Limits};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{RwLock, Semaphore, broadcast, mpsc};

/// Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.inner.cfg.data_dir)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub cfg: EngineConfig,
    pub store: Store,
    pub images: ImageStore,
    pub layout: CgroupLayout,
    pub host_cpus: usize,
    pub events: broadcast::Sender<Event>,
    pub start_tx: mpsc::Sender<String>,
    /// One permit per concurrent start; shutdown takes them all.
    pub start_slots: Arc<Semaphore>,
    pub closing: AtomicBool,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Running and finished execs (in memory only).
    pub execs: crate::execs::Registry,
}

/// In-memory companion of a container row: per-container serialisation of
/// lifecycle operations and the handle used to signal its PID 1.
#[derive(Default)]
pub(crate) struct Live {
    /// Held by start, stop and remove, so they never interleave.
    pub op: tokio::sync::Mutex<()>,
    /// Log followers hold it shared; removal takes it exclusively, so an
    /// attached `run --rm` sees every line before the files go.
    pub attach: Arc<RwLock<()>>,
    /// pidfd of the container's PID 1 while it runs.
    target: Mutex<Option<Arc<OwnedFd>>>,
}

impl Live {
    pub fn set_target(&self, fd: Option<OwnedFd>) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = fd.map(Arc::new);
    }

    pub fn target(&self) -> Option<Arc<OwnedFd>> {
        self.target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Engine {
    /// Opens the database, detects the cgroup layout, reconciles what was
    /// recorded with what is running, and starts the background starter.
    pub async fn open(cfg: EngineConfig) -> Result<Engine> {
        let dirs = [cfg.data_dir.clone(), cfg.containers_dir()];
        let images = ImageStore::new(&cfg.data_dir);
        let stale = images.clone();
        tokio::task::spawn_blocking(move || {
            for d in dirs {
                std::fs::create_dir_all(&d)
                    .map_err(|e| EngineError::internal(&format!("create {}", d.display()), e))?;
                // Root only: the database holds every container's environment,
                // and containers' upper dirs and volumes may hold setuid files
                // a container made. Containers reach their own files through
                // their mounts, not through this path.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| EngineError::internal(&format!("chmod {}", d.display()), e))?;
            }
            // Half-built images of a daemon that died mid-import.
            stale.remove_temp_dirs();
            Ok::<_, EngineError>(())
        })
        .await??;
        let layout = cgroup::detect_layout().map_err(|e| EngineError::internal("cgroups", e))?;
        let store = Store::open(&cfg.db_path()).await?;
        let (start_tx, start_rx) = mpsc::channel(cfg.start_queue_capacity.max(1));
        let (events, _) = broadcast::channel(8192);
        let inner = Arc::new(Inner {
            images,
            host_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            start_slots: Arc::new(Semaphore::new(cfg.max_concurrent_starts.max(1))),
            cfg,
            store,
            layout,
            events,
            start_tx,
            closing: AtomicBool::new(false),
            live: Mutex::new(HashMap::new()),
            execs: Default::default(),
        });
        images::remove_unrecorded(&inner).await?;
        starter::spawn(inner.clone(), start_rx);
        reconcile::run(&inner).await?;
        Ok(Engine { inner })
    }

    /// The detected cgroup layout (for logs and diagnostics).
    pub fn cgroup_layout(&self) -> &CgroupLayout {
        &self.inner.layout
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Stops accepting work and lets in-flight starts finish (bounded).
    /// Running containers are left running.
    pub async fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        let n = self.inner.cfg.max_concurrent_starts.max(1) as u32;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.inner.start_slots.acquire_many(n),
        )
        .await;
        self.inner.store.close().await;
        let (layout, parent) = (
            self.inner.layout.clone(),
            self.inner.cfg.cgroup_parent.clone(),
        );
        let _ =
            tokio::task::spawn_blocking(move || cgroup::remove_parent_if_empty(&layout, &parent))
                .await;
    }
}

impl Inner {
    pub fn live(&self, id: &str) -> Arc<Live> {
        let mut map = self.live.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_owned()).or_default().clone()
    }

    pub fn forget(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

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

    /// Publishes a state change (a row update has already been made).
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
