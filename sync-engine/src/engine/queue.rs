//! The start queue: starts accepted and not yet taken by the starter.
//!
//! Fair under load. Each start carries who asked (a client key: an explicit
//! client id, or the caller's uid on the socket) and a class (interactive,
//! the default, or batch). The starter takes them:
//! - by class with weighted sharing: up to `INTERACTIVE_WEIGHT` interactive
//!   starts for each batch one while both wait, and with aging: a batch
//!   start that has waited `AGING` is taken next whatever waits beside it;
//! - within a class, round robin over clients, so one client's burst is
//!   interleaved with everyone else's starts instead of standing before them.
//!
//! The starter's slots are shared too: batch starts hold at most a quarter
//! of them at a time, so an interactive start finds a free slot instead of
//! waiting behind a burst; and while an interactive start is under way, no
//! more batch starts begin than half that share, so that it finds CPUs not
//! saturated by launches (a start is CPU-bound: on a small host a quarter
//! of the slots is as many launches as there are cores).
//!
//! Bounded: at most `capacity` (K) starts wait, batch starts together and
//! any one client at most 3/4 K, so a burst never takes the last quarter
//! from an interactive start of another client. A refusal says when to
//! retry, from the queue's recent drain rate. Arrivals, rejections and
//! waits are counted (`metrics.rs`).
//!
//! Passed by where no interactive start waits: an interactive create that
//! finds none in the queue (batch ones may wait there) and a free slot
//! starts at once (`idle_slot`), without the hop through the queue and the
//! starter, and with one write to the store less (see
//! `services::starter::direct_start`). It passes no start it would not
//! have been taken before: the batch starts that wait are held back by
//! their share of the slots, which it does not use, not by its turn.
use crate::error::{EngineError, Result};
use crate::metrics::Metrics;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Interactive starts taken for each batch one while both kinds wait.
const INTERACTIVE_WEIGHT: u32 = 4;
/// A batch start that has waited this long goes next.
const AGING: Duration = Duration::from_secs(2);
/// Longest client key kept (longer ones are cut).
const MAX_CLIENT_KEY: usize = 128;

/// The priority class of a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartClass {
    /// Someone waits for it (a sandbox an agent is about to use).
    #[default]
    Interactive,
    /// Bulk work: fair share, never ahead of interactive starts for long.
    Batch,
}

/// Who asks for a start, and how urgently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    /// An explicit client id, or "uid:N" from the socket's peer
    /// credentials; "" when unknown (all such share one turn).
    pub client: String,
    pub class: StartClass,
}

impl Requester {
    pub fn new(client: &str, class: StartClass) -> Requester {
        let client = quilt_runtime::text::prefix(client, MAX_CLIENT_KEY).to_owned();
        Requester { client, class }
    }
}

/// A start waiting in the queue, with the time it arrived.
#[derive(Debug)]
pub(crate) struct Queued {
    pub id: String,
    pub since: Instant,
    /// Who asked (its place is given back when the start is taken).
    pub client: String,
    /// A batch start (the starter reports its end: `finished`).
    pub batch: bool,
}

/// One class's waiting starts, per client, with the clients in turn order.
#[derive(Debug, Default)]
struct Lane {
    turns: VecDeque<String>,
    waiting: HashMap<String, VecDeque<Queued>>,
    len: usize,
}

impl Lane {
    fn push(&mut self, client: &str, q: Queued) {
        let list = self.waiting.entry(client.to_owned()).or_default();
        if list.is_empty() {
            self.turns.push_back(client.to_owned());
        }
        list.push_back(q);
        self.len += 1;
    }

    /// The next client's first start; the client goes to the back.
    fn pop(&mut self) -> Option<Queued> {
        let client = self.turns.pop_front()?;
        let list = self.waiting.get_mut(&client)?;
        let q = list.pop_front();
        if list.is_empty() {
            self.waiting.remove(&client);
        } else {
            self.turns.push_back(client);
        }
        if q.is_some() {
            self.len -= 1;
        }
        q
    }

    /// When the longest-waiting start of this lane arrived.
    fn oldest(&self) -> Option<Instant> {
        self.waiting
            .values()
            .filter_map(|l| l.front().map(|q| q.since))
            .min()
    }
}

