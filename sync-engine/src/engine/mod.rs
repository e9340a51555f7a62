//! The engine handle the gRPC server holds, and the state its parts share.
mod activity;
mod live;
pub(crate) use live::Adopting;
mod queue;
mod shared;
mod wait;

pub(crate) use activity::ActivityGuard;
pub(crate) use queue::{Passed, Queued, StartQueue, Turn};
pub use queue::{Requester, StartClass};
pub(crate) use shared::Shared;
pub(crate) use wait::{Waited, Watch};

use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::model::Event;
use crate::services::{images_sweep, lifetimes, reconcile, starter};
use crate::store::Store;
use quilt_runtime::cgroup;
use quilt_runtime::image::ImageStore;
use quilt_runtime::spec::CgroupLayout;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.shared.cfg().data_dir)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the database, detects the cgroup layout, reconciles what was
    /// recorded with what is running, and starts the background starter.
    pub async fn open(cfg: EngineConfig) -> Result<Engine> {
        let dirs = [cfg.data_dir.clone(), cfg.containers_dir(), cfg.trash_dir()];
        let containers_dir = cfg.containers_dir();
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
            spread_container_dirs(&containers_dir);
            // Half-built images of a daemon that died mid-import.
            stale.remove_temp_dirs();
            Ok::<_, EngineError>(())
        })
        .await??;
        let layout = cgroup::detect_layout().map_err(|e| EngineError::internal("cgroups", e))?;
        let store = Store::open_database(cfg.database.as_deref(), &cfg.db_path()).await?;
        tracing::info!(backend = store.backend_name(), "state store open");
        if let Some(c) = &cfg.cluster {
            store.set_node(&c.name);
        }
        let queue = StartQueue::new(
            cfg.start_queue_capacity,
            cfg.max_concurrent_starts.max(1),
            store.metrics().clone(),
        );
        // Checked before anything is mounted: a refused name leaves nothing.
        let names = quilt_network::Names::new(
            &quilt_network::Names::tag_of(&cfg.data_dir),
            cfg.network.bridge_name.as_deref(),
            cfg.network.nft_table.as_deref(),
        )?;
        let netns_dir = cfg.data_dir.join("netns");
        let template_dir = netns_dir.clone();
        let sysfs_dir = cfg.data_dir.join("sysfs");
        let mount_template =
            tokio::task::spawn_blocking(move || mount_template(&template_dir, &sysfs_dir)).await?;
        let net = {
            let n = &cfg.network;
            let opts = quilt_network::NetOptions {
                data_dir: cfg.data_dir.clone(),
                names,
                pool: [n.netns_pool, n.bridge_pool],
                upstream_dns: n.upstream_dns.clone(),
            };
            let opened =
                tokio::task::spawn_blocking(move || quilt_network::Networking::open(opts)).await?;
            match opened {
                Ok(net) => Arc::new(net),
                Err(e) => {
                    // Nothing was bound under the namespaces' directory:
                    // its private mount point goes.
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Ok(dir) = std::fs::canonicalize(&netns_dir) {
                            let _ = quilt_runtime::mntns::release_mount_point(&dir);
                        }
                    })
                    .await;
                    return Err(e.into());
                }
            }
        };
        let (lifetimes_tx, lifetimes_rx) = tokio::sync::mpsc::unbounded_channel();
        let (outbox_tx, outbox_rx) = tokio::sync::mpsc::channel(crate::cluster::OUTBOX);
        let clustered = cfg.cluster.is_some();
        let mut shared = Shared::new(cfg, store, images, layout, queue, net, lifetimes_tx)
            .with_mount_template(mount_template);
        if clustered {
            shared = shared.with_outbox(outbox_tx);
        }
        let engine = Engine {
            shared: Arc::new(shared),
        };
        // From here the engine holds namespaces, resolvers and a cgroup
        // parent: a failure (a node name taken, a broken store) releases
        // them before it is reported.
        if let Err(e) = engine.begin(outbox_rx, lifetimes_rx).await {
            engine.shutdown().await;
            return Err(e);
        }
        Ok(engine)
    }

    /// The steps of `open` that follow the network's set-up.
    async fn begin(
        &self,
        outbox_rx: tokio::sync::mpsc::Receiver<crate::model::Event>,
        lifetimes_rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) -> Result<()> {
        let shared = &self.shared;
        images_sweep::remove_unrecorded(shared).await?;
        // The default seccomp profile, compiled before the first start.
        let warm = shared.clone();
        tokio::task::spawn_blocking(move || warm.seccomp().warm()).await??;
        crate::network::startup(shared).await?;
        crate::cluster::join(shared).await?;
        starter::spawn(shared.clone());
        reconcile::run(shared).await?;
        crate::cluster::spawn(shared.clone(), outbox_rx);
        crate::pool::spawn(shared.clone());
        crate::exec::detached::reconcile(shared).await?;
        lifetimes::spawn(shared.clone(), lifetimes_rx).await?;
        Ok(())
    }

    /// The detected cgroup layout (for logs and diagnostics).
    pub fn cgroup_layout(&self) -> &CgroupLayout {
        self.shared.layout()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.subscribe()
    }

    /// The remembered events at or after `since_ns` (none without it), and a
    /// receiver of the events that follow them: none missed, none twice.
    pub fn events_since(&self, since_ns: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        match since_ns {
            Some(since) => self.shared.events_from_history(since),
            None => (Vec::new(), self.shared.subscribe()),
        }
    }

    /// Stops accepting work and lets in-flight starts finish (bounded).
    /// Running containers are left running.
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        shared.close();
        shared.queue().close();
        let n = shared.cfg().max_concurrent_starts.max(1) as u32;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let _ = shared.start_slots().acquire_many(n).await;
            shared.claimed_starts().idle().await;
        })
        .await;
        shared.pool().shutdown(shared).await;
        let _ = tokio::task::spawn_blocking(quilt_runtime::launch::stop_fork_server).await;
        let layers = shared.clone();
        let _ = tokio::task::spawn_blocking(move || layers.layers().shutdown()).await;
        shared.store().close().await;
        let net = shared.net().clone();
        net.dns().stop_all().await;
        let netns_dir = shared.cfg().data_dir.join("netns");
        let _ = tokio::task::spawn_blocking(move || {
            net.shutdown();
            // The private mount point goes once no namespace is bound there.
            if let Ok(dir) = std::fs::canonicalize(&netns_dir)
                && let Err(e) = quilt_runtime::mntns::release_mount_point(&dir)
            {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot unmount the namespaces' directory");
            }
        })
        .await;
        let (layout, parent) = (shared.layout().clone(), shared.cfg().cgroup_parent.clone());
        let _ =
            tokio::task::spawn_blocking(move || cgroup::remove_parent_if_empty(&layout, &parent))
                .await;
    }
}

