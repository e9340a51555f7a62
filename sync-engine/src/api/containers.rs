//! The container verbs: create, start, get, list, stop, kill, wait, remove.
//! Each checks what the state machine (`model::state`) allows, and waits
//! through `Shared::wait_until`.
use crate::engine::{Engine, Requester, Shared, Turn, Waited};
use crate::error::{EngineError, Result};
use crate::model::{
    Container, CreateSpec, ListFilter, ListPage, ListQuery, State, WaitResult, now_ns,
};
use crate::pool::Claim;
use crate::services::cleanup;
use crate::services::starter::Claimed;
use crate::support::{ids, signals};
use crate::validate;
use quilt_runtime::signal::Signal;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long a SIGKILLed container may take to be recorded as exited.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// The container `spec` asks for, validated, with the defaults, the
/// image's configuration and a new id (nothing stored).
pub(crate) async fn build(shared: &Arc<Shared>, mut spec: CreateSpec) -> Result<Container> {
    apply_defaults(&mut spec, shared.cfg());
    // A stored image's name is recorded as its id; its configuration
    // fills in what the caller left out.
    let image = super::images::resolve_for_create(shared, &spec.image).await?;
    super::images::apply_config(shared, &image, &mut spec).await?;
    validate::create_spec(&spec, shared.host_cpus())?;
    spec.security = crate::security::check_host(shared, spec.security).await?;
    crate::network::check_create(shared, &mut spec).await?;
    let mounts = super::volumes::check_mounts(shared, &spec.mounts).await?;
    check_image(shared, &image).await?;
    let mut c = Container::new(ids::new_id(), spec, image, mounts, now_ns());
    crate::security::for_create(shared, &mut c)?;
    Ok(c)
}

impl Engine {
    /// Validates, stores the row in one transaction and, unless asked not
    /// to, queues the start. Returns as soon as the row is committed.
    pub async fn create(&self, spec: CreateSpec) -> Result<Container> {
        self.create_as(spec, &Requester::default()).await
    }

    /// `create` on behalf of `who` (its place and turn in the start queue).
    pub async fn create_as(&self, spec: CreateSpec, who: &Requester) -> Result<Container> {
        let shared = &self.shared;
        if shared.is_closing() {
            return Err(EngineError::Unavailable("quiltd is shutting down".into()));
        }
        let (default_name, default_hostname) = (spec.name.is_none(), spec.hostname.is_none());
        let wanted = spec.node.clone();
        let wanted_labels = spec.node_labels.clone();
        let mut c = build(shared, spec).await?;
        // In a cluster: the node it runs on (the least loaded live one, or
        // the one asked for). The insert checks again that it is live.
        c.node = match shared.node() {
            Some(_) => {
                shared
                    .store()
                    .place(wanted.as_deref(), &wanted_labels)
                    .await?
            }
            None if wanted.is_some() || !wanted_labels.is_empty() => {
                return Err(EngineError::InvalidArgument(
                    "--node: this quiltd is not a node of a cluster (it has no --database \
                     postgres://...)"
                        .into(),
                ));
            }
            None => None,
        };
        let here = c.node.is_none() || c.node.as_deref() == shared.node();
        // A warm pool's container of its shape: it becomes that container
        // (its id, so its directory and cgroup are ready), adopted at its
        // first start, now or later (docker's and quilt's `run` create,
        // then start).
        let claim = if here {
            shared.pool().claim(&c)
        } else {
            Claim::NoPool
        };
        let mut pooled = match claim {
            Claim::Hit(id) => {
                shared.metrics().pool_claim(true);
                Some(shared.pool().hold(id))
            }
            Claim::Miss => {
                shared.metrics().pool_claim(false);
                None
            }
            Claim::NoPool => None,
        };
        if let Some(held) = &pooled {
            let id = held.id();
            c.id = id.to_owned();
            if default_name {
                c.name = ids::short(id).to_owned();
            }
            if default_hostname {
                c.hostname = c.name.clone();
            }
        }
        // Adopted now: inserted as `starting`, with no turn in the queue.
        let adopt_now = pooled
            .as_ref()
            .filter(|_| c.autostart)
            .and_then(|held| shared.pool().slot_of(held.id()));
        if let Some(netns) = adopt_now {
            // The start's task owns the claim from here: a failed insert
            // gives it back to its pool, or ends it if it was handed over
            // meanwhile (see `starter::claimed_start`).
            if let Some(held) = pooled.take() {
                held.keep();
            }
            c.state = State::Starting;
            c.autostart = false;
            let id = c.id.clone();
            let pre = c.clone();
            let begin = {
                let shared = shared.clone();
                move || async move {
                    let ids = &shared.cfg().userns_ids;
                    (c.id_range, c.net) = shared
                        .store()
                        .insert_full(&c, Some(ids), Some(&netns))
                        .await?;
                    Ok(Some(c))
                }
            };
            return crate::services::starter::claimed_start(
                shared,
                &id,
                Claimed::Create(pre),
                begin,
            )
            .await?
            .ok_or_else(|| EngineError::Internal("a new row was not inserted".into()));
        }
        // Started at once when no interactive start waits and a slot is
        // free (not in a cluster, where the queue's turn is the node's
        // claim); else a place in the queue, and a full queue is refused
        // before any row exists.
        let slot = match c.autostart && here {
            true => {
                let may_pass = pooled.is_none() && shared.node().is_none();
                match shared.queue().turn(who, shared.start_slots(), may_pass)? {
                    Turn::Now(now) => {
                        return crate::services::starter::direct_start(shared, c, now).await;
                    }
                    Turn::Queued(slot) => Some(slot),
                }
            }
            false => None,
        };
        let inserted = shared
            .store()
            .insert_full(&c, Some(&shared.cfg().userns_ids), None)
            .await;
        // Dropped on an error (or a cancelled call), the claim goes back.
        (c.id_range, c.net) = inserted?;
        if let Some(held) = pooled {
            held.keep();
        }
        // Its names resolve on its network from now on (before any start).
        crate::network::dns::insert(shared, &c);
        shared.emit(&c, State::Created, "created", None, None);
        if let Some(slot) = slot {
            crate::cluster::note_taken(shared, &c.id);
            slot.send(c.id.clone());
        }
        // A start placed on another node: that node was told by the
        // insert's transaction (see `insert_full`).
        Ok(c)
    }

