//! The background starter: takes container ids off the start queue and
//! launches them, at most `max_concurrent_starts` at a time. All blocking
//! work (image preparation, spawning the shim and waiting for its report)
//! runs on the blocking pool, never on the reactor.
use super::monitor;
use crate::engine::Queued;
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, State, now_ns};
use crate::support::env;
use quilt_runtime::spec::{ContainerConfig, EXIT_SETUP, StartReport};
use quilt_runtime::{cgroup, exitfile, launch, proc};
use std::os::fd::OwnedFd;
use std::sync::Arc;

pub(crate) fn spawn(shared: Arc<Shared>) {
    tokio::spawn(async move {
        loop {
            // A free slot first, then the queue's choice: who goes next is
            // decided as late as possible (see engine/queue.rs).
            let Ok(slot) = shared.start_slots().clone().acquire_owned().await else {
                break;
            };
            let Some(Queued {
                id, since, batch, ..
            }) = shared.queue().pop().await
            else {
                break;
            };
            if shared.is_closing() {
                // Left in `created` with autostart set: the next quiltd starts it.
                break;
            }
            let shared = shared.clone();
            tokio::spawn(async move {
                let taken = Taken(&shared, batch);
                run_start(&shared, &id, Some(since.elapsed())).await;
                drop(taken);
                drop(slot);
            });
        }
    });
}

/// A start taken off the queue: the queue is told of its end when this is
/// dropped, even by a panic (its count of starts under way decides how
/// many batch starts may begin, see `StartQueue::take`).
struct Taken<'a>(&'a Shared, bool);

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.0.queue().finished(self.1);
    }
}

/// A start of a stored container that passes the queue, where no
/// interactive start waits (`StartQueue::idle_slot` gave `slot`, one of
/// the starter's): made as the starter makes one, on a task of its own
/// that holds the slot.
pub(crate) fn start_now(shared: &Arc<Shared>, id: String, slot: crate::engine::Passed) {
    let shared = shared.clone();
    tokio::spawn(async move {
        // As a queued one at shutdown: left `created` with autostart set,
        // for the next quiltd.
        if !shared.is_closing() {
            run_start(&shared, &id, None).await;
        }
        drop(slot);
    });
}

/// One start to its end, counted (see `ended`).
async fn run_start(shared: &Arc<Shared>, id: &str, queued: Option<std::time::Duration>) {
    let began = std::time::Instant::now();
    let res = start_one(shared, id).await;
    ended(shared, id, &res, queued, began);
}

/// A start that `began` has ended: counted unless skipped (`queued`: its
/// wait in the queue, None when it took no turn there), and logged if it
/// failed.
fn ended(
    shared: &Shared,
    id: &str,
    res: &Result<Outcome>,
    queued: Option<std::time::Duration>,
    began: std::time::Instant,
) {
    if !matches!(res, Ok(Outcome::Skipped)) {
        let ran = matches!(res, Ok(Outcome::Running));
        shared
            .metrics()
            .start_finished(ran, queued, began.elapsed());
    }
    if let Err(e) = res {
        tracing::warn!(container = %id, error = %e, "start failed");
    }
}

/// What a successful launch leaves for the daemon.
pub(crate) struct Launched {
    pid: i32,
    shim_pid: i32,
    shim_start_time: u64,
    shim_fd: OwnedFd,
}

/// What became of one start taken off the queue.
enum Outcome {
    /// Nothing to do: removed, cancelled or started by someone else.
    Skipped,
    Running,
    Failed,
}

async fn start_one(shared: &Arc<Shared>, id: &str) -> Result<Outcome> {
    let live = shared.live(id);
    let op = live.lifecycle.lock().await;
    // A warm pool's container claimed at create: its network namespace
    // becomes this container's with the change to `starting` (one
    // statement), and it is adopted below or, if it died or is no longer
    // of the container's shape, ended and the container started cold in
    // that namespace. Its replacement is prepared once this start is over.
    let mut member = shared.pool().take(id);
    let _adopting = member.as_ref().map(|_| crate::engine::Adopting::new(&live));
    let _refill = member.as_ref().map(|_| shared.pool().refill_after());
    // A cold start's namespace is taken first, and recorded by the same
    // statement as well.
    let early = match &member {
        Some(_) => None,
        None => crate::network::early_slot(shared, id).await,
    };
    let slot = match (&member, &early) {
        (Some(m), _) => Some(m.slot.as_str()),
        (None, Some(e)) => Some(e.slot.as_str()),
        (None, None) => None,
    };
    let c = match shared.store().set_starting(id, slot).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            // Removed, started by someone else, or its queued start
            // cancelled meanwhile: the pooled container (or the namespace
            // taken for it) is not needed.
            if let Some(m) = member {
                shared.pool().discard_member(shared, m).await;
            }
            if let Some(e) = early {
                crate::network::give_back_early(shared, id, e).await;
            }
            return Ok(Outcome::Skipped);
        }
        Err(e) => {
            // The change may have been recorded all the same, with the
            // namespace taken for it: that stays the container's (its
            // start or removal takes it over), as a namespace its start
            // took does.
            let Some(m) = member.take() else {
                return Err(e);
            };
            // The change may have been recorded all the same (a failure
            // after the commit), with the slot: the namespace stays the
            // container's (its start or removal takes it over). Started
            // cold instead, without the pooled container.
            tracing::warn!(container = %id, error = %e, "recording the pooled namespace failed; starting cold");
            m.end().await;
            match shared.store().set_starting(id, None).await? {
                Some(c) => c,
                None => return Ok(Outcome::Skipped),
            }
        }
    };
    let recorded = early.map(|e| e.slot);
    begun(shared, op, c, member.map(Pooled::Member), recorded, None).await
}

