//! Warm pools (`quiltd --warm-pool IMAGE=N`, `quilt pool set`): containers
//! prepared ahead (cgroup, namespaces, network namespace, root, mounts) and
//! waiting before their workload's own settings. A create whose container
//! is of a pool's shape (see `shape`) claims one: the container takes its
//! id, so its directory, cgroup and namespace are ready, and the starter
//! adopts it (see `adopt`): the command, environment, working directory,
//! hostname, user and limits are the creating call's, applied on
//! adoption. The filler (see `fill`) prepares more in the background.
//!
//! Pooled containers are not rows: they live as long as quiltd holds their
//! shims' stdin, and their shims end them (and remove their cgroup and
//! directory) when quiltd lets go or dies. One handed over gated (see
//! `adopt`) and let go of before its gate opened ends with its workload
//! never run, and leaves its cgroup and directory to quiltd (or, when it
//! died, to the next one's start-up).
mod adopt;
mod fill;
mod shape;

pub(crate) use adopt::{Handed, abandon, adopt, go, hand_over_gated, ready};
pub(crate) use fill::spawn;

use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::Container;
use quilt_runtime::launch::Prepared;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The most containers one pool keeps.
pub const MAX_POOL_SIZE: usize = 256;

/// What a pool holds: containers of `image` as `quilt run IMAGE` makes them
/// (no network but loopback, no volumes), with `--init` and `--read-only`
/// when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub image: String,
    pub size: usize,
    pub init: bool,
    pub read_only: bool,
}

impl PoolSpec {
    /// `IMAGE=N[,init][,read-only]`.
    pub fn parse(s: &str) -> std::result::Result<PoolSpec, String> {
        let mut parts = s.split(',');
        let head = parts.next().unwrap_or_default();
        let (image, size) = head
            .rsplit_once('=')
            .ok_or_else(|| format!("warm pool {s:?}: expected IMAGE=N[,init][,read-only]"))?;
        let size: usize = size
            .parse()
            .map_err(|_| format!("warm pool {s:?}: {size:?} is not a number of containers"))?;
        let mut spec = PoolSpec {
            image: image.to_owned(),
            size,
            init: false,
            read_only: false,
        };
        for opt in parts {
            match opt {
                "init" => spec.init = true,
                "read-only" => spec.read_only = true,
                other => {
                    return Err(format!(
                        "warm pool {s:?}: unknown option {other:?} (init, read-only)"
                    ));
                }
            }
        }
        spec.check().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    /// The spec's own limits: an image, its reference no longer than a
    /// create's may be and one an image may have, and at most
    /// MAX_POOL_SIZE containers. (A path is checked where the host's
    /// refused paths are known: `Engine::set_warm_pool`, and the filler.)
    pub(crate) fn check(&self) -> Result<()> {
        if self.image.is_empty() {
            return Err(EngineError::InvalidArgument(
                "a warm pool needs an image".into(),
            ));
        }
        // As long as a create's image reference may be.
        crate::validate::path_budget("image reference", &self.image)?;
        let image = self.image.as_str();
        if image != quilt_runtime::image::DEFAULT_IMAGE
            && !image.starts_with('/')
            && !image.starts_with("sha256:")
            && crate::validate::image_name(image).is_err()
        {
            return Err(EngineError::InvalidArgument(format!(
                "invalid image reference {} for a warm pool: expected \"default\", an image's \
                 name or reference (letters, digits and . _ : / - @, starting with a letter or \
                 digit), its id (sha256:...) or an absolute path",
                crate::validate::echo(image)
            )));
        }
        if self.size > MAX_POOL_SIZE {
            return Err(EngineError::InvalidArgument(format!(
                "a warm pool holds at most {MAX_POOL_SIZE} containers, not {}",
                self.size
            )));
        }
        Ok(())
    }

    /// Checks the pools quiltd is started with: at most MAX_POOLS, and
    /// each shape once.
    pub fn check_all(specs: &[PoolSpec]) -> std::result::Result<(), String> {
        if specs.len() > MAX_POOLS {
            return Err(format!(
                "at most {MAX_POOLS} warm pools, not {}",
                specs.len()
            ));
        }
        for (i, s) in specs.iter().enumerate() {
            if specs[..i].iter().any(|o| o.same_pool(s)) {
                return Err(format!(
                    "warm pool of {} given twice with the same options",
                    s.image
                ));
            }
        }
        Ok(())
    }

    /// The same pool (its size aside).
    fn same_pool(&self, other: &PoolSpec) -> bool {
        self.image == other.image && self.init == other.init && self.read_only == other.read_only
    }
}

/// A pool as `quilt pool ls` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStatus {
    pub spec: PoolSpec,
    /// Prepared and waiting.
    pub ready: usize,
    /// Creates that took one, and creates of its shape that found none.
    pub hits: u64,
    pub misses: u64,
    /// Why the latest preparation failed (cleared by a success).
    pub last_error: Option<String>,
}