    /// Starts a CREATED container, or again one that has EXITED or FAILED.
    /// Already starting or running: a no-op, as with docker.
    pub async fn start(&self, reference: &str) -> Result<Container> {
        self.start_as(reference, &Requester::default()).await
    }

    /// `start` on behalf of `who` (its place and turn in the start queue).
    pub async fn start_as(&self, reference: &str, who: &Requester) -> Result<Container> {
        let shared = &self.shared;
        let c = shared.resolve_here(reference).await?;
        if c.state.is_active() {
            return Ok(c);
        }
        if !c.state.can_start() {
            return Err(refused(&c));
        }
        if c.state == State::Lost {
            return crate::cluster::start_lost(shared, c).await;
        }
        let mut watch = shared.watch();
        // A warm pool's container claimed at its create: adopted now, with
        // no turn in the queue (see `claimed_start`).
        let mut begun = false;
        if c.state == State::Created && shared.pool().slot_of(&c.id).is_some() {
            let begin = {
                let (shared, id) = (shared.clone(), c.id.clone());
                move || {
                    // Looked up under the lock: a copy or removal may have
                    // ended the claim meanwhile.
                    let slot = shared.pool().slot_of(&id);
                    async move {
                        match slot {
                            Some(netns) => shared.store().begin_claimed_start(&id, &netns).await,
                            None => Ok(None),
                        }
                    }
                }
            };
            let claimed = Claimed::Start(c.clone());
            begun = crate::services::starter::claimed_start(shared, &c.id, claimed, begin)
                .await?
                .is_some();
            // Not begun: still `created` (the claim went), started the
            // usual way; anything else is another call's start, waited for
            // as one under way (it may have ended, or ended and gone).
            if !begun {
                begun = shared
                    .store()
                    .get(&c.id)
                    .await?
                    .is_none_or(|now| now.state != State::Created);
            }
        }
        if !begun {
            let live = shared.live(&c.id);
            let _lifecycle = live.lifecycle.lock().await;
            // Started at once when no interactive start waits and a slot
            // is free (it begins once this lock is let go); else queued.
            let may_pass = shared.node().is_none();
            let turn = shared.queue().turn(who, shared.start_slots(), may_pass)?;
            if shared.store().reset_for_start(&c).await? {
                match turn {
                    Turn::Now(now) => {
                        crate::services::starter::start_now(shared, c.id.clone(), now)
                    }
                    Turn::Queued(slot) => {
                        crate::cluster::note_taken(shared, &c.id);
                        slot.send(c.id.clone());
                    }
                }
            } else {
                drop(turn);
                // Not as this call saw it: a start made since (another
                // call's, which may have ended already) is waited for as
                // one under way, not made again.
                let changed =
                    shared.store().get(&c.id).await?.is_none_or(|now| {
                        now.state != c.state || now.started_at_ns != c.started_at_ns
                    });
                if !changed {
                    return Err(EngineError::FailedPrecondition(format!(
                        "container {} changed state; try again",
                        c.name
                    )));
                }
            }
        }
        let c = match shared.wait_started(&mut watch, &c.id).await {
            Ok(c) => c,
            // Started, ended and removed (--rm) before we looked again: how
            // it ended travelled in an event.
            Err(EngineError::NotFound(_)) if watch.exit_event(&c.id).is_some() => {
                let ev = watch.exit_event(&c.id).cloned().expect("checked");
                Container {
                    state: WaitResult::of_event(&ev).state,
                    exit: ev.exit,
                    failure_reason: ev.failure_reason,
                    ..c
                }
            }
            Err(e) => return Err(e),
        };
        if c.state == State::Failed {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} failed to start: {}",
                c.name,
                c.failure_reason.as_deref().unwrap_or("unknown reason")
            )));
        }
        Ok(c)
    }

    /// The container `reference` names, as ListContainers shows it.
    pub async fn get(&self, reference: &str) -> Result<Container> {
        self.shared.store().resolve_listed(reference).await
    }

    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Container>> {
        self.shared.store().list(filter).await
    }

    /// One page of a listing (see `ListQuery`).
    pub async fn list_page(&self, q: &ListQuery) -> Result<ListPage> {
        self.shared.store().list_page(q).await
    }

    /// The version a listing would be read at now (see
    /// `Store::list_version`; `ListPage::version`).
    pub fn list_version(&self) -> Option<u64> {
        self.shared.store().list_version()
    }

    /// SIGTERM, up to `timeout` for the workload to exit, then SIGKILL.
    /// Returns the container as recorded after it exited.
    pub async fn stop(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let shared = &self.shared;
        let mut watch = shared.watch();
        let mut c = shared.resolve_here(reference).await?;
        if !c.state.is_removing() {
            // Whatever state it is in, its restart policy must not undo the
            // stop (a restart waiting out its back-off is cancelled too).
            shared.store().set_manual_stop(&c.id).await?;
        }
        if c.is_queued() {
            // Queued, not begun: cancel the start (the starter takes the
            // lifecycle lock before it begins, and its begin requires the
            // start to be still queued).
            let live = shared.live(&c.id);
            let _lifecycle = live.lifecycle.lock().await;
            let cancelled = shared.store().cancel_queued_start(&c.id).await?;
            c = reread(shared, &c.id, reference).await?;
            if cancelled {
                return Ok(c);
            }
        }
        if c.state == State::Starting {
            // Let the start finish (it holds the lifecycle lock), then stop
            // what it started.
            drop(shared.live(&c.id).lifecycle.lock().await);
            c = reread(shared, &c.id, reference).await?;
        }
        if c.state.is_paused() {
            // Thawed first, as docker does: a frozen workload cannot act on
            // SIGTERM.
            c = shared.thaw_paused(c).await?;
        }
        if c.state.is_removing() {
            return Err(refused(&c));
        }
        if !c.state.can_stop() {
            return Ok(c); // nothing runs
        }
        let live = shared.live(&c.id);
        let _lifecycle = live.lifecycle.lock().await;
        // Its PID 1 as recorded now, under the lock (a restart by its policy
        // may have replaced the one read above).
        let now = reread(shared, &c.id, reference).await?;
        if !now.state.can_stop() {
            return Ok(now);
        }
        signals::signal_target(&now, Signal::TERM).await?;
        if !shared.wait_exited(&mut watch, &c.id, timeout).await? {
            let now = shared.store().get(&c.id).await?.unwrap_or(now);
            signals::signal_target(&now, Signal::KILL).await?;
            if !shared.wait_exited(&mut watch, &c.id, KILL_GRACE).await? {
                return Err(EngineError::Internal(format!(
                    "container {} did not exit after SIGKILL",
                    c.name
                )));
            }
        }
        // An auto-remove container may already be gone: report it as removed.
        Ok(shared.store().get(&c.id).await?.unwrap_or(Container {
            state: State::Removing,
            ..c
        }))
    }

    /// Stops the container (as `stop`), then starts it again; one that is
    /// not running is just started.
    pub async fn restart(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let c = self.stop(reference, timeout).await?;
        if c.state.is_removing() {
            return Err(refused(&c));
        }
        self.start(&c.id).await
    }

    /// Sends a signal (name or number) to the container's PID 1.
    pub async fn kill(&self, reference: &str, signal: &str) -> Result<()> {
        let sig = signals::requested(signal)?;
        let mut c = self.shared.resolve_here(reference).await?;
        if c.state.is_paused() {
            // Thawed first, as docker's stop is: the signal is acted on at once.
            c = self.shared.thaw_paused(c).await?;
        }
        if !c.state.can_kill() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not running (state: {})",
                c.name,
                c.state.as_str()
            )));
        }
        // As with docker, a kill by the user counts as a stop for restart
        // policies.
        self.shared.store().set_manual_stop(&c.id).await?;
        // A warm pool's container being adopted is signalled once its
        // workload runs (or its start failed).
        self.shared.live(&c.id).adoption_settled().await;
        // Its PID 1 as recorded now: no restart follows a manual stop.
        let c = reread(&self.shared, &c.id, reference).await?;
        signals::signal_target(&c, sig).await
    }

    /// Returns once the container has exited or failed.
    pub async fn wait(&self, reference: &str) -> Result<WaitResult> {
        let shared = &self.shared;
        let mut watch = shared.watch();
        let id = shared.resolve_here(reference).await?.id;
        let ended = |row: Option<&Container>| row.is_none_or(Container::has_ended);
        match shared
            .wait_until(&mut watch, &id, ended, None, std::future::pending())
            .await?
        {
            Waited::Met(Some(c)) => Ok(WaitResult::of(&c)),
            // Removed meanwhile (--rm): its exit travelled in an event.
            Waited::Met(None) => match watch.exit_event(&id) {
                Some(ev) => Ok(WaitResult::of_event(ev)),
                None => Err(EngineError::NotFound(format!(
                    "container {reference} was removed before it exited"
                ))),
            },
            Waited::TimedOut | Waited::Cancelled => unreachable!("no deadline, no cancel"),
        }
    }

    /// Renames a container (any state but being removed). Returns its id.
    pub async fn rename(&self, reference: &str, name: &str) -> Result<String> {
        crate::validate::names::container_name(name)?;
        let c = self.shared.resolve_here(reference).await?;
        // A start of it meanwhile would write its files with the old name.
        let live = self.shared.live(&c.id);
        let _op = live.lifecycle.lock().await;
        if !self.shared.store().rename(&c.id, name).await? {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is being removed",
                c.id
            )));
        }
        crate::network::dns::insert(
            &self.shared,
            &crate::model::Container {
                name: name.to_owned(),
                ..c.clone()
            },
        );
        // Its own /etc/hosts names it, and so do those of its network's
        // containers that do not ask the network's resolver.
        crate::network::hosts_renamed(&self.shared, &c).await;
        Ok(c.id)
    }

    /// Removes a container. Running ones are refused unless `force`.
    pub async fn remove(&self, reference: &str, force: bool) -> Result<String> {
        let c = self.shared.resolve_here(reference).await?;
        if c.state == State::Lost && c.node.as_deref() != self.shared.node() {
            // Its processes, files and cgroup are on a node that is down:
            // nothing here may touch them (its pids mean nothing on this
            // host). The row waits in `removing`; that node finishes the
            // removal when it comes back (reconciliation resumes it).
            if let Some((_, c)) = self.shared.store().set_removing(&c.id).await? {
                self.shared
                    .emit(&c, State::Removing, "removing", None, None);
            }
            return Ok(c.id);
        }
        cleanup::refuse_running(&c, force)?;
        cleanup::remove_by_id(&self.shared, &c.id, force).await?;
        Ok(c.id)
    }
}