/// What a start has of a warm pool's container.
enum Pooled {
    /// Its claimed container, to adopt.
    Member(crate::pool::Member),
    /// Its adoption, handed over with its gate closed while its row was
    /// written (inserted, or changed to `starting`).
    Handed(Box<crate::pool::Handed>),
}

impl Pooled {
    /// Ends the pooled container (a start that failed before adopting it;
    /// its namespace stays the row's).
    async fn end(self, shared: &Arc<Shared>) {
        match self {
            Pooled::Member(m) => m.end().await,
            Pooled::Handed(h) => crate::pool::abandon(shared, *h, false).await,
        }
    }
}

/// What a claimed start begins from (see `claimed_start`).
pub(crate) enum Claimed {
    /// A create with autostart: the row its insert adds.
    Create(Container),
    /// StartContainer of a `created` row, as the call read it.
    Start(Container),
}

impl Claimed {
    fn row(&self) -> &Container {
        match self {
            Claimed::Create(c) | Claimed::Start(c) => c,
        }
    }

    /// Whether an adoption readied from this row fits `c`, the row as its
    /// change to `starting` left it. An insert could only have added an
    /// address or id range (which a pool's shape has not). A row that was
    /// there already must be as it was read, but for what the change sets
    /// (and its last activity): a rename, an update or a network change
    /// made before the lock was taken gets a cold start from the row as it
    /// is.
    fn fits(&self, c: &Container) -> bool {
        match self {
            Claimed::Create(pre) => pre.net == c.net && pre.id_range == c.id_range,
            Claimed::Start(pre) => {
                let mut expected = pre.clone();
                expected.state = c.state;
                expected.autostart = c.autostart;
                expected.manual_stop = c.manual_stop;
                expected.restart_count = c.restart_count;
                expected.lifetime.expires_at_ns = c.lifetime.expires_at_ns;
                // Written without the lifecycle lock (an exec's or a log
                // follower's end), and not part of its config.
                expected.lifetime.last_activity_ns = c.lifetime.last_activity_ns;
                expected == *c
            }
        }
    }
}