#[derive(Debug, Default)]
struct Inner {
    interactive: Lane,
    batch: Lane,
    /// Places held (reserved or waiting), in all, per class, per client.
    held: usize,
    held_batch: usize,
    held_by: HashMap<String, usize>,
    /// Interactive starts taken in a row while batch ones waited.
    streak: u32,
    /// Set at shutdown: `pop` answers None from then on.
    closed: bool,
    /// Batch starts taken and not finished yet.
    batch_running: usize,
    /// Interactive starts under way: taken and not finished yet, or
    /// passing the queue (`Passed`).
    interactive_running: usize,
    /// Recent drain rate (starts taken per second), smoothed.
    drain_per_sec: f64,
    last_take: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct StartQueue {
    inner: Arc<Mutex<Inner>>,
    ready: Arc<Notify>,
    capacity: usize,
    /// The most batch starts running at once (a quarter of the starter's
    /// slots, at least one).
    batch_slots: usize,
    metrics: Arc<Metrics>,
}

/// A reserved place in the queue; sending on it cannot fail. Dropped
/// unsent, the place is given back.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    queue: &'a StartQueue,
    who: Requester,
    sent: bool,
}

/// A start's turn (`StartQueue::turn`).
#[derive(Debug)]
pub(crate) enum Turn<'a> {
    /// Now, in this slot of the starter's: the queue is passed by.
    Now(Passed),
    /// A place in the queue.
    Queued(Slot<'a>),
}

/// One of the starter's slots, held by an interactive start that passed
/// the queue, to the start's end: it counts as an interactive start under
/// way (see `take`) until dropped.
#[derive(Debug)]
pub(crate) struct Passed {
    _slot: OwnedSemaphorePermit,
    inner: Arc<Mutex<Inner>>,
    ready: Arc<Notify>,
}

impl Drop for Passed {
    fn drop(&mut self) {
        {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.interactive_running = g.interactive_running.saturating_sub(1);
        }
        // A batch start held back by it may begin.
        self.ready.notify_one();
    }
}

impl Slot<'_> {
    pub fn send(mut self, id: String) {
        self.sent = true;
        self.queue.metrics.queued();
        self.queue.enqueue(&self.who, id);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.sent {
            self.queue.release(&self.who);
        }
    }
}

impl StartQueue {
    /// A queue of `capacity` places for a starter of `slots` slots.
    pub fn new(capacity: usize, slots: usize, metrics: Arc<Metrics>) -> StartQueue {
        StartQueue {
            inner: Default::default(),
            ready: Default::default(),
            capacity: capacity.max(1),
            batch_slots: (slots / 4).max(1),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most any one client, or all batch starts together, may hold.
    fn share(&self) -> usize {
        (self.capacity * 3 / 4).max(1)
    }

    /// Reserves a place for `who`, or refuses at once (RESOURCE_EXHAUSTED
    /// with a retry-after hint) when the queue, the batch share or the
    /// client's share is full.
    pub fn reserve(&self, who: &Requester) -> Result<Slot<'_>> {
        let mut g = self.lock();
        let mine = g.held_by.get(&who.client).copied().unwrap_or(0);
        let full = if g.held >= self.capacity {
            Some(format!(
                "the start queue is full ({} starts waiting)",
                self.capacity
            ))
        } else if mine >= self.share() {
            Some(format!(
                "this client already has {mine} starts waiting (at most {} of the queue's {})",
                self.share(),
                self.capacity
            ))
        } else if who.class == StartClass::Batch && g.held_batch >= self.share() {
            Some(format!(
                "batch starts already fill their share of the queue ({})",
                self.share()
            ))
        } else {
            None
        };
        if let Some(why) = full {
            let retry_after = retry_after(g.held, g.drain_per_sec);
            drop(g);
            self.metrics.rejected("queue_full");
            return Err(EngineError::Busy {
                message: format!("{why}; retry in {} ms", retry_after.as_millis()),
                retry_after,
            });
        }
        g.held += 1;
        *g.held_by.entry(who.client.clone()).or_insert(0) += 1;
        if who.class == StartClass::Batch {
            g.held_batch += 1;
        }
        Ok(Slot {
            queue: self,
            who: who.clone(),
            sent: false,
        })
    }

    fn release(&self, who: &Requester) {
        let mut g = self.lock();
        g.held = g.held.saturating_sub(1);
        if let Some(n) = g.held_by.get_mut(&who.client) {
            *n -= 1;
            if *n == 0 {
                g.held_by.remove(&who.client);
            }
        }
        if who.class == StartClass::Batch {
            g.held_batch = g.held_batch.saturating_sub(1);
        }
    }

    fn enqueue(&self, who: &Requester, id: String) {
        let q = Queued {
            id,
            since: Instant::now(),
            client: who.client.clone(),
            batch: who.class == StartClass::Batch,
        };
        {
            let mut g = self.lock();
            match who.class {
                StartClass::Interactive => g.interactive.push(&who.client, q),
                StartClass::Batch => g.batch.push(&who.client, q),
            }
            // The place stays held until the starter takes the start.
        }
        self.ready.notify_one();
    }

    /// Queues a start without a reservation, waiting for none (the
    /// reconciliation at start-up; it may exceed the capacity briefly).
    pub async fn push(&self, id: String) -> Result<()> {
        self.metrics.queued();
        let who = Requester::default();
        {
            let mut g = self.lock();
            g.held += 1;
            *g.held_by.entry(who.client.clone()).or_insert(0) += 1;
        }
        self.enqueue(&who, id);
        Ok(())
    }

    /// The next start, by the rules in the module doc; waits for one.
    /// None once the queue is closed (what waits stays, for the next
    /// quiltd: those containers are still created with autostart set).
    pub async fn pop(&self) -> Option<Queued> {
        loop {
            let notified = self.ready.notified();
            if self.lock().closed {
                return None;
            }
            if let Some(q) = self.take() {
                return Some(q);
            }
            notified.await;
        }
    }

    /// The starter is done with a start it took (whatever became of it).
    pub fn finished(&self, q_batch: bool) {
        {
            let mut g = self.lock();
            if q_batch {
                g.batch_running = g.batch_running.saturating_sub(1);
            } else {
                g.interactive_running = g.interactive_running.saturating_sub(1);
            }
        }
        self.ready.notify_one();
    }

    /// Wakes the starter for good (shutdown).
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }

    fn take(&self) -> Option<Queued> {
        let mut g = self.lock();
        let now = Instant::now();
        let batch_aged = g
            .batch
            .oldest()
            .is_some_and(|t| now.duration_since(t) >= AGING);
        // Half the batch share while an interactive start is under way.
        let batch_slots = match g.interactive_running {
            0 => self.batch_slots,
            _ => (self.batch_slots / 2).max(1),
        };
        let batch_may_run = g.batch_running < batch_slots;
        let take_batch = g.batch.len > 0
            && batch_may_run
            && (g.interactive.len == 0 || batch_aged || g.streak >= INTERACTIVE_WEIGHT);
        let (q, batch) = if take_batch {
            g.streak = 0;
            (g.batch.pop(), true)
        } else {
            if g.batch.len > 0 && g.interactive.len > 0 {
                g.streak += 1;
            }
            (g.interactive.pop(), false)
        };
        let q = q?;
        if batch {
            g.batch_running += 1;
        } else {
            g.interactive_running += 1;
        }
        // The place is given back.
        g.held = g.held.saturating_sub(1);
        if let Some(n) = g.held_by.get_mut(&q.client) {
            *n -= 1;
            if *n == 0 {
                g.held_by.remove(&q.client);
            }
        }
        if batch {
            g.held_batch = g.held_batch.saturating_sub(1);
        }
        // Smoothed drain rate from the gap since the last take.
        if let Some(last) = g.last_take {
            let gap = now.duration_since(last).as_secs_f64().max(1e-4);
            let rate = 1.0 / gap;
            g.drain_per_sec = if g.drain_per_sec == 0.0 {
                rate
            } else {
                0.9 * g.drain_per_sec + 0.1 * rate
            };
        }
        g.last_take = Some(now);
        Some(q)
    }

    /// `who`'s turn to start: at once where `may_pass` and no interactive
    /// start waits (`idle_slot`), else a place reserved in the queue
    /// (refused when it is full: see `reserve`).
    pub fn turn(
        &self,
        who: &Requester,
        slots: &Arc<Semaphore>,
        may_pass: bool,
    ) -> Result<Turn<'_>> {
        if may_pass && let Some(now) = self.idle_slot(who, slots) {
            return Ok(Turn::Now(now));
        }
        self.reserve(who).map(Turn::Queued)
    }

    /// A slot of the starter's for an interactive start that need not wait
    /// its turn: Some only while no interactive start holds a place in the
    /// queue (none reserved, none waiting, so none of its class is passed
    /// over) and a slot is free at once. Batch starts that wait are passed:
    /// `take` would take this one before them too, unless their share of
    /// the slots is free, and then the starter takes them meanwhile (this
    /// start uses one of the other slots). Batch starts always take their
    /// turn.
    fn idle_slot(&self, who: &Requester, slots: &Arc<Semaphore>) -> Option<Passed> {
        if who.class != StartClass::Interactive {
            return None;
        }
        let mut g = self.lock();
        // Places held by interactive starts (and by reconciliation's, which
        // count as interactive): every place not held by a batch start.
        if g.closed || g.held > g.held_batch {
            return None;
        }
        let slot = slots.clone().try_acquire_owned().ok()?;
        g.interactive_running += 1;
        Some(Passed {
            _slot: slot,
            inner: self.inner.clone(),
            ready: self.ready.clone(),
        })
    }

    /// Starts waiting now, and the queue's room.
    pub fn depth(&self) -> (usize, usize) {
        let g = self.lock();
        (g.interactive.len + g.batch.len, self.capacity)
    }
}

