//! The start queue: container ids accepted for a start and not yet taken by
//! the starter. Bounded: a full queue refuses new starts before anything is
//! written.
use crate::error::{EngineError, Result};
use tokio::sync::mpsc::{self, error::TrySendError};

#[derive(Debug)]
pub(crate) struct StartQueue {
    tx: mpsc::Sender<String>,
    capacity: usize,
}

/// A reserved place in the queue; sending on it cannot fail.
pub(crate) type Slot<'a> = mpsc::Permit<'a, String>;

impl StartQueue {
    pub fn new(capacity: usize) -> (StartQueue, mpsc::Receiver<String>) {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        (StartQueue { tx, capacity }, rx)
    }

    /// Reserves a place, or refuses at once: RESOURCE_EXHAUSTED when full.
    pub fn reserve(&self) -> Result<Slot<'_>> {
        self.tx.try_reserve().map_err(|e| match e {
            TrySendError::Full(()) => EngineError::ResourceExhausted(format!(
                "the start queue is full ({} containers waiting to start); retry later",
                self.capacity
            )),
            TrySendError::Closed(()) => EngineError::Unavailable("quiltd is shutting down".into()),
        })
    }

    /// Queues a start, waiting for room (reconciliation at start-up, when
    /// the starter already drains the queue).
    pub async fn push(&self, id: String) -> Result<()> {
        self.tx
            .send(id)
            .await
            .map_err(|_| EngineError::Unavailable("the starter has stopped".into()))
    }
}