/// How long StartContainer and Exec wait for a starting container (a large
/// image tarball is unpacked on its first use).
const START_WAIT: Duration = Duration::from_secs(300);

impl Shared {
    /// Waits until the container is no longer on its way to running (it
    /// runs, failed, exited, or its start was cancelled).
    pub(crate) async fn wait_started(
        &self,
        watch: &mut crate::engine::Watch,
        id: &str,
    ) -> Result<Container> {
        let deadline = Instant::now() + START_WAIT;
        let started = |row: Option<&Container>| row.is_none_or(|c| !c.is_pending_start());
        match self
            .wait_until(watch, id, started, Some(deadline), std::future::pending())
            .await?
        {
            Waited::Met(Some(c)) => Ok(*c),
            Waited::Met(None) => Err(EngineError::no_such_container(id)),
            Waited::TimedOut | Waited::Cancelled => Err(EngineError::DeadlineExceeded(format!(
                "container {} is still starting",
                ids::short(id)
            ))),
        }
    }

    /// Waits up to `timeout` until the container's end is recorded (or its
    /// row is gone). False on timeout.
    pub(crate) async fn wait_exited(
        &self,
        watch: &mut crate::engine::Watch,
        id: &str,
        timeout: Duration,
    ) -> Result<bool> {
        let exited = |row: Option<&Container>| row.is_none_or(Container::has_exit);
        let deadline = Some(Instant::now() + timeout);
        Ok(matches!(
            self.wait_until(watch, id, exited, deadline, std::future::pending())
                .await?,
            Waited::Met(_)
        ))
    }
}

