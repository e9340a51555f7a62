//! CreateContainer, StartContainer, Get/List, Stop, Kill and Wait.
use crate::engine::{Engine, Inner};
use crate::error::{EngineError, Result};
use crate::ids;
use crate::model::{Container, CreateSpec, Event, ExitInfo, ListFilter, State, now_ns};
use crate::signals;
use crate::validate;
use quilt_runtime::signal::Signal;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

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
    pub(crate) fn of(c: &Container) -> WaitResult {
        WaitResult {
            id: c.id.clone(),
            state: ended_state(c.state, c.failure_reason.is_some()),
            exit: c.exit.clone(),
            failure_reason: c.failure_reason.clone(),
        }
    }

    fn of_event(ev: &Event) -> WaitResult {
        WaitResult {
            id: ev.container_id.clone(),
            state: ended_state(ev.state, ev.failure_reason.is_some()),
            exit: ev.exit.clone(),
            failure_reason: ev.failure_reason.clone(),
        }
    }
}

fn ended_state(s: State, failed: bool) -> State {
    match s {
        State::Removing if failed => State::Failed,
        State::Removing => State::Exited,
        s => s,
    }
}

/// The container has ended: finished, or being removed with its exit recorded.
pub(crate) fn has_ended(c: &Container) -> bool {
    c.state.is_finished() || (c.state == State::Removing && c.exit.is_some())
}

/// How long a SIGKILLed container may take to be recorded as exited.
const KILL_GRACE: Duration = Duration::from_secs(10);