/// A start of a warm pool's claimed container that begins at once, not
/// from the queue: its create (with autostart) or StartContainer changes
/// the row to `starting` here, on the start's own task, and the adoption
/// follows. An adoption is cheap and each pool bounds its claims, so it
/// takes no turn in the queue and no start slot (nor does the cold start
/// that follows should the pooled container be gone or refuse it); shutdown
/// waits for these starts as for the starter's. The task holds the
/// lifecycle lock from before the change until the start's end, as the
/// starter does, and runs to its end whatever becomes of the calling RPC:
/// a create or start that was sent is carried out.
///
/// `begin` is called under the lock (its lookups are made then, before the
/// adoption takes the claim) and makes the change (None: the row was not
/// in a state to begin). Meanwhile the adoption is readied from `claimed`
/// and handed over, gated: nothing of the adopter runs before the change
/// has committed, and a change that did not happen abandons it (or gives
/// back a claim not handed over). A create's row is then announced as
/// created. The answer comes back here; on Some the start goes on.
pub(crate) async fn claimed_start<B, F>(
    shared: &Arc<Shared>,
    id: &str,
    claimed: Claimed,
    begin: B,
) -> Result<Option<Container>>
where
    B: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = Result<Option<Container>>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let in_flight = shared.claimed_starts().enter();
    let shared = shared.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let live = shared.live(&id);
        let op = live.lifecycle.lock().await;
        let fresh = matches!(claimed, Claimed::Create(_));
        let (outcome, readied) = match shared.is_closing() {
            true => (
                Err(EngineError::Unavailable("quiltd is shutting down".into())),
                None,
            ),
            false => {
                let begin = begin();
                tokio::join!(begin, ready_claimed(&shared, &claimed))
            }
        };
        let outcome = match outcome {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(None),
            // A write that failed may have committed all the same (a
            // connection lost after its COMMIT): the row tells. Only a
            // start under this lock makes it `starting`.
            Err(e) => match shared.store().get(&id).await {
                Ok(Some(c)) if c.state == State::Starting => Ok(c),
                Ok(row) => Err(Some((e, row.is_none()))),
                // Whether it has a row is not known.
                Err(_) => Err(Some((e, false))),
            },
        };
        let c = match outcome {
            Ok(c) => c,
            Err(failed) => {
                // Nothing begun (None) leaves no row of a create either.
                let no_row = failed.as_ref().is_none_or(|(_, none)| *none);
                let answer = match failed {
                    None => Ok(None),
                    Some((e, _)) => Err(e),
                };
                // An adoption handed over is abandoned, which waits for its
                // shim: answered first (its pooled container does not go
                // back to the pool). A claim that does goes back before.
                let answer = match readied {
                    Some(Ok(_)) => {
                        let _ = tx.send(answer);
                        None
                    }
                    _ => Some((tx, answer)),
                };
                not_begun(&shared, &id, fresh, readied, no_row).await;
                drop(op);
                if fresh && no_row {
                    shared.forget(&id);
                }
                if let Some((tx, answer)) = answer {
                    let _ = tx.send(answer);
                }
                return;
            }
        };
        if fresh {
            // Its names resolve on its network from now on.
            crate::network::dns::insert(&shared, &c);
            shared.emit(&c, State::Created, "created", None, None);
        }
        let _ = tx.send(Ok(Some(c.clone())));
        // From here, as a queued start's launch phase.
        let began = std::time::Instant::now();
        let had_member = readied.is_some();
        let pooled = match readied {
            Some(Ok(handed)) if claimed.fits(&c) => Some(Pooled::Handed(Box::new(handed))),
            Some(Ok(handed)) => {
                tracing::info!(container = %id, "pooled container not adopted (the row differs from its config); starting cold");
                crate::pool::abandon(&shared, handed, false).await;
                None
            }
            Some(Err(e)) => {
                tracing::info!(container = %id, reason = %e, "pooled container not adopted; starting cold");
                None
            }
            None => shared.pool().take(&id).map(Pooled::Member),
        };
        let pooled_start = had_member || pooled.is_some();
        let _adopting = pooled_start.then(|| crate::engine::Adopting::new(&live));
        let _refill = pooled_start.then(|| shared.pool().refill_after());
        let res = begun(&shared, op, c, pooled, None, None).await;
        ended(&shared, &id, &res, None, began);
    });
    rx.await.unwrap_or_else(|_| {
        Err(EngineError::Internal(
            "the start's task ended before its row changed".into(),
        ))
    })
}

/// A create's cold start that begins at once instead of from the queue,
/// where no interactive start waits (`StartQueue::idle_slot` gave `slot`,
/// one of the starter's): its row is inserted as `starting`, with a
/// network namespace the pool has ready, in one statement (a queued start
/// makes two: the insert, then the change to `starting` that records the
/// namespace), and the start goes on as the starter's would, on a task of
/// its own that holds the slot and the lifecycle lock to the start's end,
/// whatever becomes of the calling RPC. Shutdown waits for it as for a
/// claimed start. The answer comes back once the row is in (or is not).
pub(crate) async fn direct_start(
    shared: &Arc<Shared>,
    mut c: Container,
    slot: crate::engine::Passed,
) -> Result<Container> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let in_flight = shared.claimed_starts().enter();
    let shared = shared.clone();
    tokio::spawn(async move {
        let (_in_flight, _slot) = (in_flight, slot);
        let id = c.id.clone();
        let live = shared.live(&id);
        let op = live.lifecycle.lock().await;
        if shared.is_closing() {
            drop(op);
            shared.forget(&id);
            let _ = tx.send(Err(EngineError::Unavailable(
                "quiltd is shutting down".into(),
            )));
            return;
        }
        let early = crate::network::ready_slot(&shared, &c);
        c.state = State::Starting;
        c.autostart = false;
        let slot = early.as_ref().map(|e| e.slot.clone());
        // Its shim runs meanwhile when nothing of its set-up needs the row
        // (on a task of its own: the answer waits for the insert only).
        let mut ahead = may_run_ahead(&c, slot.as_deref()).then(|| {
            let (shared, c, slot) = (shared.clone(), c.clone(), slot.clone());
            tokio::spawn(async move {
                run_cold(
                    &shared,
                    &c,
                    None,
                    slot.as_deref(),
                    true,
                    launch::start_gated,
                )
                .await
                .map(|(gated, config)| {
                    let refill = RefillLayer::after(&shared, &config);
                    (gated, config, refill)
                })
            })
        });
        let inserted = shared
            .store()
            .insert_full(&c, Some(&shared.cfg().userns_ids), slot.as_deref())
            .await;
        let c = match inserted {
            Ok((id_range, net)) => Container { id_range, net, ..c },
            // A write that failed may have committed all the same (a
            // connection lost after its COMMIT): the row tells.
            Err(e) => match shared.store().get(&id).await {
                Ok(Some(stored)) if stored.state == State::Starting => stored,
                row => {
                    let no_row = matches!(row, Ok(None));
                    // The answer does not wait for what follows (a shim
                    // run ahead ends its start first).
                    let _ = tx.send(Err(e));
                    if let Some(ahead) = ahead.take() {
                        abandon_ahead(&shared, ran(ahead).await, &id, no_row).await;
                    }
                    if no_row && let Some(early) = early {
                        crate::network::give_back_early(&shared, &id, early).await;
                    }
                    drop(op);
                    if no_row {
                        shared.forget(&id);
                    }
                    return;
                }
            },
        };
        // Its names resolve on its network from now on.
        crate::network::dns::insert(&shared, &c);
        shared.emit(&c, State::Created, "created", None, None);
        let _ = tx.send(Ok(c.clone()));
        let began = std::time::Instant::now();
        let ahead = match ahead {
            Some(ahead) => Some(ran(ahead).await),
            None => None,
        };
        let res = begun(&shared, op, c, None, early.map(|e| e.slot), ahead).await;
        ended(&shared, &id, &res, None, began);
    });
    rx.await.unwrap_or_else(|_| {
        Err(EngineError::Internal(
            "the start's task ended before its row was inserted".into(),
        ))
    })
}