/// Wakes the filler when dropped (see [`WarmPool::refill_after`]).
#[derive(Debug)]
pub(crate) struct RefillAfter<'a>(&'a WarmPool);

impl Drop for RefillAfter<'_> {
    fn drop(&mut self) {
        self.0.wake.notify_one();
    }
}

/// What a create found in the pools.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// No pool of its shape.
    NoPool,
    /// A prepared container, claimed: its id.
    Hit(String),
    /// Its pool had none ready.
    Miss,
}

/// A claim held by a create until its row is committed: dropped before
/// (the insert failed, or the call was cancelled), the container goes back
/// to its pool.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    pool: &'a WarmPool,
    id: String,
    kept: bool,
}

impl Held<'_> {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The row is committed: the claim waits for its start.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.pool.unclaim(&self.id);
        }
    }
}

/// A prepared container.
#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    /// Its network namespace (the pool's slot, taken under its id).
    pub slot: String,
    pub prepared: Box<Prepared>,
    /// The pool it came from, and the image (id) it was prepared from.
    pub pool: PoolSpec,
    pub image: String,
    /// The name and hostname its network files were written with, and
    /// their mounts.
    pub name: String,
    pub hostname: String,
    pub net_files: Vec<quilt_runtime::mounts::MountConfig>,
    /// Wakes the filler when its shim exits while it waits (stopped once
    /// claimed: quiltd keeps no descriptor per running container but the
    /// supervisor's).
    pub watch: Option<tokio::task::AbortHandle>,
}

impl Member {
    fn unwatch(&mut self) {
        if let Some(w) = self.watch.take() {
            w.abort();
        }
    }
}

#[derive(Debug)]
struct Pool {
    spec: PoolSpec,
    /// The container the pool's spec makes (built by the filler, which
    /// resolves the image): creates are compared with it.
    template: Option<Container>,
    ready: Vec<Member>,
    filling: bool,
    hits: u64,
    misses: u64,
    last_error: Option<String>,
    /// After a failed preparation: not before this.
    retry_at: Option<Instant>,
    failures: u32,
}

#[derive(Debug, Default)]
struct Inner {
    pools: Vec<Pool>,
    /// Claimed by a create, waiting for its start.
    claimed: HashMap<String, Member>,
    /// Dead or unwanted, for the filler to discard.
    dead: Vec<Member>,
    closed: bool,
    /// A create matched no pool: the filler builds the templates again (an
    /// image tagged anew, a default changed), at most once a second.
    recheck: bool,
    last_recheck: Option<Instant>,
}

/// The most pools one quiltd keeps.
pub const MAX_POOLS: usize = 16;

