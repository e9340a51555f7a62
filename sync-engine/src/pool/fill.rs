//! The filler: prepares pooled containers one at a time until every pool
//! holds its size, woken by starts of claimed containers, misses, resizes,
//! waiting containers whose shim exited (a pidfd each), and creates that
//! matched no pool (templates built again); after a failure, by a timer
//! (the next try backs off up to a minute).
use super::{Member, PoolSpec};
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, CreateSpec, now_ns};
use crate::support::ids;
use quilt_network::Kind;
use quilt_runtime::launch::{self, PrepareOutcome};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the filler does next.
enum Next {
    /// Build the pools' templates again.
    Recheck(Vec<PoolSpec>),
    /// Prepare one for this pool.
    Fill(PoolSpec),
    /// Nothing before this instant (a pool waits out its back-off).
    WaitUntil(Instant),
    Idle,
    Closed,
}

impl super::WarmPool {
    fn next(&self) -> (Next, Vec<Member>) {
        let mut inner = self.lock();
        let mut dead = std::mem::take(&mut inner.dead);
        if inner.closed {
            return (Next::Closed, dead);
        }
        // Waiting ones whose shim exited (their PID 1 died).
        for p in &mut inner.pools {
            let mut alive = Vec::with_capacity(p.ready.len());
            for mut m in p.ready.drain(..) {
                match m.prepared.exited() {
                    true => dead.push(m),
                    false => alive.push(m),
                }
            }
            p.ready = alive;
        }
        if std::mem::take(&mut inner.recheck) {
            let specs = inner.pools.iter().map(|p| p.spec.clone()).collect();
            return (Next::Recheck(specs), dead);
        }
        let now = Instant::now();
        let mut wait: Option<Instant> = None;
        for p in &mut inner.pools {
            if p.filling || p.ready.len() >= p.spec.size {
                continue;
            }
            match p.retry_at {
                Some(t) if t > now => {
                    wait = Some(wait.map_or(t, |w| w.min(t)));
                }
                _ => {
                    p.filling = true;
                    return (Next::Fill(p.spec.clone()), dead);
                }
            }
        }
        (wait.map_or(Next::Idle, Next::WaitUntil), dead)
    }

    /// A template built again: when it differs, the waiting containers of
    /// the old one go (returned).
    fn retemplate(&self, spec: &PoolSpec, template: Container) -> Vec<Member> {
        let mut inner = self.lock();
        match inner.pools.iter_mut().find(|p| p.spec.same_pool(spec)) {
            Some(p) => p.retemplate(template),
            None => Vec::new(),
        }
    }

    /// The end of one preparation for the pool of `spec`: what is not
    /// wanted (it came too late, or is of an old shape) is returned, to go.
    fn filled(
        &self,
        spec: &PoolSpec,
        template: Option<Container>,
        res: Result<Member>,
    ) -> Vec<Member> {
        let mut inner = self.lock();
        let closed = inner.closed;
        let Some(p) = inner.pools.iter_mut().find(|p| p.spec.same_pool(spec)) else {
            // Removed meanwhile.
            return res.into_iter().collect();
        };
        p.filling = false;
        let mut unwanted = match template {
            Some(t) => p.retemplate(t),
            None => Vec::new(),
        };
        match res {
            Ok(m) if !closed && p.ready.len() < p.spec.size => {
                p.ready.push(m);
                p.last_error = None;
                p.retry_at = None;
                p.failures = 0;
            }
            Ok(m) => unwanted.push(m),
            Err(e) => {
                tracing::warn!(image = %spec.image, error = %e, "cannot prepare a pooled container");
                p.last_error = Some(e.to_string());
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << p.failures.min(6))
                    .min(MAX_BACKOFF);
                p.failures = p.failures.saturating_add(1);
                p.retry_at = Some(Instant::now() + backoff);
            }
        }
        unwanted
    }
}

impl super::Pool {
    /// Takes `template` as the pool's shape; when it differs from the one
    /// before, the containers waiting in the old shape are returned (to
    /// go): a claim would otherwise take one and fail its adoption.
    fn retemplate(&mut self, template: Container) -> Vec<Member> {
        let stale = self
            .template
            .as_ref()
            .is_some_and(|t| !super::shape::same(t, &template));
        self.template = Some(template);
        match stale {
            true => std::mem::take(&mut self.ready),
            false => Vec::new(),
        }
    }
}

pub(crate) fn spawn(shared: Arc<Shared>) {
    let pool = shared.clone();
    let handle = tokio::spawn(async move {
        loop {
            let pool = shared.pool();
            let (next, dead) = pool.next();
            for m in dead {
                m.discard(&shared).await;
            }
            match next {
                Next::Closed => break,
                Next::Idle => pool.wake.notified().await,
                Next::WaitUntil(t) => {
                    let _ = tokio::time::timeout_at(t.into(), pool.wake.notified()).await;
                }
                Next::Recheck(specs) => {
                    for spec in specs {
                        if let Ok(t) = build_template(&shared, &spec).await {
                            for m in pool.retemplate(&spec, t) {
                                m.discard(&shared).await;
                            }
                        }
                    }
                }
                Next::Fill(spec) => {
                    // Built anew for each: an image tagged again since, or a
                    // changed default, makes the next ones of the new shape
                    // (older ones fail the check on adoption and go).
                    let (template, res) = match build_template(&shared, &spec).await {
                        Ok(t) => (Some(t.clone()), prepare(&shared, &spec, &t).await),
                        Err(e) => (None, Err(e)),
                    };
                    for m in pool.filled(&spec, template, res) {
                        m.discard(&shared).await;
                    }
                }
            }
        }
    });
    *pool.pool().filler.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
}

