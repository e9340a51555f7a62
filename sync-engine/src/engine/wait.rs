//! Waiting for a container's row to satisfy a condition, event driven: the
//! one place that gets subscription order, lag, deadlines, cancellation and
//! shutdown right. A waiter subscribes (`Shared::watch`) *before* it acts or
//! first reads the row, so no change in between is missed; each event of its
//! container (or a lag, after which anything may have changed) makes it read
//! the row again.
use super::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, Event};
use std::future::Future;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

/// A subscription to the engine's events.
#[derive(Debug)]
pub(crate) struct Watch {
    events: broadcast::Receiver<Event>,
    /// The last event seen for the watched container that carried an exit
    /// status (its row may be gone by the time the waiter looks).
    exit_event: Option<Event>,
}

/// How a wait ended.
#[derive(Debug)]
pub(crate) enum Waited {
    /// The condition held for the row (None: the row is gone).
    Met(Option<Box<Container>>),
    /// The deadline passed first.
    TimedOut,
    /// The caller's cancellation fired first.
    Cancelled,
}

impl Watch {
    pub fn new(events: broadcast::Receiver<Event>) -> Watch {
        Watch {
            events,
            exit_event: None,
        }
    }

    /// The last event of container `id` that carried its exit status,
    /// among those received so far (pending ones included).
    pub fn exit_event(&mut self, id: &str) -> Option<&Event> {
        loop {
            match self.events.try_recv() {
                Ok(ev) if ev.container_id == id && ev.exit.is_some() => self.exit_event = Some(ev),
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        self.exit_event.as_ref().filter(|ev| ev.container_id == id)
    }

    /// Resolves at the next event of container `id`, or a lag (after which
    /// the caller must re-check anyway). False once the engine is gone.
    pub async fn changed(&mut self, id: &str) -> bool {
        loop {
            match self.events.recv().await {
                Ok(ev) if ev.container_id == id => {
                    if ev.exit.is_some() {
                        self.exit_event = Some(ev);
                    }
                    return true;
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return true,
                Err(RecvError::Closed) => return false,
            }
        }
    }
}

impl Shared {
    /// Subscribes to the engine's events: call before acting on or reading
    /// the container that will be waited for.
    pub fn watch(&self) -> Watch {
        Watch::new(self.subscribe())
    }

    /// Waits until `done` holds for container `id`'s row (None: the row is
    /// gone), up to `deadline`, or until `cancel` resolves. A shut-down
    /// engine is UNAVAILABLE.
    pub async fn wait_until(
        &self,
        watch: &mut Watch,
        id: &str,
        done: impl Fn(Option<&Container>) -> bool,
        deadline: Option<Instant>,
        cancel: impl Future<Output = ()>,
    ) -> Result<Waited> {
        tokio::pin!(cancel);
        loop {
            let row = self.store().get(id).await?;
            if done(row.as_ref()) {
                return Ok(Waited::Met(row.map(Box::new)));
            }
            let changed = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, watch.changed(id)).await.ok(),
                    None => Some(watch.changed(id).await),
                }
            };
            tokio::select! {
                r = changed => match r {
                    None => return Ok(Waited::TimedOut),
                    Some(false) => {
                        return Err(EngineError::Unavailable("quiltd is shutting down".into()));
                    }
                    Some(true) => {}
                },
                () = &mut cancel => return Ok(Waited::Cancelled),
            }
        }
    }
}