/// A cold start's shim, run (gated: its workload waits for the row) while
/// the row is inserted, with the config it got and the refill of the
/// layer it took; or why it did not run.
type Ahead = std::result::Result<(launch::Gated, ContainerConfig, RefillLayer), (i32, String)>;

/// The refill of the layers a gated start took one of (see `run_shim`),
/// asked for once it is dropped: after the start, or its abandon.
struct RefillLayer {
    shared: Arc<Shared>,
    key: Option<(std::path::PathBuf, bool)>,
}

impl RefillLayer {
    fn after(shared: &Arc<Shared>, config: &ContainerConfig) -> RefillLayer {
        RefillLayer {
            shared: shared.clone(),
            key: layer_key(shared, config),
        }
    }
}

impl Drop for RefillLayer {
    fn drop(&mut self) {
        if let Some((root, volatile)) = self.key.take() {
            self.shared.layers().refill(&root, volatile);
        }
    }
}

/// The kind of layer made ahead that `config`'s first start takes, if any
/// (`support::layers`): not for a user namespace (its shim makes an
/// idmapped root), and only for the store's images (a host directory run
/// as an image is not held by mounts nobody sees).
fn layer_key(shared: &Shared, config: &ContainerConfig) -> Option<(std::path::PathBuf, bool)> {
    let own_image = config.image_rootfs.starts_with(shared.images().root());
    (config.security.idmap.is_none() && own_image)
        .then(|| (config.image_rootfs.clone(), config.volatile_rootfs))
}

/// Whether nothing of `c`'s cold start needs its row before the workload
/// runs, so that its shim may run while the row is inserted: no address
/// or ports to take on a bridge, no id range for a user namespace, no
/// volume to record, and with a network namespace of its own, one taken
/// already (`slot`, recorded by the insert).
fn may_run_ahead(c: &Container, slot: Option<&str>) -> bool {
    use crate::model::{Network, UsernsMode};
    let net = match c.network {
        Network::None => slot.is_some(),
        Network::Host => true,
        Network::Bridge | Network::Container => false,
    };
    net && c.security.userns != UsernsMode::Private && !c.uses_volumes()
}

/// A cold start up to its shim's run, which `run` makes (a start, or one
/// gated until its row is in: see `direct_start`): its config (`config`,
/// or made now), its network (`recorded`: see `begun`), then the image, a
/// layer made ahead and the network's files with the run itself, on one
/// trip to the blocking pool. Returns what `run` returned and the config
/// the shim got, or why the container did not start. `gated`: `run`
/// returns before the workload runs (see `run_shim`).
async fn run_cold<T, F>(
    shared: &Arc<Shared>,
    c: &Container,
    config: Option<ContainerConfig>,
    recorded: Option<&str>,
    gated: bool,
    run: F,
) -> std::result::Result<(T, ContainerConfig), (i32, String)>
where
    T: Send + 'static,
    F: FnOnce(
            &std::path::Path,
            &ContainerConfig,
            Option<OwnedFd>,
        ) -> std::result::Result<T, launch::LaunchError>
        + Send
        + 'static,
{
    let mut config = match config {
        Some(config) => config,
        None => runtime_config(shared, c)
            .await
            .map_err(|e| (EXIT_SETUP, e.to_string()))?,
    };
    let p = crate::network::prepare(shared, c, recorded)
        .await
        .map_err(|e| (EXIT_SETUP, format!("network: {e}")))?;
    config.netns = p.netns;
    config.mounts.extend(p.mounts);
    let shim = shared.cfg().shim_path.clone();
    let (image, on) = (c.image.clone(), shared.clone());
    tokio::task::spawn_blocking(move || run_shim(&on, &shim, &image, config, p.files, gated, run))
        .await
        .unwrap_or_else(|e| Err((EXIT_SETUP, e.to_string())))
}