impl Engine {
    /// Validates, stores the row in one transaction and, unless asked not
    /// to, queues the start. Returns as soon as the row is committed.
    pub async fn create(&self, spec: CreateSpec) -> Result<Container> {
        let inner = &self.inner;
        if inner.is_closing() {
            return Err(EngineError::Unavailable("quiltd is shutting down".into()));
        }
        validate::create_spec(&spec, inner.host_cpus)?;
        let mounts = crate::volumes::check_mounts(inner, &spec.mounts).await?;
        // A stored image's name is recorded as its id.
        let image = crate::images::resolve_for_create(inner, &spec.image).await?;
        check_image(inner, &image).await?;
        let id = ids::new_id();
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| ids::short(&id).to_owned());
        let c = Container {
            hostname: spec.hostname.clone().unwrap_or_else(|| name.clone()),
            name,
            image,
            command: spec.command,
            env: spec.env,
            working_dir: spec.working_dir.unwrap_or_else(|| "/".into()),
            memory_mb: spec.memory_mb,
            cpus: spec.cpus,
            pids_limit: spec.pids_limit,
            network: spec.network,
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
            created_at_ns: now_ns(),
            started_at_ns: None,
            finished_at_ns: None,
            mounts,
            id,
        };
        // Reserve the queue slot first: a full queue is refused before any row exists.
        let permit = if spec.start {
            Some(reserve_start(inner)?)
        } else {
            None
        };
        inner.store.insert(&c).await?;
        inner.emit(&c, State::Created, "created", None, None);
        if let Some(p) = permit {
            p.send(c.id.clone());
        }
        Ok(c)
    }

    /// Starts a CREATED container, or again one that has EXITED or FAILED.
    /// Already running: a no-op, as with docker.
    pub async fn start(&self, reference: &str) -> Result<Container> {
        let inner = &self.inner;
        let c = inner.store.resolve(reference).await?;
        match c.state {
            State::Running | State::Starting => return Ok(c),
            State::Removing => {
                return Err(EngineError::FailedPrecondition(format!(
                    "container {} is being removed",
                    c.name
                )));
            }
            State::Created | State::Exited | State::Failed => {}
        }
        let mut events = inner.events.subscribe();
        {
            let live = inner.live(&c.id);
            let _op = live.op.lock().await;
            let permit = reserve_start(inner)?;
            if !inner.store.reset_for_start(&c.id).await? {
                return Err(EngineError::FailedPrecondition(format!(
                    "container {} changed state; try again",
                    c.name
                )));
            }
            permit.send(c.id.clone());
        }
        let c = wait_started(inner, &c.id, &mut events).await?;
        if c.state == State::Failed {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} failed to start: {}",
                c.name,
                c.failure_reason.as_deref().unwrap_or("unknown reason")
            )));
        }
        Ok(c)
    }

    pub async fn get(&self, reference: &str) -> Result<Container> {
        self.inner.store.resolve(reference).await
    }

    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Container>> {
        self.inner.store.list(filter).await
    }

    /// SIGTERM, up to `timeout` for the workload to exit, then SIGKILL.
    /// Returns the container as recorded after it exited.
    pub async fn stop(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let inner = &self.inner;
        let mut events = inner.events.subscribe();
        let mut c = inner.store.resolve(reference).await?;
        if c.state == State::Created && c.autostart {
            // Queued, not begun: cancel the start (the starter takes the op
            // lock before it begins, and its begin requires autostart).
            let live = inner.live(&c.id);
            let _op = live.op.lock().await;
            if inner.store.cancel_queued_start(&c.id).await? {
                return inner
                    .store
                    .get(&c.id)
                    .await?
                    .ok_or_else(|| EngineError::no_such_container(reference));
            }
            c = inner
                .store
                .get(&c.id)
                .await?
                .ok_or_else(|| EngineError::no_such_container(reference))?;
        }
        if c.state == State::Starting {
            // Let the start finish (it holds the op lock), then stop what it started.
            let live = inner.live(&c.id);
            drop(live.op.lock().await);
            c = inner
                .store
                .get(&c.id)
                .await?
                .ok_or_else(|| EngineError::no_such_container(reference))?;
        }
        match c.state {
            State::Running => {}
            State::Removing => {
                return Err(EngineError::FailedPrecondition(format!(
                    "container {} is being removed",
                    c.name
                )));
            }
            _ => return Ok(c),
        }
        let live = inner.live(&c.id);
        let _op = live.op.lock().await;
        signal_target(inner, &c, Signal::TERM)?;
        if !wait_finished(inner, &c.id, &mut events, timeout).await? {
            signal_target(inner, &c, Signal::KILL)?;
            if !wait_finished(inner, &c.id, &mut events, KILL_GRACE).await? {
                return Err(EngineError::Internal(format!(
                    "container {} did not exit after SIGKILL",
                    c.name
                )));
            }
        }
        // An auto-remove container may already be gone: report it as removed.
        Ok(inner.store.get(&c.id).await?.unwrap_or(Container {
            state: State::Removing,
            ..c
        }))
    }

    /// Sends a signal (name or number) to the container's PID 1.
    pub async fn kill(&self, reference: &str, signal: &str) -> Result<()> {
        let sig = signals::requested(signal)?;
        let c = self.inner.store.resolve(reference).await?;
        if c.state != State::Running {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not running (state: {})",
                c.name,
                c.state.as_str()
            )));
        }
        signal_target(&self.inner, &c, sig)
    }

    /// Returns once the container has exited or failed.
    pub async fn wait(&self, reference: &str) -> Result<WaitResult> {
        let inner = &self.inner;
        let mut events = inner.events.subscribe();
        let id = inner.store.resolve(reference).await?.id;
        loop {
            match inner.store.get(&id).await? {
                Some(c) if has_ended(&c) => return Ok(WaitResult::of(&c)),
                Some(_) => {}
                None => {
                    // Removed meanwhile (--rm): its exit travelled in the events
                    // received since we subscribed.
                    while let Ok(ev) = events.try_recv() {
                        if ev.container_id == id && ev.exit.is_some() {
                            return Ok(WaitResult::of_event(&ev));
                        }
                    }
                    return Err(EngineError::NotFound(format!(
                        "container {reference} was removed before it exited"
                    )));
                }
            }
            loop {
                match events.recv().await {
                    Ok(ev) if ev.container_id == id && ev.exit.is_some() => {
                        return Ok(WaitResult::of_event(&ev));
                    }
                    Ok(ev) if ev.container_id == id => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => {
                        return Err(EngineError::Unavailable("quiltd is shutting down".into()));
                    }
                }
            }
        }
    }
}

