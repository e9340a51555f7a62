//! TTLs and idle timeouts at work. One task keeps the next deadline of
//! every running (or paused) container that has one and sleeps until the
//! earliest (a tokio timer; no polling). It looks at a container again when
//! it starts running or is unpaused (events), when an activity on it ends
//! or its deadlines move (`Shared::lifetimes_wake`). An expired TTL stops
//! the container (a `--rm` one is then removed, as on any exit); an expired
//! idle timeout stops or pauses it, as its settings say. The stop counts as
//! a stop by the user: a restart policy does not undo it.
use crate::engine::{Engine, Shared};
use crate::error::Result;
use crate::model::{Container, IdleAction, ListFilter, State, now_ns};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// SIGTERM, then SIGKILL after this, when a lifetime ends (a sandbox past
/// its deadline ends promptly).
const STOP_TIMEOUT: Duration = Duration::from_millis(500);

/// Starts the service with every running or paused container in view.
pub(crate) async fn spawn(shared: Arc<Shared>, rx: mpsc::UnboundedReceiver<String>) -> Result<()> {
    let events = shared.subscribe();
    let initial = live_ids(&shared).await?;
    tokio::spawn(run(shared, rx, events, initial));
    Ok(())
}

async fn live_ids(shared: &Shared) -> Result<Vec<String>> {
    Ok(shared
        .store()
        .list(&ListFilter {
            states: vec![State::Running, State::Paused],
            node: shared.node().map(str::to_owned),
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<String>,
    mut events: broadcast::Receiver<crate::model::Event>,
    initial: Vec<String>,
) {
    // Container id -> its next deadline (unix ns).
    let mut due: HashMap<String, i64> = HashMap::new();
    for id in initial {
        look(&shared, &id, &mut due).await;
    }
    loop {
        let sleep = match due.values().min() {
            Some(&at) => {
                let wait = Duration::from_nanos(at.saturating_sub(now_ns()).max(0) as u64);
                tokio::time::sleep(wait)
            }
            None => tokio::time::sleep(Duration::from_secs(86_400)),
        };
        tokio::select! {
            id = rx.recv() => match id {
                Some(id) => look(&shared, &id, &mut due).await,
                None => return,
            },
            ev = events.recv() => match ev {
                Ok(ev) if matches!(ev.action, "running" | "unpaused") => {
                    look(&shared, &ev.container_id, &mut due).await;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed some: look at every live container again.
                    if let Ok(ids) = live_ids(&shared).await {
                        for id in ids {
                            look(&shared, &id, &mut due).await;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = sleep => {
                let now = now_ns();
                let expired: Vec<String> = due
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in expired {
                    look(&shared, &id, &mut due).await;
                }
            }
        }
        if shared.is_closing() {
            return;
        }
    }
}

/// Why a lifetime ended.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    Ttl,
    Idle(IdleAction),
}

/// Recomputes the container's next deadline; acts on one that has passed.
async fn look(shared: &Arc<Shared>, id: &str, due: &mut HashMap<String, i64>) {
    due.remove(id);
    let c = match shared.store().get(id).await {
        Ok(Some(c)) => c,
        Ok(None) => return,
        Err(e) => {
            // Try again shortly (the store may be busy).
            tracing::warn!(container = %id, error = %e, "lifetime check failed");
            due.insert(id.to_owned(), now_ns() + 1_000_000_000);
            return;
        }
    };
    let now = now_ns();
    let mut next: Option<i64> = None;
    if matches!(c.state, State::Running | State::Paused)
        && let Some(at) = c.lifetime.expires_at_ns
    {
        if at <= now {
            return expire(shared, c, Expiry::Ttl);
        }
        next = Some(at);
    }
    let live = shared.live(id);
    if c.state == State::Running && live.active.load(Ordering::SeqCst) == 0 {
        let last = c
            .lifetime
            .last_activity_ns
            .or(c.started_at_ns)
            .unwrap_or(now)
            .max(live.last_activity_ns.load(Ordering::SeqCst));
        if let Some(at) = c.lifetime.idle_deadline(last) {
            if at <= now {
                let action = c.lifetime.idle_action;
                return expire(shared, c, Expiry::Idle(action));
            }
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    if let Some(at) = next {
        due.insert(id.to_owned(), at);
    }
}

/// Stops (or pauses) the container, off the service's task: a stop waits
/// for the exit.
fn expire(shared: &Arc<Shared>, c: Container, why: Expiry) {
    let engine = Engine {
        shared: shared.clone(),
    };
    let action = match why {
        Expiry::Ttl => "expired",
        Expiry::Idle(_) => "idle",
    };
    tracing::info!(container = %c.id, reason = action, "lifetime over");
    shared.emit(&c, c.state, action, None, None);
    tokio::spawn(async move {
        let r = match why {
            Expiry::Ttl | Expiry::Idle(IdleAction::Stop) => {
                engine.stop(&c.id, STOP_TIMEOUT).await.map(drop)
            }
            Expiry::Idle(IdleAction::Pause) => engine.pause(&c.id).await.map(drop),
        };
        if let Err(e) = r {
            tracing::warn!(container = %c.id, error = %e, reason = action, "cannot end the container");
        }
    });
}
