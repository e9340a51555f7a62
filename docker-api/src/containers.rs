//! The container verbs: list, inspect, start, stop, restart, kill, wait,
//! remove and prune, each one engine call (docker's 304 where the engine's
//! verb would be a no-op).
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::inspect;
use crate::query::{self, Query};
use crate::server::DockerApi;
use http::StatusCode;
use quilt_sync_engine::{Container, EngineError, ListFilter, State, WaitResult};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// docker's default stop timeout, and the longest accepted.
const DEFAULT_STOP: u64 = 10;
const MAX_STOP: u64 = 3600;
/// How long a kill with SIGKILL waits for the exit to be recorded.
const KILL_WAIT: Duration = Duration::from_secs(10);

pub async fn inspect(api: &DockerApi, id: &str) -> Result<Reply> {
    let c = get(api, id).await?;
    let mut v = inspect::container(&c);
    v["NetworkSettings"] = crate::networks::settings(api, &c).await;
    Ok(body::json(&v))
}

/// The container, with docker's wording when there is none.
pub async fn get(api: &DockerApi, id: &str) -> Result<Container> {
    api.engine.get(id).await.map_err(|e| match e {
        EngineError::NotFound(_) => {
            ApiError::NotFound(format!("No such container: {}", inspect::cut(id)))
        }
        e => e.into(),
    })
}

fn label_matches(c: &Container, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => c.labels.get(k).is_some_and(|x| x == v),
        None => c.labels.contains_key(want),
    }
}

fn matches(c: &Container, filters: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, vals)| {
        vals.is_empty()
            || match k.as_str() {
                "id" => vals.iter().any(|v| c.id.starts_with(v.as_str())),
                "name" => vals
                    .iter()
                    .any(|v| c.name.contains(v.trim_start_matches('/'))),
                // Every label filter must match.
                "label" => vals.iter().all(|v| label_matches(c, v)),
                "status" => vals.iter().any(|v| v == inspect::status(c.state)),
                _ => false,
            }
    })
}

pub async fn list(api: &DockerApi, q: &Query) -> Result<Reply> {
    let filters = q.filters()?;
    query::only(&filters, &["id", "name", "label", "status"], "container")?;
    for s in filters.get("status").into_iter().flatten() {
        if !matches!(
            s.as_str(),
            "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
        ) {
            return Err(ApiError::bad(format!(
                "invalid filter 'status={}'",
                inspect::cut(s)
            )));
        }
    }
    for p in ["since", "before"] {
        if q.get(p).is_some_and(|v| !v.is_empty()) {
            return Err(ApiError::bad(format!(
                "the {p} parameter is not supported: use filters"
            )));
        }
    }
    if q.flag("size", false) {
        return Err(ApiError::bad(
            "size=true is not supported: Quilt does not compute container sizes",
        ));
    }
    let limit = q.int("limit")?.filter(|n| *n > 0);
    let all = q.flag("all", false) || limit.is_some();
    let now = quilt_sync_engine::now_ns();
    let list = api.engine.list(&ListFilter::default()).await?;
    let out: Vec<_> = list
        .iter()
        .filter(|c| all || c.state == State::Running)
        .filter(|c| matches(c, &filters))
        .take(limit.map_or(usize::MAX, |n| n as usize))
        .map(|c| inspect::summary(c, now))
        .collect();
    Ok(body::json(&serde_json::Value::Array(out)))
}