/// What a shim run ahead of its row (see `direct_start`) came to.
async fn ran(task: tokio::task::JoinHandle<Ahead>) -> Ahead {
    task.await
        .unwrap_or_else(|e| Err((EXIT_SETUP, format!("running the shim ahead: {e}"))))
}

/// A shim run ahead of a row that was not inserted: its workload never
/// runs, and `Gated::abandon` removes the cgroup and directory its start
/// made. The directory goes here too when `no_row` (the shim may never
/// have run).
async fn abandon_ahead(shared: &Arc<Shared>, ahead: Ahead, id: &str, no_row: bool) {
    let dir = shared.cfg().container_dir(id);
    let id = id.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok((gated, _, _refill)) = ahead
            && let Err(e) = gated.abandon()
        {
            tracing::warn!(container = %id, error = %e, "abandoning a start run ahead of its row");
        }
        if no_row
            && let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the directory of a start that has no row");
        }
    })
    .await;
}

/// A claimed start that did not begin: what its claim and pooled container
/// become. `fresh`: a create's (then `no_row`: its insert left no row);
/// `readied`: the adoption readied beside its change.
async fn not_begun(
    shared: &Arc<Shared>,
    id: &str,
    fresh: bool,
    readied: Option<std::result::Result<crate::pool::Handed, String>>,
    no_row: bool,
) {
    // Its pooled container was ended: another is prepared.
    let _refill = matches!(readied, Some(Err(_))).then(|| shared.pool().refill_after());
    match readied {
        // Its workload never runs; a create that left no row gives its
        // namespace back too (no row has it).
        Some(Ok(handed)) => crate::pool::abandon(shared, handed, fresh && no_row).await,
        // Its pooled container was ended; a create that left no row gives
        // its namespace back too (no row has it).
        Some(Err(_)) if fresh && no_row => {
            let net = shared.net().clone();
            let id = id.to_owned();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = net.release(&id, true) {
                    tracing::warn!(container = %id, error = %e, "cannot release a pooled container's namespace");
                }
            })
            .await;
        }
        _ => {}
    }
    if !fresh {
        // A start's claim, unless readied, stays for the row's next start
        // or its removal. Readied, the namespace stays the row's: its next
        // start is a cold one in it.
        return;
    }
    if no_row {
        // The claim goes back to its pool.
        shared.pool().unclaim(id);
    } else if let Some(m) = shared.pool().take(id) {
        // Whether it has a row is not known: the pooled container is
        // ended, never handed to another create; its namespace stays for
        // the row, if any (a restart starts such a row cold in it).
        m.end().await;
    }
}

/// Readies the adoption of the container claimed for `claimed`'s row (a
/// create's, not yet committed, or one changing to `starting`) and hands
/// it over with its gate closed. None: no claim, or its config cannot be
/// made (the claim stays, and the start reports why); Some(Err): not
/// adoptable, and the pooled container is gone.
async fn ready_claimed(
    shared: &Arc<Shared>,
    claimed: &Claimed,
) -> Option<std::result::Result<crate::pool::Handed, String>> {
    let c = claimed.row();
    let member = shared.pool().take(&c.id)?;
    // Names of its own are written into the pooled container's network
    // files, which must not change before a create's row exists (a create
    // that fails gives the container back to its pool): adopted after the
    // insert instead. A start's row exists: a start that does not begin
    // ends the pooled container instead.
    if matches!(claimed, Claimed::Create(_))
        && (c.name != member.name || c.hostname != member.hostname)
    {
        shared.pool().untake(member);
        return None;
    }
    match runtime_config(shared, c).await {
        Ok(config) => Some(
            match crate::pool::ready(shared, c, member, config, true).await {
                Ok(ready) => crate::pool::hand_over_gated(ready).await,
                Err(e) => Err(e),
            },
        ),
        Err(_) => {
            shared.pool().untake(member);
            None
        }
    }
}