/// The container `quilt run [--init] [--read-only] IMAGE true` makes (the
/// command is a placeholder: it is the adopter's, never the template's).
async fn build_template(shared: &Arc<Shared>, spec: &PoolSpec) -> Result<Container> {
    let mut create = CreateSpec::new(spec.image.clone());
    create.command = vec!["true".into()];
    create.start = true;
    create.init = spec.init;
    create.security.read_only = spec.read_only;
    crate::api::containers::build(shared, create).await
}

/// Prepares one container of `template`'s shape under a new id.
async fn prepare(shared: &Arc<Shared>, spec: &PoolSpec, template: &Container) -> Result<Member> {
    let id = ids::new_id();
    let mut c = template.clone();
    c.id = id.clone();
    c.name = ids::short(&id).to_owned();
    c.hostname = c.name.clone();
    c.created_at_ns = now_ns();
    let mut config = crate::services::starter::runtime_config(shared, &c).await?;
    // Prepared with the default pids limit only (what most adopters have,
    // so their adoption writes no limit): an adopter's own limits are
    // written on adoption, and one without a pids limit has it lifted. On
    // v2 with a memory cgroup of its own, so that a memory limit has one to
    // go to (the process could not move without a migration; on v1 it
    // moves into one made on adoption).
    config.cgroup.limits = quilt_runtime::spec::Limits {
        pids: config.cgroup.limits.pids,
        ..Default::default()
    };
    config.cgroup.own_memory = matches!(
        config.cgroup.layout,
        quilt_runtime::spec::CgroupLayout::V2 { .. }
    );
    let net = shared.net().clone();
    let slot = {
        let (net, id) = (net.clone(), id.clone());
        tokio::task::spawn_blocking(move || net.take(&id, Kind::Plain)).await??
    };
    // A failed preparation leaves nothing: the namespace goes back, the
    // directory goes (the shim removed the cgroup).
    let dir = config.dir.clone();
    let release = |net: Arc<quilt_network::Networking>, id: String| async move {
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = net.release(&id, true) {
                tracing::warn!(container = %id, error = %e, "cannot release a pooled container's namespace");
            }
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a pooled container's directory");
                }
                _ => {}
            }
        })
        .await;
    };
    config.netns = net.netns_path(&id);
    let net_files = match crate::network::hosts_files(shared, &c).await {
        Ok(mounts) => mounts,
        Err(e) => {
            release(net, id).await;
            return Err(e);
        }
    };
    config.mounts.extend(net_files.iter().cloned());
    let images = shared.images().clone();
    let shim = shared.cfg().shim_path.clone();
    let image = c.image.clone();
    let prepared = tokio::task::spawn_blocking(move || -> Result<PrepareOutcome> {
        config.image_rootfs = images
            .prepare(&image)
            .map_err(|e| EngineError::internal("preparing the image", e))?;
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| EngineError::internal(&format!("create {}", config.dir.display()), e))?;
        // The exit status's space, reserved now: the adoption then finds
        // its blocks allocated (see `exitfile::clear`), off its path.
        quilt_runtime::exitfile::clear(&config.dir)
            .map_err(|e| EngineError::internal("reserving the exit status", e))?;
        launch::prepare(&shim, &config).map_err(|e| EngineError::internal("the supervisor", e))
    })
    .await;
    match prepared {
        Ok(Ok(PrepareOutcome::Ready(prepared))) => {
            let watch = watch_exit(shared, prepared.shim_pid);
            Ok(Member {
                id,
                slot,
                prepared,
                pool: spec.clone(),
                image: c.image.clone(),
                name: c.name.clone(),
                hostname: c.hostname.clone(),
                net_files,
                watch,
            })
        }
        Ok(Ok(PrepareOutcome::Failed { message, .. })) => {
            release(net, id).await;
            Err(EngineError::Internal(message))
        }
        Ok(Err(e)) => {
            release(net, id).await;
            Err(e)
        }
        Err(e) => {
            release(net, id).await;
            Err(e.into())
        }
    }
}

/// Wakes the filler when the waiting container's shim exits (its pidfd
/// turns readable). None if it cannot be watched: it is then found dead
/// when claimed.
fn watch_exit(shared: &Arc<Shared>, shim_pid: i32) -> Option<tokio::task::AbortHandle> {
    let fd = quilt_runtime::proc::pidfd_open(shim_pid).ok()?;
    let shared = shared.clone();
    let task = tokio::spawn(async move {
        if quilt_runtime::pidfd_exited(fd).await.is_ok() {
            shared.pool().wake.notify_one();
        }
    });
    Some(task.abort_handle())
}