pub async fn start(api: &DockerApi, id: &str, _q: &Query) -> Result<Reply> {
    let c = get(api, id).await?;
    if c.state.is_active() {
        return Ok(body::status(StatusCode::NOT_MODIFIED));
    }
    api.engine.start(&c.id).await?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

fn stop_timeout(q: &Query) -> Result<Duration> {
    let t = q.int("t")?.unwrap_or(DEFAULT_STOP as i64);
    // docker: -1 waits for ever; here the longest wait.
    let t = if t < 0 { MAX_STOP } else { t as u64 };
    if t > MAX_STOP {
        return Err(ApiError::bad(format!(
            "stop timeout {t} s is too long: at most {MAX_STOP} s"
        )));
    }
    Ok(Duration::from_secs(t))
}

pub async fn stop(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    let timeout = stop_timeout(q)?;
    let c = get(api, id).await?;
    if !c.state.is_active() && !c.is_queued() {
        return Ok(body::status(StatusCode::NOT_MODIFIED));
    }
    api.engine.stop(&c.id, timeout).await?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

pub async fn restart(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    let timeout = stop_timeout(q)?;
    let c = get(api, id).await?;
    if c.state.is_active() {
        api.engine.stop(&c.id, timeout).await?;
    }
    api.engine.start(&c.id).await?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

pub async fn kill(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    let c = get(api, id).await?;
    let signal = q.get("signal").filter(|s| !s.is_empty()).unwrap_or("KILL");
    if c.state != State::Running {
        return Err(ApiError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    api.engine.kill(&c.id, signal).await?;
    // As docker does, a SIGKILL is answered once the container is recorded
    // as exited (bounded); other signals at once.
    if matches!(
        signal
            .trim_start_matches("SIG")
            .to_ascii_uppercase()
            .as_str(),
        "KILL" | "9"
    ) {
        let _ = tokio::time::timeout(KILL_WAIT, api.engine.wait(&c.id)).await;
    }
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// The code docker's wait reports for an ended container.
fn wait_code(w: &WaitResult) -> i64 {
    match &w.exit {
        Some(e) if e.signal != 0 && e.exit_code == 0 => 128 + i64::from(e.signal),
        Some(e) => i64::from(e.exit_code),
        None if w.state == State::Failed => 125,
        None => 0,
    }
}

pub async fn wait(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    let condition = q.get("condition").unwrap_or("not-running");
    if !matches!(condition, "" | "not-running" | "next-exit" | "removed") {
        return Err(ApiError::bad(format!(
            "invalid condition {}: not-running, next-exit or removed",
            quilt_sync_engine::echo(condition)
        )));
    }
    // Subscribed before anything is read: a removal in between is seen.
    let events = api.engine.subscribe();
    let c = get(api, id).await?;
    // The headers go at once (docker's clients wait for them before they
    // start the container); the result follows when the condition is met.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let api = api.clone();
    let removed = condition == "removed";
    tokio::spawn(async move {
        let waited = tokio::select! {
            r = wait_for(&api, &c.id, removed, events) => r,
            // The client went away: stop waiting for it.
            () = tx.closed() => return,
        };
        let v = match waited {
            Ok(w) => json!({
                "StatusCode": wait_code(&w),
                "Error": w.failure_reason.as_ref().map(|m| json!({ "Message": m })),
            }),
            Err(e) => json!({ "StatusCode": -1, "Error": { "Message": e.to_string() } }),
        };
        let mut b = v.to_string().into_bytes();
        b.push(b'\n');
        let _ = tx.send(bytes::Bytes::from(b)).await;
    });
    Ok(body::stream(rx, "application/json"))
}

async fn wait_for(
    api: &DockerApi,
    id: &str,
    removed: bool,
    mut events: tokio::sync::broadcast::Receiver<quilt_sync_engine::Event>,
) -> Result<WaitResult> {
    let w = api.engine.wait(id).await?;
    if removed {
        loop {
            match api.engine.get(id).await {
                Err(EngineError::NotFound(_)) => break,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            match events.recv().await {
                Ok(ev) if ev.container_id == id && ev.action == "removed" => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(ApiError::Unavailable("quiltd is shutting down".into()));
                }
            }
        }
    }
    Ok(w)
}

pub async fn remove(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    if q.flag("link", false) {
        return Err(ApiError::bad("links are not supported"));
    }
    // `v` removes anonymous volumes: Quilt creates none.
    let force = q.flag("force", false);
    let c = get(api, id).await?;
    if c.state.is_active() && !force {
        return Err(ApiError::Conflict(format!(
            "You cannot remove a {} container {}. Stop the container before attempting removal or force remove",
            inspect::status(c.state),
            c.id
        )));
    }
    api.engine.remove(&c.id, force).await?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

pub async fn prune(api: &DockerApi, q: &Query) -> Result<Reply> {
    let filters = q.filters()?;
    query::only(&filters, &["label"], "prune")?;
    let list = api.engine.list(&ListFilter::default()).await?;
    let mut deleted = Vec::new();
    for c in list
        .iter()
        .filter(|c| matches!(c.state, State::Created | State::Exited | State::Failed))
        .filter(|c| !c.is_pending_start())
        .filter(|c| matches(c, &filters))
    {
        match api.engine.remove(&c.id, false).await {
            Ok(id) => deleted.push(id),
            // Started or removed meanwhile: not pruned.
            Err(EngineError::NotFound(_) | EngineError::FailedPrecondition(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(body::json(
        &json!({ "ContainersDeleted": deleted, "SpaceReclaimed": 0 }),
    ))
}