/// How long until `held` starts have drained at `rate` per second (at
/// least 50 ms, at most a minute; a second when the rate is unknown).
fn retry_after(held: usize, rate: f64) -> Duration {
    if rate <= 0.0 {
        return Duration::from_secs(1);
    }
    Duration::from_secs_f64((held as f64 / rate).clamp(0.05, 60.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(k: usize) -> StartQueue {
        StartQueue::new(k, 64, Arc::new(Metrics::new()))
    }

    fn who(client: &str, class: StartClass) -> Requester {
        Requester::new(client, class)
    }

    fn add(q: &StartQueue, w: &Requester, id: &str) {
        q.reserve(w).expect("room").send(id.to_owned());
    }

    fn order(q: &StartQueue) -> Vec<String> {
        std::iter::from_fn(|| q.take().map(|x| x.id)).collect()
    }

    #[test]
    fn an_interactive_start_passes_a_queue_where_none_of_its_class_waits() {
        let q = queue(10);
        let slots = Arc::new(Semaphore::new(2));
        let a = who("a", StartClass::Interactive);
        let now = |t: Turn<'_>| matches!(t, Turn::Now(_));
        // Idle, a slot free: at once, in that slot.
        let first = q.turn(&a, &slots, true).unwrap();
        assert!(now(first));
        assert_eq!(
            slots.available_permits(),
            2,
            "the slot went back with the turn"
        );
        let held = match q.turn(&a, &slots, true).unwrap() {
            Turn::Now(p) => p,
            Turn::Queued(_) => panic!("queued with the queue idle"),
        };
        assert_eq!(slots.available_permits(), 1);
        // Not allowed to pass, or a batch start: a place in the queue.
        assert!(!now(q.turn(&a, &slots, false).unwrap()));
        assert!(!now(q
            .turn(&who("b", StartClass::Batch), &slots, true)
            .unwrap()));
        // Batch starts wait (reserved, then queued): an interactive one
        // passes them, in a slot of its own.
        let batch = who("b", StartClass::Batch);
        let reserved = q.reserve(&batch).unwrap();
        assert!(now(q.turn(&a, &slots, true).unwrap()));
        reserved.send("b1".into());
        add(&q, &batch, "b2");
        assert!(now(q.turn(&a, &slots, true).unwrap()));
        assert_eq!(order(&q), vec!["b1", "b2"]);
        // An interactive start holds a place (reserved or waiting): none
        // passes it.
        let waiting = q.reserve(&who("c", StartClass::Interactive)).unwrap();
        assert!(!now(q.turn(&a, &slots, true).unwrap()));
        waiting.send("c1".into());
        assert!(!now(q.turn(&a, &slots, true).unwrap()));
        assert_eq!(order(&q), vec!["c1"]);
        // No slot free: a place in the queue.
        let _other = slots.clone().try_acquire_owned().unwrap();
        assert!(!now(q.turn(&a, &slots, true).unwrap()));
        drop((held, _other));
        // Closed (shutdown): never at once.
        q.close();
        assert!(!now(q.turn(&a, &slots, true).unwrap()));
    }

    #[test]
    fn clients_take_turns_within_a_class() {
        let q = queue(100);
        let a = who("a", StartClass::Interactive);
        let b = who("b", StartClass::Interactive);
        for i in 0..3 {
            add(&q, &a, &format!("a{i}"));
        }
        add(&q, &b, "b0");
        add(&q, &b, "b1");
        assert_eq!(order(&q), ["a0", "b0", "a1", "b1", "a2"]);
        assert_eq!(q.depth().0, 0);
        assert_eq!(q.lock().held, 0);
        assert!(q.lock().held_by.is_empty());
    }

    #[test]
    fn interactive_first_with_a_share_for_batch() {
        let q = queue(100);
        let bulk = who("bulk", StartClass::Batch);
        let user = who("user", StartClass::Interactive);
        for i in 0..3 {
            add(&q, &bulk, &format!("b{i}"));
        }
        for i in 0..6 {
            add(&q, &user, &format!("i{i}"));
        }
        assert_eq!(
            order(&q),
            ["i0", "i1", "i2", "i3", "b0", "i4", "i5", "b1", "b2"]
        );
    }

    #[test]
    fn an_aged_batch_start_goes_next() {
        let q = queue(100);
        add(&q, &who("bulk", StartClass::Batch), "old");
        q.lock().batch.waiting.get_mut("bulk").unwrap()[0].since -= AGING;
        add(&q, &who("user", StartClass::Interactive), "new");
        assert_eq!(order(&q), ["old", "new"]);
    }

    #[test]
    fn a_burst_leaves_room_for_others_and_says_when_to_retry() {
        let q = queue(8);
        let bulk = who("bulk", StartClass::Interactive);
        for i in 0..6 {
            add(&q, &bulk, &format!("b{i}"));
        }
        // 3/4 of 8: the seventh from the same client is refused...
        match q.reserve(&bulk) {
            Err(EngineError::Busy {
                retry_after,
                message,
            }) => {
                assert!(retry_after >= Duration::from_millis(50), "{retry_after:?}");
                assert!(message.contains("retry in"), "{message}");
            }
            other => panic!("not refused: {other:?}"),
        }
        // ... another client still gets in, up to K.
        let other = who("other", StartClass::Interactive);
        add(&q, &other, "o0");
        add(&q, &other, "o1");
        assert!(q.reserve(&other).is_err(), "past K");
        // Batch starts together hold at most 3/4 K.
        let q = queue(8);
        for i in 0..6 {
            add(&q, &who(&format!("c{i}"), StartClass::Batch), "x");
        }
        assert!(q.reserve(&who("c9", StartClass::Batch)).is_err());
        assert!(q.reserve(&who("c9", StartClass::Interactive)).is_ok());
    }

    #[test]
    fn batch_starts_hold_at_most_a_quarter_of_the_slots() {
        let q = StartQueue::new(100, 8, Arc::new(Metrics::new()));
        let bulk = who("bulk", StartClass::Batch);
        for i in 0..4 {
            add(&q, &bulk, &format!("b{i}"));
        }
        let first: Vec<Queued> = std::iter::from_fn(|| q.take()).collect();
        assert_eq!(first.len(), 2, "two of eight slots");
        // An interactive start still gets a slot at once.
        add(&q, &who("user", StartClass::Interactive), "u");
        assert_eq!(q.take().map(|x| x.id).as_deref(), Some("u"));
        assert!(q.take().is_none());
        // While it is under way, batch starts keep to half their share.
        q.finished(true);
        assert!(q.take().is_none(), "one batch start runs beside it");
        q.finished(false);
        assert_eq!(q.take().map(|x| x.id).as_deref(), Some("b2"));
        assert!(q.take().is_none());
    }

    #[test]
    fn a_start_that_passes_the_queue_holds_batch_starts_to_half_their_share() {
        let q = StartQueue::new(100, 8, Arc::new(Metrics::new()));
        let slots = Arc::new(Semaphore::new(8));
        let bulk = who("bulk", StartClass::Batch);
        for i in 0..4 {
            add(&q, &bulk, &format!("b{i}"));
        }
        assert_eq!(q.take().map(|x| x.id).as_deref(), Some("b0"));
        let passed = match q.turn(&who("user", StartClass::Interactive), &slots, true) {
            Ok(Turn::Now(p)) => p,
            _ => panic!("only batch starts wait: it passes them"),
        };
        assert!(q.take().is_none(), "half of two batch slots: one");
        q.finished(true);
        assert_eq!(q.take().map(|x| x.id).as_deref(), Some("b1"));
        assert!(q.take().is_none());
        // Its end gives the share back (and wakes the starter).
        drop(passed);
        assert_eq!(slots.available_permits(), 8);
        assert_eq!(q.take().map(|x| x.id).as_deref(), Some("b2"));
        assert!(q.take().is_none());
    }

    #[test]
    fn an_unsent_slot_gives_its_place_back() {
        let q = queue(1);
        let a = who("a", StartClass::Interactive);
        drop(q.reserve(&a).unwrap());
        add(&q, &a, "x");
        assert_eq!(order(&q), ["x"]);
        assert!(q.reserve(&a).is_ok());
    }
}