/// How long StartContainer and Exec wait for a starting container (a large
/// image tarball is unpacked on its first use).
const START_WAIT: Duration = Duration::from_secs(300);

/// Waits (event driven) until the container has left CREATED/STARTING.
pub(crate) async fn wait_started(
    inner: &Inner,
    id: &str,
    events: &mut broadcast::Receiver<crate::model::Event>,
) -> Result<Container> {
    let deadline = Instant::now() + START_WAIT;
    loop {
        let c = inner
            .store
            .get(id)
            .await?
            .ok_or_else(|| EngineError::no_such_container(id))?;
        if !matches!(c.state, State::Created | State::Starting)
            || (c.state == State::Created && !c.autostart)
        {
            return Ok(c);
        }
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => {
                    return Err(EngineError::DeadlineExceeded(format!(
                        "container {} is still starting",
                        c.name
                    )));
                }
                Ok(Ok(ev)) if ev.container_id == id => break,
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Lagged(_))) => break,
                Ok(Err(RecvError::Closed)) => {
                    return Err(EngineError::Unavailable("quiltd is shutting down".into()));
                }
            }
        }
    }
}

fn reserve_start(inner: &Inner) -> Result<tokio::sync::mpsc::Permit<'_, String>> {
    inner.start_tx.try_reserve().map_err(|e| match e {
        TrySendError::Full(()) => EngineError::ResourceExhausted(format!(
            "the start queue is full ({} containers waiting to start); retry later",
            inner.cfg.start_queue_capacity
        )),
        TrySendError::Closed(()) => EngineError::Unavailable("quiltd is shutting down".into()),
    })
}

/// Checks the image reference (stats on the blocking pool). A directory
/// image becomes the container's root: the host paths a bind mount may not
/// expose are refused here too.
async fn check_image(inner: &Inner, image: &str) -> Result<()> {
    let images = inner.images.clone();
    let image = image.to_owned();
    let data_dir = inner.cfg.data_dir.clone();
    let extra: Vec<std::path::PathBuf> = inner.cfg.socket_path.iter().cloned().collect();
    tokio::task::spawn_blocking(move || -> Result<()> {
        if image.starts_with('/') && std::path::Path::new(&image).is_dir() {
            crate::mounts::host_path("image directory", &image, &data_dir, &extra)?;
        }
        images.validate(&image).map_err(EngineError::from)
    })
    .await?
}

/// Signals the container's PID 1 through its pidfd (immune to pid reuse).
pub(crate) fn signal_target(inner: &Inner, c: &Container, sig: Signal) -> Result<()> {
    let Some(fd) = inner.live(&c.id).target() else {
        // Exited in the meantime: nothing to signal.
        return Ok(());
    };
    signals::send(&fd, sig, &format!("container {}", c.name))
}

/// Waits (event driven) until the container is recorded as finished, removed
/// or being removed with its exit recorded. False on timeout.
pub(crate) async fn wait_finished(
    inner: &Inner,
    id: &str,
    events: &mut broadcast::Receiver<crate::model::Event>,
    timeout: Duration,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        match inner.store.get(id).await? {
            None => return Ok(true),
            Some(c) if c.state.is_finished() || c.exit.is_some() => return Ok(true),
            Some(_) => {}
        }
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => return Ok(false),
                Ok(Ok(ev)) if ev.container_id == id => break,
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Lagged(_))) => break,
                Ok(Err(RecvError::Closed)) => return Ok(false),
            }
        }
    }
}