/// The daemon's default limits for those a request leaves at 0; -1 asks for
/// none (stored as 0, "unlimited").
fn apply_defaults(spec: &mut CreateSpec, cfg: &crate::config::EngineConfig) {
    let pick = |asked: i64, default: i64| match asked {
        0 => default,
        -1 => 0,
        v => v,
    };
    spec.pids_limit = pick(spec.pids_limit, cfg.default_pids_limit);
    spec.memory_mb = pick(spec.memory_mb, cfg.default_memory_mb);
    if spec.disk_bytes == 0 {
        spec.disk_bytes = cfg.default_disk_bytes;
    }
}

/// FAILED_PRECONDITION: the verb is not allowed in the container's state.
fn refused(c: &Container) -> EngineError {
    EngineError::FailedPrecondition(if c.state.is_removing() {
        format!("container {} is being removed", c.name)
    } else if c.state.is_paused() {
        format!("container {} is paused: unpause it instead", c.name)
    } else {
        format!("container {} is {}", c.name, c.state.as_str())
    })
}

/// The row again (a lock was waited for); NOT_FOUND when it went meanwhile.
async fn reread(shared: &Shared, id: &str, reference: &str) -> Result<Container> {
    shared
        .store()
        .get(id)
        .await?
        .ok_or_else(|| EngineError::no_such_container(reference))
}

/// Checks the image reference (stats on the blocking pool, but for the
/// default image once it is built). A directory
/// image becomes the container's root: the host paths a bind mount may not
/// expose are refused here too.
pub(crate) async fn check_image(shared: &Shared, image: &str) -> Result<()> {
    // The default image, once built: nothing to check on disk.
    if image == quilt_runtime::image::DEFAULT_IMAGE && shared.images().default_built() {
        return Ok(());
    }
    let images = shared.images().clone();
    let image = image.to_owned();
    let data_dir = shared.cfg().data_dir.clone();
    let extra: Vec<std::path::PathBuf> = shared.cfg().sockets();
    tokio::task::spawn_blocking(move || -> Result<()> {
        if image.starts_with('/') && std::path::Path::new(&image).is_dir() {
            validate::host_path("image directory", &image, &data_dir, &extra)?;
        }
        images.validate(&image).map_err(EngineError::from)
    })
    .await?
}