/// The rest of a start once its row says `starting` (`c`, as the change
/// left it), under the lifecycle lock `op`; `pooled`: the warm pool's
/// container it adopts, if any; `recorded`: the network namespace the
/// change recorded for a cold start (see `network::early_slot`); `ahead`:
/// a cold start's shim run while the row was inserted (see
/// `direct_start`), let go here.
async fn begun(
    shared: &Arc<Shared>,
    op: tokio::sync::MutexGuard<'_, ()>,
    c: Container,
    pooled: Option<Pooled>,
    recorded: Option<String>,
    ahead: Option<Ahead>,
) -> Result<Outcome> {
    let id = c.id.as_str();
    shared.emit(&c, State::Starting, "starting", None, None);
    let c = &c;
    let failed = |reason: String| async move {
        monitor::record_failure(shared, c, EXIT_SETUP, &reason)
            .await
            .map(|()| Outcome::Failed)
    };
    // A failed start ends the pooled processes before another operation
    // may take the container (and its namespace).
    if let Err(e) = shared.store().volumes_ensure(c).await {
        if let Some(p) = pooled {
            p.end(shared).await;
        }
        drop(op);
        return failed(format!("recreating its volumes: {e}")).await;
    }
    // A cold start's config, made when it is needed (a readied adoption
    // has its own).
    let mut config = None;
    let adopted = match pooled {
        Some(Pooled::Handed(handed)) => Some(Ok(crate::pool::go(shared, c, *handed).await)),
        Some(Pooled::Member(member)) => {
            let made = match runtime_config(shared, c).await {
                Ok(made) => made,
                Err(e) => {
                    member.end().await;
                    drop(op);
                    return failed(e.to_string()).await;
                }
            };
            config = Some(made.clone());
            Some(crate::pool::adopt(shared, c, member, made).await)
        }
        None => None,
    };
    let adopted = match adopted {
        Some(Ok(adopted)) => Some(adopted),
        Some(Err(e)) => {
            tracing::info!(container = %id, reason = %e, "pooled container not adopted; starting cold");
            None
        }
        None => None,
    };
    // An adoption changed the row to running while its workload started.
    let (outcome, recorded) = match (adopted, ahead) {
        (Some(a), _) => (a.started, a.recorded),
        // Its shim waits at the gate for the row, which is in now.
        (None, Some(Ok((gated, config, refill)))) => {
            let started = launched(gated.go().await, config).await;
            drop(refill);
            (started, None)
        }
        (None, Some(Err(why))) => (Err(why), None),
        (None, None) => {
            let cold = match run_cold(shared, c, config, recorded.as_deref(), false, launch::start)
                .await
            {
                Ok((report, config)) => launched(Ok(report), config).await,
                Err(why) => Err(why),
            };
            (cold, None)
        }
    };

    match outcome {
        Ok(l) => {
            let stored = match recorded {
                Some(recorded) => recorded,
                None => {
                    shared
                        .store()
                        .set_running(id, l.pid, l.shim_pid, l.shim_start_time, now_ns())
                        .await
                }
            };
            if let Err(e) = stored {
                // It runs but is not recorded as running: end it, record why
                // (best effort), and let the monitor reap the shim.
                let spec = shared.cgroup_spec(c);
                if let Ok(Err(ce)) =
                    tokio::task::spawn_blocking(move || cgroup::remove(&spec)).await
                {
                    tracing::warn!(container = %id, error = %ce, "cannot end a container not recorded as running");
                }
                drop(op);
                let why = format!("could not record the container as running: {e}");
                if let Err(fe) = monitor::record_failure(shared, c, EXIT_SETUP, &why).await {
                    tracing::warn!(container = %id, error = %fe, "cannot record the failed start");
                }
                monitor::watch(shared.clone(), c.id.clone(), l.shim_pid, l.shim_fd);
                return Err(e);
            }
            if matches!(stored, Ok(false))
                && let Ok(Some(now)) = shared.store().get(id).await
                && now.node.is_some()
                && now.node.as_deref() != shared.node()
            {
                // Placed on another node while this one was starting it (its
                // lease ran out): this copy is ended; the monitor reaps it.
                let spec = shared.cgroup_spec(c);
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || cgroup::remove(&spec)).await
                {
                    tracing::warn!(container = %id, error = %e, "cannot end a copy started here of a container placed elsewhere");
                }
                drop(op);
                monitor::watch(shared.clone(), c.id.clone(), l.shim_pid, l.shim_fd);
                return Ok(Outcome::Skipped);
            }
            shared.emit(c, State::Running, "running", None, None);
            drop(op);
            monitor::watch(shared.clone(), c.id.clone(), l.shim_pid, l.shim_fd);
            Ok(Outcome::Running)
        }
        Err((code, reason)) => {
            if let Some(Err(e)) = &recorded {
                tracing::warn!(container = %id, error = %e, "recording an adopted container as running failed");
            }
            // Recorded before the lock goes: an adoption's row says running
            // meanwhile, and a kill or exec that waited for this start
            // (`Live::adoption_settled`) reads it again once it is free.
            let failed = monitor::record_failure(shared, c, code, &reason).await;
            drop(op);
            failed?;
            Ok(Outcome::Failed)
        }
    }
}

