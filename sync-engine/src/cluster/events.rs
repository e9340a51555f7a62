//! The containers' events across the cluster: each node publishes its own
//! (NOTIFY on the events channel, JSON naming the node) and publishes the
//! others' to its WatchEvents streams and waiters as its own. An event
//! that cannot be sent while the database is down is dropped (the state
//! itself is in the table).
use crate::engine::Shared;
use crate::model::{Event, ExitInfo, State};
use crate::store::EVENT_CHANNEL;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// PostgreSQL's limit on a payload is 8000 bytes: a longer one has its
/// reason cut (at a character boundary) to fit.
const MAX_PAYLOAD: usize = 7900;

#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    node: String,
    id: String,
    name: String,
    state: String,
    action: String,
    time_ns: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exit: Option<(i32, i32, bool, Option<i64>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Sends this node's events to the others, in order.
pub(super) async fn publish(shared: Arc<Shared>, mut outbox: tokio::sync::mpsc::Receiver<Event>) {
    let Some(me) = shared.node().map(str::to_owned) else {
        return;
    };
    while let Some(ev) = outbox.recv().await {
        let wire = Wire {
            node: me.clone(),
            id: ev.container_id.to_string(),
            name: ev.name.to_string(),
            state: ev.state.as_str().to_owned(),
            action: ev.action.to_owned(),
            time_ns: ev.time_ns,
            exit: ev
                .exit
                .map(|e| (e.exit_code, e.signal, e.oom_killed, e.finished_at_ns)),
            reason: ev.failure_reason,
        };
        let Some(payload) = payload(wire) else {
            tracing::warn!("an event too large to send to the other nodes");
            continue;
        };
        if let Err(e) = shared.store().notify(EVENT_CHANNEL, &payload).await {
            tracing::debug!(error = %e, "cannot send an event to the other nodes");
        }
    }
}

/// The JSON of `w`, its reason cut until it fits a notification.
fn payload(mut w: Wire) -> Option<String> {
    loop {
        let text = serde_json::to_string(&w).ok()?;
        if text.len() <= MAX_PAYLOAD {
            return Some(text);
        }
        let reason = w.reason.as_mut()?;
        if reason.is_empty() {
            return None;
        }
        // Half as long each time, at a character boundary.
        let cut = quilt_runtime::text::prefix(reason, reason.len() / 2).len();
        reason.truncate(cut);
    }
}

/// An event from another node, published here.
pub(super) fn receive(shared: &Shared, me: &str, payload: &str) {
    let Ok(w) = serde_json::from_str::<Wire>(payload) else {
        tracing::debug!("an event from another node that does not parse");
        return;
    };
    if w.node == me {
        return;
    }
    let Some(state) = State::parse(&w.state) else {
        return;
    };
    shared.emit_remote(Event {
        container_id: w.id.as_str().into(),
        name: w.name.as_str().into(),
        state,
        action: action(&w.action),
        time_ns: w.time_ns,
        exit: w
            .exit
            .map(|(exit_code, signal, oom_killed, finished_at_ns)| ExitInfo {
                exit_code,
                signal,
                oom_killed,
                finished_at_ns,
            }),
        failure_reason: w.reason,
        seq: 0,
    });
}

/// The engine's name for an action (events carry static names).
fn action(a: &str) -> &'static str {
    const ACTIONS: &[&str] = &[
        "created",
        "starting",
        "running",
        "exited",
        "failed",
        "removing",
        "removed",
        "paused",
        "unpaused",
        "restarting",
        "lost",
        "expired",
        "idle",
    ];
    ACTIONS
        .iter()
        .find(|k| **k == a)
        .copied()
        .unwrap_or("updated")
}