/// Asks the filesystem to spread the containers' directories over its
/// block groups (`quilt_runtime::set_topdir`). A filesystem without
/// the flag keeps its own placement.
fn spread_container_dirs(dir: &std::path::Path) {
    let set = std::fs::File::open(dir).and_then(|d| quilt_runtime::set_topdir(&d));
    if let Err(e) = set {
        tracing::debug!(dir = %dir.display(), error = %e, "containers' directories keep the filesystem's placement");
    }
}

/// The mount namespace supervisors start from (`quilt_runtime::mntns`):
/// `netns_dir` made a private mount point first, then left out of the
/// template. Without it (an error is logged) starts copy every mount of
/// the daemon's namespace, as before.
///
/// The template also has a read-only sysfs at `sysfs_dir` (see
/// `mntns::shared_sysfs`); without it (a warning is logged) every container
/// mounts its own.
fn mount_template(
    netns_dir: &std::path::Path,
    sysfs_dir: &std::path::Path,
) -> Option<quilt_runtime::mntns::Template> {
    use quilt_runtime::mntns;
    // The shared sysfs's directory, and the file its namespace is bound on.
    let sysfs_at = std::fs::create_dir_all(sysfs_dir)
        .and_then(|()| std::fs::canonicalize(sysfs_dir))
        .and_then(|dir| {
            let pin = dir.with_extension("netns");
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&pin)?;
            Ok(mntns::SysfsAt {
                dir,
                netns_pin: pin,
            })
        });
    let made = std::fs::create_dir_all(netns_dir)
        .and_then(|()| std::fs::canonicalize(netns_dir))
        .and_then(|dir| {
            mntns::private_mount_point(&dir)?;
            mntns::template_without(&dir, sysfs_at)
        });
    match made {
        Ok(t) => {
            if let Err(e) = &t.sysfs {
                tracing::warn!(dir = %sysfs_dir.display(), error = %e, "no shared sysfs: every container mounts its own");
            }
            Some(t)
        }
        Err(e) => {
            tracing::warn!(dir = %netns_dir.display(), error = %e, "no mount namespace template: starts copy every mount");
            None
        }
    }
}