/// What the shim is told to run for `c`, but its image root, network
/// namespace and the network's files (the start path adds them).
pub(crate) async fn runtime_config(shared: &Arc<Shared>, c: &Container) -> Result<ContainerConfig> {
    let config = ContainerConfig {
        id: c.id.clone(),
        dir: shared.cfg().container_dir(&c.id),
        image_rootfs: Default::default(),
        // Its writable layer goes when it exits (`--rm`): never synced.
        volatile_rootfs: c.auto_remove,
        argv: c.command.clone(),
        env: env::build(c, &[]),
        workdir: c.working_dir.clone(),
        hostname: c.hostname.clone(),
        host_network: c.network == crate::model::Network::Host,
        netns: None,
        init: c.init,
        cgroup: shared.cgroup_spec(c),
        log_max_bytes: Some(shared.cfg().log_max_bytes),
        log_max_files: Some(shared.cfg().log_max_files),
        mounts: crate::api::volumes::runtime_mounts(shared.cfg(), &c.mounts),
        security: Default::default(),
        stdio: c.stdio.runtime(),
        mount_ns: shared.mount_template(),
        // Only loopback in its namespace: the shared sysfs shows what its
        // own would.
        shared_sysfs: match c.network {
            crate::model::Network::None => shared.shared_sysfs(),
            _ => None,
        },
        pooled: false,
        gated: false,
    };
    let security = match crate::security::ready_config(shared, c)? {
        Some(security) => security,
        None => {
            let (shared2, c2) = (shared.clone(), c.clone());
            tokio::task::spawn_blocking(move || crate::security::runtime_config(&shared2, &c2))
                .await??
        }
    };
    let mut config = ContainerConfig { security, ..config };
    fit_to_security(&mut config);
    Ok(config)
}

/// What the container's security changes in its config: on v1 one that
/// may mount a cgroup hierarchy itself (a user namespace, CAP_SYS_ADMIN)
/// gets a memory cgroup of its own (see `CgroupSpec::own_memory`); one that may
/// add network devices (CAP_NET_ADMIN) mounts a sysfs of its own, which
/// shows them.
fn fit_to_security(config: &mut ContainerConfig) {
    use quilt_runtime::capability::Capability;
    let has = |cap: Capability| {
        config
            .security
            .capabilities
            .as_ref()
            .is_some_and(|caps| caps.iter().any(|&n| u32::from(n) == cap.number()))
    };
    // On v2 the namespace's root is the container's own cgroup either way.
    let v1 = matches!(
        config.cgroup.layout,
        quilt_runtime::spec::CgroupLayout::V1 { .. }
    );
    if v1 && (config.security.idmap.is_some() || has(Capability::SysAdmin)) {
        config.cgroup.own_memory = true;
    }
    if has(Capability::NetAdmin) {
        config.shared_sysfs = None;
    }
}

/// Prepares the image, writes the network's `files` (None: none to
/// write) and runs the shim as `run` does; returns what `run` returned
/// and the config the shim got, or Err((exit code, reason)) when the
/// container could not start. A first start takes a writable layer made
/// ahead when there is one (see `support::layers`), first: its directory
/// becomes the container's, with the files a start makes there already
/// made. A container in a user namespace has its root made by its shim
/// (idmapped). `gated`: `run` returns before the workload runs (its gate
/// closed), and the caller asks for the layer's refill (`RefillLayer`).
/// Blocking.
fn run_shim<T>(
    shared: &Shared,
    shim: &std::path::Path,
    image: &str,
    mut config: ContainerConfig,
    files: Option<crate::network::HostsFiles>,
    gated: bool,
    run: impl FnOnce(
        &std::path::Path,
        &ContainerConfig,
        Option<std::os::fd::OwnedFd>,
    ) -> std::result::Result<T, launch::LaunchError>,
) -> std::result::Result<(T, ContainerConfig), (i32, String)> {
    let setup = |e: &dyn std::fmt::Display| (EXIT_SETUP, e.to_string());
    config.image_rootfs = shared.images().prepare(image).map_err(|e| setup(&e))?;
    let layers = shared.layers();
    let key = layer_key(shared, &config);
    let root = match &key {
        Some((lower, volatile)) => layers.take(lower, *volatile, &config.dir, shared.metrics()),
        None => None,
    };
    let ran = (|| {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| setup(&format!("create {}: {e}", config.dir.display())))?;
        if let Some(files) = files {
            let mounts = files
                .write()
                .map_err(|e| (EXIT_SETUP, format!("network: {e}")))?;
            config.mounts.extend(mounts);
        }
        exitfile::clear(&config.dir).map_err(|e| setup(&format!("clear exit status: {e}")))?;
        crate::api::volumes::ensure_sources(&config.mounts).map_err(|e| setup(&e))?;
        run(shim, &config, root).map_err(|e| setup(&e))
    })();
    // Once its container runs, not while it starts (see `support::layers`):
    // a gated start's runs once its gate opens, after this returns; its
    // caller asks then (`RefillLayer`).
    if let Some((lower, volatile)) = key
        && (!gated || ran.is_err())
    {
        layers.refill(&lower, volatile);
    }
    Ok((ran?, config))
}