/// The warm pools (see the module's comment).
#[derive(Debug, Default)]
pub(crate) struct WarmPool {
    inner: Mutex<Inner>,
    /// Wakes the filler.
    wake: tokio::sync::Notify,
    /// The filler, awaited at shutdown.
    filler: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl WarmPool {
    pub fn new(specs: &[PoolSpec]) -> WarmPool {
        let pool = WarmPool::default();
        // Checked by quiltd's flags (`PoolSpec::check_all`).
        for s in specs.iter().take(MAX_POOLS) {
            pool.lock().pools.push(Pool::new(s.clone()));
        }
        pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A prepared container of `c`'s shape, claimed for it.
    pub fn claim(&self, c: &Container) -> Claim {
        let mut inner = self.lock();
        if inner.closed || inner.pools.is_empty() {
            return Claim::NoPool;
        }
        let Inner { pools, claimed, .. } = &mut *inner;
        let Some(pool) = pools
            .iter_mut()
            .find(|p| p.template.as_ref().is_some_and(|t| shape::same(t, c)))
        else {
            let due = inner
                .last_recheck
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1));
            if due && !inner.recheck {
                inner.recheck = true;
                inner.last_recheck = Some(Instant::now());
                drop(inner);
                self.wake.notify_one();
            }
            return Claim::NoPool;
        };
        // Claims of containers not started yet hold a pooled container
        // each: at most the pool's size of them.
        let waiting = claimed
            .values()
            .filter(|m| m.pool.same_pool(&pool.spec))
            .count();
        if waiting >= pool.spec.size {
            pool.misses += 1;
            return Claim::Miss;
        }
        // One whose PID 1 died meanwhile is skipped (its shim cleaned up).
        let mut dead = Vec::new();
        let mut found = None;
        while let Some(mut m) = pool.ready.pop() {
            if m.prepared.exited() {
                dead.push(m);
                continue;
            }
            found = Some(m);
            break;
        }
        match &found {
            Some(_) => pool.hits += 1,
            None => pool.misses += 1,
        }
        let claim = match found {
            Some(mut m) => {
                m.unwatch();
                let id = m.id.clone();
                claimed.insert(id.clone(), m);
                Claim::Hit(id)
            }
            None => Claim::Miss,
        };
        // The filler releases what they held.
        let wake = !dead.is_empty() || claim == Claim::Miss;
        inner.dead.append(&mut dead);
        drop(inner);
        // A hit's replacement waits for its start (see `refill_after`): the
        // preparation would take the CPU from it.
        if wake {
            self.wake.notify_one();
        }
        claim
    }

    /// Holds the claim of `id` until the create's row is committed.
    pub fn hold(&self, id: String) -> Held<'_> {
        Held {
            pool: self,
            id,
            kept: false,
        }
    }

    /// Held by the start of a claimed container: once it is over (adopted
    /// or not, recorded as running or failed), its replacement is prepared.
    pub fn refill_after(&self) -> RefillAfter<'_> {
        RefillAfter(self)
    }

    /// A claim whose create failed: back to its pool (if it still has room).
    pub(crate) fn unclaim(&self, id: &str) {
        let mut inner = self.lock();
        let Some(m) = inner.claimed.remove(id) else {
            return;
        };
        let closed = inner.closed;
        match inner.pools.iter_mut().find(|p| p.spec.same_pool(&m.pool)) {
            Some(pool) if !closed && pool.ready.len() < pool.spec.size => pool.ready.push(m),
            _ => inner.dead.push(m),
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// A claimed container taken for a start that did not begin after all:
    /// claimed again (its create's failure, its removal or a later start
    /// decides what becomes of it).
    pub fn untake(&self, m: Member) {
        self.lock().claimed.insert(m.id.clone(), m);
    }

    /// The network namespace of the container claimed for `id`, if any.
    pub fn slot_of(&self, id: &str) -> Option<String> {
        self.lock().claimed.get(id).map(|m| m.slot.clone())
    }

    /// The container claimed for `id`, for its start.
    pub fn take(&self, id: &str) -> Option<Member> {
        self.lock().claimed.remove(id)
    }

    /// Ends the container claimed for `id`, if any (its create's row went).
    pub async fn discard(&self, shared: &Shared, id: &str) {
        if let Some(m) = self.take(id) {
            self.discard_member(shared, m).await;
        }
    }

    /// Ends a claimed container taken for a start that did not begin.
    pub async fn discard_member(&self, shared: &Shared, m: Member) {
        m.discard(shared).await;
        self.wake.notify_one();
    }

    /// Ends the waiting containers prepared from these images (they are
    /// being removed) and forgets the templates made from them.
    pub async fn discard_images(&self, shared: &Shared, images: &[String]) {
        let gone: Vec<Member> = {
            let mut inner = self.lock();
            let mut gone = Vec::new();
            for p in &mut inner.pools {
                if p.template
                    .as_ref()
                    .is_some_and(|t| images.contains(&t.image))
                {
                    p.template = None;
                }
                let (drop_these, keep): (Vec<Member>, Vec<Member>) =
                    p.ready.drain(..).partition(|m| images.contains(&m.image));
                p.ready = keep;
                gone.extend(drop_these);
            }
            gone
        };
        for m in gone {
            m.discard(shared).await;
        }
        self.wake.notify_one();
    }

    /// Sets a pool's size (adding the pool, or removing it with size 0).
    pub async fn set(&self, shared: &Shared, spec: PoolSpec) -> Result<()> {
        spec.check()?;
        let surplus = {
            let mut inner = self.lock();
            if inner.closed {
                return Err(EngineError::Unavailable("quiltd is shutting down".into()));
            }
            let at = inner.pools.iter().position(|p| p.spec.same_pool(&spec));
            match at {
                Some(i) if spec.size == 0 => {
                    let p = inner.pools.remove(i);
                    p.ready
                }
                Some(i) => {
                    let p = &mut inner.pools[i];
                    p.spec.size = spec.size;
                    p.retry_at = None;
                    let keep = p.ready.len().min(spec.size);
                    p.ready.split_off(keep)
                }
                None if spec.size == 0 => Vec::new(),
                None if inner.pools.len() >= MAX_POOLS => {
                    return Err(EngineError::ResourceExhausted(format!(
                        "quiltd keeps at most {MAX_POOLS} warm pools: remove one first"
                    )));
                }
                None => {
                    inner.pools.push(Pool::new(spec));
                    Vec::new()
                }
            }
        };
        self.wake.notify_one();
        for m in surplus {
            m.discard(shared).await;
        }
        Ok(())
    }

    pub fn status(&self) -> Vec<PoolStatus> {
        self.lock()
            .pools
            .iter()
            .map(|p| PoolStatus {
                spec: p.spec.clone(),
                ready: p.ready.len(),
                hits: p.hits,
                misses: p.misses,
                last_error: p.last_error.clone(),
            })
            .collect()
    }

    /// Ends every pooled container (quiltd is stopping), once the filler
    /// has finished what it was preparing.
    pub async fn shutdown(&self, shared: &Shared) {
        self.lock().closed = true;
        self.wake.notify_one();
        let filler = self.filler.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(f) = filler {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), f).await;
        }
        let members: Vec<Member> = {
            let mut inner = self.lock();
            let mut all: Vec<Member> = inner.claimed.drain().map(|(_, m)| m).collect();
            all.append(&mut inner.dead);
            for p in &mut inner.pools {
                all.append(&mut p.ready);
            }
            all
        };
        for m in members {
            m.discard(shared).await;
        }
    }
}

