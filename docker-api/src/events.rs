//! GET /events: the engine's container events as docker's event objects,
//! one JSON object per line, from now on (the engine keeps no history:
//! a `since` in the past is refused), until `until` or the client leaves.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::query::{self, Query};
use crate::server::DockerApi;
use bytes::Bytes;
use quilt_sync_engine::{Event, now_ns};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

/// docker's action for an engine transition (None: not one docker reports).
fn action(ev: &Event) -> Option<&'static str> {
    Some(match ev.action {
        "created" => "create",
        "running" => "start",
        "exited" | "failed" => "die",
        "removed" => "destroy",
        _ => return None,
    })
}

fn object(ev: &Event, action: &str) -> serde_json::Value {
    let mut attrs = serde_json::Map::new();
    attrs.insert("name".into(), json!(ev.name));
    if action == "die" {
        let code =
            ev.exit
                .as_ref()
                .map_or(if ev.failure_reason.is_some() { 125 } else { 0 }, |e| {
                    if e.signal != 0 && e.exit_code == 0 {
                        128 + e.signal
                    } else {
                        e.exit_code
                    }
                });
        attrs.insert("exitCode".into(), json!(code.to_string()));
    }
    json!({
        "status": action,
        "id": ev.container_id,
        "from": "",
        "Type": "container",
        "Action": action,
        "Actor": { "ID": ev.container_id, "Attributes": attrs },
        "scope": "local",
        "time": ev.time_ns / 1_000_000_000,
        "timeNano": ev.time_ns,
    })
}

pub async fn events(api: &DockerApi, q: &Query) -> Result<Reply> {
    let filters = q.filters()?;
    query::only(&filters, &["type", "container", "event"], "event")?;
    if filters
        .get("type")
        .is_some_and(|t| !t.is_empty() && !t.iter().any(|t| t == "container"))
    {
        return Err(ApiError::bad(
            "only container events are reported (type=container)",
        ));
    }
    let now = now_ns();
    let parse = |k: &str| -> Result<Option<i64>> {
        match q.get(k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => crate::time::parse_unix(s)
                .map(Some)
                .ok_or_else(|| ApiError::bad(format!("invalid {k}: unix seconds expected"))),
        }
    };
    if parse("since")?.is_some_and(|s| s < now - 1_000_000_000) {
        return Err(ApiError::bad(
            "past events are not kept: since must not be in the past",
        ));
    }
    let until = parse("until")?;
    let containers = filters.get("container").cloned().unwrap_or_default();
    let wanted = filters.get("event").cloned().unwrap_or_default();
    let mut rx = api.engine.subscribe();
    let (tx, out) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let deadline = until.map(|u| {
            let wait = std::time::Duration::from_nanos(u64::try_from(u - now).unwrap_or(0));
            tokio::time::Instant::now() + wait
        });
        loop {
            let ev = tokio::select! {
                r = rx.recv() => r,
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => return,
                _ = tx.closed() => return,
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(a) = action(&ev) else { continue };
            if !containers.is_empty()
                && !containers
                    .iter()
                    .any(|c| ev.container_id.starts_with(c.as_str()) || *c == ev.name)
            {
                continue;
            }
            if !wanted.is_empty() && !wanted.iter().any(|w| w == a) {
                continue;
            }
            let mut line = object(&ev, a).to_string().into_bytes();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
    });
    Ok(body::stream(out, "application/json"))
}