/// A supervisor that reported Started but whose pidfd could not be opened.
type Unwatched = (i32, std::io::Error);

/// What a shim's report of a start leaves: the supervisor to watch
/// (`Ok(Ok)`), one that could not be watched (`Ok(Err)`: see [`unwatched`]),
/// or why the container did not start. Never blocks.
fn watch(
    report: StartReport,
) -> std::result::Result<std::result::Result<Launched, Unwatched>, (i32, String)> {
    match report {
        StartReport::Failed { exit_code, message } => Err((exit_code, message)),
        StartReport::Prepared { .. } => Err((
            EXIT_SETUP,
            "the shim prepared instead of starting".to_string(),
        )),
        StartReport::Started {
            shim_pid,
            pid,
            shim_start_time,
        } => Ok(
            // The shim is our child until we reap it, so its pid cannot be
            // reused here.
            match proc::pidfd_open(shim_pid) {
                Ok(shim_fd) => Ok(Launched {
                    pid,
                    shim_pid,
                    shim_start_time,
                    shim_fd,
                }),
                Err(e) => Err((shim_pid, e)),
            },
        ),
    }
}

/// Ends a supervisor nothing could watch, rather than leave it
/// unmonitored (the workload dies with its shim), and removes its cgroup.
/// Blocking.
fn unwatched(config: &ContainerConfig, (shim_pid, e): Unwatched) -> (i32, String) {
    proc::kill_and_reap_child(shim_pid);
    if let Err(ce) = cgroup::remove(&config.cgroup) {
        tracing::warn!(cgroup = %config.cgroup.path, error = %ce, "cannot remove the cgroup of an unwatched start");
    }
    (EXIT_SETUP, format!("pidfd of supervisor: {e}"))
}

/// What a shim's report of a start (or why it could not be read) leaves:
/// the supervisor to watch, or why the container did not start. On the
/// async runtime: only a supervisor that cannot be watched (ending it
/// blocks) is handled on the blocking pool.
pub(crate) async fn launched(
    report: std::result::Result<StartReport, launch::LaunchError>,
    config: ContainerConfig,
) -> std::result::Result<Launched, (i32, String)> {
    let report = report.map_err(|e| (EXIT_SETUP, e.to_string()))?;
    match watch(report)? {
        Ok(l) => Ok(l),
        Err(u) => Err(tokio::task::spawn_blocking(move || unwatched(&config, u))
            .await
            .unwrap_or_else(|e| (EXIT_SETUP, e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CreateSpec;

    fn created(id: &str) -> Container {
        let mut spec = CreateSpec::new("default");
        spec.command = vec!["true".into()];
        Container::new(id.into(), spec, "default".into(), Vec::new(), 1)
    }

    /// The row as `begin_claimed_start` leaves it.
    fn begun(pre: &Container) -> Container {
        let mut c = pre.clone();
        c.state = State::Starting;
        c.autostart = false;
        c.manual_stop = false;
        c.restart_count = 0;
        c.lifetime.expires_at_ns = None;
        c
    }

    #[test]
    fn a_started_row_fits_its_adoption_only_as_it_was_read() {
        let mut pre = created("a");
        pre.autostart = true;
        pre.lifetime.expires_at_ns = Some(5);
        let claimed = Claimed::Start(pre.clone());
        assert!(claimed.fits(&begun(&pre)));
        // Activity is recorded without the lifecycle lock: not a change.
        let mut c = begun(&pre);
        c.lifetime.last_activity_ns = Some(9);
        assert!(claimed.fits(&c));
        // Anything the adopted config is made of is.
        let changes: [fn(&mut Container); 5] = [
            |c| c.name = "renamed".into(),
            |c| c.hostname = "other".into(),
            |c| c.memory_mb = 64,
            |c| c.env = vec!["A=1".into()],
            |c| c.security.read_only = true,
        ];
        for change in changes {
            let mut c = begun(&pre);
            change(&mut c);
            assert!(!claimed.fits(&c), "{c:?}");
        }
    }

    #[test]
    fn a_created_row_fits_its_adoption_unless_the_insert_added_to_it() {
        let pre = created("b");
        let claimed = Claimed::Create(pre.clone());
        let mut c = pre.clone();
        c.state = State::Starting;
        assert!(claimed.fits(&c));
        c.id_range = Some(crate::model::IdRange {
            host_id: 100_000,
            size: 65_536,
        });
        assert!(!claimed.fits(&c));
    }
}