impl Pool {
    fn new(spec: PoolSpec) -> Pool {
        Pool {
            spec,
            template: None,
            ready: Vec::new(),
            filling: false,
            hits: 0,
            misses: 0,
            last_error: None,
            retry_at: None,
            failures: 0,
        }
    }
}

impl Member {
    /// Ends the pooled container's processes (its shim cleans up); its
    /// network namespace stays, recorded as the claiming container's, for
    /// a cold start or the container's removal to take over.
    pub async fn end(mut self) {
        self.unwatch();
        let _ = tokio::task::spawn_blocking(move || self.prepared.discard()).await;
    }

    /// Ends the pooled container and gives its network namespace back
    /// (tainted: its first process ran in it).
    pub async fn discard(mut self, shared: &Shared) {
        self.unwatch();
        let net = shared.net().clone();
        let _ = tokio::task::spawn_blocking(move || {
            let Member { id, prepared, .. } = self;
            prepared.discard();
            if let Err(e) = net.release(&id, true) {
                tracing::warn!(container = %id, error = %e, "cannot release a pooled container's namespace");
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_flags_are_parsed_and_checked() {
        let p = PoolSpec::parse("default=4,init,read-only").unwrap();
        assert_eq!(
            (p.image.as_str(), p.size, p.init, p.read_only),
            ("default", 4, true, true)
        );
        for bad in [
            "default",
            "default=x",
            "default=2,tty",
            "=2",
            "default=100000",
            "../../etc=1",
            "not an image=1",
        ] {
            assert!(PoolSpec::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "alpine:3.19=2",
            "registry.local:5000/team/img@sha256:00=1",
            "sha256:0123abcd=1",
            "/srv/rootfs=1",
        ] {
            assert!(PoolSpec::parse(good).is_ok(), "{good}");
        }
        let a = PoolSpec::parse("default=2").unwrap();
        let b = PoolSpec::parse("default=3,init").unwrap();
        assert!(PoolSpec::check_all(&[a.clone(), b.clone()]).is_ok());
        let again = PoolSpec::parse("default=5").unwrap();
        assert!(PoolSpec::check_all(&[a.clone(), b, again]).is_err());
        assert!(PoolSpec::check_all(&vec![a; MAX_POOLS + 1]).is_err());
    }
}
