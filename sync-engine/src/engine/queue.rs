//! The start queue: container ids accepted for a start and not yet taken by
//! the starter. Bounded: a full queue refuses new starts before anything is
//! written. Arrivals, rejections and the time each start waited are counted
//! (`metrics.rs`).
use crate::error::{EngineError, Result};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::{self, error::TrySendError};

/// A start waiting in the queue, with the time it arrived.
#[derive(Debug)]
pub(crate) struct Queued {
    pub id: String,
    pub since: Instant,
}

#[derive(Debug)]
pub(crate) struct StartQueue {
    tx: mpsc::Sender<Queued>,
    capacity: usize,
    metrics: Arc<Metrics>,
}

/// A reserved place in the queue; sending on it cannot fail.
pub(crate) struct Slot<'a> {
    permit: mpsc::Permit<'a, Queued>,
    metrics: &'a Metrics,
}

impl Slot<'_> {
    pub fn send(self, id: String) {
        self.metrics.queued();
        self.permit.send(Queued {
            id,
            since: Instant::now(),
        });
    }
}

impl StartQueue {
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> (StartQueue, mpsc::Receiver<Queued>) {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        (
            StartQueue {
                tx,
                capacity,
                metrics,
            },
            rx,
        )
    }

    /// Reserves a place, or refuses at once: RESOURCE_EXHAUSTED when full.
    pub fn reserve(&self) -> Result<Slot<'_>> {
        match self.tx.try_reserve() {
            Ok(permit) => Ok(Slot {
                permit,
                metrics: &self.metrics,
            }),
            Err(TrySendError::Full(())) => {
                self.metrics.rejected("queue_full");
                Err(EngineError::ResourceExhausted(format!(
                    "the start queue is full ({} containers waiting to start); retry later",
                    self.capacity
                )))
            }
            Err(TrySendError::Closed(())) => {
                self.metrics.rejected("shutting_down");
                Err(EngineError::Unavailable("quiltd is shutting down".into()))
            }
        }
    }

    /// Queues a start, waiting for room (reconciliation at start-up, when
    /// the starter already drains the queue).
    pub async fn push(&self, id: String) -> Result<()> {
        self.metrics.queued();
        self.tx
            .send(Queued {
                id,
                since: Instant::now(),
            })
            .await
            .map_err(|_| EngineError::Unavailable("the starter has stopped".into()))
    }

    /// Starts waiting now, and the queue's room.
    pub fn depth(&self) -> (usize, usize) {
        (
            self.capacity - self.tx.capacity().min(self.capacity),
            self.capacity,
        )
    }
}
