//! A WatchEvents subscriber that records when each container's events arrive,
//! so a measurement can wait for "running" (or "exited", "removed") of an id
//! without polling. The stream is opened before any container is created, so
//! an event that arrives before the CreateContainer answer is kept too.

use crate::client::{Client, connect};
use anyhow::Result;
use quilt_proto::v1::{Event, ExitStatus, WatchEventsRequest};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tokio_stream::StreamExt;

/// One event as received by this client.
#[derive(Debug, Clone)]
pub struct Seen {
    pub action: String,
    /// When this process received it (monotonic).
    pub at: Instant,
    /// When this process received it (wall clock, to compare with server times).
    pub wall: SystemTime,
    /// The server's time of the event.
    pub time: Option<SystemTime>,
    pub exit: Option<ExitStatus>,
}

#[derive(Default)]
struct Entry {
    first: Option<Instant>,
    seen: Vec<Seen>,
    waiters: Vec<(Vec<&'static str>, oneshot::Sender<()>)>,
}

#[derive(Default)]
struct State {
    by_id: HashMap<String, Entry>,
    /// Receive times of every event, per action (for rates).
    log: HashMap<String, Vec<Instant>>,
    inserted: u64,
}

pub struct Hub {
    state: Mutex<State>,
    /// Times the server dropped events for us (DATA_LOSS) and we resubscribed.
    pub lost: AtomicU64,
    stop: AtomicBool,
}

pub fn to_system_time(t: &prost_types::Timestamp) -> SystemTime {
    let nanos = t.seconds as i128 * 1_000_000_000 + t.nanos as i128;
    if nanos >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64)
    } else {
        SystemTime::UNIX_EPOCH
    }
}

/// `b - a`, or zero (and false) if b is earlier.
pub fn wall_delta(a: SystemTime, b: SystemTime) -> (Duration, bool) {
    match b.duration_since(a) {
        Ok(d) => (d, true),
        Err(_) => (Duration::ZERO, false),
    }
}

impl Hub {
    /// Subscribes to all events; returns once the server has subscribed us.
    pub async fn start(socket: &Path) -> Result<Arc<Hub>> {
        let hub = Arc::new(Hub {
            state: Mutex::new(State::default()),
            lost: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let mut client = connect(socket).await?;
        let stream = open(&mut client).await?;
        let h = hub.clone();
        tokio::spawn(async move { h.pump(client, stream).await });
        Ok(hub)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    async fn pump(self: Arc<Self>, mut client: Client, mut stream: tonic::Streaming<Event>) {
        loop {
            match stream.next().await {
                Some(Ok(ev)) => self.record(ev),
                Some(Err(st)) => {
                    if st.code() == tonic::Code::DataLoss {
                        self.lost.fetch_add(1, Ordering::SeqCst);
                    } else if !self.stop.load(Ordering::SeqCst) {
                        eprintln!("quilt-bench: event stream error: {st}; resubscribing");
                    }
                    stream = match self.reopen(&mut client).await {
                        Some(s) => s,
                        None => return,
                    };
                }
                None => {
                    stream = match self.reopen(&mut client).await {
                        Some(s) => s,
                        None => return,
                    };
                }
            }
        }
    }

    async fn reopen(&self, client: &mut Client) -> Option<tonic::Streaming<Event>> {
        for _ in 0..200 {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            if let Ok(s) = open(client).await {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    fn record(&self, ev: Event) {
        let at = Instant::now();
        let wall = SystemTime::now();
        let seen = Seen {
            action: ev.action.clone(),
            at,
            wall,
            time: ev.time.as_ref().map(to_system_time),
            exit: ev.exit,
        };
        let mut st = self.state.lock().expect("hub lock");
        st.log.entry(ev.action.clone()).or_default().push(at);
        st.inserted += 1;
        if st.inserted.is_multiple_of(4096) {
            // Forget ids nobody waits for after a while, so long runs stay small.
            st.by_id.retain(|_, e| {
                e.waiters.retain(|(_, tx)| !tx.is_closed());
                !e.waiters.is_empty()
                    || e.first
                        .is_some_and(|f| at.duration_since(f) < Duration::from_secs(120))
            });
        }
        let entry = st.by_id.entry(ev.container_id).or_default();
        entry.first.get_or_insert(at);
        let action = seen.action.clone();
        entry.seen.push(seen);
        let waiters = std::mem::take(&mut entry.waiters);
        for (actions, tx) in waiters {
            if actions.contains(&action.as_str()) {
                let _ = tx.send(());
            } else {
                entry.waiters.push((actions, tx));
            }
        }
    }

    fn find(&self, id: &str, actions: &[&'static str]) -> Option<Seen> {
        let st = self.state.lock().expect("hub lock");
        st.by_id.get(id).and_then(|e| {
            e.seen
                .iter()
                .find(|s| actions.contains(&s.action.as_str()))
                .cloned()
        })
    }

    /// The first event of `id` whose action is one of `actions`, waiting up
    /// to `timeout` for it. None on timeout.
    pub async fn wait(
        &self,
        id: &str,
        actions: &[&'static str],
        timeout: Duration,
    ) -> Option<Seen> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rx = {
                let mut st = self.state.lock().expect("hub lock");
                let entry = st.by_id.entry(id.to_string()).or_default();
                if let Some(s) = entry
                    .seen
                    .iter()
                    .find(|s| actions.contains(&s.action.as_str()))
                {
                    return Some(s.clone());
                }
                entry.first.get_or_insert_with(Instant::now);
                let (tx, rx) = oneshot::channel();
                entry.waiters.push((actions.to_vec(), tx));
                rx
            };
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(_) => {
                    if let Some(s) = self.find(id, actions) {
                        return Some(s);
                    }
                }
                Err(_) => {
                    return self.find(id, actions);
                }
            }
        }
    }

    /// Every event of `id` received so far.
    pub fn events_of(&self, id: &str) -> Vec<Seen> {
        let st = self.state.lock().expect("hub lock");
        st.by_id.get(id).map(|e| e.seen.clone()).unwrap_or_default()
    }

    pub fn forget(&self, id: &str) {
        self.state.lock().expect("hub lock").by_id.remove(id);
    }

    /// Number of events with this action received in [from, to].
    pub fn count_between(&self, action: &str, from: Instant, to: Instant) -> usize {
        let st = self.state.lock().expect("hub lock");
        st.log
            .get(action)
            .map(|v| v.iter().filter(|t| **t >= from && **t <= to).count())
            .unwrap_or(0)
    }

    /// The receive time of the last event with this action, if any.
    pub fn last_of(&self, action: &str) -> Option<Instant> {
        let st = self.state.lock().expect("hub lock");
        st.log.get(action).and_then(|v| v.last().copied())
    }
}

async fn open(client: &mut Client) -> Result<tonic::Streaming<Event>> {
    Ok(client
        .watch_events(WatchEventsRequest::default())
        .await?
        .into_inner())
}
